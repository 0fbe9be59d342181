"""Training and evaluation speed of VBKGC (+twins) against PyKEEN's TransE, in the same run.

Run by hand (takes ~15-30 minutes on 2 CPU cores with the full FB15k-237 test set)::

    python benchmarks/speed.py --data ../shared/data/fb15k237 --output docs/speed.json

Both models use d=128, 16 negatives per positive, batch size 2048, Adam, and the same evaluator settings
(filtered rank-based evaluation of the test triples, both sides). Features are random (speed does not depend on
their values), of width 768 like VisualBERT's [CLS] state.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch
from pykeen.evaluation import RankBasedEvaluator
from pykeen.models import TransE
from pykeen.training import SLCWATrainingLoop
from pykeen.triples import TriplesFactory

import pykeen_vbkgc  # noqa: F401  (registers the components)
from pykeen_vbkgc import VBKGC, MeanMarginRankingLoss, TwinsNegativeSampler

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent / "shared" / "data" / "fb15k237"


def load(directory: Path) -> tuple[TriplesFactory, TriplesFactory, TriplesFactory]:
    """Load the train/valid/test split with one shared id mapping."""
    train = TriplesFactory.from_path(directory / "train.txt")
    kwargs = dict(entity_to_id=train.entity_to_id, relation_to_id=train.relation_to_id)
    return (
        train,
        TriplesFactory.from_path(directory / "valid.txt", **kwargs),
        TriplesFactory.from_path(directory / "test.txt", **kwargs),
    )


def measure(model, train, valid, test, *, sampler, epochs, batch_size, eval_batch_size, num_test) -> dict:
    """Train for some epochs and evaluate once; return seconds per epoch and evaluation seconds."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loop = SLCWATrainingLoop(
        model=model,
        triples_factory=train,
        optimizer=optimizer,
        negative_sampler=sampler,
        negative_sampler_kwargs=dict(num_negs_per_pos=16),
    )
    # one call per epoch: the first epoch includes one-time costs (torch.compile of the fused kernels)
    epoch_seconds = []
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        # num_epochs counts in total: each call continues the previous one by exactly one epoch
        loop.train(triples_factory=train, num_epochs=epoch, batch_size=batch_size, use_tqdm=False)
        epoch_seconds.append(time.perf_counter() - start)
    mapped = test.mapped_triples[:num_test]
    evaluator = RankBasedEvaluator(filtered=True)
    start = time.perf_counter()
    results = evaluator.evaluate(
        model=model,
        mapped_triples=mapped,
        additional_filter_triples=[train.mapped_triples, valid.mapped_triples],
        batch_size=eval_batch_size,
        use_tqdm=False,
    )
    eval_seconds = time.perf_counter() - start
    steady = epoch_seconds[1:] or epoch_seconds
    return dict(
        seconds_per_epoch=statistics.median(steady),
        first_epoch_seconds=epoch_seconds[0],
        epoch_seconds=epoch_seconds,
        evaluation_seconds=eval_seconds,
        num_test_triples=int(mapped.shape[0]),
        mrr=results.get_metric("both.realistic.inverse_harmonic_mean_rank"),
    )


def main() -> None:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="directory with train/valid/test.txt")
    parser.add_argument("--epochs", type=int, default=3, help="the first one is reported separately")
    parser.add_argument("--batch-size", type=int, default=2048)
    parser.add_argument("--eval-batch-size", type=int, default=256)
    parser.add_argument("--num-test", type=int, default=None, help="evaluate only the first N test triples")
    parser.add_argument("--feature-dim", type=int, default=768)
    parser.add_argument("--scoring-fct-norm", type=int, default=1)
    parser.add_argument("--output", type=Path, default=None, help="write the results as JSON")
    args = parser.parse_args()

    train, valid, test = load(args.data)
    num_test = args.num_test or test.num_triples
    common = dict(
        epochs=args.epochs, batch_size=args.batch_size, eval_batch_size=args.eval_batch_size, num_test=num_test
    )
    torch.manual_seed(0)
    transe = TransE(triples_factory=train, embedding_dim=128, random_seed=0)
    transe_result = measure(transe, train, valid, test, sampler="basic", **common)
    print("TransE", transe_result, flush=True)
    vbkgc = VBKGC(
        triples_factory=train,
        features=torch.randn(train.num_entities, args.feature_dim),
        embedding_dim=128,
        scoring_fct_norm=args.scoring_fct_norm,
        loss=MeanMarginRankingLoss(margin=6.0),
        random_seed=0,
    )
    vbkgc_result = measure(vbkgc, train, valid, test, sampler=TwinsNegativeSampler, **common)
    print("VBKGC+twins", vbkgc_result, flush=True)
    report = dict(
        date=time.strftime("%Y-%m-%d"),
        machine=f"{platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}",
        settings=vars(args) | dict(data=str(args.data), output=str(args.output)),
        transe=transe_result,
        vbkgc_twins=vbkgc_result,
        epoch_ratio=vbkgc_result["seconds_per_epoch"] / transe_result["seconds_per_epoch"],
        evaluation_ratio=vbkgc_result["evaluation_seconds"] / transe_result["evaluation_seconds"],
    )
    print(json.dumps(report, indent=2))
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
