"""Table 4 of the VBKGC paper: ablations S1-S6 of VBKGC (normal negative sampling, as in the paper).

S1 random features instead of VisualBERT (here: MiniLM) features; S2 only F_ss; S3 only F_all; S4 F_ss + F_mm;
S5 F_sm + F_ms; S6 k = 1. Writes ``table4_<dataset>.{md,csv,json}`` into ``--output``::

    python examples/table4_ablation.py --dataset wn9 --data-dir ../shared/data/wn9 --output results/table4
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from common import Setting, add_common_arguments, prepare, run_settings, vbkgc, write_table

from pykeen_vbkgc.allocator import keep_freed_memory


def settings(sampler: str = "basic") -> list[Setting]:
    """Return the full model and the ablations S1-S6, all with the given sampler."""
    return [
        vbkgc("VBKGC", sampler=sampler),
        vbkgc("S1: w/o VisualBERT", sampler=sampler, random_features=True),
        vbkgc("S2: only F_ss", sampler=sampler, score_terms="ss"),
        vbkgc("S3: only F_all", sampler=sampler, score_terms="all"),
        vbkgc("S4: only F_ss + F_mm", sampler=sampler, score_terms="ss,mm"),
        vbkgc("S5: only F_sm + F_ms", sampler=sampler, score_terms="sm,ms"),
        vbkgc("S6: only 1 negative", sampler=sampler, num_negatives=1),
    ]


def main(argv: Sequence[str] | None = None) -> dict[str, Path]:
    """Run Table 4 and write it; return the written paths."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser, default_output="results/table4")
    parser.add_argument("--sampler", choices=["basic", "twins"], default="basic", help="sampler of all rows")
    args = parser.parse_args(argv)
    experiment = prepare(args)
    rows = run_settings(settings(args.sampler), experiment)
    return write_table(
        rows,
        experiment,
        name=f"table4_{experiment.dataset_name}",
        title=f"Table 4: ablation of VBKGC on {experiment.dataset_name}",
        paper_key=f"table4/{experiment.dataset_name}",
    )


if __name__ == "__main__":
    # the script owns its process: freed memory stays in it for reuse (fewer page faults per batch)
    keep_freed_memory()
    main()
