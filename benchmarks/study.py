"""The converged, fairly tuned comparison of docs/results.md: one hyper-parameter search per model, then three seeds.

Two phases per (dataset, model), both resumable:

1. ``search``: PyKEEN's :func:`~pykeen.hpo.hpo_pipeline` (Optuna, TPE seeded with 0) with the same number of trials
   for every model. Each trial trains with PyKEEN's early stopper on the validation split (filtered MRR, checked
   every ``--frequency`` epochs, stopping after ``--patience`` checks without a relative gain of 0.2 %) up to
   ``--max-epochs``, and is scored by its validation MRR. The study lives in SQLite; a restarted search only runs
   the trials that are missing. The best configuration is saved as ``best_pipeline/pipeline_config.json``.
2. ``final``: the best configuration, retrained with each ``--seeds`` seed under the same early stopping, evaluated
   once on the full test split (filtered against train and validation). Training checkpoints are kept, so an
   interrupted seed resumes where it stopped.

``report`` prints the mean and standard deviation over the seeds as a Markdown table.

Example (WN9, 8 trials per model, two processes side by side on a 2-core machine)::

    python benchmarks/study.py search --dataset wn9 --model twins --trials 8
    python benchmarks/study.py final --dataset wn9 --model twins
    python benchmarks/study.py report --dataset wn9

FB15k-237 at the reduced budget of docs/results.md (on one GPU: 4 processes share each study; early stopping of the
search on a fixed subset of 3,000 validation triples; one batch size for every model)::

    python benchmarks/study.py search --dataset fb15k237multimodal --model twins --trials 4 --workers 4 \
        --max-epochs 20 --patience 2 --validation-size 3000 --batch-sizes 4096
    python benchmarks/study.py final --dataset fb15k237multimodal --model twins --max-epochs 100

Features: the dataset's own (``features.minilm.safetensors`` in its directory), i.e., the VBKGC defaults.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from stopper_weights import resumable_stopper_kwargs

HERE = Path(__file__).resolve().parent
DATA = {
    "wn9": HERE.parent.parent / "shared/data/wn9",
    "fb15k237multimodal": HERE.parent.parent / "shared/data/fb15k237",
}
MODELS = ("transe", "normal", "twins", "ikrl")
LABELS = {"transe": "TransE", "normal": "VBKGC+Normal", "twins": "VBKGC+Twins", "ikrl": "IKRL-style"}
METRICS = {
    "mrr": "both.realistic.inverse_harmonic_mean_rank",
    "hits@1": "both.realistic.hits_at_1",
    "hits@3": "both.realistic.hits_at_3",
    "hits@10": "both.realistic.hits_at_10",
}
#: the multimodal term weights tried for VBKGC (the structural term ss always weighs 1)
TERM_WEIGHTS = tuple(f"mm={w},sm={w},ms={w},all={w}" for w in (1, 0.3, 0.1, 0.03))


def search_space(model: str, batch_sizes: Sequence[int] = (256, 1024)) -> dict[str, Any]:
    """Return the ``hpo_pipeline`` arguments of one model: what is fixed and what is searched."""
    common = dict(
        negative_sampler_kwargs=dict(num_negs_per_pos=16, filtered=True),
        optimizer="adam",
        optimizer_kwargs_ranges=dict(lr=dict(type="categorical", choices=[3e-3, 1e-2])),
        training_kwargs_ranges=dict(batch_size=dict(type="categorical", choices=list(batch_sizes))),
        loss="meanmarginranking",
    )
    if model == "transe":
        return dict(
            model="TransE",
            model_kwargs=dict(embedding_dim=128),
            model_kwargs_ranges=dict(scoring_fct_norm=dict(type="categorical", choices=[1, 2])),
            negative_sampler="basic",
            loss_kwargs_ranges=dict(margin=dict(type="categorical", choices=[2.0, 6.0, 12.0, 24.0])),
            **common,
        )
    vbkgc_ranges = dict(
        scoring_fct_norm=dict(type="categorical", choices=[1, 2]),
        normalize_relations=dict(type="categorical", choices=[True, False]),
        term_weights=dict(type="categorical", choices=list(TERM_WEIGHTS)),
    )
    if model == "ikrl":
        return dict(
            model="vbkgc",
            model_kwargs=dict(embedding_dim=128, score_terms="ss,mm,sm,ms", projection_lr_scale=1e-3),
            model_kwargs_ranges={key: value for key, value in vbkgc_ranges.items() if key != "term_weights"},
            negative_sampler="basic",
            loss_kwargs_ranges=dict(margin=dict(type="categorical", choices=[6.0, 12.0, 24.0, 60.0])),
            **{**common, "loss": "marginranking"},
        )
    return dict(
        model="vbkgc",
        model_kwargs=dict(embedding_dim=128, projection_lr_scale=1e-3),
        model_kwargs_ranges=vbkgc_ranges,
        negative_sampler="twins" if model == "twins" else "basic",
        loss_kwargs_ranges=dict(margin=dict(type="categorical", choices=[6.0, 12.0, 24.0, 60.0])),
        **common,
    )


def stopping(args: argparse.Namespace) -> dict[str, Any]:
    """Return the early-stopping arguments shared by the search and the final runs."""
    return dict(
        stopper="early",
        stopper_kwargs=dict(
            frequency=args.frequency,
            patience=args.patience,
            relative_delta=0.002,
            metric=METRICS["mrr"],
            # a fixed batch: PyKEEN's automatic one starts as large as the GPU allows, which starves the other
            # processes on a shared GPU (likely why two of nine parallel FB15k-237 runs died of OOM)
            evaluation_batch_size=256,
        ),
        evaluation_kwargs=dict(batch_size=256),
    )


def directory(args: argparse.Namespace) -> Path:
    """Return the output directory of one (dataset, model)."""
    return args.output / args.dataset / args.model


def search_dataset(args: argparse.Namespace):
    """Return the dataset of the search: the full one, or with its validation split cut to ``--validation-size``.

    The cut is a fixed random subset (seed 0), so every model and every trial is scored on the same triples.
    """
    from pykeen.datasets import EagerDataset, get_dataset

    dataset = get_dataset(dataset=args.dataset, dataset_kwargs=dict(directory=str(DATA[args.dataset])))
    validation = dataset.validation
    if args.validation_size is None or args.validation_size >= validation.num_triples:
        return dataset
    keep = torch.randperm(validation.num_triples, generator=torch.Generator().manual_seed(0))[: args.validation_size]
    return EagerDataset(
        training=dataset.training,
        testing=dataset.testing,
        validation=validation.clone_and_exchange_triples(validation.mapped_triples[keep.sort().values]),
        metadata=dataset.metadata,
    )


def run_trials(args: argparse.Namespace, n_trials: int, sampler_seed: int):
    """Run ``n_trials`` trials of the study (in this process) and return PyKEEN's HPO result."""
    from pykeen.hpo import hpo_pipeline

    torch.set_num_threads(args.threads)
    out = directory(args)
    return hpo_pipeline(
        dataset=search_dataset(args),
        epochs=args.max_epochs,
        metric=METRICS["mrr"],
        direction="maximize",
        storage=f"sqlite:///{out / 'study.db'}",
        study_name=f"{args.dataset}-{args.model}",
        load_if_exists=True,
        sampler="tpe",
        sampler_kwargs=dict(seed=sampler_seed),
        n_trials=n_trials,
        **stopping(args),
        **search_space(args.model, args.batch_sizes),
    )


def search(args: argparse.Namespace) -> None:
    """Run the missing trials of the study and save the best configuration.

    With ``--workers`` $n > 1$, $n$ processes share the study (in SQLite), worker $w$ sampling with seed $w$.
    """
    import optuna

    out = directory(args)
    out.mkdir(parents=True, exist_ok=True)
    storage = f"sqlite:///{out / 'study.db'}"
    name = f"{args.dataset}-{args.model}"
    done = 0
    if name in optuna.get_all_study_names(storage=storage):
        study = optuna.load_study(study_name=name, storage=storage)
        done = sum(trial.state == optuna.trial.TrialState.COMPLETE for trial in study.trials)
    missing = max(args.trials - done, 0)
    if args.workers > 1 and missing > 0:
        # create the (empty) study once, so that the workers do not race to create it; hpo_pipeline loads it
        optuna.create_study(storage=storage, study_name=name, direction="maximize", load_if_exists=True)
        shares = [missing // args.workers + (worker < missing % args.workers) for worker in range(args.workers)]
        context = multiprocessing.get_context("spawn")
        workers = [
            context.Process(target=run_trials, args=(args, share, worker))
            for worker, share in enumerate(shares)
            if share
        ]
        for process in workers:
            process.start()
        for process in workers:
            process.join()
        missing = 0
    # with nothing missing, this only loads the study: its best trial is saved as best_pipeline/
    result = run_trials(args, n_trials=missing, sampler_seed=0)
    result.save_to_directory(out)
    print(json.dumps(dict(best_value=result.study.best_value, best_params=result.study.best_params)))


def final(args: argparse.Namespace) -> None:
    """Retrain the best configuration with each seed and evaluate it on the test split."""
    from pykeen.pipeline import pipeline_from_config

    out = directory(args)
    best = args.config or out / "best_pipeline" / "pipeline_config.json"
    if args.config is not None:
        out = out / args.config.stem
        out.mkdir(parents=True, exist_ok=True)
    if not best.is_file():
        sys.exit(f"{best} does not exist: run the search phase first (it resumes an interrupted study).")
    config = json.loads(best.read_text())
    for seed in args.seeds:
        path = out / f"seed{seed}.json"
        if path.is_file():
            continue
        pipeline_kwargs = dict(config["pipeline"])
        # always the full dataset (a search on a cut validation split saves no dataset in its configuration)
        pipeline_kwargs.update(dataset=args.dataset, dataset_kwargs=dict(directory=str(DATA[args.dataset])))
        pipeline_kwargs["random_seed"] = seed
        pipeline_kwargs.update(stopping(args))
        checkpoint = out / "checkpoints" / f"{args.dataset}-{args.model}-seed{seed}.pt"
        pipeline_kwargs["stopper_kwargs"] = resumable_stopper_kwargs(checkpoint, pipeline_kwargs["stopper_kwargs"])
        training_kwargs = dict(pipeline_kwargs.get("training_kwargs", {}))
        training_kwargs.update(
            num_epochs=args.max_epochs,
            checkpoint_name=checkpoint.name,
            checkpoint_directory=str(checkpoint.parent),
            checkpoint_frequency=5,
        )
        pipeline_kwargs["training_kwargs"] = training_kwargs
        result = pipeline_from_config(dict(metadata=config.get("metadata", {}), pipeline=pipeline_kwargs))
        row = dict(
            seed=seed,
            **{key: result.metric_results.get_metric(metric) for key, metric in METRICS.items()},
            train_seconds=result.train_seconds,
            device=str(result.model.device),
            epochs=len(result.losses),
            best_epoch=getattr(result.stopper, "best_epoch", None),
            config=pipeline_kwargs,
        )
        path.write_text(json.dumps(row, indent=2, default=str) + "\n")
        print(json.dumps({key: value for key, value in row.items() if key != "config"}))


def summarize(rows: list[Mapping[str, Any]]) -> dict[str, tuple[float, float]]:
    """Return the mean and the standard deviation of each metric and of the training time over the seeds."""
    keys = (*METRICS, "train_seconds", "epochs")
    return {
        key: (statistics.mean(row[key] for row in rows), statistics.stdev(row[key] for row in rows))
        if len(rows) > 1
        else (rows[0][key], 0.0)
        for key in keys
    }


def report(args: argparse.Namespace) -> None:
    """Print the Markdown table of the finished seeds of every model."""
    print("| model | seeds | MRR | Hits@1 | Hits@3 | Hits@10 | epochs | train s | best configuration |")
    print("| --- | ---: | --- | --- | --- | --- | ---: | ---: | --- |")
    for model in MODELS:
        out = args.output / args.dataset / model
        rows = [json.loads(path.read_text()) for path in sorted(out.glob("seed*.json"))]
        if not rows:
            continue
        stats = summarize(rows)
        best = json.loads((out / "best_pipeline" / "pipeline_config.json").read_text())["pipeline"]
        settings = dict(
            lr=best["optimizer_kwargs"]["lr"],
            batch=best["training_kwargs"]["batch_size"],
            margin=best["loss_kwargs"]["margin"],
            **{key: value for key, value in best["model_kwargs"].items() if key != "embedding_dim"},
        )
        cells = " | ".join(f"{stats[key][0]:.3f} ± {stats[key][1]:.3f}" for key in METRICS)
        print(
            f"| {LABELS[model]} | {len(rows)} | {cells} | {stats['epochs'][0]:.0f} | {stats['train_seconds'][0]:.0f} "
            f"| {', '.join(f'{key}={value}' for key, value in settings.items())} |"
        )


def main() -> None:
    """Parse the command line and run one phase."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("phase", choices=["search", "final", "report"])
    parser.add_argument("--dataset", choices=sorted(DATA), default="wn9")
    parser.add_argument("--model", choices=MODELS, default="twins")
    parser.add_argument("--trials", type=int, default=8, help="the number of trials of the search (every model)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--max-epochs", type=int, default=300)
    parser.add_argument("--frequency", type=int, default=5, help="validate every this many epochs")
    parser.add_argument("--patience", type=int, default=4, help="checks without improvement before stopping")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--workers", type=int, default=1, help="search: processes that share the study")
    parser.add_argument(
        "--batch-sizes", type=int, nargs="+", default=[256, 1024], help="search: the batch sizes tried (every model)"
    )
    parser.add_argument(
        "--validation-size",
        type=int,
        default=None,
        help="search: validate on a fixed random subset of this many validation triples (default: all)",
    )
    parser.add_argument(
        "--config",
        type=Path,
        help="final: retrain this pipeline configuration instead of the study's best (results go to a sub-folder "
        "named like the file)",
    )
    parser.add_argument("--output", type=Path, default=Path("results/study"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    {"search": search, "final": final, "report": report}[args.phase](args)


if __name__ == "__main__":
    sys.exit(main())
