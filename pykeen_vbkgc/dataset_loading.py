"""Open the dataset of a command's ``--dataset`` and ``--dataset-directory``: one loader for every command.

``pykeen-vbkgc train``, ``evaluate`` and ``encode``, the Lightning command and ``examples/hpo.py`` read their
dataset options through this module, so that they accept the same values and fail with the same one-line messages:

- ``--dataset`` is a registered dataset name (``wn9``, ``nations``, ...) or your own graph's directory
  (:class:`~pykeen_vbkgc.datasets.TriplesDirectory`); a value that looks like a path (``./my_graph``,
  ``data/graph``, ``~/graph``) but is no directory is reported as "directory not found".
- ``--dataset-directory`` is the data directory of a named dataset; the data found there must be that dataset
  (its numbers of triples are compared with the published ones), else training would record a name for data that
  is another graph.
- Triples that training does not prepare a model for (unseen entities or relations in the validation or test
  split, test triples that are training triples) are logged as warnings with counts, see
  :func:`~pykeen_vbkgc.datasets.split_problems`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from pykeen.datasets import Dataset

    from .datasets import TriplesDirectory

__all__ = [
    "as_triples_directory",
    "load_dataset_and_features",
    "open_dataset",
    "open_triples_directory",
]

logger = logging.getLogger(__name__)


def load_dataset_and_features(
    dataset: str, dataset_directory: Path | None, features: Path | None
) -> tuple[Dataset, Path | None]:
    """Load the dataset of a training command, read its triples and check an explicit features file.

    Without ``features``, the multimodal datasets hand their own features file to the model (see
    :mod:`pykeen_vbkgc.datasets`); other datasets leave the model with random features, which it reports as a
    warning. Unseen entities and relations in the evaluation splits, and evaluation triples that are training
    triples, are logged as warnings (the multimodal datasets do so when they read their files).

    :param dataset: a registered dataset name, or your own graph's directory (see :func:`open_dataset`)
    :param dataset_directory: a local data directory of a named dataset, passed as ``directory=``
    :param features: an explicit features file, or None
    :return: the dataset and the features file that the model will use (None means random features)
    :raises click.ClickException: if the dataset cannot be loaded, or its directory holds another graph
    :raises click.BadParameter: if the features file does not exist
    """
    from .datasets import DatasetFilesError, MultimodalDataset, split_problems
    from .features import FEATURES_METADATA_KEY

    try:
        dataset_instance = open_dataset(dataset, dataset_directory)
        # read the triples now: a bad file is reported before anything else happens
        training = dataset_instance.training
    except DatasetFilesError as error:
        raise click.ClickException(_option_names(str(error))) from None
    except (KeyError, ValueError, FileNotFoundError) as error:
        raise click.ClickException(f"Cannot load dataset {dataset!r}: {error}") from error
    _check_named_directory(dataset_instance, dataset, dataset_directory)
    if not isinstance(dataset_instance, MultimodalDataset):
        splits = {
            f"the validation split of {dataset}": dataset_instance.validation,
            f"the test split of {dataset}": dataset_instance.testing,
        }
        for message in split_problems(training, splits, training_name="training"):
            logger.warning(message)
    if features is not None and not features.is_file():
        raise click.BadParameter(f"Features file not found: {features}", param_hint="--features")
    if features is None:
        own = training.metadata.get(FEATURES_METADATA_KEY)
        features = None if own is None else Path(own)
    return dataset_instance, features


def dataset_preset_name(dataset: str | None) -> str:
    """Return the name of the VBKGC preset of a command's ``--dataset``: the dataset's own, else ``"best"``.

    :param dataset: a registered dataset name (e.g. ``wn9``, whose preset is ``"wn9"``), or your own graph's
        directory
    :return: the preset's name (see :mod:`pykeen_vbkgc.defaults`)
    """
    from pykeen.datasets import dataset_resolver

    from .defaults import BEST

    if dataset is None or Path(dataset).expanduser().is_dir():
        return BEST.name
    try:
        dataset_cls = dataset_resolver.lookup(dataset)
    except (KeyError, ValueError):  # an unknown name is reported when the dataset is opened
        return BEST.name
    return getattr(dataset_cls, "preset", None) or BEST.name


def open_dataset(dataset: str, dataset_directory: Path | None) -> Dataset:
    """Open the dataset of a command's ``--dataset`` and ``--dataset-directory``.

    :param dataset: a registered dataset name, or your own graph's directory
        (see :class:`~pykeen_vbkgc.datasets.TriplesDirectory`)
    :param dataset_directory: a local data directory of a named dataset, passed as ``directory=``
    :return: the dataset (the multimodal datasets read their triples only when they are first used)
    :raises click.BadParameter: for an unknown name, a path that is no directory, or a data directory for a
        dataset that takes none
    :raises click.ClickException: if the files of a named dataset are missing or corrupt
    """
    from pykeen.datasets import dataset_resolver

    from .datasets import DatasetFilesError

    own_graph = open_triples_directory(dataset, dataset_directory)
    if own_graph is not None:
        return own_graph
    is_file = Path(dataset).expanduser().exists()  # not a directory: that was your own graph
    if _looks_like_path(dataset) and not is_file:
        raise click.BadParameter(f"directory not found: {dataset}", param_hint="--dataset")
    try:
        dataset_cls = dataset_resolver.lookup(dataset)
    except (KeyError, ValueError) as error:
        if is_file:
            raise click.BadParameter(
                f"{dataset} is a file; give a dataset name or a directory with train.txt, valid.txt and test.txt.",
                param_hint="--dataset",
            ) from None
        # str() of a KeyError is the repr of its message
        message = str(error.args[0]) if error.args else str(error)
        raise click.BadParameter(f"{message} Nor is it a directory.", param_hint="--dataset") from None
    try:
        if dataset_directory is None:
            return dataset_cls()
        return dataset_cls(directory=dataset_directory)
    except TypeError as error:
        # e.g. nations or the embedded demo: their data is built in or downloaded, there is no directory to pass
        raise click.BadParameter(
            f"the dataset {dataset!r} takes no data directory ({error}); leave out --dataset-directory.",
            param_hint="--dataset-directory",
        ) from None
    except DatasetFilesError as error:
        raise click.ClickException(_option_names(str(error))) from None


def open_triples_directory(dataset: str, dataset_directory: Path | None) -> TriplesDirectory | None:
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

    :param dataset: the ``--dataset`` value
    :return: the directory, or None
    """
    from pykeen.datasets import dataset_resolver

    path = Path(dataset).expanduser()
    if not path.is_dir():
        return None
    if not _looks_like_path(dataset):
        try:
            dataset_resolver.lookup(dataset)
        except (KeyError, ValueError):
            return path
        return None
    return path


def _looks_like_path(dataset: str) -> bool:
    """Return whether a ``--dataset`` value is meant as a path rather than a dataset name."""
    return "/" in dataset or os.sep in dataset or dataset.startswith((".", "~"))


def _option_names(message: str) -> str:
    """Name the command's option where a dataset's message names the Python argument."""
    return message.replace("pass directory=", "pass --dataset-directory")


def _check_named_directory(dataset_instance: Dataset, dataset: str, dataset_directory: Path | None) -> None:
    """Refuse a data directory of a named dataset that holds another graph (other numbers of triples).

    :raises click.BadParameter: if ``--dataset-directory`` holds another graph
    :raises click.ClickException: if the directory came from an environment variable and holds another graph
    """
    from docdata import get_docdata

    from .datasets import MultimodalDataset, TriplesDirectory

    if not isinstance(dataset_instance, MultimodalDataset) or isinstance(dataset_instance, TriplesDirectory):
        return
    statistics = (get_docdata(type(dataset_instance)) or {}).get("statistics")
    if statistics is None:
        return
    published = tuple(statistics[key] for key in ("training", "validation", "testing"))
    found = tuple(
        factory.num_triples
        for factory in (dataset_instance.training, dataset_instance.validation, dataset_instance.testing)
    )
    if found == published:
        return
    directory = dataset_instance.directory

    def counts(numbers: tuple[int, ...]) -> str:
        return " / ".join(f"{number:,}" for number in numbers)

    message = (
        f"{directory} holds {counts(found)} train / valid / test triples, not those of {dataset} "
        f"({counts(published)}): it is another graph. To train on it, pass the directory itself: --dataset {directory}"
    )
    if dataset_directory is not None:
        raise click.BadParameter(message, param_hint="--dataset-directory")
    raise click.ClickException(message)
