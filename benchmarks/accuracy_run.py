"""One accuracy run: train TransE or VBKGC on WN9 / FB15k-237 and print filtered metrics as one JSON line.

Used for the accuracy diagnosis in docs/results.md (every row there is one call; the exact argument lines are in
``benchmarks/accuracy_runs.txt``)::

    python benchmarks/accuracy_run.py --dataset wn9 --sampler twins --p 2 --normalize-relations \
        --margin 10 --projection-lr-scale 1e-3 --diagnose

``--diagnose`` adds, for the test triples, the mean distance of each score term for the true tail and for the
self-candidate (h, r, h), the norms of the relation vectors, and the cosine between an entity's structural and
multimodal embedding. Results are appended to ``--output`` (JSON lines).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import torch
from pykeen.evaluation import RankBasedEvaluator
from pykeen.losses import MarginRankingLoss
from pykeen.models import TransE
from pykeen.training import SLCWATrainingLoop
from torch.nn import functional

import pykeen_vbkgc  # noqa: F401  (registers the components)
from pykeen_vbkgc import VBKGC, MeanMarginRankingLoss, TwinsNegativeSampler
from pykeen_vbkgc.features import load_features
from pykeen_vbkgc.interaction import stack_pieces

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "examples"))
import common  # noqa: E402  (the examples' dataset loading, default feature paths and self_top1)

DATA = {
    "wn9": HERE.parent.parent / "shared/data/wn9",
    "fb15k237multimodal": HERE.parent.parent / "shared/data/fb15k237",
}


def whiten(vectors: torch.Tensor) -> torch.Tensor:
    """Centre the features and rotate/scale them to unit variance in every principal direction (PCA whitening)."""
    centred = vectors - vectors.mean(dim=0, keepdim=True)
    eigenvalues, eigenvectors = torch.linalg.eigh(centred.T @ centred / centred.shape[0])
    return centred @ eigenvectors / eigenvalues.clamp_min(1e-8).sqrt()


@torch.no_grad()
def diagnose(model: VBKGC, triples: torch.Tensor) -> dict:
    """Per score term: mean distance of the true tail and of the self-candidate; relation norms; s-m alignment."""
    structural_view, _, multimodal_view = model.entity_representations
    structural, multimodal = structural_view(indices=None), multimodal_view(indices=None)
    relations = model.relation_representations[0](indices=None)
    interaction = model.interaction
    if interaction.normalize_relations:
        relations = functional.normalize(relations, dim=-1)

    def pieces(entities):
        entity = (structural[entities], structural[entities], multimodal[entities])
        return stack_pieces(entity, normalize=interaction.normalize).unbind(dim=-2)

    heads, tails, r = pieces(triples[:, 0]), pieces(triples[:, 2]), relations[triples[:, 1]]
    terms = {}
    for term, a, b in zip(interaction.score_terms, interaction.head_pieces, interaction.tail_pieces, strict=True):
        true = torch.linalg.vector_norm(heads[a] + r - tails[b], ord=interaction.p, dim=-1)
        self_ = torch.linalg.vector_norm(heads[a] + r - heads[b], ord=interaction.p, dim=-1)
        terms[term] = dict(
            true=true.mean().item(), self=self_.mean().item(), self_closer=(self_ < true).float().mean().item()
        )
    shuffled = multimodal[torch.randperm(multimodal.shape[0], generator=torch.Generator().manual_seed(0))]
    return dict(
        terms=terms,
        relation_l1=relations.abs().sum(dim=-1).mean().item(),
        relation_l2=relations.norm(dim=-1).mean().item(),
        cosine_same_entity=functional.cosine_similarity(structural, multimodal).mean().item(),
        cosine_random_pair=functional.cosine_similarity(structural, shuffled).mean().item(),
    )


def main() -> None:
    """Run one configuration."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=sorted(DATA), default="wn9")
    parser.add_argument("--model", choices=["vbkgc", "transe"], default="vbkgc")
    parser.add_argument("--sampler", choices=["basic", "twins"], default="twins")
    parser.add_argument("--loss", choices=["mean", "pairwise"], default="mean", help="Eq. 15, or PyKEEN's per pair")
    parser.add_argument("--margin", type=float, default=10.0)
    parser.add_argument("--learning-rate", type=float, default=1e-2)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--num-negatives", type=int, default=16)
    parser.add_argument("--p", type=int, default=1, help="norm of the TransE terms (both models)")
    parser.add_argument("--normalize-relations", action="store_true", help="VBKGC: L2-normalise relations too")
    parser.add_argument("--projection-lr-scale", type=float, default=1.0)
    parser.add_argument("--projection-bias", action="store_true")
    parser.add_argument("--score-terms", default=None, help="VBKGC: a subset of ss,mm,sm,ms,all")
    parser.add_argument("--term-weights", default=None, help="VBKGC: e.g. mm=0.1,sm=0.3")
    parser.add_argument("--features", choices=["minilm", "whitened", "random"], default="minilm")
    parser.add_argument("--features-file", type=Path, help="a features file instead of the default MiniLM one")
    parser.add_argument("--evaluation-subset", type=int, help="evaluate a fixed random subset of the test triples")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--diagnose", action="store_true")
    parser.add_argument("--tag", default="")
    parser.add_argument("--output", type=Path, default=Path("results/accuracy_runs.jsonl"))
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    dataset = common.load_dataset(args.dataset, DATA[args.dataset])
    training = dataset.training
    loss = (MeanMarginRankingLoss if args.loss == "mean" else MarginRankingLoss)(margin=args.margin)
    if args.model == "transe":
        model = TransE(triples_factory=training, embedding_dim=128, scoring_fct_norm=args.p, loss=loss, random_seed=0)
    else:
        features = None
        if args.features != "random":
            features = load_features(args.features_file or common.DEFAULT_FEATURES[args.dataset])
            if args.features == "whitened":
                features = dataclasses.replace(features, vectors=whiten(features.vectors))
        model = VBKGC(
            triples_factory=training,
            features=features,
            embedding_dim=128,
            scoring_fct_norm=args.p,
            normalize_relations=args.normalize_relations,
            projection_lr_scale=args.projection_lr_scale,
            projection_bias=args.projection_bias,
            score_terms=args.score_terms,
            term_weights=args.term_weights,
            loss=loss,
            random_seed=args.seed,
        )
    loop = SLCWATrainingLoop(
        model=model,
        triples_factory=training,
        optimizer="adam",
        optimizer_kwargs=dict(lr=args.learning_rate),
        negative_sampler=TwinsNegativeSampler if args.sampler == "twins" else "basic",
        negative_sampler_kwargs=dict(num_negs_per_pos=args.num_negatives, filtered=True),
    )
    start = time.perf_counter()
    losses = loop.train(triples_factory=training, num_epochs=args.epochs, batch_size=args.batch_size, use_tqdm=False)
    train_seconds = time.perf_counter() - start
    test = dataset.testing.mapped_triples
    if args.evaluation_subset:
        keep = torch.randperm(test.shape[0], generator=torch.Generator().manual_seed(0))[: args.evaluation_subset]
        test = test[keep]
    results = RankBasedEvaluator(filtered=True).evaluate(
        model=model,
        mapped_triples=test,
        additional_filter_triples=[training.mapped_triples, dataset.validation.mapped_triples],
        batch_size=256,
        use_tqdm=False,
    )
    row = dict(
        tag=args.tag,
        args={key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()},
        mrr=results.get_metric("both.realistic.inverse_harmonic_mean_rank"),
        **{f"hits@{k}": results.get_metric(f"both.realistic.hits_at_{k}") for k in (1, 3, 10)},
        self_top1=common.self_top1(model, test, 256),
        train_seconds=train_seconds,
        final_loss=losses[-1],
    )
    if args.diagnose and args.model == "vbkgc":
        row["diagnosis"] = diagnose(model, test)
    print(json.dumps(row))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with args.output.open("a") as file:
        file.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
