"""Print the speed and accuracy results of one ``benchmarks/gpu_session.sh`` run as a few plain lines.

python benchmarks/gpu_summary.py WORK_FOLDER
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(folder: Path) -> None:
    """Summarise the ``speed_*.json`` reports and the accuracy matrices' JSON lines in ``folder``."""
    for path in sorted(folder.glob("speed_*.json")):
        report = json.loads(path.read_text())
        print(path.name, report["device"], report["settings"]["training_loop"])
        for name in ("transe", "vbkgc_twins"):
            row = report[name]
            print(
                f"  {name}: epochs {[round(s, 2) for s in row['epoch_seconds']]} s, steady "
                f"{row['seconds_per_epoch']:.2f} s, evaluation {row['evaluation_seconds']:.1f} s "
                f"({row['num_test_triples']} triples), MRR {row['mrr']:.4f}"
            )
        print(f"  epoch ratio {report['epoch_ratio']:.2f}x, evaluation ratio {report['evaluation_ratio']:.2f}x")
    for path in sorted(folder.glob("matrix/*.jsonl")):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            print(
                f"{row['dataset'][:4]} {row['label']:<32} s{row['seed']} ep {row['epochs']:>4} MRR {row['mrr']:.3f} "
                f"H@1 {row['hits@1']:.3f} H@10 {row['hits@10']:.3f} train {row['train_seconds']:.0f}s"
            )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
