"""Figure 3 of the VBKGC paper: inference time against MRR for the models of Table 2.

Either trains the Table 2 models itself or reads a Table 2 JSON written by ``table2_link_prediction.py``
(``--from-table``), so the expensive training is not repeated. Inference time: seconds to score every test triple
against all entities on both sides (no filtering), after a warm-up call. Writes
``figure3_<dataset>.{md,csv,json,png}``::

    python examples/figure3_inference_time.py --from-table results/table2/table2_wn9.json --output results/figure3
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from common import (
    Budget,
    add_common_arguments,
    existing_file,
    new_figure,
    prepare,
    run_settings,
    save_figure,
    write_table,
)
from table2_link_prediction import SETTINGS, settings

from pykeen_vbkgc.allocator import keep_freed_memory

COLUMNS = ("setting", "mrr", "hits@1", "inference_seconds", "evaluation_seconds", "train_seconds", "epochs")


#: one colour and marker per model, the same in every plot (the rows differ between datasets and runs)
STYLES = {
    label: dict(color=f"C{i}", marker=marker)
    for i, (label, marker) in enumerate(zip(("TransE", "IKRL-style", "VBKGC+Normal", "VBKGC+Twins"), "osD^"))
}


def plot(rows: Sequence[Mapping[str, Any]], path: Path, dataset: str) -> Path:
    """Scatter inference time against MRR, one point per model (named in the legend), and save it as PNG."""
    figure, axis = new_figure()
    for i, row in enumerate(rows):
        # models outside STYLES get the colours after those of the four Table 2 models
        style = STYLES.get(row["setting"], dict(color=f"C{len(STYLES) + i}", marker="v"))
        axis.scatter(row["inference_seconds"], row["mrr"], s=60, label=row["setting"], **style)
    axis.set_xlabel("inference time: all evaluated test triples, both sides (s, CPU)")
    axis.set_ylabel("filtered MRR (both sides)")
    axis.set_title(f"Figure 3: inference time vs. MRR on {dataset}")
    # a legend instead of labels next to the points: points of similar time and MRR made the labels overlap
    axis.legend(loc="best", fontsize="small")
    axis.margins(x=0.25, y=0.15)
    axis.set_xlim(left=0)  # the margin would otherwise extend the time axis below zero
    return save_figure(figure, axis, path)


def main(argv: Sequence[str] | None = None) -> dict[str, Path]:
    """Collect (inference time, MRR) per model, write the table and the scatter plot; return the written paths."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser, default_output="results/figure3")
    parser.add_argument("--from-table", type=existing_file, help="a table2_<dataset>.json to plot instead of training")
    parser.add_argument("--models", nargs="+", choices=list(SETTINGS), default=list(SETTINGS), help="rows to train")
    args = parser.parse_args(argv)
    if args.from_table is not None:
        # the dataset, features and budget are the table's; nothing is trained
        try:
            table = json.loads(args.from_table.read_text())
            args.dataset = table["dataset"]
            args.features = Path(table["features"]) if table["features"] else None
            budget = Budget(**table["budget"])
            rows = table["rows"]
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as error:
            parser.error(
                f"argument --from-table: {args.from_table} is not a table written by table2_link_prediction.py "
                f"({type(error).__name__}: {error})"
            )
        experiment = prepare(args, load=False)
        experiment.budget = budget
    else:
        experiment = prepare(args)
        rows = run_settings(settings(args.models), experiment)
    name = f"figure3_{experiment.dataset_name}"
    paths = write_table(
        rows,
        experiment,
        name=name,
        title=f"Figure 3: inference time vs. MRR on {experiment.dataset_name}",
        columns=COLUMNS,
    )
    paths["png"] = plot(rows, experiment.output / f"{name}.png", experiment.dataset_name)
    return paths


if __name__ == "__main__":
    # the script owns its process: freed memory stays in it for reuse (fewer page faults per batch)
    keep_freed_memory()
    main()
