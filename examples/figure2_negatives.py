"""Figure 2 of the VBKGC paper: MRR against the number of negatives k, normal vs twins negative sampling.

Writes ``figure2_<dataset>.{md,csv,json,png}`` into ``--output``::

    python examples/figure2_negatives.py --dataset wn9 --data-dir ../shared/data/wn9 --output results/figure2
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from common import add_common_arguments, new_figure, positive_int, prepare, run_setting, save_figure, vbkgc, write_table

from pykeen_vbkgc.allocator import keep_freed_memory

#: the samplers compared, with their labels
SAMPLERS = {"basic": "Normal", "twins": "Twins"}


def plot(rows: Sequence[Mapping[str, Any]], path: Path, dataset: str) -> Path:
    """Plot MRR against k, one line per sampler, and save it as PNG."""
    figure, axis = new_figure()
    for sampler, label in SAMPLERS.items():
        points = sorted((row["k"], row["mrr"]) for row in rows if row["sampler"] == sampler)
        if points:
            axis.plot(*zip(*points), marker="o", label=f"VBKGC+{label}")
    axis.set_xscale("log", base=2)
    ks = sorted({row["k"] for row in rows})
    axis.set_xticks(ks, [str(k) for k in ks])
    axis.set_xlabel("number of negatives per positive k")
    axis.set_ylabel("filtered MRR (both sides)")
    axis.set_title(f"Figure 2: MRR vs. k on {dataset}")
    axis.legend()
    return save_figure(figure, axis, path)


def main(argv: Sequence[str] | None = None) -> dict[str, Path]:
    """Train VBKGC for each k and sampler, write the table and the plot; return the written paths."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser, default_output="results/figure2")
    parser.add_argument("--ks", type=positive_int, nargs="+", help="values of k (default: 1 2 4 8 16 32; quick: 1 4)")
    args = parser.parse_args(argv)
    experiment = prepare(args)
    ks = args.ks or ([1, 4] if experiment.quick else [1, 2, 4, 8, 16, 32])
    rows = [
        run_setting(vbkgc(f"VBKGC+{label} k={k}", sampler=sampler, num_negatives=k), experiment)
        for k in ks
        for sampler, label in SAMPLERS.items()
    ]
    name = f"figure2_{experiment.dataset_name}"
    paths = write_table(rows, experiment, name=name, title=f"Figure 2: MRR vs. k on {experiment.dataset_name}")
    paths["png"] = plot(rows, experiment.output / f"{name}.png", experiment.dataset_name)
    return paths


if __name__ == "__main__":
    # the script owns its process: freed memory stays in it for reuse (fewer page faults per batch)
    keep_freed_memory()
    main()
