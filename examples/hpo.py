"""Hyper-parameter search for VBKGC + twins over the paper's grid, with the study in a shared database.

The grid of Sec. 5.3 of the paper: margin {4, 6, 8, 10}, learning rate {2e-5, 1e-4, 5e-4, 1e-3}, embedding
dimension 128, and the number of batches per epoch {100, 400}, turned into batch sizes for the dataset's training set
(:func:`pykeen_vbkgc.hpo.batch_sizes_for`). Trials are scored on the validation triples.

The study lives in an SQLAlchemy database (``--storage``): by default an SQLite file, which needs no setup; any other
URL, e.g. ``postgresql://user@host:5432/db``, works the same way. Several workers started with the same
``--storage`` and ``--study-name`` share one study (``load_if_exists``): each runs ``--n-trials`` trials, and
Optuna numbers them across all workers.

    python examples/hpo.py --quick          # seconds: Nations, 1 epoch, 2 trials, 2 negatives, SQLite
    python examples/hpo.py --dataset wn9 --dataset-directory /data/wn9 --epochs 1000 --n-trials 32 \
        --storage postgresql://optuna@db.example.org:5432/vbkgc --study-name vbkgc-wn9   # on several machines
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import click

from pykeen_vbkgc.allocator import keep_freed_memory
from pykeen_vbkgc.cli import COUNT_RANGE, SEED_RANGE

#: the numbers of batches per epoch of --quick (the paper's {100, 400} would make Nations batches of 4-16 triples)
QUICK_NUMBERS_OF_BATCHES = (4, 8)


def open_storage(storage: str, attempts: int = 5):
    """Open (and on first use create) the Optuna database at an SQLAlchemy URL.

    The directory of an SQLite file is created. Workers that start at the same moment against an empty server
    database race to create Optuna's tables; the losers get an integrity or "already exists" error, so opening is
    retried a few times.

    :param storage: the SQLAlchemy URL, e.g. ``sqlite:///results/hpo.db`` or ``postgresql://user@host:5432/db``
    :param attempts: how often to try
    :return: the Optuna storage, and the URL with the password hidden (for printing)
    """
    import optuna
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

    try:
        url = make_url(storage)
    except ArgumentError as error:
        raise click.BadParameter(f"Not an SQLAlchemy URL: {storage!r} ({error})", param_hint="--storage") from error
    shown = url.render_as_string(hide_password=True)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        directory = Path(url.database).expanduser().parent
        existing = next(parent for parent in (directory, *directory.parents) if parent.exists())
        if not existing.is_dir():
            raise click.BadParameter(
                f"cannot open {shown}: {existing} is a file, not a directory", param_hint="--storage"
            )
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise click.BadParameter(f"cannot create {directory}: {error.strerror}", param_hint="--storage") from None
    for attempt in range(1, attempts + 1):
        try:
            return optuna.storages.RDBStorage(storage), shown
        except (ImportError, NoSuchModuleError) as error:  # a database without its Python driver, an unknown driver
            raise click.BadParameter(
                f"cannot open {shown}: the Python driver of {url.drivername!r} is not installed ({error})",
                param_hint="--storage",
            ) from None
        except DBAPIError as error:  # e.g. IntegrityError / ProgrammingError from a concurrent table creation
            if attempt == attempts or error.connection_invalidated:
                # e.g. the server refuses the connection or the credentials
                raise click.BadParameter(f"cannot open {shown}: {error.orig}", param_hint="--storage") from None
            time.sleep(0.5 * attempt)
    raise AssertionError("unreachable")


#: the key of the study's user attributes that records what its trials were run on
SETUP_ATTRIBUTE = "vbkgc_hpo_setup"


def check_study_setup(storage, study_name: str, setup: dict[str, object]) -> None:
    """Record what a study's trials run on, or refuse to add trials of another setup to it.

    A study shared by workers (``load_if_exists``) compares trials, so they must train on the same data for as long.

    :param storage: the Optuna storage
    :param study_name: the study
    :param setup: the digests of the training triples and the features file, epochs, negatives and batch sizes of
        this worker
    :raises click.UsageError: if the study was made with another setup
    """
    import optuna

    study = optuna.create_study(storage=storage, study_name=study_name, direction="maximize", load_if_exists=True)
    recorded = study.user_attrs.get(SETUP_ATTRIBUTE)
    if recorded is None:
        study.set_user_attr(SETUP_ATTRIBUTE, setup)
    elif recorded != setup:
        keys = [*setup, *(key for key in recorded if key not in setup)]
        differences = ", ".join(
            f"{key} was {recorded.get(key)!r}, now {setup.get(key)!r}"
            for key in keys
            if recorded.get(key) != setup.get(key)
        )
        raise click.UsageError(
            f"the study {study_name!r} holds trials of another setup ({differences}); give another --study-name, or "
            "the same options as its other workers."
        )


@click.command()
@click.option("--dataset", default="multimodaldemo", show_default=True, help="A PyKEEN dataset name.")
@click.option("--dataset-directory", type=click.Path(file_okay=False, path_type=Path), help="Local data directory.")
@click.option(
    "--features",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="A features file; defaults to the dataset's own (if it has one), else random features.",
)
@click.option("--epochs", type=COUNT_RANGE, default=100, show_default=True)
@click.option("--n-trials", type=COUNT_RANGE, default=32, show_default=True, help="Trials of this worker.")
@click.option(
    "--storage",
    default="sqlite:///results/hpo.db",
    show_default=True,
    help="SQLAlchemy URL of the study database, e.g. postgresql://user@host:5432/db.",
)
@click.option("--study-name", default="vbkgc-twins", show_default=True, help="Workers with the same name share it.")
@click.option("--num-negatives", type=COUNT_RANGE, default=16, show_default=True)
@click.option("--seed", type=SEED_RANGE, default=None, help="Seed of the Optuna sampler (default: random per worker).")
@click.option(
    "--quick", is_flag=True, help="Nations, 1 epoch, 2 trials, 2 negatives, 4 or 8 batches per epoch: seconds."
)
def main(
    dataset: str,
    dataset_directory: Path | None,
    features: Path | None,
    epochs: int,
    n_trials: int,
    storage: str,
    study_name: str,
    num_negatives: int,
    seed: int | None,
    quick: bool,
) -> None:
    """Search the paper's grid for VBKGC + twins with PyKEEN's hpo_pipeline."""
    from pykeen.hpo import hpo_pipeline

    from pykeen_vbkgc.dataset_loading import load_dataset_and_features
    from pykeen_vbkgc.digests import input_digests
    from pykeen_vbkgc.hpo import PAPER_NUMBERS_OF_BATCHES, batch_sizes_for, paper_hpo_ranges

    logging.basicConfig(level=logging.WARNING)
    context = click.get_current_context()
    numbers_of_batches = PAPER_NUMBERS_OF_BATCHES
    if quick:
        # explicit options win over --quick
        if context.get_parameter_source("dataset").name == "DEFAULT":
            dataset = "nations"
        if context.get_parameter_source("epochs").name == "DEFAULT":
            epochs = 1
        if context.get_parameter_source("n_trials").name == "DEFAULT":
            n_trials = 2
        if context.get_parameter_source("num_negatives").name == "DEFAULT":
            num_negatives = 2
        numbers_of_batches = QUICK_NUMBERS_OF_BATCHES
    # the inputs first: a bad one must not leave a new database behind
    dataset_instance, features = load_dataset_and_features(dataset, dataset_directory, features)
    batch_sizes = batch_sizes_for(dataset_instance.training.num_triples, numbers_of_batches)
    optuna_storage, shown_storage = open_storage(storage)
    # the contents, not the paths: workers on other machines keep the files elsewhere, and a file rewritten at the
    # same path is another input
    setup = dict(
        **input_digests(dataset_instance.training, features),
        epochs=epochs,
        num_negatives=num_negatives,
        batch_sizes=list(batch_sizes),
    )
    check_study_setup(optuna_storage, study_name, setup)
    model_kwargs: dict[str, object] = {}
    if features is not None:
        model_kwargs["features"] = str(features)
    else:
        # random features (ablation "w/o VisualBERT"); with features, the dataset hands them to the model itself
        model_kwargs.update(features="random", feature_dim=64)
    click.echo(
        f"study {study_name!r} in {shown_storage}: {n_trials} trials of VBKGC+twins on {dataset}, {epochs} epochs, "
        f"batch sizes {batch_sizes} (= {list(numbers_of_batches)} batches per epoch)",
        err=True,
    )
    result = hpo_pipeline(
        dataset=dataset_instance,
        model="vbkgc",
        model_kwargs=model_kwargs,
        negative_sampler="twins",
        negative_sampler_kwargs=dict(num_negs_per_pos=num_negatives),
        optimizer="adam",
        epochs=epochs,
        evaluator_kwargs=dict(filtered=True),
        evaluation_kwargs=dict(batch_size=256),
        metric="both.realistic.inverse_harmonic_mean_rank",
        direction="maximize",
        storage=optuna_storage,
        study_name=study_name,
        load_if_exists=True,
        sampler="tpe",
        sampler_kwargs=None if seed is None else dict(seed=seed),
        n_trials=n_trials,
        **paper_hpo_ranges(batch_sizes=batch_sizes),
    )
    study = result.study
    trials = study.get_trials(deepcopy=False)
    complete = [trial for trial in trials if trial.state.name == "COMPLETE"]
    summary = dict(
        study=study_name,
        trials_in_study=len(trials),
        complete=len(complete),
        best_value=study.best_value if complete else None,
        best_params=study.best_params if complete else None,
    )
    click.echo(json.dumps(summary, indent=2))


if __name__ == "__main__":
    # the script owns its process: freed memory stays in it for reuse (fewer page faults per batch)
    keep_freed_memory()
    main()
