"""Seconds per training epoch of the twins and NSCaching samplers against PyKEEN's ``basic`` sampler, in one run.

Run by hand (a few minutes on 2 CPU cores for WN9 with the defaults)::

    python benchmarks/sampler_speed.py --data ../shared/data/wn9 --output docs/sampler_speed.json

For each model (PyKEEN's TransE and VBKGC with the dataset's features) every strategy trains its own copy of the
model with the same settings: d = 128, k = 16 negatives per positive, batch 1,024, Adam (lr 1e-2), margin loss
against the mean of the negatives. The samplers' epochs alternate (basic, twins, nscaching, basic, ...) so that a
drift of the machine's speed hits all of them. NoSampling, which has no sampler, is timed the same way by
``benchmarks/nosampling_speed.py``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch
from pykeen.models import TransE
from pykeen.training import SLCWATrainingLoop

import pykeen_vbkgc
from pykeen_vbkgc import VBKGC, MeanMarginRankingLoss
from pykeen_vbkgc.datasets import WN9

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent / "shared" / "data" / "wn9"

#: the negative samplers compared
STRATEGIES = ("basic", "twins", "nscaching")


def make_model(name: str, dataset, seed: int):
    """Return a fresh model of the given kind on the dataset's training triples."""
    training = dataset.training
    if name == "TransE":
        return TransE(triples_factory=training, embedding_dim=128, random_seed=seed)
    return VBKGC(triples_factory=training, embedding_dim=128, random_seed=seed)


def make_loop(strategy: str, model, dataset, num_negatives: int) -> SLCWATrainingLoop:
    """Return the sLCWA training loop of one negative sampler for ``model``."""
    model.loss = MeanMarginRankingLoss(margin=10.0)
    return SLCWATrainingLoop(
        model=model,
        triples_factory=dataset.training,
        optimizer=torch.optim.Adam(model.parameters(), lr=1e-2),
        negative_sampler=strategy,
        negative_sampler_kwargs=dict(num_negs_per_pos=num_negatives),
    )


def train_epoch(loop, dataset, epoch: int, batch_size: int) -> float:
    """Train the loop for its ``epoch``-th epoch; return the seconds it took."""
    start = time.perf_counter()
    # num_epochs counts in total: each call continues the previous one by exactly one epoch
    loop.train(
        triples_factory=dataset.training,
        num_epochs=epoch,
        batch_size=batch_size,
        use_tqdm=False,
        continue_training=epoch > 1,
    )
    return time.perf_counter() - start


def main() -> None:
    """Measure and print a Markdown table; optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="a WN9 directory (train/valid/test.txt, ...)")
    parser.add_argument("--epochs", type=int, default=3, help="the first one is reported separately")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--num-negatives", type=int, default=16)
    parser.add_argument("--models", nargs="+", choices=["TransE", "VBKGC"], default=["TransE", "VBKGC"])
    parser.add_argument("--strategies", nargs="+", choices=STRATEGIES, default=list(STRATEGIES))
    parser.add_argument("--output", type=Path, default=None, help="write the results as JSON")
    args = parser.parse_args()
    # the import above may have been deferred by PyKEEN's half-imported model module (see registration.py)
    pykeen_vbkgc.register()
    dataset = WN9(directory=args.data)
    results = dict(
        command="python benchmarks/" + Path(__file__).name,
        date=time.strftime("%Y-%m-%d %H:%M"),
        machine=f"{platform.machine()} ({torch.get_num_threads()} torch threads), torch {torch.__version__}",
        settings=dict(epochs=args.epochs, batch_size=args.batch_size, num_negatives=args.num_negatives),
        rows=[],
    )
    print("| model | strategy | first epoch s | later epochs s (median) | x basic |")
    print("| --- | --- | ---: | ---: | ---: |")
    for model_name in args.models:
        strategies = [s for s in args.strategies if not (s == "twins" and model_name == "TransE")]
        loops = {
            s: make_loop(s, make_model(model_name, dataset, seed=0), dataset, args.num_negatives) for s in strategies
        }
        seconds: dict[str, list[float]] = {s: [] for s in strategies}
        for epoch in range(1, args.epochs + 1):
            for strategy, loop in loops.items():
                seconds[strategy].append(train_epoch(loop, dataset, epoch, args.batch_size))
        later = {s: statistics.median(values[1:] or values) for s, values in seconds.items()}
        for strategy in strategies:
            ratio = later[strategy] / later["basic"] if "basic" in later else float("nan")
            row = dict(
                model=model_name,
                strategy=strategy,
                first_epoch_seconds=seconds[strategy][0],
                epoch_seconds=later[strategy],
                all_epoch_seconds=seconds[strategy],
                ratio_to_basic=ratio,
            )
            results["rows"].append(row)
            print(
                f"| {model_name} | {strategy} | {seconds[strategy][0]:.1f} | {later[strategy]:.1f} | {ratio:.2f} |",
                flush=True,
            )
    if args.output is not None:
        args.output.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
