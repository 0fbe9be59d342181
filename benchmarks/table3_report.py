"""Collect the Table 3 runs of ``benchmarks/study.py final`` into docs/study and print the Markdown table.

Run from the repository root after the final runs (commands in docs/results.md, "Table 3 at the converged budget")::

    python benchmarks/table3_report.py
"""

from __future__ import annotations

import json
import shutil
import statistics
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT / "docs" / "study"
#: where study.py writes each configuration's seeds -> the name of their copies in docs/study
RUNS = {
    "results/study/wn9/twins/wn9-nscaching-vbkgc": "nscaching-vbkgc",
    "results/study/wn9/transe/wn9-nscaching-transe": "nscaching-transe",
    "results/study/wn9/transe/wn9-nosampling-transe": "nosampling-transe",
    "results/study/wn9/normal/wn9-nosampling-vbkgc": "nosampling-vbkgc",
    "results/study-patience10/wn9/twins/wn9-nscaching-vbkgc": "nscaching-vbkgc-patience10",
}
#: (model, strategy, prefix of the seed files in docs/study)
ROWS = [
    ("VBKGC", "Normal", "normal"),
    ("VBKGC", "Twins", "twins"),
    ("VBKGC", "NSCaching", "nscaching-vbkgc"),
    ("VBKGC", "NSCaching, patience 10", "nscaching-vbkgc-patience10"),
    ("VBKGC", "NoSampling", "nosampling-vbkgc"),
    ("TransE (L1, margin 12)", "Normal", "transe-l1-margin12"),
    ("TransE (L1, margin 12)", "NSCaching", "nscaching-transe"),
    ("TransE (squared L2, NS-KGE's)", "NoSampling", "nosampling-transe"),
]
#: the paper's Table 3 (VBKGC on WN9): MRR / Hits@1 / Hits@10
PAPER = {
    "Normal": "0.749 / 0.592 / 0.919",
    "NSCaching": "0.725 / 0.630 / 0.868",
    "NoSampling": "0.426 / 0.306 / 0.662",
    "Twins": "0.857 / 0.803 / 0.922",
}
METRICS = ("mrr", "hits@1", "hits@3", "hits@10")


def cell(values: list[float]) -> str:
    """Mean ± standard deviation (or the single value)."""
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def main() -> None:
    """Copy the finished seeds, then print the table."""
    for source, name in RUNS.items():
        for path in sorted((ROOT / source).glob("seed*.json")):
            shutil.copy(path, STUDY / f"wn9-{name}-{path.stem}.json")
    print(
        "| model | strategy | seeds | MRR | Hits@1 | Hits@3 | Hits@10 | epochs (per seed) | MRR per seed "
        "| paper MRR / H@1 / H@10 (VBKGC) |"
    )
    print("| --- | --- | ---: | --- | --- | --- | --- | --- | --- | --- |")
    for model, strategy, prefix in ROWS:
        rows = [json.loads(path.read_text()) for path in sorted(STUDY.glob(f"wn9-{prefix}-seed*.json"))]
        if not rows:
            continue
        metrics = " | ".join(cell([row[key] for row in rows]) for key in METRICS)
        epochs = ", ".join(str(row["epochs"]) for row in rows)
        per_seed = ", ".join(format(row["mrr"], ".3f") for row in rows)
        paper = PAPER.get(strategy, "") if model == "VBKGC" else ""
        print(f"| {model} | {strategy} | {len(rows)} | {metrics} | {epochs} | {per_seed} | {paper} |")


if __name__ == "__main__":
    main()
