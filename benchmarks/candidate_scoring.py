"""Seconds to score a candidate matrix per query (as NSCaching does): VBKGC's path against PyKEEN's generic one.

Run by hand (about 2 minutes, most of it ``torch.compile``)::

    python benchmarks/candidate_scoring.py --data ../shared/data/wn9

VBKGC's ``score_t`` with a ``(queries, candidates)`` matrix goes through its training path, which projects every
entity once; PyKEEN's ``ERModel.score_t`` projects the features of every candidate. Both give the same scores.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from pykeen.models import ERModel

from pykeen_vbkgc import VBKGC
from pykeen_vbkgc.datasets import WN9

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "wn9"


def main() -> None:
    """Time both paths for each norm; print one line per repetition."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="a WN9 directory")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--candidates", type=int, default=100)
    parser.add_argument("--repetitions", type=int, default=3, help="the first includes compilation")
    args = parser.parse_args()
    torch.set_num_threads(1)
    training = WN9(directory=args.data).training
    queries = training.mapped_triples[: args.queries, :2]
    candidates = torch.randint(training.num_entities, (args.queries, args.candidates), generator=torch.Generator())
    for p in (1, 2):
        model = VBKGC(triples_factory=training, embedding_dim=128, scoring_fct_norm=p, random_seed=0)
        with torch.no_grad():
            for repetition in range(args.repetitions):
                start = time.perf_counter()
                generic = ERModel.score_t(model, hr_batch=queries, tails=candidates)
                middle = time.perf_counter()
                ours = model.score_t(hr_batch=queries, tails=candidates)
                end = time.perf_counter()
                same = torch.allclose(generic, ours, atol=1e-3)
                print(
                    f"p={p} repetition {repetition}: ERModel.score_t {middle - start:.2f} s, VBKGC.score_t "
                    f"{end - middle:.2f} s, same scores: {same}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
