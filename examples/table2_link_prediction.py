"""Table 2 of the VBKGC paper: link prediction of TransE, IKRL-style, VBKGC+Normal and VBKGC+Twins.

All models share one budget (epochs, batch size, k, learning rate; see ``common.Budget``) and dimension 128.
Writes ``table2_<dataset>.{md,csv,json}`` into ``--output``::

    python examples/table2_link_prediction.py --dataset wn9 --data-dir ../shared/data/wn9 \
        --features results/features/wn9.minilm.safetensors --output results/table2
    python examples/table2_link_prediction.py --quick  # seconds, on the embedded demo graph
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from common import Setting, add_common_arguments, ikrl, prepare, run_settings, transe, vbkgc, write_table

from pykeen_vbkgc.allocator import keep_freed_memory

#: the rows of Table 2, by command line name
SETTINGS = {
    "transe": lambda: transe("TransE"),
    "ikrl": lambda: ikrl("IKRL-style"),
    "normal": lambda: vbkgc("VBKGC+Normal", sampler="basic"),
    "twins": lambda: vbkgc("VBKGC+Twins", sampler="twins"),
}


def settings(names: Sequence[str]) -> list[Setting]:
    """Return the Table 2 settings of the given names."""
    return [SETTINGS[name]() for name in names]


def main(argv: Sequence[str] | None = None) -> dict[str, Path]:
    """Run Table 2 and write it; return the written paths."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser, default_output="results/table2")
    parser.add_argument(
        "--models", nargs="+", choices=list(SETTINGS), default=list(SETTINGS), help="rows to run (default: all)"
    )
    args = parser.parse_args(argv)
    experiment = prepare(args)
    rows = run_settings(settings(args.models), experiment)
    return write_table(
        rows,
        experiment,
        name=f"table2_{experiment.dataset_name}",
        title=f"Table 2: link prediction on {experiment.dataset_name}",
        paper_key=f"table2/{experiment.dataset_name}",
    )


if __name__ == "__main__":
    # the script owns its process: freed memory stays in it for reuse (fewer page faults per batch)
    keep_freed_memory()
    main()
