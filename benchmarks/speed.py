"""Training and evaluation speed of VBKGC (+twins) against PyKEEN's TransE, in the same run.

Run by hand (takes ~15-30 minutes on 2 CPU cores with the full FB15k-237 test set)::

    python benchmarks/speed.py --data ../shared/data/fb15k237 --output docs/speed.json

The models run on ``--device`` (default: CUDA if available; PyKEEN does not move a model built by hand, so before
2026-12 this script trained on the CPU of GPU machines). ``--training-loop deviceslcwa`` draws batches and negatives
on the device (:mod:`pykeen_vbkgc.device_sampling`) instead of PyKEEN's host-side DataLoader.

Both models use d=128, 16 negatives per positive, batch size 2048, Adam, and the same evaluator settings
(filtered rank-based evaluation of the test triples, both sides). Their epochs alternate (TransE, VBKGC, TransE,
...), so that a drift of the machine's speed hits both. Features are random (speed does not depend on
their values), of width 768 like VisualBERT's [CLS] state.

The first epoch includes one-time costs, mainly ``torch.compile`` on the CPU; ``first_epoch_overhead_seconds`` is
the first epoch minus a steady one. Inductor keeps what it compiled on disk (``TORCHINDUCTOR_CACHE_DIR``, by default
under ``/tmp``), so only the first process on a machine starts truly cold; ``--fresh-compile-cache`` measures that
case (the one-time costs do not depend on the size of the training set, so ``--num-train 20480`` suffices)::

    python benchmarks/speed.py --num-train 20480 --epochs 3 --num-test 100 --fresh-compile-cache
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch
from pykeen.evaluation import RankBasedEvaluator
from pykeen.models import TransE
from pykeen.training import SLCWATrainingLoop, training_loop_resolver
from pykeen.triples import TriplesFactory

import pykeen_vbkgc
from pykeen_vbkgc import VBKGC, MeanMarginRankingLoss, TwinsNegativeSampler

# registration may have been deferred (pykeen.models imported first, see pykeen_vbkgc.registration): finish it now
pykeen_vbkgc.register()

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


def make_loop(model, train, sampler, training_loop: str = "slcwa", num_negatives: int = 16) -> SLCWATrainingLoop:
    """Return an sLCWA loop (PyKEEN's or the device-side one) with Adam and 16 negatives per positive."""
    return training_loop_resolver.make(
        training_loop,
        model=model,
        triples_factory=train,
        optimizer=torch.optim.Adam(model.parameters(), lr=1e-3),
        negative_sampler=sampler,
        negative_sampler_kwargs=dict(num_negs_per_pos=num_negatives),
    )


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (for timings)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_epoch(loop: SLCWATrainingLoop, train, epoch: int, batch_size: int) -> float:
    """Train the loop for its ``epoch``-th epoch; return the seconds it took."""
    synchronize(loop.model.device)
    start = time.perf_counter()
    # num_epochs counts in total: each call continues the previous one by exactly one epoch
    loop.train(triples_factory=train, num_epochs=epoch, batch_size=batch_size, use_tqdm=False)
    synchronize(loop.model.device)
    return time.perf_counter() - start


def evaluate(model, train, valid, mapped, eval_batch_size) -> tuple[float, float]:
    """Run the filtered evaluation; return its seconds and the MRR."""
    synchronize(model.device)
    start = time.perf_counter()
    results = RankBasedEvaluator(filtered=True).evaluate(
        model=model,
        mapped_triples=mapped,
        additional_filter_triples=[train.mapped_triples, valid.mapped_triples],
        batch_size=eval_batch_size,
        use_tqdm=False,
    )
    return time.perf_counter() - start, results.get_metric("both.realistic.inverse_harmonic_mean_rank")


def summary(epoch_seconds: list[float], evaluation_seconds: float, mrr: float, num_test: int) -> dict:
    """Summarise one model's timings; the first epoch (one-time costs such as torch.compile) is reported apart."""
    steady = epoch_seconds[1:] or epoch_seconds
    return dict(
        seconds_per_epoch=statistics.median(steady),
        first_epoch_seconds=epoch_seconds[0],
        # the cold start: what the first epoch costs over a steady one
        first_epoch_overhead_seconds=epoch_seconds[0] - statistics.median(steady),
        epoch_seconds=epoch_seconds,
        evaluation_seconds=evaluation_seconds,
        num_test_triples=num_test,
        mrr=mrr,
    )


def main() -> None:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="directory with train/valid/test.txt")
    parser.add_argument("--epochs", type=int, default=3, help="the first one is reported separately")
    parser.add_argument("--batch-size", type=int, default=2048)
    parser.add_argument("--eval-batch-size", type=int, default=256)
    parser.add_argument("--num-test", type=int, default=None, help="evaluate only the first N test triples")
    parser.add_argument("--num-train", type=int, default=None, help="train on the first N training triples only")
    parser.add_argument("--feature-dim", type=int, default=768)
    parser.add_argument("--embedding-dim", type=int, default=128)
    parser.add_argument("--num-negatives", type=int, default=16)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--training-loop", default="slcwa", help="slcwa (PyKEEN's) or deviceslcwa")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--scoring-fct-norm", type=int, default=1)
    parser.add_argument(
        "--fresh-compile-cache",
        action="store_true",
        help="use an empty Inductor cache (a new TORCHINDUCTOR_CACHE_DIR), i.e., a true cold start: by default, "
        "torch.compile reuses what earlier processes compiled on this machine",
    )
    parser.add_argument("--output", type=Path, default=None, help="write the results as JSON")
    args = parser.parse_args()
    if args.fresh_compile_cache:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="torchinductor_cold_")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    train, valid, test = load(args.data)
    if args.num_train:
        train = train.clone_and_exchange_triples(train.mapped_triples[: args.num_train])
    num_test = args.num_test or test.num_triples
    torch.manual_seed(0)
    models = {
        "transe": TransE(triples_factory=train, embedding_dim=args.embedding_dim, random_seed=0),
        "vbkgc_twins": VBKGC(
            triples_factory=train,
            features=torch.randn(train.num_entities, args.feature_dim),
            embedding_dim=args.embedding_dim,
            scoring_fct_norm=args.scoring_fct_norm,
            loss=MeanMarginRankingLoss(margin=6.0),
            random_seed=0,
        ),
    }
    models = {name: model.to(device) for name, model in models.items()}
    loops = {
        "transe": make_loop(models["transe"], train, "basic", args.training_loop, args.num_negatives),
        "vbkgc_twins": make_loop(
            models["vbkgc_twins"], train, TwinsNegativeSampler, args.training_loop, args.num_negatives
        ),
    }
    # the two models alternate epoch by epoch, so that both see the same state of a machine whose speed drifts
    epoch_seconds = {name: [] for name in models}
    for epoch in range(1, args.epochs + 1):
        for name, loop in loops.items():
            epoch_seconds[name].append(train_epoch(loop, train, epoch, args.batch_size))
            print(name, "epoch", epoch, f"{epoch_seconds[name][-1]:.2f} s", flush=True)
    mapped = test.mapped_triples[:num_test]
    results = {}
    for name, model in models.items():
        seconds, mrr = evaluate(model, train, valid, mapped, args.eval_batch_size)
        results[name] = summary(epoch_seconds[name], seconds, mrr, int(mapped.shape[0]))
        print(name, results[name], flush=True)
    transe_result, vbkgc_result = results["transe"], results["vbkgc_twins"]
    report = dict(
        date=time.strftime("%Y-%m-%d"),
        machine=f"{platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}",
        device=torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
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
