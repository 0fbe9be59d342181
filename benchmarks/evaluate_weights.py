"""Evaluate saved weights as :func:`pykeen.pipeline.pipeline` evaluates its model; prints and appends one JSON line.

For trained models whose evaluation settings change afterwards, e.g. VBKGC's ``neighbour_weight``, which only enters
the ranking scores (training is the same with any weight)::

    python benchmarks/evaluate_weights.py --dataset fb15k237multimodal \\
        --weights results/ckpt/fb-conv-twins-w0.03-unit-15ep-s0-best-weights.pt --seed 0 --epochs 15 \\
        --model-kwargs '{"term_weights": "mm=0.03,sm=0.03,ms=0.03,all=0.03", "normalize_relations": true,
        "neighbour_weight": 0.05}'

``--weights`` is a state dict (the best weights that PyKEEN's early stopper writes, or a checkpoint's
``model_state_dict``); the model is rebuilt from ``--model`` and ``--model-kwargs``. The test split is ranked against
all entities, with the other known triples (train, validation and test) filtered, as the pipeline does.

``--subset`` ranks only part of the test split: the triples $(h, r, t)$ whose reverse pair is linked in training, i.e.
some $(t, r', h)$ is a training triple (``reverse-known``; most of WN9's, where hypernym and hyponym mirror each
other), or the others (``reverse-unknown``), which the structure alone cannot read off a mirrored triple.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch
from feature_probe import print_and_append
from pipeline_run import DATA, METRICS
from pykeen.datasets import get_dataset
from pykeen.evaluation import RankBasedEvaluator
from pykeen.models import model_resolver
from pykeen.typing import MappedTriples

import pykeen_vbkgc  # noqa: F401  (registers the model and datasets)

SUBSETS = ("reverse-known", "reverse-unknown")


def reverse_known(test: MappedTriples, training: MappedTriples) -> torch.BoolTensor:
    """Whether each test triple $(h, r, t)$ has a training triple $(t, r', h)$ under any relation $r'$."""
    linked = set(map(tuple, training[:, [0, 2]].tolist()))
    return torch.as_tensor([(t, h) in linked for h, _, t in test.tolist()], dtype=torch.bool)


def main() -> None:
    """Rebuild the model, load the weights, evaluate on the test split."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=sorted(DATA), required=True)
    parser.add_argument("--data", type=Path, help="the dataset directory (default: ../shared/data/<dataset>)")
    parser.add_argument("--model", default="vbkgc")
    parser.add_argument("--model-kwargs", default="{}", help="JSON")
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--label", default=None)
    # the training run's, recorded so that accuracy_report.py tabulates the line with the runs of pipeline_run.py
    parser.add_argument("--seed", type=int, default=None, help="the seed of the run that trained the weights")
    parser.add_argument("--epochs", type=int, default=None, help="its epochs")
    parser.add_argument("--train-seconds", type=float, default=None, help="its training time")
    parser.add_argument("--num-test", type=int, default=None, help="test triples (default: all; fewer for a check)")
    parser.add_argument("--subset", choices=SUBSETS, help="rank only this part of the test split (default: all)")
    parser.add_argument("--output", type=Path, default=Path("results/evaluate_weights.jsonl"))
    args = parser.parse_args()

    dataset_kwargs = {} if args.dataset == "multimodaldemo" else dict(directory=args.data or DATA[args.dataset])
    dataset = get_dataset(dataset=args.dataset, dataset_kwargs=dataset_kwargs)
    model_kwargs = json.loads(args.model_kwargs)
    model = model_resolver.make(args.model, triples_factory=dataset.training, **model_kwargs)
    model.load_state_dict(torch.load(args.weights, map_location="cpu", weights_only=True))
    start = time.perf_counter()
    test = dataset.testing.mapped_triples
    ranked = test[: args.num_test]
    if args.subset is not None:
        known = reverse_known(ranked, dataset.training.mapped_triples)
        ranked = ranked[known if args.subset == "reverse-known" else ~known]
    result = RankBasedEvaluator().evaluate(
        model,
        ranked,
        # the whole test split is filtered, also when only its first triples are ranked
        additional_filter_triples=[dataset.training.mapped_triples, dataset.validation.mapped_triples, test],
        batch_size=256,
        use_tqdm=False,
    )
    row = dict(
        label=args.label,
        dataset=args.dataset,
        model=args.model,
        model_kwargs=model_kwargs,
        weights=str(args.weights),
        subset=args.subset,
        num_test=len(ranked),
        seed=args.seed,
        epochs=args.epochs,
        train_seconds=args.train_seconds,
        **{name: round(result.get_metric(key), 4) for name, key in METRICS.items()},
        evaluation_seconds=round(time.perf_counter() - start, 1),
        machine=f"{platform.machine()}, {torch.get_num_threads()} threads, CPU",
        date=time.strftime("%Y-%m-%d"),
    )
    print_and_append(row, args.output)


if __name__ == "__main__":
    main()
