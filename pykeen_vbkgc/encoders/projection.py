"""Matching the image backbone's token dimension to the VisualBERT checkpoint's ``visual_embedding_dim``.

VisualBERT's visual projection was pre-trained on one kind of visual feature (2048-d Faster R-CNN region features
for the COCO/VQA checkpoints). A backbone with another width cannot be fed directly, and there is no learned
mapping to fall back on, because VBKGC never trains the encoder. The policy is explicit:

- ``"error"`` (default): a mismatch raises :class:`DimensionMismatchError`, which names the alternatives,
- ``"random"``: a fixed Gaussian random projection ``x -> x @ W`` with ``W ~ N(0, 1/out_dim)`` drawn from a seeded
  generator (Johnson-Lindenstrauss: it preserves norms and angles approximately). The seed, shape and a SHA-256 of
  ``W`` are written to the features file's metadata, so the features can be reproduced and audited.

The best option is a backbone that matches natively (``resnet`` with ``microsoft/resnet-152`` for COCO checkpoints).
"""

from __future__ import annotations

import hashlib
from typing import Literal

import torch
from torch import nn

__all__ = [
    "DimensionMismatchError",
    "RandomProjection",
    "make_projection",
]

ProjectionPolicy = Literal["error", "random"]


class DimensionMismatchError(ValueError):
    """Raised when the backbone's token dimension differs from the checkpoint's and no projection is chosen."""


class RandomProjection(nn.Module):
    """A fixed (never trained), seeded Gaussian random projection."""

    def __init__(self, in_dim: int, out_dim: int, seed: int = 0):
        """Draw the projection matrix.

        :param in_dim: the backbone's token dimension
        :param out_dim: the checkpoint's ``visual_embedding_dim``
        :param seed: the seed of the generator that draws the matrix
        """
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        weight = torch.randn(in_dim, out_dim, generator=generator, dtype=torch.float32) / out_dim**0.5
        self.register_buffer("weight", weight)
        self.seed = seed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Project the last dimension.

        :param x: shape: (..., in_dim)
        :return: shape: (..., out_dim)
        """
        return x @ self.weight.to(dtype=x.dtype)

    def describe(self) -> dict[str, str]:
        """Return metadata that identifies the projection."""
        digest = hashlib.sha256(self.weight.cpu().numpy().tobytes()).hexdigest()
        return {
            "projection": "random",
            "projection_seed": str(self.seed),
            "projection_shape": f"{self.weight.shape[0]}x{self.weight.shape[1]}",
            "projection_sha256": digest,
        }


def make_projection(
    in_dim: int, out_dim: int, policy: ProjectionPolicy = "error", *, seed: int = 0, backbone: str = "the backbone"
) -> RandomProjection | None:
    """Return the projection from the backbone's to the checkpoint's visual dimension, if one is needed.

    :param in_dim: the backbone's token dimension
    :param out_dim: the checkpoint's ``visual_embedding_dim``
    :param policy: what to do on a mismatch, see the module docstring
    :param seed: the seed of the random projection
    :param backbone: the backbone's name, for the error message
    :return: None if the dimensions match, else the projection
    :raises DimensionMismatchError: for a mismatch under the ``"error"`` policy
    :raises ValueError: for an unknown policy
    """
    if policy not in ("error", "random"):
        raise ValueError(f"Unknown projection policy {policy!r}; use 'error' or 'random'.")
    if in_dim == out_dim:
        return None
    if policy == "error":
        raise DimensionMismatchError(
            f"Dimension mismatch: {backbone} gives {in_dim}-d visual tokens but the VisualBERT checkpoint expects "
            f"visual_embedding_dim={out_dim}. Either use a backbone that matches natively (e.g. 'resnet' with "
            "microsoft/resnet-152 gives 2048-d for the COCO checkpoints) or choose the fixed, seeded random "
            "projection (projection='random' / --projection random), which is recorded in the features metadata."
        )
    return RandomProjection(in_dim=in_dim, out_dim=out_dim, seed=seed)
