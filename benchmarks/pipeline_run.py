"""One run through :func:`pykeen.pipeline.pipeline`, as a user calls it; prints and appends one JSON line.

Used for the "defaults where users call them" rows of docs/results.md: every row there is one call of this script,
with the exact argument line next to it. Everything not given on the command line is the pipeline's (Adam with
learning rate 1e-3) or the model's own default::

    python benchmarks/pipeline_run.py --dataset wn9 --model vbkgc --sampler twins --epochs 100
    python benchmarks/pipeline_run.py --dataset wn9 --model transe --sampler basic --epochs 100 \
        --kwargs '{"loss": "nssa", "loss_kwargs": {"margin": 9}, "negative_sampler_kwargs": {"num_negs_per_pos": 64}}'

``--kwargs`` is a JSON object of further :func:`~pykeen.pipeline.pipeline` keyword arguments.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import time
from pathlib import Path

import torch
from pykeen.constants import PYKEEN_CHECKPOINTS
from pykeen.pipeline import pipeline
from pykeen.stoppers import EarlyStopper, stopper_resolver
from pykeen.training.callbacks import TrainingCallback
from stopper_weights import resumable_stopper_kwargs

import pykeen_vbkgc  # noqa: F401  (registers the components)

HERE = Path(__file__).resolve().parent
DATA = {
    "wn9": HERE.parent.parent / "shared/data/wn9",
    "fb15k237multimodal": HERE.parent.parent / "shared/data/fb15k237",
    # shipped with the package: no directory
    "multimodaldemo": None,
}
METRICS = {
    "mrr": "both.realistic.inverse_harmonic_mean_rank",
    "hits@1": "both.realistic.hits_at_1",
    "hits@3": "both.realistic.hits_at_3",
    "hits@10": "both.realistic.hits_at_10",
}


class TimeBudget(TrainingCallback):
    """Stop training after the first epoch that ends past a wall-clock budget; count the epochs trained."""

    def __init__(self, seconds: float | None) -> None:
        super().__init__()
        self.seconds = seconds
        self.start = time.perf_counter()
        self.epochs = 0

    def post_epoch(self, epoch: int, epoch_loss: float, **kwargs) -> None:  # noqa: D102
        self.epochs = epoch
        # one line per epoch, so that a long run's progress can be followed in its log
        print(f"epoch {epoch} loss {epoch_loss:.5f} at {time.perf_counter() - self.start:.0f} s", flush=True)
        if self.seconds is not None and time.perf_counter() - self.start > self.seconds:
            self.training_loop._should_stop = True


def main() -> None:
    """Run the pipeline once and record the filtered test metrics."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=sorted(DATA), required=True)
    parser.add_argument("--data", type=Path, help="the dataset directory (default: ../shared/data/<dataset>)")
    parser.add_argument("--model", required=True)
    parser.add_argument("--sampler", default=None)
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None)
    parser.add_argument("--time-budget", type=float, help="stop training after the epoch that passes these seconds")
    parser.add_argument("--kwargs", default="{}", help="further pipeline() keyword arguments, as JSON")
    parser.add_argument("--label", default=None)
    parser.add_argument("--output", type=Path, default=HERE.parent / "results" / "pipeline_runs.jsonl")
    parser.add_argument("--save-weights", type=Path, help="write the trained model's state dict here")
    args = parser.parse_args()

    # the early stopper logs its validation results at INFO
    logging.basicConfig(format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("pykeen.stoppers").setLevel(logging.INFO)
    extra = json.loads(args.kwargs)
    budget = TimeBudget(args.time_budget)
    # the command line's epochs and batch size win over a preset's
    training_kwargs = {**extra.pop("training_kwargs", {}), "num_epochs": args.epochs, "batch_size": args.batch_size}
    training_kwargs["callbacks"] = budget
    if args.sampler is not None:
        extra["negative_sampler"] = args.sampler
    early_stopping = "stopper" in extra and stopper_resolver.lookup(extra["stopper"]) is EarlyStopper
    if early_stopping and "checkpoint_name" in training_kwargs:
        # a resumed run must find the best weights of the epochs before the resume
        directory = Path(training_kwargs.get("checkpoint_directory", PYKEEN_CHECKPOINTS))
        checkpoint = directory / training_kwargs["checkpoint_name"]
        extra["stopper_kwargs"] = resumable_stopper_kwargs(checkpoint, extra.get("stopper_kwargs", {}))
    # further dataset keyword arguments (e.g. create_inverse_triples) next to the data directory
    dataset_kwargs = extra.pop("dataset_kwargs", {})
    if args.dataset != "multimodaldemo":
        dataset_kwargs["directory"] = args.data or DATA[args.dataset]
    start = time.perf_counter()
    result = pipeline(
        dataset=args.dataset,
        dataset_kwargs=dataset_kwargs,
        model=args.model,
        training_kwargs=training_kwargs,
        evaluator_kwargs=dict(batch_size=256),
        random_seed=args.seed,
        device=args.device,
        use_tqdm=False,
        **extra,
    )
    if args.save_weights is not None:
        # for evaluations after the run (benchmarks/evaluate_weights.py), e.g. on parts of the test split
        args.save_weights.parent.mkdir(parents=True, exist_ok=True)
        torch.save(result.model.state_dict(), args.save_weights)
    row = dict(
        label=args.label,
        dataset=args.dataset,
        model=args.model,
        sampler=args.sampler,
        epochs=budget.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        kwargs=json.loads(args.kwargs),
        **{name: result.metric_results.get_metric(key) for name, key in METRICS.items()},
        train_seconds=round(result.train_seconds, 1),
        total_seconds=round(time.perf_counter() - start, 1),
        machine=f"{platform.machine()}, {torch.get_num_threads()} threads, "
        + (torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"),
        date=time.strftime("%Y-%m-%d"),
    )
    line = json.dumps(row)
    print(line, flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with args.output.open("a") as file:
        file.write(line + "\n")


if __name__ == "__main__":
    main()
