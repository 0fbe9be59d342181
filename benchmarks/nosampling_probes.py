"""Small probes behind docs/nosampling.md: initial scores, chunk memory, and accuracy after a few epochs on WN9.

Run by hand, one torch thread (``--threads``), e.g.::

    python benchmarks/nosampling_probes.py init-scores
    python benchmarks/nosampling_probes.py chunk-memory --model transe --chunk-size 256   # one process per size
    python benchmarks/nosampling_probes.py accuracy --model transe --negative-weight 1e-3 --negative-target -3 \
        --epochs 20 --every 5

``init-scores`` prints the mean score over all entities of 256 training queries for freshly initialised models (the
scale for ``negative_target``). ``chunk-memory`` times the forward and backward pass of one batch of tail queries in
chunked mode, after an untimed warm-up on 64 queries (it compiles the fused kernels), and prints the growth of the
peak resident memory during the timed pass. ``accuracy`` trains with non-sampling training and
prints the filtered validation MRR every ``--every`` epochs, and, at the end, how often a tail query's top-1 entity is
its own head. ``--model transe`` is TransE with the squared L2 distance for ``accuracy`` (the decomposed form) and
PyKEEN's default TransE (L1) for ``chunk-memory``; ``--model vbkgc`` is the best WN9 configuration of
``docs/results.md`` (``--p`` sets its norm).
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import torch
from pykeen.datasets import get_dataset
from pykeen.evaluation import RankBasedEvaluator
from pykeen.models import TransE

import pykeen_vbkgc  # noqa: F401  (registers the components)
from pykeen_vbkgc import VBKGC, NoSamplingLoss, NoSamplingTrainingLoop

#: the best WN9 configuration of 2026-12-04 (docs/results.md), without the norm
WN9_VBKGC = dict(normalize_relations=True, projection_lr_scale=1e-3, term_weights="mm=0.03,sm=0.03,ms=0.03,all=0.03")


def load(args):
    """Return the dataset."""
    return get_dataset(dataset=args.dataset, dataset_kwargs=dict(directory=args.directory))


def init_scores(args) -> None:
    """Print the mean score of all entities for 256 training queries of freshly initialised models."""
    train = load(args).training
    models = {
        "TransE (L2 squared)": TransE(
            triples_factory=train, embedding_dim=128, scoring_fct_norm=2, power_norm=True, random_seed=0
        ),
        "VBKGC (defaults)": VBKGC(triples_factory=train, embedding_dim=128, random_seed=0),
        "VBKGC (WN9, p 1)": VBKGC(
            triples_factory=train, embedding_dim=128, scoring_fct_norm=1, random_seed=0, **WN9_VBKGC
        ),
        "VBKGC (WN9, p 2)": VBKGC(
            triples_factory=train, embedding_dim=128, scoring_fct_norm=2, random_seed=0, **WN9_VBKGC
        ),
    }
    with torch.no_grad():
        for name, model in models.items():
            scores = model.score_t(train.mapped_triples[:256, :2])
            print(f"{name}: mean {scores.mean().item():.3f}, std {scores.std().item():.3f}")


def make_model(args, train, loss: NoSamplingLoss, squared_transe: bool):
    """Return the model of ``--model``."""
    if args.model == "transe":
        kwargs = dict(scoring_fct_norm=2, power_norm=True) if squared_transe else {}
        return TransE(triples_factory=train, embedding_dim=128, loss=loss, random_seed=0, **kwargs)
    return VBKGC(
        triples_factory=train, embedding_dim=128, scoring_fct_norm=args.p, loss=loss, random_seed=0, **WN9_VBKGC
    )


def chunk_memory(args) -> None:
    """Time one batch of tail queries in chunked mode and print the growth of the peak resident memory."""
    train = load(args).training
    loss = NoSamplingLoss(positive_target=0.0, negative_target=args.negative_target)
    model = make_model(args, train, loss, squared_transe=False)
    loop = NoSamplingTrainingLoop(model=model, triples_factory=train, chunk_size=args.chunk_size, target="tail")
    loader = loop._create_training_data_loader(train, sampler=None, batch_size=args.batch_size, shuffle=True)
    batch = next(iter(loader))
    size = batch["pairs"].shape[0]
    # warm-up on 64 queries (enough work to use the fused kernels): compiles them (for dynamic shapes), untimed
    loop._forward_pass(batch, 0, 64, size, label_smoothing=0.0, slice_size=None)
    model.zero_grad()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    loop._forward_pass(batch, 0, size, size, label_smoothing=0.0, slice_size=None)
    seconds = time.perf_counter() - start
    growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    print(
        f"{args.model}, chunk {args.chunk_size}, {size} queries: {seconds:.2f} s, peak memory growth {growth:.0f} MiB"
    )


def accuracy(args) -> None:
    """Train with non-sampling training and print the validation MRR every few epochs."""
    dataset = load(args)
    train = dataset.training
    loss = NoSamplingLoss(
        negative_weight=args.negative_weight, positive_target=0.0, negative_target=args.negative_target
    )
    model = make_model(args, train, loss, squared_transe=True)
    loop = NoSamplingTrainingLoop(
        model=model, triples_factory=train, optimizer="adam", optimizer_kwargs=dict(lr=args.lr)
    )
    evaluator = RankBasedEvaluator(filtered=True)
    validation = dataset.validation.mapped_triples
    for epoch in range(args.every, args.epochs + 1, args.every):
        start = time.perf_counter()
        losses = loop.train(
            triples_factory=train,
            num_epochs=epoch,
            batch_size=args.batch_size,
            use_tqdm=False,
            continue_training=epoch > args.every,
        )
        seconds = (time.perf_counter() - start) / args.every
        results = evaluator.evaluate(
            model=model,
            mapped_triples=validation,
            additional_filter_triples=[train.mapped_triples],
            batch_size=256,
            use_tqdm=False,
        )
        metrics = {
            key: round(results.get_metric(f"both.realistic.{key}"), 4)
            for key in ("inverse_harmonic_mean_rank", "hits_at_1", "hits_at_10")
        }
        print(json.dumps(dict(epoch=epoch, loss=losses[-1], seconds_per_epoch=seconds, **metrics)), flush=True)
    with torch.no_grad():
        top = model.score_t(validation[:, :2]).argmax(dim=1)
        positives = model.score_hrt(validation).mean().item()
    print(
        f"top-1 tail is the query's head: {(top == validation[:, 0]).float().mean().item():.3f}, "
        f"the true tail: {(top == validation[:, 2]).float().mean().item():.3f}; mean validation score {positives:.3f}"
    )
    if args.model == "transe":
        # the self-triple (e, r, e) scores -|r|^2
        norms = model.relation_representations[0](indices=None).detach().square().sum(dim=-1)
        print(f"|r|^2 of the relations: {norms.min().item():.3f} to {norms.max().item():.3f}")


def main() -> None:
    """Run one probe."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("probe", choices=["init-scores", "chunk-memory", "accuracy"])
    parser.add_argument("--dataset", default="wn9")
    parser.add_argument("--directory", default="../shared/data/wn9")
    parser.add_argument("--model", choices=["transe", "vbkgc"], default="vbkgc")
    parser.add_argument("--p", type=int, default=1, help="VBKGC's norm")
    parser.add_argument("--negative-weight", type=float, default=1e-3)
    parser.add_argument("--negative-target", type=float, default=-3.0)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--chunk-size", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--every", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dict(init_scores=init_scores, chunk_memory=chunk_memory, accuracy=accuracy)[args.probe.replace("-", "_")](args)


if __name__ == "__main__":
    main()
