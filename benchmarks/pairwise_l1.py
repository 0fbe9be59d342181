"""Seconds of the fused L1 distance kernel (:func:`pykeen_vbkgc.kernels.pairwise_l1_distance`) against torch.cdist.

Run by hand::

    python benchmarks/pairwise_l1.py                       # the shape of a NoSampling chunk of VBKGC on WN9
    python benchmarks/pairwise_l1.py --queries 256 --candidates 6555

The default shape is one chunk of :class:`pykeen_vbkgc.NoSamplingTrainingLoop` with VBKGC's best WN9 configuration:
512 queries of one side of a batch of 1,024, 1,024 entities, and five terms of dimension 128 concatenated (640). The
forward pass alone is evaluation's work; forward and backward (both inputs need gradients) is training's. The two
implementations alternate, and the median of ``--repeats`` runs is reported, after one warm-up run that compiles.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable

import torch

from pykeen_vbkgc.kernels import pairwise_l1_distance


def seconds(function: Callable[[], object]) -> float:
    """Return the seconds of one call."""
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main() -> None:
    """Time both implementations and print one JSON line per measurement."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=512)
    parser.add_argument("--candidates", type=int, default=1024)
    parser.add_argument("--dim", type=int, default=640)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(args.queries, args.dim, generator=generator)
    y = torch.randn(args.candidates, args.dim, generator=generator)
    upstream = torch.randn(args.queries, args.candidates, generator=generator)
    implementations = {"torch.cdist": lambda a, b: torch.cdist(a, b, p=1), "fused": pairwise_l1_distance}

    def forward(distance) -> None:
        with torch.no_grad():
            distance(x, y)

    def forward_backward(distance) -> None:
        a, b = x.clone().requires_grad_(), y.clone().requires_grad_()
        torch.autograd.grad(distance(a, b), (a, b), upstream)

    for work in (forward, forward_backward):
        times: dict[str, list[float]] = {name: [] for name in implementations}
        for distance in implementations.values():
            work(distance)  # warm-up: compilation
        for _ in range(args.repeats):
            for name, distance in implementations.items():
                times[name].append(seconds(lambda work=work, distance=distance: work(distance)))
        medians = {name: statistics.median(values) for name, values in times.items()}
        print(
            json.dumps(
                dict(
                    work=work.__name__,
                    shape=[args.queries, args.candidates, args.dim],
                    threads=args.threads,
                    seconds=medians,
                    speedup=round(medians["torch.cdist"] / medians["fused"], 2),
                    machine=platform.processor() or platform.machine(),
                )
            )
        )


if __name__ == "__main__":
    main()
