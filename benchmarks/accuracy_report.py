"""Summarise the JSON lines of :mod:`benchmarks.accuracy_matrix` runs: mean ± standard deviation over seeds, per row.

::

    python benchmarks/accuracy_report.py results/wn9_final.jsonl
    python benchmarks/accuracy_report.py results/wn9_final.jsonl --export docs/study --prefix wn9-pipeline

Rows are grouped by dataset and label (the lines of ``evaluate_weights.py --subset`` by ``<label>-<subset>``); a seed
measured twice counts once (the last line wins). ``--labels`` keeps only the rows named, for one row whose seeds lie
in files of different days (whose other rows may share labels measured with other presets). ``--export`` writes one
file per run, ``<prefix>-<label>-seed<k>.json`` with the keys of ``docs/study`` (``mrr``, ``hits@1``, ...), and copies
the JSON lines next to them.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from collections.abc import Collection
from pathlib import Path

METRICS = ("mrr", "hits@1", "hits@3", "hits@10")


def read_runs(paths: list[Path], labels: Collection[str] | None = None) -> dict[tuple[str, str], dict[int, dict]]:
    """Return the runs per (dataset, label) and seed, only those of the given labels if any are given."""
    runs: dict[tuple[str, str], dict[int, dict]] = defaultdict(dict)
    for path in paths:
        for line in path.read_text().splitlines():
            if line.strip():
                run = json.loads(line)
                if labels is None or run["label"] in labels:
                    # the parts of a test split are rows of their own
                    name = run["label"] if run.get("subset") is None else f"{run['label']}-{run['subset']}"
                    runs[run["dataset"], name][run["seed"]] = run
    return runs


def mean_sd(values: list[float], digits: int = 3) -> str:
    """Format the mean and, for more than one value, the sample standard deviation."""
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def table(runs: dict[tuple[str, str], dict[int, dict]]) -> str:
    """Format one Markdown table row per (dataset, label)."""
    lines = [
        "| dataset | row | seeds | MRR | Hits@1 | Hits@3 | Hits@10 | epochs | train s |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for (dataset, label), seeds in sorted(runs.items()):
        values = list(seeds.values())
        cells = [mean_sd([run[metric] for run in values]) for metric in METRICS]
        epochs = sorted({run["epochs"] for run in values})
        # evaluations of saved weights may not know their training time
        timed = [run["train_seconds"] for run in values if run.get("train_seconds") is not None]
        seconds = f"{statistics.mean(timed):,.0f}" if timed else ""
        lines.append(
            f"| {dataset} | `{label}` | {','.join(map(str, sorted(seeds)))} | {' | '.join(cells)} | "
            f"{'/'.join(map(str, epochs))} | {seconds} |"
        )
    return "\n".join(lines)


def export(runs: dict[tuple[str, str], dict[int, dict]], directory: Path, prefix: str) -> list[Path]:
    """Write one seed file per run, with the metrics at the top level."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for (_, label), seeds in runs.items():
        for seed, run in seeds.items():
            path = directory / f"{prefix}-{label}-seed{seed}.json"
            path.write_text(json.dumps(run, indent=2) + "\n")
            written.append(path)
    return written


def main() -> None:
    """Print the table; optionally export the seed files."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", type=Path, help="JSON lines written by pipeline_run.py")
    parser.add_argument("--export", type=Path, help="write the seed files into this directory")
    parser.add_argument("--prefix", default="pipeline", help="file name prefix of the seed files")
    parser.add_argument("--labels", nargs="+", help="only these rows")
    args = parser.parse_args()
    runs = read_runs(args.paths, args.labels)
    missing = set(args.labels or ()) - {label for _, label in runs}
    if missing:
        parser.error(f"no runs with the labels {', '.join(sorted(missing))} in the files given")
    print(table(runs))
    if args.export is not None:
        for path in export(runs, args.export, args.prefix):
            print("wrote", path)


if __name__ == "__main__":
    main()
