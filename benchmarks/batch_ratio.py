"""Per-batch time of VBKGC+twins against PyKEEN's TransE, with their batches alternating in one process.

Run::

    python benchmarks/batch_ratio.py --data ../shared/data/fb15k237 --embedding-dim 8 --feature-dim 8
    python benchmarks/batch_ratio.py --data ../shared/data/fb15k237 --batches 20   # d = 128, 768-d features

Both models and loops are those of ``profile_step.py`` (k = 16, batch 2,048, Adam, PyKEEN's sLCWA loop by default).
Each round trains one batch of TransE, then one of VBKGC; the report is the median milliseconds per batch of each
and their ratio. Alternating batch by batch, a drift of the machine's speed (other jobs on the cores) hits both
models alike, so the ratio stays meaningful on a busy machine while the milliseconds do not.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Iterator

import torch

try:  # run as a script from the repository root
    from profile_step import add_model_arguments, make_models, train_step
    from speed import load
except ImportError:  # pragma: no cover
    from benchmarks.profile_step import add_model_arguments, make_models, train_step
    from benchmarks.speed import load


def batches(loop, train, batch_size: int) -> Iterator:
    """Yield training batches of the loop's DataLoader, epoch after epoch."""
    while True:
        yield from loop._create_training_data_loader(
            train, batch_size=batch_size, drop_last=False, sampler=None, shuffle=True, num_workers=0, pin_memory=False
        )


def train_batch(loop, batch) -> float:
    """Train one batch as PyKEEN's loop does (see :func:`profile_step.train_step`); return its seconds."""
    start = time.perf_counter()
    train_step(loop, batch)
    if loop.model.device.type == "cuda":
        torch.cuda.synchronize(loop.model.device)
    return time.perf_counter() - start


def main() -> None:
    """Alternate the two models' batches and report the medians."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser)
    parser.add_argument("--warmup", type=int, default=5, help="rounds before timing (compilation, caches)")
    parser.add_argument("--batches", type=int, default=60, help="timed rounds (one batch per model each)")
    parser.add_argument("--training-loop", default="slcwa", help="slcwa (PyKEEN's) or deviceslcwa")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    train, _, _ = load(args.data)
    loops = make_models(train, args, torch.device(args.device), args.training_loop)
    iterators = {name: batches(loop, train, args.batch_size) for name, loop in loops.items()}
    milliseconds = {name: [] for name in loops}
    for round_ in range(args.warmup + args.batches):
        for name, loop in loops.items():
            seconds = train_batch(loop, next(iterators[name]))
            if round_ >= args.warmup:
                milliseconds[name].append(1000 * seconds)
    medians = {name: statistics.median(values) for name, values in milliseconds.items()}
    print(
        f"d = {args.embedding_dim}, features {args.feature_dim}, {torch.get_num_threads()} threads, "
        f"{args.batches} batches each: "
        + ", ".join(f"{name} {value:.2f} ms" for name, value in medians.items())
        + f"; ratio {medians['vbkgc_twins'] / medians['transe']:.2f}"
    )


if __name__ == "__main__":
    main()
