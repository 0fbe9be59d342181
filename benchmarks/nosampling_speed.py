"""Seconds per epoch (and peak memory) of non-sampling training against sLCWA negative sampling, in the same run.

Run by hand, e.g.::

    python benchmarks/nosampling_speed.py --dataset nations --epochs 4
    python benchmarks/nosampling_speed.py --dataset wn9 --directory ../shared/data/wn9 --epochs 2 --isolate

Each configuration trains the same number of epochs; the epochs alternate between configurations, so that a drift of
the machine's speed hits all of them. The first epoch (one-time costs) is reported apart. With ``--isolate`` each
configuration runs in its own process instead, which also reports the growth of the peak resident memory during
training (``ru_maxrss`` after training minus before). ``--threads`` sets torch's threads (default 1: on a shared
machine, two OpenMP threads that wait for each other make small operations many times slower).

Configurations (``--configs``, comma separated; all with Adam, embedding dimension ``--dim``):

- ``transe-basic``: PyKEEN's TransE (L1), margin ranking loss, sLCWA with the ``basic`` sampler (1 negative)
- ``transe-basic16``: the same with 16 negatives per positive
- ``transe-ns-l2sq``: TransE with the squared L2 distance, ``training_loop="nosampling"`` (bilinear form)
- ``transe-ns-l2sq-tail``: the same, tails only (the LCWA loop's queries)
- ``transe-lcwa-l2sq``: the same loss in PyKEEN's LCWA loop (dense scores, tails only)
- ``transe-ns-l1``: PyKEEN's TransE (L1), ``training_loop="nosampling"`` (chunked exact form)
- ``vbkgc-twins``: VBKGC with its defaults (L2, margin 10) and twins negative sampling (16 negatives)
- ``vbkgc-ns``: VBKGC with its defaults, ``training_loop="nosampling"`` (chunked exact form, targets 0 / -9)
- ``vbkgc-wn9-twins``: VBKGC with the best WN9 configuration of 2026-12-04 (``docs/results.md``; L1, term weights
  0.03, margin 24), twins negative sampling (16 negatives)
- ``vbkgc-wn9-ns``: the same model, ``training_loop="nosampling"`` (chunked exact form, targets 0 / -18)

The VBKGC negative targets are about the mean score of a freshly initialised model over all entities on WN9.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import torch
from pykeen.datasets import get_dataset
from pykeen.losses import MarginRankingLoss
from pykeen.models import TransE
from pykeen.training import LCWATrainingLoop, SLCWATrainingLoop, TrainingLoop

import pykeen_vbkgc  # noqa: F401  (registers the components)
from pykeen_vbkgc import VBKGC, MeanMarginRankingLoss, NoSamplingLoss, NoSamplingTrainingLoop, TwinsNegativeSampler

#: NS-KGE's TransE targets on the score -|h + r - t|^2 (see NoSamplingLoss)
TRANSE_TARGETS = dict(positive_target=0.0, negative_target=-3.0)


def build(name: str, train, args) -> TrainingLoop:
    """Return the training loop (with its model) of one configuration."""
    adam = dict(optimizer="adam", optimizer_kwargs=dict(lr=args.lr))
    ns_loss = NoSamplingLoss(negative_weight=args.negative_weight, **TRANSE_TARGETS)

    def transe(**kwargs) -> TransE:
        return TransE(triples_factory=train, embedding_dim=args.dim, random_seed=0, **kwargs)

    def vbkgc(**kwargs) -> VBKGC:
        return VBKGC(triples_factory=train, embedding_dim=args.dim, random_seed=0, **kwargs)

    def slcwa(model, sampler, k: int) -> SLCWATrainingLoop:
        return SLCWATrainingLoop(
            model=model,
            triples_factory=train,
            negative_sampler=sampler,
            negative_sampler_kwargs=dict(num_negs_per_pos=k),
            **adam,
        )

    def nosampling(model, **kwargs) -> NoSamplingTrainingLoop:
        return NoSamplingTrainingLoop(model=model, triples_factory=train, chunk_size=args.chunk_size, **kwargs, **adam)

    squared = dict(scoring_fct_norm=2, power_norm=True)
    # the best WN9 configuration of 2026-12-04 (benchmarks/wn9-nscaching-vbkgc.json without the sampler)
    wn9 = dict(
        scoring_fct_norm=1,
        normalize_relations=True,
        projection_lr_scale=1e-3,
        term_weights="mm=0.03,sm=0.03,ms=0.03,all=0.03",
    )

    def vbkgc_loss(negative_target: float) -> NoSamplingLoss:
        return NoSamplingLoss(
            negative_weight=args.negative_weight, positive_target=0.0, negative_target=negative_target
        )

    builders: dict[str, Callable[[], TrainingLoop]] = {
        "transe-basic": lambda: slcwa(transe(loss=MarginRankingLoss()), "basic", 1),
        "transe-basic16": lambda: slcwa(transe(loss=MarginRankingLoss()), "basic", 16),
        "transe-ns-l2sq": lambda: nosampling(transe(loss=ns_loss, **squared)),
        "transe-ns-l2sq-tail": lambda: nosampling(transe(loss=ns_loss, **squared), target="tail"),
        "transe-lcwa-l2sq": lambda: LCWATrainingLoop(
            model=transe(loss=ns_loss, **squared), triples_factory=train, **adam
        ),
        "transe-ns-l1": lambda: nosampling(transe(loss=ns_loss)),
        "vbkgc-twins": lambda: slcwa(vbkgc(loss=MeanMarginRankingLoss()), TwinsNegativeSampler, 16),
        "vbkgc-ns": lambda: nosampling(vbkgc(loss=vbkgc_loss(-9.0))),
        "vbkgc-wn9-twins": lambda: slcwa(
            vbkgc(loss=MeanMarginRankingLoss(margin=24.0), **wn9), TwinsNegativeSampler, 16
        ),
        "vbkgc-wn9-ns": lambda: nosampling(vbkgc(loss=vbkgc_loss(-18.0), **wn9)),
    }
    return builders[name]()


def run(names: list[str], args) -> dict[str, dict]:
    """Train the configurations epoch by epoch, alternating; return their timings."""
    dataset = get_dataset(
        dataset=args.dataset, dataset_kwargs=dict(directory=args.directory) if args.directory else None
    )
    train = dataset.training
    loops = {name: build(name, train, args) for name in names}
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for epoch in range(1, args.epochs + 1):
        for name, loop in loops.items():
            start = time.perf_counter()
            # num_epochs counts in total: each call continues the previous one by exactly one epoch
            losses = loop.train(
                triples_factory=train,
                num_epochs=epoch,
                batch_size=args.batch_size,
                use_tqdm=False,
                continue_training=epoch > 1,
            )
            seconds[name].append(time.perf_counter() - start)
            print(f"{name} epoch {epoch}: {seconds[name][-1]:.2f} s, loss {losses[-1]:.4g}", flush=True)
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    results = {}
    for name, loop in loops.items():
        steady = seconds[name][1:] or seconds[name]
        results[name] = dict(
            seconds_per_epoch=statistics.median(steady),
            first_epoch_seconds=seconds[name][0],
            epoch_seconds=seconds[name],
            losses=loop.losses_per_epochs,
            strategy=getattr(loop, "strategy", None),
        )
        if len(names) == 1:
            results[name]["peak_rss_growth_mib"] = (rss_after - rss_before) / 1024
    return results


def main() -> None:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="nations")
    parser.add_argument("--directory", default=None, help="dataset directory (for wn9 and the other local datasets)")
    parser.add_argument("--configs", default="transe-basic,transe-ns-l2sq,transe-ns-l1,vbkgc-twins,vbkgc-ns")
    parser.add_argument("--epochs", type=int, default=3, help="the first one is reported separately")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--negative-weight", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--chunk-size", type=int, default=None, help="entities per chunk (chunked NoSampling)")
    parser.add_argument("--isolate", action="store_true", help="one process per configuration (reports memory)")
    parser.add_argument("--output", default=None, help="write the results as JSON")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    names = args.configs.split(",")
    if args.isolate and len(names) > 1:
        results = {}
        for name in names:
            command = [sys.argv[0], *[a for a in sys.argv[1:] if a != "--isolate"], "--configs", name, "--output", "-"]
            output = subprocess.run([sys.executable, *command], capture_output=True, text=True, check=True).stdout
            results.update(json.loads(output.split("\n=== json ===\n")[-1])["results"])
    else:
        results = run(names, args)
    report = dict(
        date=time.strftime("%Y-%m-%d"),
        machine=f"{platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}",
        command=" ".join(["python", *sys.argv]),
        settings=vars(args),
        results=results,
    )
    text = json.dumps(report, indent=2)
    if args.output == "-":
        print("\n=== json ===\n" + text)
        return
    print(text)
    if args.output:
        with open(args.output, "w") as file:
            file.write(text + "\n")


if __name__ == "__main__":
    main()
