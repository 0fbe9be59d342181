"""The ``pykeen-vbkgc`` command line: encode features, merge shards, train and evaluate."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .encoders.cli import encode, merge_features

if TYPE_CHECKING:
    from pykeen.datasets import Dataset

__all__ = [
    "dataset_options",
    "load_dataset_and_features",
    "main",
]

#: the metrics printed after training (filtered, realistic ranks)
REPORTED_METRICS = ("inverse_harmonic_mean_rank", "hits_at_1", "hits_at_3", "hits_at_10")


@click.group()
@click.version_option(package_name="pykeen-vbkgc")
def main() -> None:
    """VBKGC for PyKEEN: multimodal knowledge graph completion with twins negative sampling."""


main.add_command(encode)
main.add_command(merge_features)


def load_dataset_and_features(
    dataset: str, dataset_directory: Path | None, features: Path | None
) -> tuple[Dataset, Path | None]:
    """Load a dataset by name for a command; default the features to the dataset's own file, if it has one.

    :param dataset: a PyKEEN dataset name
    :param dataset_directory: a local data directory, passed as ``directory=``
    :param features: an explicit features file, or None
    :return: the dataset and the features file to use (None means random features)
    :raises click.ClickException: if the dataset cannot be loaded
    :raises click.BadParameter: if the features file does not exist
    """
    from pykeen.datasets import get_dataset

    dataset_kwargs = {} if dataset_directory is None else dict(directory=dataset_directory)
    try:
        dataset_instance = get_dataset(dataset=dataset, dataset_kwargs=dataset_kwargs)
    except (KeyError, ValueError, FileNotFoundError) as error:
        raise click.ClickException(f"Cannot load dataset {dataset!r}: {error}") from error
    if features is None and getattr(dataset_instance, "has_features", False):
        features = dataset_instance.features_path
    if features is not None and not features.is_file():
        raise click.BadParameter(f"Features file not found: {features}", param_hint="--features")
    return dataset_instance, features


def dataset_options(command):
    """Add the dataset, dataset directory, features and sampler options of a training command."""
    for option in reversed(
        [
            click.option("--dataset", default="multimodaldemo", show_default=True, help="A PyKEEN dataset name."),
            click.option(
                "--dataset-directory", type=click.Path(file_okay=False, path_type=Path), help="Local data directory."
            ),
            click.option(
                "--features",
                type=click.Path(dir_okay=False, path_type=Path),
                help="A features file; defaults to the dataset's own (if it has one), else random features "
                "(ablation S1).",
            ),
            click.option(
                "--sampler", type=click.Choice(["twins", "basic", "bernoulli"]), default="twins", show_default=True
            ),
        ]
    ):
        command = option(command)
    return command


@main.command()
@dataset_options
@click.option("--epochs", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--embedding-dim", type=click.IntRange(min=1), default=128, show_default=True)
@click.option("--num-negatives", type=click.IntRange(min=1), default=16, show_default=True)
# defaults: the settings that worked best with text features on WN9 and FB15k-237 (docs/results.md); the model's own
# defaults are the paper's (p = 1, full projection learning rate)
@click.option(
    "--margin",
    type=click.FloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    help="Margin of Eq. 15; 10 keeps the hinge active for five L2 terms.",
)
@click.option(
    "--scoring-fct-norm", type=click.Choice(["1", "2"]), default="2", show_default=True, help="The norm p of f."
)
@click.option(
    "--projection-lr-scale",
    type=click.FloatRange(min=0, min_open=True),
    default=1e-3,
    show_default=True,
    help="Factor on the learning rate of the projection W.",
)
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True), default=1e-2, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=256, show_default=True)
@click.option("--score-terms", default="ss,mm,sm,ms,all", show_default=True, help="Comma separated subset.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default=None, help="e.g. cpu or cuda; default: cuda if available")
@click.option("--output", type=click.Path(file_okay=False, path_type=Path), help="Save the pipeline result here.")
def train(
    dataset: str,
    dataset_directory: Path | None,
    features: Path | None,
    sampler: str,
    epochs: int,
    embedding_dim: int,
    num_negatives: int,
    margin: float,
    scoring_fct_norm: str,
    projection_lr_scale: float,
    learning_rate: float,
    batch_size: int,
    score_terms: str,
    seed: int,
    device: str | None,
    output: Path | None,
) -> None:
    """Train VBKGC with PyKEEN's pipeline and report filtered MRR and Hits@k."""
    from pykeen.pipeline import pipeline

    from .interaction import normalize_score_terms

    logging.basicConfig(level=logging.WARNING)
    try:
        terms = normalize_score_terms(score_terms)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--score-terms") from error
    if output is not None and output.exists() and any(output.iterdir()):
        raise click.BadParameter(f"{output} exists and is not empty.", param_hint="--output")
    dataset_instance, features = load_dataset_and_features(dataset, dataset_directory, features)
    click.echo(f"Training VBKGC+{sampler} on {dataset} with features {features or 'random (ablation S1)'}", err=True)
    result = pipeline(
        dataset=dataset_instance,
        model="vbkgc",
        model_kwargs=dict(
            features=features,
            embedding_dim=embedding_dim,
            score_terms=terms,
            scoring_fct_norm=int(scoring_fct_norm),
            projection_lr_scale=projection_lr_scale,
        ),
        negative_sampler=sampler,
        negative_sampler_kwargs=dict(num_negs_per_pos=num_negatives),
        loss="meanmarginranking",
        loss_kwargs=dict(margin=margin),
        optimizer="adam",
        optimizer_kwargs=dict(lr=learning_rate),
        training_kwargs=dict(num_epochs=epochs, batch_size=batch_size),
        evaluator_kwargs=dict(batch_size=256),
        random_seed=seed,
        device=device,
    )
    rows = {
        side: {metric: result.metric_results.get_metric(f"{side}.realistic.{metric}") for metric in REPORTED_METRICS}
        for side in ("head", "tail", "both")
    }
    click.echo(f"{'side':<6}{'MRR':>8}{'Hits@1':>8}{'Hits@3':>8}{'Hits@10':>9}")
    for side, values in rows.items():
        click.echo(f"{side:<6}" + "".join(f"{value:>8.3f}" for value in values.values()))
    click.echo(f"training {result.train_seconds:.1f} s, evaluation {result.evaluate_seconds:.1f} s", err=True)
    if output is not None:
        result.save_to_directory(output)
        (output / "metrics_summary.json").write_text(json.dumps(rows, indent=2) + "\n")
        click.echo(f"saved to {output}", err=True)


if __name__ == "__main__":
    main()
