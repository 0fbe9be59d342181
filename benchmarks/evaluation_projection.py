"""Time VBKGC's filtered evaluation with the entities' projection read once (its own path) or per batch (ERModel's).

Without gradients, :class:`pykeen_vbkgc.VBKGC` scores all candidates from the tables it caches per parameter state;
PyKEEN's :class:`~pykeen.models.ERModel` projects every entity's features again for each batch of queries. The two
paths alternate in one process, so that a busy machine slows both alike; each prints its time and MRR (equal)::

    python benchmarks/evaluation_projection.py --data ../shared/data/fb15k237 --num-test 300
    python benchmarks/evaluation_projection.py --data ../shared/data/fb15k237 --num-test 300 --features random
"""

from __future__ import annotations

import argparse
import json
import time
import types
from pathlib import Path

import torch
from pykeen.datasets import get_dataset
from pykeen.evaluation import RankBasedEvaluator
from pykeen.models.nbase import ERModel

from pykeen_vbkgc import VBKGC
from pykeen_vbkgc.defaults import FB15K237_PRESET


def main() -> None:
    """Evaluate the first test triples with both paths, alternating."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="an FB15k-237 directory of ../shared/data")
    parser.add_argument("--features", choices=["dataset", "random"], default="dataset")
    parser.add_argument("--weights", type=Path, help="a state dict (default: the untrained model)")
    parser.add_argument("--num-test", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    dataset = get_dataset(dataset="fb15k237multimodal", dataset_kwargs=dict(directory=args.data))
    model = VBKGC(
        triples_factory=dataset.training,
        features=None if args.features == "dataset" else "random",
        # the preset's model without its vote: only the projection's cost differs between the two paths
        **{**FB15K237_PRESET.model_kwargs(), "neighbour_weight": 0},
        random_seed=0,
    )
    if args.weights is not None:
        model.load_state_dict(torch.load(args.weights, map_location="cpu", weights_only=True))
    known = [dataset.training.mapped_triples, dataset.validation.mapped_triples, dataset.testing.mapped_triples]
    # ERModel's method bound to this model only, so that the class itself is never changed
    per_batch = types.MethodType(ERModel._get_representations, model)
    for _ in range(args.repeats):
        for path, get_representations in (("per batch (ERModel)", per_batch), ("once", None)):
            if get_representations is None:
                model.__dict__.pop("_get_representations", None)
            else:
                model.__dict__["_get_representations"] = get_representations
            start = time.perf_counter()
            result = RankBasedEvaluator().evaluate(
                model,
                dataset.testing.mapped_triples[: args.num_test],
                additional_filter_triples=known,
                batch_size=32,  # what PyKEEN's automatic batch size picks on the CPU
                use_tqdm=False,
            )
            row = dict(
                projection=path,
                features=args.features,
                seconds=round(time.perf_counter() - start, 1),
                mrr=round(result.get_metric("both.realistic.inverse_harmonic_mean_rank"), 6),
            )
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
