"""Write a centred or whitened copy of a features file (issue 18: can the text's content count?).

Text vectors of different entities share directions (MiniLM on FB15k-237: mean cosine 0.107 over all pairs), so
entities with similar texts get similar anchors in VBKGC's cross terms. Centring removes the shared mean; whitening
(ZCA) also gives every direction of the features the same variance. Rows are L2-normalised afterwards, as the
encoder's output is::

    python benchmarks/transform_features.py ../shared/data/fb15k237/features.minilm.safetensors \
        results/features/fb15k237.minilm.whiten.safetensors --transform whiten
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from pykeen_vbkgc.features import EntityFeatures, load_features, save_features


def transform(vectors: torch.Tensor, kind: str, eps: float = 1e-5) -> torch.Tensor:
    """Centre (``"centre"``) or ZCA-whiten (``"whiten"``) the rows, then L2-normalise them."""
    x = vectors.double()
    x = x - x.mean(dim=0, keepdim=True)
    if kind == "whiten":
        covariance = x.T @ x / x.shape[0]
        eigenvalues, eigenvectors = torch.linalg.eigh(covariance)
        # eps keeps directions without variance from being blown up
        x = x @ eigenvectors @ torch.diag((eigenvalues + eps).rsqrt()) @ eigenvectors.T
    elif kind != "centre":
        raise ValueError(f"transform must be 'centre' or 'whiten', got {kind!r}.")
    return torch.nn.functional.normalize(x, dim=1).to(vectors.dtype)


def mean_cosine(vectors: torch.Tensor) -> float:
    """Return the mean cosine similarity over all pairs of distinct rows, without the (n, n) similarity matrix."""
    unit = torch.nn.functional.normalize(vectors.double(), dim=1)
    n = unit.shape[0]
    # the sum over all pairs, the diagonal's n ones included, is the squared norm of the rows' sum
    return ((unit.sum(dim=0).square().sum() - n) / (n * (n - 1))).item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("--transform", choices=["centre", "whiten"], required=True)
    args = parser.parse_args()
    features = load_features(args.source)
    vectors = transform(features.vectors, args.transform)
    metadata = {**features.metadata, "transform": args.transform, "transformed_from": str(args.source)}
    save_features(
        args.target,
        EntityFeatures(labels=features.labels, vectors=vectors, metadata=metadata, num_images=features.num_images),
    )
    print(f"wrote {args.target}: mean cosine between entities {mean_cosine(vectors):.4f}")


if __name__ == "__main__":
    main()
