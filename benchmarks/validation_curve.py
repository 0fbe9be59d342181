"""Print the early stopper's validation results of ``pipeline_run.py`` logs, one row per log.

PyKEEN's early stopper logs each validation check at INFO ("New best result at epoch 10: 0.404..." when the metric
improved; a check without improvement is not logged, and shows as a gap). ``pipeline_run.py`` turns those lines on::

    python benchmarks/validation_curve.py results/fb_p1-ss.log results/fb_p1-twins.log
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

BEST = re.compile(r"pykeen\.stoppers\.early_stopping New best result at epoch (\d+): (\d+\.\d+)")
EPOCH = re.compile(r"^epoch (\d+) loss ([0-9.]+) at (\d+) s$")


def curve(log: Path) -> tuple[dict[int, float], int, float | None]:
    """Return the improving checks (epoch -> metric), the last epoch trained and its loss."""
    checks: dict[int, float] = {}
    last_epoch, last_loss = 0, None
    for line in log.read_text().splitlines():
        if match := BEST.search(line):
            checks[int(match[1])] = float(match[2])
        elif match := EPOCH.match(line):
            last_epoch, last_loss = int(match[1]), float(match[2])
    return checks, last_epoch, last_loss


def main() -> None:
    """Print a Markdown table: one row per log, one column per checked epoch."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("logs", nargs="+", type=Path)
    args = parser.parse_args()
    curves = {log: curve(log) for log in args.logs}
    epochs = sorted({epoch for checks, _, _ in curves.values() for epoch in checks})
    print("| log | " + " | ".join(f"epoch {epoch}" for epoch in epochs) + " | trained | last loss |")
    print("| --- |" + " ---: |" * (len(epochs) + 2))
    for log, (checks, last_epoch, last_loss) in curves.items():
        cells = [f"{checks[epoch]:.3f}" if epoch in checks else "" for epoch in epochs]
        loss = "" if last_loss is None else f"{last_loss:.3f}"
        print(f"| {log.stem} | " + " | ".join(cells) + f" | {last_epoch} | {loss} |")


if __name__ == "__main__":
    main()
