"""The ``pykeen-vbkgc`` command line: encode features, merge shards, train and evaluate."""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .defaults import BEST, PRESETS, Preset, get_preset
from .encoders.cli import encode, merge_features

if TYPE_CHECKING:
    from pykeen.datasets import Dataset

__all__ = [
    "as_triples_directory",
    "dataset_options",
    "load_dataset_and_features",
    "load_run",
    "main",
    "open_triples_directory",
    "quiet_library_logs",
    "settings_options",
]

#: the file in which ``train --output`` records how the run was made (read by ``evaluate``)
RUN_RECORD = "vbkgc_run.json"

#: the metrics printed after training (filtered, realistic ranks)
REPORTED_METRICS = ("inverse_harmonic_mean_rank", "hits_at_1", "hits_at_3", "hits_at_10")


@click.group()
@click.version_option(package_name="pykeen-vbkgc")
def main() -> None:
    """VBKGC for PyKEEN: multimodal knowledge graph completion with twins negative sampling."""


main.add_command(encode)
main.add_command(merge_features)


def quiet_library_logs() -> None:
    """Let a command show progress bars, results and warnings that concern the user, not libraries' internals."""
    logging.basicConfig(level=logging.WARNING)
    # PyKEEN sets its own logger to INFO on import (cache and save messages)
    logging.getLogger("pykeen").setLevel(logging.WARNING)
    # "Encountered tensors on device_types={'cpu'} ..." from the evaluation's automatic batch size
    logging.getLogger("torch_max_mem").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message="'pin_memory' argument is set as true", category=UserWarning)
    # "No cuda devices were available": the device is the user's choice (--device), not news
    logging.getLogger("pykeen.utils").addFilter(_NO_CUDA_NOTICE)  # one instance: adding it again is a no-op


class _NoCudaNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("No cuda devices were available")


_NO_CUDA_NOTICE = _NoCudaNotice()


def load_dataset_and_features(
    dataset: str, dataset_directory: Path | None, features: Path | None
) -> tuple[Dataset, Path | None]:
    """Load the dataset of a training command, read its triples and check an explicit features file.

    Without ``features``, the multimodal datasets hand their own features file to the model (see
    :mod:`pykeen_vbkgc.datasets`); other datasets leave the model with random features, which it reports as a
    warning.

    :param dataset: a registered dataset name, or your own graph's directory (see :func:`open_dataset`)
    :param dataset_directory: a local data directory of a named dataset, passed as ``directory=``
    :param features: an explicit features file, or None
    :return: the dataset and the features file that the model will use (None means random features)
    :raises click.ClickException: if the dataset cannot be loaded
    :raises click.BadParameter: if the features file does not exist
    """
    from .datasets import DatasetFilesError
    from .features import FEATURES_METADATA_KEY

    try:
        dataset_instance = open_dataset(dataset, dataset_directory)
        # read the triples now: a bad file is reported before anything else happens
        training = dataset_instance.training
    except DatasetFilesError as error:
        raise click.ClickException(str(error)) from None
    except (KeyError, ValueError, FileNotFoundError) as error:
        raise click.ClickException(f"Cannot load dataset {dataset!r}: {error}") from error
    if features is not None and not features.is_file():
        raise click.BadParameter(f"Features file not found: {features}", param_hint="--features")
    if features is None:
        own = training.metadata.get(FEATURES_METADATA_KEY)
        features = None if own is None else Path(own)
    return dataset_instance, features


def open_dataset(dataset: str, dataset_directory: Path | None) -> Dataset:
    """Open the dataset of a command's ``--dataset`` and ``--dataset-directory``.

    :param dataset: a registered dataset name, or your own graph's directory
        (see :class:`~pykeen_vbkgc.datasets.TriplesDirectory`)
    :param dataset_directory: a local data directory of a named dataset, passed as ``directory=``
    :return: the dataset (the multimodal datasets read their triples only when they are first used)
    :raises click.BadParameter: for an unknown name, or a data directory for a dataset that takes none
    """
    from pykeen.datasets import dataset_resolver

    own_graph = open_triples_directory(dataset, dataset_directory)
    if own_graph is not None:
        return own_graph
    try:
        dataset_cls = dataset_resolver.lookup(dataset)
    except (KeyError, ValueError) as error:
        # str() of a KeyError is the repr of its message
        raise click.BadParameter(str(error.args[0]) if error.args else str(error), param_hint="--dataset") from None
    if dataset_directory is None:
        return dataset_cls()
    try:
        return dataset_cls(directory=dataset_directory)
    except TypeError as error:
        # e.g. nations or the embedded demo: their data is built in or downloaded, there is no directory to pass
        raise click.BadParameter(
            f"the dataset {dataset!r} takes no data directory ({error}); leave out --dataset-directory.",
            param_hint="--dataset-directory",
        ) from None


def open_triples_directory(dataset: str, dataset_directory: Path | None):
    """Return your own graph's :class:`~pykeen_vbkgc.datasets.TriplesDirectory` if ``dataset`` names a directory.

    :param dataset: the ``--dataset`` value
    :param dataset_directory: the ``--dataset-directory`` value, which a directory dataset does not take
    :return: the dataset (its triples not yet read), or None if ``dataset`` is a dataset name
    :raises click.BadParameter: if both a directory and ``--dataset-directory`` are given
    """
    from .datasets import TriplesDirectory

    own_graph = as_triples_directory(dataset)
    if own_graph is None:
        return None
    if dataset_directory is not None:
        raise click.BadParameter(
            f"{dataset} is a directory: it is the data itself; leave out --dataset-directory.",
            param_hint="--dataset-directory",
        )
    return TriplesDirectory(own_graph)


def as_triples_directory(dataset: str) -> Path | None:
    """Return ``dataset`` as a directory if it names one that is not also a registered dataset name, else None.

    A registered name wins over a directory of the same name in the working directory; write ``./wn9`` for that.
    """
    from pykeen.datasets import dataset_resolver

    path = Path(dataset).expanduser()
    if not path.is_dir():
        return None
    if "/" not in dataset and os.sep not in dataset:
        try:
            dataset_resolver.lookup(dataset)
        except (KeyError, ValueError):
            return path
        return None
    return path


def dataset_options(command):
    """Add the dataset, dataset directory, features and sampler options of a training command."""
    for option in reversed(
        [
            click.option(
                "--dataset",
                default="multimodaldemo",
                show_default=True,
                help="A PyKEEN dataset name (e.g. wn9, fb15k237multimodal, nations), or your own graph: a directory "
                "with train.txt, valid.txt and test.txt (head<TAB>relation<TAB>tail) and optionally a features file.",
            ),
            click.option(
                "--dataset-directory",
                type=click.Path(file_okay=False, path_type=Path),
                help="Where the files of a named dataset (wn9, fb15k237multimodal) are, if not in the cache.",
            ),
            click.option(
                "--features",
                type=click.Path(dir_okay=False, path_type=Path),
                help="A features file; defaults to the dataset's own (if it has one), else random features "
                "(ablation S1, with a warning).",
            ),
            click.option(
                "--sampler",
                type=click.Choice(["twins", "basic", "bernoulli"]),
                default="twins",
                show_default=True,
                help="How negatives are made: 'twins' (the paper's: a corrupted entity keeps its structural embedding "
                "but takes the replacement's multimodal one in the cross terms), 'basic' (replace head or tail "
                "uniformly), 'bernoulli' (replace head or tail by the relation's statistics).",
            ),
        ]
    ):
        command = option(command)
    return command


def settings_options(command):
    """Add the options of the VBKGC settings and hand the command one ``settings`` :class:`Preset` instead.

    Every option left out takes its value from ``--preset`` (:mod:`pykeen_vbkgc.defaults`), so that the commands
    share the defaults of the Python model.
    """
    fields = ("embedding_dim", "num_negatives", "margin", "scoring_fct_norm", "normalize_relations")
    fields += ("projection_lr_scale", "term_weights", "learning_rate", "batch_size")

    @functools.wraps(command)
    def wrapper(**kwargs):
        preset = get_preset(kwargs.pop("preset"))
        values = {field: kwargs.pop(field) for field in fields}
        kwargs["settings"] = dataclasses.replace(preset, **{k: v for k, v in values.items() if v is not None})
        return command(**kwargs)

    positive = dict(type=click.FloatRange(min=0, min_open=True), default=None)
    options = [
        click.option(
            "--preset",
            type=click.Choice(sorted(PRESETS)),
            default=BEST.name,
            show_default=True,
            help="Defaults of the options below: 'best' (best-known settings) or 'paper' (the paper's configuration).",
        ),
        click.option(
            "--embedding-dim",
            type=click.IntRange(min=1),
            help="Size of the entity and relation vectors. " + _from_preset("embedding_dim"),
        ),
        click.option(
            "--num-negatives",
            type=click.IntRange(min=1),
            help="Negative triples per true triple. " + _from_preset("num_negatives"),
        ),
        click.option(
            "--margin",
            **positive,
            help="How far a true triple's score must beat the mean score of its negatives (the margin of the "
            "paper's Eq. 15). " + _from_preset("margin"),
        ),
        click.option(
            "--scoring-fct-norm",
            type=click.IntRange(1, 2),
            help="The distance in each TransE term: 1 (L1) or 2 (L2). " + _from_preset("scoring_fct_norm"),
        ),
        click.option(
            "--normalize-relations/--no-normalize-relations",
            default=None,
            help="L2-normalise relation vectors. " + _from_preset("normalize_relations"),
        ),
        click.option(
            "--projection-lr-scale",
            **positive,
            help="Factor on the learning rate of the projection W. " + _from_preset("projection_lr_scale"),
        ),
        click.option(
            "--term-weights",
            help="Weights of the score terms, e.g. mm=0.1,all=0.5 (unnamed terms weigh 1). "
            + _from_preset("term_weights"),
        ),
        click.option("--learning-rate", **positive, help="Adam's learning rate. " + _from_preset("learning_rate")),
        click.option(
            "--batch-size",
            type=click.IntRange(min=1),
            help="True triples per training step. " + _from_preset("batch_size"),
        ),
    ]
    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper


def _from_preset(field: str) -> str:
    return "Default: from --preset (" + ", ".join(f"{p.name}: {getattr(p, field)}" for p in PRESETS.values()) + ")."


@main.command()
@dataset_options
@settings_options
@click.option(
    "--epochs", type=click.IntRange(min=1), default=50, show_default=True, help="Passes over the training triples."
)
@click.option(
    "--score-terms",
    default="ss,mm,sm,ms,all",
    show_default=True,
    help="Which TransE terms to sum, comma separated: ss (structural), mm (multimodal), sm and ms (cross-modal), "
    "all (both embeddings added).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed: the same seed gives the same model.")
@click.option("--device", default=None, help="e.g. cpu or cuda; default: cuda if available")
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    help="Save the run here (a new or empty directory): the model as trained_model.pkl, a pickle that "
    "predict/evaluate and torch.load(..., weights_only=False) read, and the metrics.",
)
def train(
    dataset: str,
    dataset_directory: Path | None,
    features: Path | None,
    sampler: str,
    settings: Preset,
    epochs: int,
    score_terms: str,
    seed: int,
    device: str | None,
    output: Path | None,
) -> None:
    """Train VBKGC with PyKEEN's pipeline, then report filtered MRR and Hits@1/3/10 on the test split.

    Filtered: the other known triples (train and valid) are removed from each ranking. Every setting left out
    takes the value of --preset.
    """
    from pykeen.pipeline import pipeline

    from .datasets import TriplesDirectory
    from .features import FeaturesFileError
    from .interaction import normalize_score_terms

    quiet_library_logs()
    try:
        terms = normalize_score_terms(score_terms)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--score-terms") from error
    if output is not None and output.exists() and any(output.iterdir()):
        raise click.BadParameter(f"{output} exists and is not empty.", param_hint="--output")
    dataset_instance, features = load_dataset_and_features(dataset, dataset_directory, features)
    # create --output before training, so that a bad path costs no training run (and is removed if training fails)
    created = output is not None and not output.exists()
    if output is not None:
        try:
            output.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise click.BadParameter(f"cannot create {output}: {error.strerror}.", param_hint="--output") from None
    click.echo(f"Training VBKGC+{sampler} on {dataset} with features {features or 'random (ablation S1)'}", err=True)
    try:
        result = pipeline(
            dataset=dataset_instance,
            model="vbkgc",
            negative_sampler=sampler,
            **settings.pipeline_kwargs(model_kwargs=dict(features=features, score_terms=terms)),
            epochs=epochs,
            evaluator_kwargs=dict(batch_size=256),
            random_seed=seed,
            device=device,
        )
    except BaseException as error:
        if created:
            output.rmdir()
        if isinstance(error, FeaturesFileError):
            # the model checks the features file when it is built, before any training
            raise click.ClickException(str(error)) from None
        raise
    rows = _echo_metrics(result.metric_results)
    click.echo(f"training {result.train_seconds:.1f} s, evaluation {result.evaluate_seconds:.1f} s", err=True)
    if output is not None:
        result.save_to_directory(output)
        (output / "metrics_summary.json").write_text(json.dumps(rows, indent=2) + "\n")
        # what `evaluate` needs to find the dataset again
        record = dict(
            dataset=str(dataset_instance.directory.resolve())
            if isinstance(dataset_instance, TriplesDirectory)
            else dataset,
            dataset_directory=None if dataset_directory is None else str(dataset_directory.resolve()),
            features=None if features is None else str(features),
            sampler=sampler,
            epochs=epochs,
            seed=seed,
            settings=dataclasses.asdict(settings),
        )
        (output / RUN_RECORD).write_text(json.dumps(record, indent=2) + "\n")
        click.echo(f"saved to {output}", err=True)


def _echo_metrics(metric_results) -> dict[str, dict[str, float]]:
    """Print the filtered MRR and Hits@k of each side as a table; return them."""
    rows = {
        side: {metric: metric_results.get_metric(f"{side}.realistic.{metric}") for metric in REPORTED_METRICS}
        for side in ("head", "tail", "both")
    }
    click.echo(f"{'side':<6}{'MRR':>8}{'Hits@1':>8}{'Hits@3':>8}{'Hits@10':>9}")
    for side, values in rows.items():
        click.echo(f"{side:<6}" + "".join(f"{value:>8.3f}" for value in values.values()))
    return rows


def load_run(run: Path):
    """Load a model saved by ``train --output`` and its training triples (the label mappings).

    The model is a pickle (PyKEEN's ``trained_model.pkl``): it is read with ``weights_only=False``, so load only
    directories you trust. A model trained on a GPU is loaded onto the CPU when no GPU is available.

    :param run: the output directory of ``train``
    :return: the model and the training triples factory
    :raises click.BadParameter: if the directory does not hold a saved run
    """
    import torch
    from pykeen.pipeline.api import PipelineResult
    from pykeen.triples import TriplesFactory

    model_path = run / PipelineResult.MODEL_FILE_NAME
    triples_path = run / PipelineResult.TRAINING_TRIPLES_FILE_NAME
    if not model_path.is_file() or not triples_path.is_dir():
        raise click.BadParameter(
            f"{run} holds no saved run (expected {model_path.name} and {triples_path.name}/ from train --output).",
            param_hint="RUN",
        )
    model = torch.load(model_path, weights_only=False, map_location=None if torch.cuda.is_available() else "cpu")
    return model, TriplesFactory.from_path_binary(triples_path)


@main.command()
@click.argument("run", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--head", help="The head entity's label: predict tails of (HEAD, RELATION, ?).")
@click.option("--relation", required=True, help="The relation's label.")
@click.option("--tail", help="The tail entity's label: predict heads of (?, RELATION, TAIL).")
@click.option("--top-k", type=click.IntRange(min=1), default=10, show_default=True, help="How many candidates to list.")
@click.option(
    "--keep-query-entity",
    is_flag=True,
    help="Also list the query entity itself. Left out by default: a translational model gives (e, r, e) the "
    "distance |r| for every relation, so the query entity often ranks first although a triple (e, r, e) is rarely "
    "true.",
)
@click.option(
    "--keep-known",
    is_flag=True,
    help="Also list candidates that form a training triple with the query (they are known, not predictions).",
)
def predict(
    run: Path, head: str | None, relation: str, tail: str | None, top_k: int, keep_query_entity: bool, keep_known: bool
) -> None:
    """List the top-k heads or tails for a query, from a model saved with ``train --output RUN``."""
    import torch
    from pykeen.predict import predict_target

    if (head is None) == (tail is None):
        raise click.UsageError("Give exactly one of --head (to predict tails) and --tail (to predict heads).")
    quiet_library_logs()
    model, training = load_run(run)
    for label, option, mapping in (
        (head, "--head", training.entity_to_id),
        (tail, "--tail", training.entity_to_id),
        (relation, "--relation", training.relation_to_id),
    ):
        if label is not None and label not in mapping:
            raise click.BadParameter(
                f"{label!r} is not in the graph the model of {run} was trained on.", param_hint=option
            )
    model.eval()
    with torch.no_grad():
        predictions = predict_target(model=model, head=head, relation=relation, tail=tail, triples_factory=training)
    if not keep_known:
        with warnings.catch_warnings():
            # PyKEEN's filter reads a read-only pandas array; harmless, and not the user's concern
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable", category=UserWarning)
            predictions = predictions.filter_triples(training)
    target = "tail" if tail is None else "head"
    frame = predictions.df.sort_values("score", ascending=False)
    if not keep_query_entity:
        frame = frame[frame[f"{target}_label"] != (head if tail is None else tail)]
    click.echo(f"{'rank':>4}  {'score':>10}  {target}")
    for rank, (label, score) in enumerate(zip(frame[f"{target}_label"][:top_k], frame["score"][:top_k]), start=1):
        click.echo(f"{rank:>4}  {score:>10.4f}  {label}")


@main.command()
@click.argument("run", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--split", type=click.Choice(["test", "valid"]), default="test", show_default=True, help="The triples to rank."
)
@click.option(
    "--dataset",
    help=f"The dataset (name or directory); default: the one the run was trained on (recorded in {RUN_RECORD}).",
)
@click.option("--dataset-directory", type=click.Path(file_okay=False, path_type=Path), help="Local data directory.")
@click.option("--batch-size", type=click.IntRange(min=1), default=256, show_default=True, help="Evaluation batch.")
def evaluate(run: Path, split: str, dataset: str | None, dataset_directory: Path | None, batch_size: int) -> None:
    """Evaluate a model saved with ``train --output RUN`` on a split: filtered MRR and Hits@k, as ``train`` prints.

    Filtered: the other known triples (train, valid and test) are removed from each ranking.
    """
    from pykeen.evaluation import RankBasedEvaluator

    quiet_library_logs()
    model, training = load_run(run)
    if dataset is None:
        record_path = run / RUN_RECORD
        if not record_path.is_file():
            raise click.UsageError(f"{run} has no {RUN_RECORD}; name the dataset with --dataset.")
        record = json.loads(record_path.read_text())
        dataset = record["dataset"]
        if dataset_directory is None and record.get("dataset_directory"):
            dataset_directory = Path(record["dataset_directory"])
    dataset_instance, _ = load_dataset_and_features(dataset, dataset_directory, None)
    if dataset_instance.entity_to_id != training.entity_to_id or (
        dataset_instance.relation_to_id != training.relation_to_id
    ):
        raise click.ClickException(
            f"The entities or relations of {dataset} differ from those the model of {run} was trained on."
        )
    splits = dict(train=dataset_instance.training, valid=dataset_instance.validation, test=dataset_instance.testing)
    evaluated = splits[split]
    results = RankBasedEvaluator(filtered=True).evaluate(
        model=model,
        mapped_triples=evaluated.mapped_triples,
        additional_filter_triples=[factory.mapped_triples for name, factory in splits.items() if name != split],
        batch_size=batch_size,
        use_tqdm=False,
    )
    click.echo(f"{split} split of {dataset}: {evaluated.num_triples:,} triples", err=True)
    _echo_metrics(results)


if __name__ == "__main__":
    main()
