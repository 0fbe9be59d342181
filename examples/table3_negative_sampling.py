"""Table 3 of the VBKGC paper: negative sampling strategies for VBKGC (normal, Bernoulli, twins).

The paper also compares NSCaching and NoSampling, run in their authors' code; they are not reproduced here (see
docs/results.md). Writes ``table3_<dataset>.{md,csv,json}`` into ``--output``::

    python examples/table3_negative_sampling.py --dataset wn9 --data-dir ../shared/data/wn9 --output results/table3
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from common import Setting, add_common_arguments, prepare, run_settings, vbkgc, write_table

#: the rows of Table 3: (label, PyKEEN negative sampler)
SAMPLERS = {"normal": ("Normal", "basic"), "bernoulli": ("Bernoulli", "bernoulli"), "twins": ("Twins", "twins")}


def settings(names: Sequence[str]) -> list[Setting]:
    """Return VBKGC with each of the given negative samplers."""
    return [vbkgc(SAMPLERS[name][0], sampler=SAMPLERS[name][1]) for name in names]


def main(argv: Sequence[str] | None = None) -> dict[str, Path]:
    """Run Table 3 and write it; return the written paths."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser, default_output="results/table3")
    parser.add_argument(
        "--samplers", nargs="+", choices=list(SAMPLERS), default=list(SAMPLERS), help="rows to run (default: all)"
    )
    args = parser.parse_args(argv)
    experiment = prepare(args, argv)
    rows = run_settings(settings(args.samplers), experiment)
    return write_table(
        rows,
        experiment,
        name=f"table3_{experiment.dataset_name}",
        title=f"Table 3: negative sampling for VBKGC on {experiment.dataset_name}",
        paper_key=f"table3/{experiment.dataset_name}",
    )


if __name__ == "__main__":
    main()
