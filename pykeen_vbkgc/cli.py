"""The ``pykeen-vbkgc`` command line: encode features, merge shards, train and evaluate."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import functools
import json
import logging
import math
import os
import sys
import warnings
from pathlib import Path

import click

from .allocator import keep_freed_memory
from .dataset_loading import (
    as_triples_directory,
    dataset_preset_name,
    load_dataset_and_features,
    open_dataset,
    open_triples_directory,
)
from .defaults import MIN_FEATURE_COVERAGE, PRESETS, Preset, get_preset
from .device_option import check_device
from .encoders.cli import encode, merge_features
from .run_files import RUN_RECORD
from .validation import FLOAT32_MAX, FLOAT32_TINY, MAX_COUNT, MAX_SEED

__all__ = [
    "COUNT_RANGE",
    "SEED_RANGE",
    "as_triples_directory",
    "dataset_options",
    "features_error",
    "load_dataset_and_features",
    "load_run",
    "main",
    "open_dataset",
    "open_triples_directory",
    "output_errors",
    "quiet_library_logs",
    "run",
    "settings_options",
]


#: the metrics printed after training (filtered, realistic ranks)
REPORTED_METRICS = ("inverse_harmonic_mean_rank", "hits_at_1", "hits_at_3", "hits_at_10")
#: the seeds NumPy's generator takes (PyKEEN seeds it, too)
SEED_RANGE = click.IntRange(0, MAX_SEED)
#: counts and sizes (epochs, dimensions, batches)
COUNT_RANGE = click.IntRange(1, MAX_COUNT)


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


def dataset_options(command):
    """Add the dataset, dataset directory, features (and their coverage) and sampler options of a training command."""
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
                "--min-feature-coverage",
                type=click.FloatRange(0, 1),
                default=MIN_FEATURE_COVERAGE,
                show_default=True,
                help="The smallest share of the graph's entities that the features file must cover (the others get "
                "random features); 0 accepts any file.",
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

    Every option left out takes its value from ``--preset`` (:mod:`pykeen_vbkgc.defaults`), by default the preset of
    ``--dataset`` (:func:`~pykeen_vbkgc.dataset_loading.dataset_preset_name`), so that the commands share the
    defaults of the Python model.
    """
    fields = ("embedding_dim", "num_negatives", "margin", "scoring_fct_norm", "normalize_relations")
    fields += ("projection_lr_scale", "term_weights", "learning_rate", "batch_size", "neighbour_weight")
    fields += ("neighbour_mirror_gate",)

    @functools.wraps(command)
    def wrapper(**kwargs):
        preset = get_preset(kwargs.pop("preset") or dataset_preset_name(kwargs.get("dataset")))
        values = {field: kwargs.pop(field) for field in fields}
        if values["term_weights"] is not None:
            check_term_weights(values["term_weights"], kwargs.get("score_terms"))
        kwargs["settings"] = dataclasses.replace(preset, **{k: v for k, v in values.items() if v is not None})
        return command(**kwargs)

    positive = dict(type=PositiveFloat(), default=None)
    options = [
        click.option(
            "--preset",
            type=click.Choice(sorted(PRESETS)),
            default=None,
            help="Defaults of the options below: 'wn9' or 'fb15k237' (the best-known settings of those datasets), "
            "'best' (the best-known settings for other graphs) or 'paper' (the paper's configuration). Default: the "
            "dataset's preset (wn9 for wn9, fb15k237 for fb15k237multimodal), else best.",
        ),
        click.option(
            "--embedding-dim",
            type=COUNT_RANGE,
            help="Size of the entity and relation vectors. " + _from_preset("embedding_dim"),
        ),
        click.option(
            "--num-negatives",
            type=COUNT_RANGE,
            help="Negative triples per true triple. " + _from_preset("num_negatives"),
        ),
        click.option(
            "--margin",
            **positive,
            help="The margin of the preset's loss: how far a true triple's score must beat the mean score of its "
            "negatives (meanmarginranking, the paper's Eq. 15), or the score offset of the self-adversarial loss "
            "(nssa). " + _from_preset("margin"),
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
            # W is stored divided by the scale
            type=FiniteFloatRange(min=FLOAT32_TINY),
            default=None,
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
            type=COUNT_RANGE,
            help="True triples per training step. " + _from_preset("batch_size"),
        ),
        click.option(
            "--neighbour-weight",
            type=NonNegativeFloat(),
            default=None,
            help="Weight of the neighbours' vote when ranking (0: none; see pykeen_vbkgc.neighbours). "
            + _from_preset("neighbour_weight"),
        ),
        click.option(
            "--neighbour-mirror-gate/--no-neighbour-mirror-gate",
            default=None,
            help="No vote for the queries that a mirrored training triple answers (see pykeen_vbkgc.neighbours). "
            + _from_preset("neighbour_mirror_gate"),
        ),
    ]
    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper


class FiniteFloatRange(click.FloatRange):
    """A click float range that refuses ``nan``, ``inf`` and numbers beyond float32's range.

    Click's own range lets them through, and they fail only after training has started (the model computes in
    float32, where 1e300 is infinite).
    """

    def convert(self, value, param, ctx) -> float:  # noqa: D102
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{number} is not a finite number.", param, ctx)
        if abs(number) > FLOAT32_MAX:
            self.fail(f"{number} is beyond float32's range (at most {FLOAT32_MAX:.4g}).", param, ctx)
        return number


class PositiveFloat(FiniteFloatRange):
    """A finite float > 0."""

    def __init__(self) -> None:
        super().__init__(min=0, min_open=True)


class NonNegativeFloat(FiniteFloatRange):
    """A finite float >= 0."""

    def __init__(self) -> None:
        super().__init__(min=0)


def check_term_weights(term_weights: str, score_terms: str | None) -> None:
    """Check ``--term-weights`` before anything is loaded or trained.

    :param term_weights: the option's value, e.g. ``mm=0.1,all=0.5``
    :param score_terms: the ``--score-terms`` of the command, if it has that option (else all terms are scored)
    :raises click.BadParameter: if the weights do not parse, name a term twice or a term that is not scored, are
        negative or not finite, or are all zero
    """
    from .interaction import normalize_score_terms, normalize_term_weights

    try:
        terms = normalize_score_terms(score_terms)
    except ValueError:
        return  # --score-terms reports its own error
    try:
        normalize_term_weights(term_weights, terms)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--term-weights") from None


def _from_preset(field: str) -> str:
    return "Default: from --preset (" + ", ".join(f"{p.name}: {getattr(p, field)}" for p in PRESETS.values()) + ")."


@main.command()
@dataset_options
@settings_options
@click.option("--epochs", type=COUNT_RANGE, default=50, show_default=True, help="Passes over the training triples.")
@click.option(
    "--score-terms",
    default="ss,mm,sm,ms,all",
    show_default=True,
    help="Which TransE terms to sum, comma separated: ss (structural), mm (multimodal), sm and ms (cross-modal), "
    "all (both embeddings added).",
)
@click.option(
    "--seed", type=SEED_RANGE, default=0, show_default=True, help="Random seed: the same seed gives the same model."
)
@click.option("--device", default=None, callback=check_device, help="e.g. cpu or cuda; default: cuda if available")
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    help="Save the run here (a new or empty directory), for predict and evaluate: the model as safetensors and JSON "
    "(no pickle; PyKEEN's trained_model.pkl comes along for PyKEEN users) and the metrics. Training checkpoints "
    "after every epoch into OUTPUT.incomplete; after Ctrl-C, SIGTERM or a crash, the same command resumes there. "
    "OUTPUT appears when the run is finished.",
)
def train(
    dataset: str,
    dataset_directory: Path | None,
    features: Path | None,
    min_feature_coverage: float,
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
    from pykeen.utils import resolve_device

    from .checkpoints import safe_checkpoint_training_loop, signals_deferred, signals_interrupt
    from .datasets import TriplesDirectory
    from .digests import input_digests
    from .features import FeaturesFileError
    from .interaction import normalize_score_terms
    from .staging import RunStaging

    quiet_library_logs()
    try:
        terms = normalize_score_terms(score_terms)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--score-terms") from error
    staging = None if output is None else RunStaging(output)
    if staging is not None:
        with output_errors():
            staging.check_output()
    dataset_instance, features = load_dataset_and_features(dataset, dataset_directory, features)
    kwargs = settings.pipeline_kwargs(
        model_kwargs=dict(features=features, score_terms=terms, min_feature_coverage=min_feature_coverage)
    )
    if staging is not None:
        # what `evaluate` needs to find the dataset again, and what a resumed run must match
        record = dict(
            dataset=str(dataset_instance.directory.resolve())
            if isinstance(dataset_instance, TriplesDirectory)
            else dataset,
            dataset_directory=None if dataset_directory is None else str(dataset_directory.resolve()),
            features=None if features is None else str(features),
            # the contents, too: a graph or features file rewritten at the same path must not resume this run
            **input_digests(dataset_instance.training, features),
            sampler=sampler,
            epochs=epochs,
            seed=seed,
            score_terms=list(terms),
            settings=dataclasses.asdict(settings),
        )
        # before training, so that a bad or busy --output costs no training run
        with output_errors():
            resume = staging.acquire(record)
            if staging.finished:
                staging.publish()
                click.echo(f"{staging.display} held this command's finished run: saved to {output}", err=True)
                return
        kwargs["training_kwargs"].update(staging.training_kwargs())
        if resume is not None:
            click.echo(f"resuming from epoch {resume} of {epochs} (the checkpoint in {staging.display})", err=True)
    click.echo(f"Training VBKGC+{sampler} on {dataset} with features {features or 'random (ablation S1)'}", err=True)
    try:
        with signals_interrupt():
            result = pipeline(
                dataset=dataset_instance,
                model="vbkgc",
                negative_sampler=sampler,
                training_loop=safe_checkpoint_training_loop(resolve_device(device)),
                **kwargs,
                epochs=epochs,
                evaluator_kwargs=dict(batch_size=256),
                random_seed=seed,
                device=device,
            )
    except BaseException as error:
        _train_failed(error, staging)
        if isinstance(error, FeaturesFileError):
            # the model checks the features file when it is built, before any training
            raise features_error(error) from None
        raise
    rows = _echo_metrics(result.metric_results)
    click.echo(f"training {result.train_seconds:.1f} s, evaluation {result.evaluate_seconds:.1f} s", err=True)
    if staging is not None:
        # a Ctrl-C now would cost the finished run: it waits the second or so until the run is in place
        with signals_deferred(), output_errors(staging):
            model_kwargs = dict(kwargs["model_kwargs"], loss=kwargs["loss"], loss_kwargs=kwargs["loss_kwargs"])
            _save_run(staging.path, result, rows, model_kwargs=model_kwargs)
            staging.publish()
        click.echo(f"saved to {output}", err=True)


@contextlib.contextmanager
def output_errors(staging=None):
    """Report a refused ``--output`` in one line; after a failed save, keep only a checkpoint and say so."""
    from .staging import OutputError

    try:
        yield
    except OutputError as error:
        raise click.BadParameter(str(error), param_hint="--output") from None
    except OSError as error:
        if staging is None:
            raise
        kept = staging.close()
        raise click.ClickException(
            f"cannot save the run in {staging.display}: {error.strerror or error}." + _kept(staging, kept)
        ) from None


def _train_failed(error: BaseException, staging) -> None:
    """End a training that did not finish: remove what it created, or keep its checkpoint, and say which.

    :raises click.exceptions.Exit: after SIGINT or SIGTERM, with the shell's code for that signal (130, 143)
    :raises click.ClickException: if the checkpoint could not be written, or the loss became NaN or infinite
    """
    import signal

    from pykeen.training.training_loop import CheckpointMismatchError, NonFiniteLossError

    kept = None if staging is None else staging.close()
    if isinstance(error, CheckpointMismatchError) and kept is not None:
        # the command's options match the checkpoint's run (staging checks them), its files' contents do not
        raise click.ClickException(
            f"the checkpoint of epoch {kept} in {staging.display} does not fit this run: it was saved with another "
            "model or optimizer (e.g., the training triples or the features file changed since). Restore them to "
            f"resume, or delete {staging.display} to start afresh."
        ) from None
    if isinstance(error, KeyboardInterrupt):
        signum = getattr(error, "signum", signal.SIGINT)
        stopped = "Interrupted" if signum == signal.SIGINT else f"Stopped by {signal.Signals(signum).name}"
        if staging is None:
            message = f"{stopped}: nothing was saved (train keeps checkpoints only with --output)."
        elif kept is None:
            message = f"{stopped} before the first epoch finished: nothing was saved."
        else:
            message = (
                f"{stopped}: the checkpoint of epoch {kept} is saved in {staging.display}; run the same command "
                f"again to resume from epoch {kept}."
            )
        click.echo(message, err=True)
        raise click.exceptions.Exit(128 + signum)
    if isinstance(error, NonFiniteLossError):
        kept_note = "" if kept is None else f" The checkpoint of epoch {kept} stays in {staging.display}."
        raise click.ClickException(
            "training diverged: the loss is not finite (NaN or infinite); nothing was saved. Lower --learning-rate "
            "(or --margin)." + kept_note
        ) from None
    if isinstance(error, OSError) and staging is not None and str(staging.path) in str(error.filename):
        # e.g. the directory became unwritable or the disk is full: found at the first checkpoint, not at the end
        raise click.ClickException(
            f"cannot write the checkpoint in {staging.display}: {error.strerror}." + _kept(staging, kept)
        ) from None
    if kept is not None:
        click.echo(_kept(staging, kept).strip(), err=True)


def features_error(error: Exception) -> click.ClickException:
    """Return the model's complaint about a features file as a command's error, naming the command's option."""
    return click.ClickException(str(error).replace("min_feature_coverage", "--min-feature-coverage"))


def _kept(staging, epoch: int | None) -> str:
    if epoch is None:
        return ""
    return f" The checkpoint of epoch {epoch} stays in {staging.display}: the same command resumes from it."


def _save_run(directory: Path, result, rows: dict, model_kwargs: dict) -> None:
    """Write a finished run: PyKEEN's files (pickles, for PyKEEN users), the metrics, then the safe files, last."""
    from .run_files import save_run_files

    result.save_to_directory(directory)
    (directory / "metrics_summary.json").write_text(json.dumps(rows, indent=2) + "\n")
    save_run_files(directory, result.model, result.training, model_kwargs)


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


def load_run(run: Path, trust_pickle: bool = False):
    """Load a run saved by ``train --output``: the model and its training triples, without unpickling anything.

    See :func:`pykeen_vbkgc.run_files.load_run`.

    :param run: the output directory of ``train``
    :param trust_pickle: read a run that holds only PyKEEN's pickle (``--trust-pickle``)
    :return: the model and the training triples factory
    :raises click.ClickException: if the directory holds no finished run, only a pickle (and ``trust_pickle`` is
        False), or a damaged or inconsistent file
    """
    from .run_files import PickleOnlyRunError, RunFilesError
    from .run_files import load_run as load_run_files

    try:
        return load_run_files(run, trust_pickle=trust_pickle)
    except PickleOnlyRunError as error:
        raise click.ClickException(
            f"{run} holds only PyKEEN's pickle {error.path.name} (an older run, or one saved by PyKEEN), which can run "
            "any code when it is loaded; if you trust its origin, pass --trust-pickle."
        ) from None
    except RunFilesError as error:
        raise click.ClickException(str(error)) from None


#: ``--trust-pickle`` of ``predict`` and ``evaluate``
trust_pickle_option = click.option(
    "--trust-pickle",
    is_flag=True,
    help="Read a run that holds only PyKEEN's pickle trained_model.pkl (saved by an older version, or by PyKEEN). A "
    "pickle runs code when it is loaded: use this only for files you trust. Runs saved by this version are never "
    "unpickled.",
)


@main.command()
@click.argument("run", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--head", help="The head entity's label: predict tails of (HEAD, RELATION, ?).")
@click.option("--relation", required=True, help="The relation's label.")
@click.option("--tail", help="The tail entity's label: predict heads of (?, RELATION, TAIL).")
@click.option("--top-k", type=COUNT_RANGE, default=10, show_default=True, help="How many candidates to list.")
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
@trust_pickle_option
def predict(
    run: Path,
    head: str | None,
    relation: str,
    tail: str | None,
    top_k: int,
    keep_query_entity: bool,
    keep_known: bool,
    trust_pickle: bool,
) -> None:
    """List the top-k heads or tails for a query, from a model saved with ``train --output RUN``."""
    import torch
    from pykeen.predict import predict_target

    if (head is None) == (tail is None):
        raise click.UsageError("Give exactly one of --head (to predict tails) and --tail (to predict heads).")
    quiet_library_logs()
    model, training = load_run(run, trust_pickle=trust_pickle)
    for label, option, mapping in (
        (head, "--head", training.entity_to_id),
        (tail, "--tail", training.entity_to_id),
        (relation, "--relation", training.relation_to_id),
    ):
        if label is not None and label not in mapping:
            raise click.BadParameter(
                f"{label!r} is not in the graph the model of {run} was trained on.", param_hint=option
            )
    _refuse_untrained(training, head=head, relation=relation, tail=tail, run=run)
    model.eval()
    with torch.no_grad():
        predictions = predict_target(model=model, head=head, relation=relation, tail=tail, triples_factory=training)
    target = "tail" if tail is None else "head"
    if not keep_known:
        with warnings.catch_warnings():
            # PyKEEN's filter reads a read-only pandas array; harmless, and not the user's concern
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable", category=UserWarning)
            unfiltered, predictions = predictions, predictions.filter_triples(training)
        # say so: a user who knows the answer (France for Paris capital_of ?) would miss it without a word
        kept = set(predictions.df[f"{target}_label"])
        ranked = unfiltered.df.sort_values("score", ascending=False)[f"{target}_label"]
        known = [label for label in ranked if label not in kept]
        if known:
            shown = ", ".join(known[:10]) + (", ..." if len(known) > 10 else "")
            click.echo(
                f"Left out {len(known)} known {target}(s) that form a training triple with the query "
                f"(--keep-known lists them): {shown}",
                err=True,
            )
    frame = predictions.df.sort_values("score", ascending=False)
    if not keep_query_entity:
        frame = frame[frame[f"{target}_label"] != (head if tail is None else tail)]
    click.echo(f"{'rank':>4}  {'score':>10}  {target}")
    for rank, (label, score) in enumerate(zip(frame[f"{target}_label"][:top_k], frame["score"][:top_k]), start=1):
        click.echo(f"{rank:>4}  {score:>10.4f}  {label}")


def _refuse_untrained(training, head: str | None, relation: str, tail: str | None, run: Path) -> None:
    """Refuse a query whose entity or relation occurs in no training triple: its embedding was never trained.

    The entity index of a dataset covers all its splits, so an entity of the validation or test split alone has
    a (random) embedding and would get a confident-looking ranking.

    :raises click.BadParameter: for such an entity or relation
    """
    import torch

    triples = training.mapped_triples
    for label, option, mapping, ids in (
        (head, "--head", training.entity_to_id, triples[:, 0::2]),
        (tail, "--tail", training.entity_to_id, triples[:, 0::2]),
        (relation, "--relation", training.relation_to_id, triples[:, 1]),
    ):
        if label is not None and not torch.isin(torch.as_tensor(mapping[label]), ids).item():
            raise click.BadParameter(
                f"{label!r} occurs in no training triple of {run}: its embedding was never trained, so a ranking "
                "for it would be noise.",
                param_hint=option,
            )


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
@click.option("--batch-size", type=COUNT_RANGE, default=256, show_default=True, help="Evaluation batch.")
@trust_pickle_option
def evaluate(
    run: Path, split: str, dataset: str | None, dataset_directory: Path | None, batch_size: int, trust_pickle: bool
) -> None:
    """Evaluate a model saved with ``train --output RUN`` on a split: filtered MRR and Hits@k, as ``train`` prints.

    Filtered: the other known triples (train, valid and test) are removed from each ranking.
    """
    from pykeen.evaluation import RankBasedEvaluator

    quiet_library_logs()
    from .digests import triples_sha256
    from .run_files import RunFilesError, read_run_record

    model, training = load_run(run, trust_pickle=trust_pickle)
    recorded = dataset is None
    if recorded:
        try:
            record = read_run_record(run)
        except RunFilesError as error:
            raise click.ClickException(f"{error} Name the dataset with --dataset.") from None
        if record is None:
            raise click.UsageError(f"{run} has no {RUN_RECORD}; name the dataset with --dataset.")
        dataset = record["dataset"]
        if dataset_directory is None and record.get("dataset_directory"):
            dataset_directory = Path(record["dataset_directory"])
    try:
        dataset_instance, _ = load_dataset_and_features(dataset, dataset_directory, None)
    except click.ClickException as error:
        if not recorded:
            raise
        # the user named no dataset: the problem is with the one that the run recorded (e.g. a moved directory)
        raise click.ClickException(
            f"the dataset that {run / RUN_RECORD} names cannot be opened: {error.message} Name the dataset "
            "with --dataset."
        ) from None
    if dataset_instance.entity_to_id != training.entity_to_id or (
        dataset_instance.relation_to_id != training.relation_to_id
    ):
        raise click.ClickException(
            f"The entities or relations of {dataset} differ from those the model of {run} was trained on."
        )
    if triples_sha256(dataset_instance.training) != triples_sha256(training):
        # e.g. triples moved from train.txt to test.txt: the model would be tested on triples it was trained on
        raise click.ClickException(
            f"The training triples of {dataset} ({dataset_instance.training.num_triples:,}) differ from those the "
            f"model of {run} was trained on ({training.num_triples:,})."
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


#: errors of a write that fails for want of room or of a working disk (click handles a closed pipe itself)
_WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO)


def run() -> None:
    """Run the ``pykeen-vbkgc`` program: :func:`main` in a process that keeps freed memory for reuse.

    The program owns its process, so it sets glibc's malloc thresholds for it (see :mod:`pykeen_vbkgc.allocator`:
    fewer page faults per training batch); importing the package changes nothing. A write that fails for want of
    room (e.g. ``predict ... > /dev/full``) ends in one line, not a traceback.
    """
    keep_freed_memory()
    try:
        main()
    except OSError as error:
        if error.errno not in _WRITE_ERRNOS:
            raise
        # the text that could not be written stays in the buffer: flushing it at exit would fail again (the way
        # Python's documentation ends output to a closed pipe)
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        where = error.filename or "the output"
        click.echo(f"Error: cannot write {where}: {error.strerror}.", err=True)
        sys.exit(1)


if __name__ == "__main__":
    run()
