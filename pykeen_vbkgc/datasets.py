"""Multimodal knowledge graphs as PyKEEN datasets: triples plus entity texts, images and features.

Three datasets are registered through the ``pykeen.datasets`` entry point, so that they resolve by name in
:func:`pykeen.pipeline.pipeline` (``dataset="wn9"``, ``dataset="fb15k237multimodal"``, ``dataset="multimodaldemo"``):

- :class:`FB15k237Multimodal`: FB15k-237 (272,115 / 17,535 / 20,466 triples, 14,541 entities, 237 relations) with
  entity names and Wikidata descriptions, and, where the user has them, the MMKG images (one folder per MID).
- :class:`WN9`: WN9-IMG from IKRL (11,741 / 1,337 / 1,319 triples, 6,555 entities, 9 relations) with WordNet
  synset names and glosses, and, where the user has them, the ImageNet pictures (one folder per synset).
- :class:`MultimodalDemo`: a small connected subset of WN9 shipped inside the package, with precomputed text
  features of a real sentence encoder, so that the README's example trains offline in a few minutes.

The entity index of each dataset is built over all three splits (as in the paper's Table 1), so no test or
validation triple is dropped. PyKEEN's own ``FB15k237`` indexes the training split only, which drops the triples of
the 36 entities that occur only in validation or test.

Where the data comes from: a directory given as ``directory=`` or by an environment variable
(:data:`FB15K237_DIRECTORY_ENV`, :data:`WN9_DIRECTORY_ENV`), else the PyKEEN cache (``$PYKEEN_HOME/datasets/...``),
which is filled by downloads with checksums (FB15k-237 only; WN9-IMG is published as a RAR archive only, see
``docs/datasets.md``). A directory may contain a ``SHA256SUMS`` file (``sha256sum`` format), which is then verified.

.. note::

    PyKEEN imports this module while ``pykeen.models`` is still half-initialised, so it imports only from
    ``pykeen.datasets.base``, ``pykeen.triples``, ``pykeen.constants`` and our :mod:`pykeen_vbkgc.features`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pathlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from docdata import parse_docdata
from pykeen.datasets.base import LazyDataset
from pykeen.triples import CoreTriplesFactory, TriplesFactory
from pykeen.triples.triples_factory import create_entity_mapping, create_relation_mapping
from pystow.utils import download

from .defaults import PRESET_METADATA_KEY
from .features import FEATURES_METADATA_KEY, EntityFeatures, load_features
from .replacing import replacing

__all__ = [
    "FB15K237_DIRECTORY_ENV",
    "FB15K237_IMAGES_ENV",
    "WN9_DIRECTORY_ENV",
    "WN9_IMAGES_ENV",
    "ChecksumError",
    "DatasetFilesError",
    "FB15k237Multimodal",
    "MultimodalDataset",
    "MultimodalDemo",
    "RemoteFile",
    "TriplesDirectory",
    "WN9",
    "read_triples",
    "split_problems",
]

logger = logging.getLogger(__name__)

#: environment variable with a local FB15k-237 directory (``train.txt``, ``entity2text.txt``, ...)
FB15K237_DIRECTORY_ENV = "PYKEEN_VBKGC_FB15K237_DIR"
#: environment variable with the MMKG FB15K images directory (one folder per MID, e.g. ``m.0abc/``)
FB15K237_IMAGES_ENV = "PYKEEN_VBKGC_FB15K237_IMAGES"
#: environment variable with a local WN9 directory
WN9_DIRECTORY_ENV = "PYKEEN_VBKGC_WN9_DIR"
#: environment variable with the WN9 images directory (one folder per synset, e.g. ``n02084071/``)
WN9_IMAGES_ENV = "PYKEEN_VBKGC_WN9_IMAGES"

#: the name of the checksums file that a dataset directory may contain
CHECKSUMS_FILE = "SHA256SUMS"
#: the name of the features file looked up in the dataset directory and the cache
FEATURES_FILE = "features.safetensors"
#: other features files that are used when the directory has exactly one of them and no ``features.safetensors``
FEATURES_VARIANT_PATTERN = "features.*.safetensors"
#: file suffixes taken as images (compared case-insensitively)
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp"})
SPLIT_FILES = ("train.txt", "valid.txt", "test.txt")
#: the file in PyKEEN's dataset cache that records how to rebuild a dataset (see from_directory_binary)
REBUILD_FILE = "pykeen_vbkgc_dataset.json"

_DATA_DIRECTORY = pathlib.Path(__file__).resolve().parent / "data"


class DatasetFilesError(ValueError):
    """Raised when a dataset directory lacks files, or its files cannot be read."""


class ChecksumError(DatasetFilesError):
    """Raised when a dataset file does not have the expected SHA-256 checksum."""


#: first lines that name the columns instead of holding a triple
HEADER_LINES = frozenset(
    {
        ("head", "relation", "tail"),
        ("subject", "predicate", "object"),
        ("h", "r", "t"),
        ("source", "relation", "target"),
    }
)


def read_triples(path: pathlib.Path) -> np.ndarray:
    """Read a triples file strictly: one ``head<TAB>relation<TAB>tail`` per line, labels taken literally.

    Unlike PyKEEN's pandas-based :func:`~pykeen.triples.utils.load_triples`, no quote character is special (a label
    starting with ``"`` stays one label), a line with a missing or an extra column is an error instead of an
    empty label, and a header line is refused. Empty lines are skipped. Two exceptions to "literally": a UTF-8
    byte order mark at the start of the file is not part of the first label, and spaces around a label are removed
    (with a warning that counts the lines), so that ``" Paris"`` and ``"Paris"`` are one entity.

    :param path: the file
    :return: shape: (num_triples, 3), the labels as strings
    :raises DatasetFilesError: if the file cannot be read, holds no triple, or a line is malformed (the message names
        the file and the line number)
    """
    rows = []
    padded = []  # the numbers of the lines whose labels had surrounding whitespace
    try:
        # utf-8-sig: files saved by Windows editors start with a byte order mark, which is no part of a label
        with open(path, encoding="utf-8-sig", newline="") as file:
            for number, line in enumerate(file, start=1):
                line = line.rstrip("\r\n")
                if not line:
                    continue
                fields = line.split("\t")
                if len(fields) != 3 or not all(field.strip() for field in fields):
                    raise DatasetFilesError(
                        f"{path}, line {number}: expected three non-empty tab-separated fields "
                        f"'head<TAB>relation<TAB>tail', got {line!r}."
                    )
                if not rows and tuple(field.strip().lower() for field in fields) in HEADER_LINES:
                    raise DatasetFilesError(
                        f"{path}, line {number}: {line!r} looks like a header; triples files have none."
                    )
                if any(field != field.strip() for field in fields):
                    padded.append(number)
                    fields = [field.strip() for field in fields]
                rows.append(fields)
    except UnicodeDecodeError as error:
        raise DatasetFilesError(f"{path} is not UTF-8 text: {error}") from error
    except OSError as error:
        raise DatasetFilesError(f"Cannot read triples from {path}: {error}") from error
    if not rows:
        raise DatasetFilesError(f"{path} must contain at least one line 'head<TAB>relation<TAB>tail'.")
    if padded:
        logger.warning(
            f"{path}: {len(padded):,} line(s) have labels with leading or trailing whitespace (first: line "
            f"{padded[0]}); it was removed, so that ' a' and 'a' are one label."
        )
    return np.asarray(rows, dtype=str)


def split_problems(
    training: CoreTriplesFactory,
    evaluation: Mapping[str, CoreTriplesFactory | None],
    training_name: str = "training",
) -> list[str]:
    """Describe the evaluation triples that training does not prepare a model for, with counts.

    Two problems are reported per evaluation split: triples with an entity or a relation that occurs in no training
    triple (its embedding keeps its random initialisation, yet the triple is ranked), and triples that are training
    triples, too (leakage: a model that memorises its training triples ranks them first). The splits must share
    one entity and relation index, as the splits of a PyKEEN dataset do.

    :param training: the training triples
    :param evaluation: the evaluation triples by a name for the messages (e.g. the file), None for a missing split
    :param training_name: how the messages name the training triples
    :return: one message per problem, empty if there is none
    """
    messages = []
    trained = training.mapped_triples
    entities = torch.unique(trained[:, 0::2])
    relations = torch.unique(trained[:, 1])
    # a triple as one number, to compare the splits' triples
    num_entities, num_relations = training.num_entities, training.num_relations

    def keys(triples: torch.Tensor) -> torch.Tensor:
        return (triples[:, 0] * num_relations + triples[:, 1]) * num_entities + triples[:, 2]

    trained_keys = keys(trained)
    entity_labels = getattr(training, "entity_id_to_label", None)
    for name, factory in evaluation.items():
        if factory is None or factory.num_triples == 0:
            continue
        triples = factory.mapped_triples
        unseen_entities = ~torch.isin(triples[:, 0::2], entities)
        unseen_relations = ~torch.isin(triples[:, 1], relations)
        unseen = unseen_entities.any(dim=1) | unseen_relations
        if unseen.any():
            new_entities = torch.unique(triples[:, 0::2][unseen_entities])
            examples = ""
            if entity_labels is not None and len(new_entities):
                shown = [repr(entity_labels[i]) for i in new_entities[:3].tolist()]
                examples = f", e.g. {', '.join(shown)}" + (", ..." if len(new_entities) > 3 else "")
            messages.append(
                f"{name}: {int(unseen.sum()):,} of {factory.num_triples:,} triples have an entity or a relation that "
                f"occurs in no {training_name} triple (entities: {len(new_entities):,}{examples}; relations: "
                f"{len(torch.unique(triples[unseen_relations, 1])):,}): their embeddings are never trained, yet "
                "these triples are evaluated."
            )
        leaked = torch.isin(keys(triples), trained_keys)
        if leaked.any():
            messages.append(
                f"{name}: {int(leaked.sum()):,} of {factory.num_triples:,} triples are {training_name} triples, "
                "too (leakage): a model that memorises its training triples ranks them first."
            )
    return messages


@dataclass(frozen=True)
class RemoteFile:
    """A file that can be downloaded, with its expected SHA-256 checksum."""

    #: where to download the file from
    url: str
    #: the hex SHA-256 digest of the file's content
    sha256: str


def sha256sum(path: str | os.PathLike) -> str:
    """Return the hex SHA-256 digest of a file.

    :param path: the file
    :return: the hex digest
    """
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_checksums(path: str | os.PathLike) -> dict[str, str]:
    """Read a ``SHA256SUMS`` file as written by ``sha256sum``.

    :param path: the checksums file
    :return: a mapping from file name to hex digest
    :raises DatasetFilesError: if a line is not ``<64 hex digits> <space(s)>[*]<name>``
    """
    result = {}
    try:
        text = pathlib.Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise DatasetFilesError(f"{path} is not UTF-8 text: {error}") from None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        digest, _, name = line.strip().partition(" ")
        name = name.strip().lstrip("*")
        if len(digest) != 64 or not name or any(c not in "0123456789abcdefABCDEF" for c in digest):
            raise DatasetFilesError(f"{path}, line {number}: expected '<sha256 hex digest>  <file name>', got {line!r}")
        result[name] = digest.lower()
    return result


def verify_checksums(directory: pathlib.Path, expected: Mapping[str, str], names: Iterable[str]) -> None:
    """Compare files against expected checksums and report all mismatches in one error.

    :param directory: the directory with the files
    :param expected: the expected hex digests by file name
    :param names: the names of the files to check; those without an expected digest or not present are skipped
    :raises ChecksumError: if any file's digest differs
    """
    mismatches = []
    for name in names:
        path = directory / name
        if name not in expected or not path.is_file():
            continue
        actual = sha256sum(path)
        if actual != expected[name]:
            mismatches.append(f"{name} (expected sha256 {expected[name]}, got {actual})")
    if mismatches:
        raise ChecksumError(
            f"Checksum mismatch in {directory}: {'; '.join(mismatches)}. The file(s) are corrupt, truncated or a "
            f"different version; replace them with the published files."
        )


def _env_path(name: str | None) -> pathlib.Path | None:
    if name is None:
        return None
    value = os.environ.get(name, "").strip()
    return pathlib.Path(value).expanduser() if value else None


class MultimodalDataset(LazyDataset):
    """A dataset of triples whose entities have texts, optionally images, and optionally a features file.

    The files live in one directory: ``train.txt``, ``valid.txt``, ``test.txt`` (``head<TAB>relation<TAB>tail``),
    the text files of the subclass and optionally ``SHA256SUMS`` and ``features.safetensors``.
    """

    #: files that the directory must contain
    required_files: ClassVar[tuple[str, ...]] = (*SPLIT_FILES, "entity2text.txt")
    #: files that are used when present
    optional_files: ClassVar[tuple[str, ...]] = ()
    #: files that can be downloaded into the cache, with their checksums
    remote_files: ClassVar[Mapping[str, RemoteFile]] = {}
    #: the environment variable naming the data directory
    directory_env: ClassVar[str | None] = None
    #: the environment variable naming the images directory
    images_env: ClassVar[str | None] = None
    #: how to get the data when it cannot be downloaded (appended to the missing-files error)
    source_hint: ClassVar[str] = ""
    #: the name of the VBKGC preset for this dataset (see :mod:`pykeen_vbkgc.defaults`), or None for the general one
    preset: ClassVar[str | None] = None

    def __init__(
        self,
        directory: None | str | os.PathLike = None,
        *,
        images_directory: None | str | os.PathLike = None,
        features_path: None | str | os.PathLike = None,
        cache_root: None | str | os.PathLike = None,
        force_download: bool = False,
        verify: bool = True,
        create_inverse_triples: bool = False,
        eager: bool = False,
    ) -> None:
        """Initialize the dataset; check (and if needed download) its files.

        :param directory: a local directory with the dataset's files. Defaults to the environment variable
            :attr:`directory_env`, else the PyKEEN cache, which is filled by downloading where possible.
        :param images_directory: a directory with one folder of images per entity. Defaults to the environment
            variable :attr:`images_env`; without it the dataset has no images.
        :param features_path: the features file for the model. Defaults to ``features.safetensors`` in the data
            directory if present, else in the PyKEEN cache directory of this dataset (where to write it).
        :param cache_root: the root of the cache; the dataset keeps its downloads and default features file in the
            sub-directory named like the dataset, e.g. ``<cache_root>/fb15k237multimodal``. Defaults to PyKEEN's
            dataset cache, ``$PYKEEN_HOME/datasets``.
        :param force_download: download the remote files again even if they are cached
        :param verify: verify the files against ``SHA256SUMS`` (or the known checksums of downloads)
        :param create_inverse_triples: whether to create inverse triples for training
        :param eager: load the triples now rather than on first access

        :raises DatasetFilesError: if files are missing (all are listed in one error)
        :raises ChecksumError: if a file does not match its checksum
        """
        # PyKEEN's by-name cache rebuilds the dataset from these (see from_directory_binary); environment
        # variables are resolved again then
        self._rebuild_kwargs = {
            key: str(value) if isinstance(value, os.PathLike) else value
            for key, value in dict(
                directory=directory,
                images_directory=images_directory,
                features_path=features_path,
                cache_root=cache_root,
                verify=verify,
            ).items()
            if value is not None
        }
        self._cache_root_hint = cache_root
        self._cache_root: pathlib.Path | None = None
        self._create_inverse_triples = create_inverse_triples
        self._explicit_features_path = pathlib.Path(features_path).expanduser() if features_path else None
        self._texts: dict[str, str] | None = None
        self._images: dict[str, list[pathlib.Path]] | None = None

        directory = pathlib.Path(directory).expanduser() if directory is not None else _env_path(self.directory_env)
        if directory is None:
            directory = self._download(force=force_download)
            self.source = "cache"
        else:
            self.source = "directory"
        self.directory = directory
        self._check_directory(verify=verify)

        source = "images_directory="
        if images_directory is None:
            images_directory, source = _env_path(self.images_env), f"${self.images_env}"
        self.images_directory = pathlib.Path(images_directory).expanduser() if images_directory is not None else None
        if self.images_directory is not None and not self.images_directory.is_dir():
            problem = "is a file, not a directory" if self.images_directory.exists() else "does not exist"
            raise DatasetFilesError(f"Images directory {self.images_directory} (from {source}) {problem}.")

        if eager:
            self._load()

    # -- files -----------------------------------------------------------------------------------------------------

    @property
    def cache_root(self) -> pathlib.Path:  # type: ignore[override]
        """The cache directory of this dataset (created on first access)."""
        if self._cache_root is None:
            self._cache_root = self._help_cache(self._cache_root_hint)
        return self._cache_root

    def _cache_sub_directories(self) -> Iterable[str]:
        yield self.get_normalized_name()

    def _download(self, force: bool) -> pathlib.Path:
        """Download the remote files that the cache lacks, verifying each before it is moved into place."""
        directory = self.cache_root
        for name, remote in self.remote_files.items():
            path = directory / name
            if path.is_file() and not force:
                continue
            logger.info("downloading %s from %s", name, remote.url)
            with replacing(path, suffix=".part") as partial:
                try:
                    download(remote.url, partial, backend="urllib", force=True)
                except OSError as error:  # pystow's DownloadError and urllib's URLError are OSErrors
                    how = f"set {self.directory_env} or pass directory=" if self.directory_env else "pass directory="
                    # pystow's own message names the temporary file, which is gone
                    cause = getattr(error, "exc", error)
                    raise DatasetFilesError(
                        f"{self.__class__.__name__}: cannot download {name} from {remote.url}: {cause}. Without "
                        f"internet access, copy the files to a directory and {how} (see docs/datasets.md)."
                    ) from error
                actual = sha256sum(partial)
                if actual != remote.sha256:
                    raise ChecksumError(
                        f"Checksum mismatch for {name} downloaded from {remote.url}: expected sha256 {remote.sha256}, "
                        f"got {actual}. The source may have changed; download the files yourself and pass "
                        f"directory= (see docs/datasets.md)."
                    )
        # the cache directory then passes the same check as a user's directory
        if self.remote_files:
            (directory / CHECKSUMS_FILE).write_text(
                "".join(f"{remote.sha256}  {name}\n" for name, remote in self.remote_files.items()), encoding="utf-8"
            )
        return directory

    def _check_directory(self, verify: bool) -> None:
        if self.directory.is_file():
            raise DatasetFilesError(
                f"{self.__class__.__name__}: {self.directory} is a file; give the data directory that contains "
                f"{', '.join(self.required_files)}."
            )
        if not self.directory.is_dir():
            raise DatasetFilesError(
                f"{self.__class__.__name__}: data directory does not exist: {self.directory}. It must contain "
                f"{', '.join(self.required_files)}. {self.source_hint}".strip()
            )
        missing = [name for name in self.required_files if not (self.directory / name).is_file()]
        if missing:
            how = f"Set {self.directory_env} or pass directory=. " if self.directory_env else ""
            raise DatasetFilesError(
                f"{self.__class__.__name__}: {self.directory} lacks {len(missing)} required file(s): "
                f"{', '.join(missing)}. {how}{self.source_hint}".strip()
            )
        checksums_path = self.directory / CHECKSUMS_FILE
        if verify and checksums_path.is_file():
            verify_checksums(
                self.directory, read_checksums(checksums_path), (*self.required_files, *self.optional_files)
            )
        elif verify:
            logger.debug("%s has no %s; files are not verified", self.directory, CHECKSUMS_FILE)

    # -- triples ---------------------------------------------------------------------------------------------------

    def _read_split(self, name: str) -> np.ndarray:
        return read_triples(self.directory / name)

    def _load(self) -> None:
        training, validation, testing = (self._read_split(name) for name in SPLIT_FILES)
        everything = np.concatenate([training, validation, testing])
        # index entities and relations over all splits, so that no evaluation triple is dropped
        entity_to_id = create_entity_mapping(everything)
        relation_to_id = create_relation_mapping(set(everything[:, 1]))
        kwargs = dict(entity_to_id=entity_to_id, relation_to_id=relation_to_id)
        metadata = {"path": str(self.directory / SPLIT_FILES[0])}
        if self.has_features or self._explicit_features_path is not None:
            # VBKGC reads its features from here when it is given none (see pykeen_vbkgc.model); a features_path
            # given explicitly goes there even if it is missing, so that the model says so instead of training with
            # random features
            metadata[FEATURES_METADATA_KEY] = str(self.features_path.resolve())
        if self.preset is not None:
            # VBKGC takes the settings it is not given from this preset (see pykeen_vbkgc.defaults.preset_for)
            metadata[PRESET_METADATA_KEY] = self.preset
        self._training = TriplesFactory.from_labeled_triples(
            training, create_inverse_triples=self._create_inverse_triples, metadata=metadata, **kwargs
        )
        self._validation = TriplesFactory.from_labeled_triples(
            validation, metadata={"path": str(self.directory / SPLIT_FILES[1])}, **kwargs
        )
        self._testing = TriplesFactory.from_labeled_triples(
            testing, metadata={"path": str(self.directory / SPLIT_FILES[2])}, **kwargs
        )
        for message in split_problems(
            self._training,
            {
                str(self.directory / name): factory
                for name, factory in zip(SPLIT_FILES[1:], (self._validation, self._testing))
            },
            training_name=SPLIT_FILES[0],
        ):
            logger.warning(message)

    def _load_validation(self) -> None:
        self._load()

    # -- modalities ------------------------------------------------------------------------------------------------

    def _read_texts(self) -> dict[str, str]:
        """Return a text for each entity label that has one (may include labels outside the triples)."""
        return _read_tsv_pairs(self.directory / "entity2text.txt")

    @property
    def entity_texts(self) -> dict[str, str]:
        """The text of each entity that has one, in the order of ``entity_to_id``."""
        if self._texts is None:
            texts = self._read_texts()
            self._texts = {label: texts[label] for label in self.entity_to_id if texts.get(label)}
        return self._texts

    def image_folder_name(self, label: str) -> str:
        """Return the name of the folder that holds an entity's images.

        :param label: the entity label
        :return: the folder name inside :attr:`images_directory`
        """
        return label

    @property
    def entity_images(self) -> dict[str, list[pathlib.Path]]:
        """The image files of each entity that has some (empty without an images directory)."""
        if self._images is None:
            self._images = self._scan_images()
        return self._images

    def _scan_images(self) -> dict[str, list[pathlib.Path]]:
        if self.images_directory is None:
            return {}
        folder_to_label = {self.image_folder_name(label): label for label in self.entity_to_id}
        images = {}
        with os.scandir(self.images_directory) as entries:
            for entry in entries:
                label = folder_to_label.get(entry.name)
                if label is None or not entry.is_dir():
                    continue
                files = sorted(
                    path for path in pathlib.Path(entry.path).iterdir() if path.suffix.lower() in IMAGE_SUFFIXES
                )
                if files:
                    images[label] = files
        if not images:
            example = self.image_folder_name(next(iter(self.entity_to_id)))
            raise DatasetFilesError(
                f"No entity of {self.__class__.__name__} has images in {self.images_directory}: expected one folder "
                f"per entity, e.g. {self.images_directory / example}/, with {', '.join(sorted(IMAGE_SUFFIXES))} files."
            )
        # keep the order of entity_to_id
        return {label: images[label] for label in self.entity_to_id if label in images}

    def coverage(self) -> dict[str, int]:
        """Count the entities, and those with a text and with images.

        :return: a dictionary with keys ``entities``, ``text`` and ``image``
        """
        return {
            "entities": self.num_entities,
            "text": len(self.entity_texts),
            "image": len(self.entity_images),
        }

    # -- features --------------------------------------------------------------------------------------------------

    @property
    def features_path(self) -> pathlib.Path:
        """The features file to hand to the model, e.g. ``model_kwargs=dict(features=dataset.features_path)``.

        The explicit ``features_path``, else ``features.safetensors`` in the data directory if present, else the
        only ``features.*.safetensors`` there (e.g. ``features.minilm.safetensors``), else a file in the cache
        directory of this dataset, where the encoder should write it: ``features.safetensors`` for the downloaded
        copy, ``features-<key>.safetensors`` for a local data directory, ``<key>`` a hash of the directory's path (so
        that features encoded for one copy are never used for another). The file need not exist yet.
        The training triples carry the path in their metadata when the file exists, so that
        :class:`~pykeen_vbkgc.VBKGC` uses it by default.
        """
        if self._explicit_features_path is not None:
            return self._explicit_features_path
        in_directory = self.directory / FEATURES_FILE
        if in_directory.is_file():
            return in_directory
        variants = sorted(self.directory.glob(FEATURES_VARIANT_PATTERN))
        if len(variants) == 1:
            return variants[0]
        if len(variants) > 1:
            logger.warning(
                f"{self.directory} has several features files ({', '.join(v.name for v in variants)}); none is used "
                f"by default. Pass features_path= to the dataset, or name one {FEATURES_FILE}."
            )
        return self._default_features_path()

    def _default_features_path(self) -> pathlib.Path:
        """Return where the features go when the data directory has none (see :attr:`features_path`)."""
        if self.source == "cache":
            return self.cache_root / FEATURES_FILE
        key = hashlib.sha256(str(self.directory.resolve()).encode()).hexdigest()[:12]
        return self.cache_root / f"features-{key}.safetensors"

    @property
    def has_features(self) -> bool:
        """Whether :attr:`features_path` exists."""
        return self.features_path.is_file()

    def features(self) -> EntityFeatures:
        """Load the entity features from :attr:`features_path`.

        :return: the labelled features
        :raises FileNotFoundError: if the features file does not exist yet
        """
        path = self.features_path
        if not path.is_file():
            raise FileNotFoundError(
                f"No features file for {self.__class__.__name__} at {path}. Encode the entity texts/images with "
                f"pykeen_vbkgc.encoders and save them there (see docs/datasets.md), or pass features_path=."
            )
        return load_features(path)

    # -- PyKEEN's dataset cache ---------------------------------------------------------------------------------------

    def to_directory_binary(self, path: str | os.PathLike) -> None:
        """Store the factories in PyKEEN's binary format, plus the arguments to rebuild this dataset.

        :func:`pykeen.datasets.get_dataset` caches datasets requested by name this way; see
        :meth:`from_directory_binary` for why the arguments are stored too.

        :param path: the directory to write to
        """
        super().to_directory_binary(path)
        record = {"class": self.__class__.__name__, "kwargs": self._rebuild_kwargs}
        (pathlib.Path(path) / REBUILD_FILE).write_text(json.dumps(record), encoding="utf-8")

    @classmethod
    def from_directory_binary(cls, path: str | os.PathLike):
        """Load a dataset stored by :meth:`to_directory_binary`.

        PyKEEN's by-name cache would return a plain :class:`~pykeen.datasets.EagerDataset`, without texts, images
        and features path, keyed only by the constructor arguments, so that a changed environment variable or
        changed files would go unnoticed. Instead, the dataset is rebuilt from its source files (and checked again).

        :param path: the directory written by :meth:`to_directory_binary`
        :return: the dataset
        """
        record_path = pathlib.Path(path) / REBUILD_FILE
        if record_path.is_file():
            record = json.loads(record_path.read_text(encoding="utf-8"))
            if record.get("class") == cls.__name__:
                return cls(**record["kwargs"])
        return super().from_directory_binary(path)

    def iter_extra_repr(self) -> Iterable[str]:  # noqa: D102
        yield f"directory={str(self.directory)!r}"
        if self.images_directory is not None:
            yield f"images_directory={str(self.images_directory)!r}"

    def __repr__(self) -> str:  # noqa: D105
        return f"{self.__class__.__name__}({', '.join(self.iter_extra_repr())})"


def _read_tsv_pairs(path: pathlib.Path) -> dict[str, str]:
    """Read ``key<TAB>value`` lines; lines without a tab are ignored.

    Keys are stripped like the labels of :func:`read_triples`, and a leading byte order mark is dropped.

    :raises DatasetFilesError: if the file is not UTF-8 text
    """
    result = {}
    try:
        with path.open(encoding="utf-8-sig") as file:
            for line in file:
                key, sep, value = line.rstrip("\n").partition("\t")
                if sep:
                    result[key.strip()] = value.strip()
    except UnicodeDecodeError as error:
        raise DatasetFilesError(f"{path} is not UTF-8 text: {error}") from None
    return result


@parse_docdata
class TriplesDirectory(MultimodalDataset):
    """Your own graph: a directory with ``train.txt``, ``valid.txt`` and ``test.txt`` (``head<TAB>relation<TAB>tail``).

    Optional files in the same directory: ``entity2text.txt`` (``label<TAB>text``, what ``pykeen-vbkgc encode
    --dataset <directory>`` encodes, writing ``features.safetensors`` there) and a features file
    (``features.safetensors``, or the only ``features.*.safetensors``), which :class:`~pykeen_vbkgc.VBKGC` then
    uses by default. Entities and relations
    are indexed over all three splits. Images: ``images_directory=`` with one folder per entity label.

    .. code-block:: python

        from pykeen.pipeline import pipeline
        from pykeen_vbkgc.datasets import TriplesDirectory

        result = pipeline(dataset=TriplesDirectory("my_graph"), model="vbkgc", negative_sampler="twins")
    """

    required_files = SPLIT_FILES
    optional_files = ("entity2text.txt",)
    source_hint = "Write the triples as head<TAB>relation<TAB>tail, one per line."

    def __init__(self, directory: str | os.PathLike, **kwargs) -> None:
        """Initialize the dataset from a directory.

        :param directory: the directory with the three split files
        :param kwargs: keyword arguments of :class:`MultimodalDataset`, e.g. ``features_path`` or
            ``images_directory``
        :raises TypeError: without a directory (your own graph has no download)
        """
        if directory is None:
            raise TypeError("TriplesDirectory needs the directory of your graph (train.txt, valid.txt, test.txt).")
        super().__init__(directory=directory, **kwargs)

    def _read_texts(self) -> dict[str, str]:
        path = self.directory / "entity2text.txt"
        return _read_tsv_pairs(path) if path.is_file() else {}

    def _default_features_path(self) -> pathlib.Path:
        # your own directory: the features go next to the triples, where the next run finds them
        return self.directory / FEATURES_FILE


@parse_docdata
class FB15k237Multimodal(MultimodalDataset):
    """FB15k-237 with entity texts and, where available, the MMKG images.

    Texts: ``"<name>, <Wikidata description>"``, with the name from ``entity2text.txt`` (KG-BERT) and the description
    from ``entity2wikidata.json`` (when present and known); just the name otherwise. Images: the MMKG FB15K
    images, one folder per MID with ``/`` replaced by ``.`` (``/m/0abc`` -> ``m.0abc/``).

    ---
    name: FB15k-237 (multimodal)
    statistics:
        entities: 14541
        relations: 237
        training: 272115
        testing: 20466
        validation: 17535
        triples: 310116
    citation:
        author: Toutanova
        year: 2015
        link: https://www.aclweb.org/anthology/W15-4007/
    """

    required_files = (*SPLIT_FILES, "entity2text.txt")
    optional_files = ("entity2wikidata.json", "relation2text.txt")
    directory_env = FB15K237_DIRECTORY_ENV
    preset = "fb15k237"
    images_env = FB15K237_IMAGES_ENV
    # the triples are line-for-line those of the original release (PyKEEN's source, a zip from Microsoft); these
    # plain-text copies let every file be checked on its own
    remote_files = {
        "train.txt": RemoteFile(
            "https://raw.githubusercontent.com/villmow/datasets_knowledge_embedding/master/FB15k-237/train.txt",
            "61099230e4439f90885ca9767739e31e8e32f54736fa1c35952b27997bc7c08a",
        ),
        "valid.txt": RemoteFile(
            "https://raw.githubusercontent.com/villmow/datasets_knowledge_embedding/master/FB15k-237/valid.txt",
            "749cbe9d923bac7b9354da5614ecfed2e0220256d442c3e04a6b303db1f273d9",
        ),
        "test.txt": RemoteFile(
            "https://raw.githubusercontent.com/villmow/datasets_knowledge_embedding/master/FB15k-237/test.txt",
            "e2e35e8e6113de220140b6f44dc71a5207b0fc6872d575e874aefe13259b655b",
        ),
        "entity2text.txt": RemoteFile(
            "https://raw.githubusercontent.com/yao8839836/kg-bert/master/data/FB15k-237/entity2text.txt",
            "16beedcfad3d32696e8b0b98cfa0f5eeb144f5142225f227a64fd9ce37447da5",
        ),
        "relation2text.txt": RemoteFile(
            "https://raw.githubusercontent.com/yao8839836/kg-bert/master/data/FB15k-237/relation2text.txt",
            "4bf7cb6ea0ac09b17ad210889f723be5e079669f6ae5d507787e1320bbaa0f72",
        ),
        "entity2wikidata.json": RemoteFile(
            "https://raw.githubusercontent.com/villmow/datasets_knowledge_embedding/master/FB15k-237/entity2wikidata.json",
            "80e74bb002fb9ca0ecd3d63879a3a51121db855d312a101917a1ffb6aed2fea9",
        ),
    }

    def _read_wikidata(self) -> dict[str, dict]:
        path = self.directory / "entity2wikidata.json"
        if not path.is_file():
            logger.warning("%s is missing; FB15k-237 texts are entity names without descriptions", path)
            return {}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise DatasetFilesError(f"{path} is not valid JSON: {error}") from error
        # {MID: {"label": ..., "description": ...}}, as in villmow's FB15k-237 files
        if not isinstance(data, dict) or not all(isinstance(entry, dict) for entry in data.values()):
            raise DatasetFilesError(
                f"{path} must hold a JSON object mapping each entity to an object with 'label' and 'description'."
            )
        return data

    def _read_texts(self) -> dict[str, str]:  # noqa: D102
        names = _read_tsv_pairs(self.directory / "entity2text.txt")
        wikidata = self._read_wikidata()
        texts = {}
        for label in names.keys() | wikidata.keys():
            entry = wikidata.get(label) or {}
            name = names.get(label) or entry.get("label") or ""
            description = (entry.get("description") or "").strip()
            text = f"{name}, {description}" if name and description else name or description
            if text:
                texts[label] = text
        return texts

    @property
    def relation_texts(self) -> dict[str, str]:
        """The readable text of each relation that has one (``relation2text.txt``; empty if absent)."""
        path = self.directory / "relation2text.txt"
        texts = _read_tsv_pairs(path) if path.is_file() else {}
        return {label: texts[label] for label in self.relation_to_id if texts.get(label)}

    def image_folder_name(self, label: str) -> str:
        """Return the MMKG folder name of a MID, e.g. ``m.0abc`` for ``/m/0abc``.

        :param label: the MID
        :return: the folder name
        """
        return label.strip("/").replace("/", ".")


@parse_docdata
class WN9(MultimodalDataset):
    """WN9-IMG, the multimodal subset of WN18 introduced by IKRL, with WordNet texts and optional ImageNet images.

    Texts: ``"<synset name>, <gloss>"`` (``entity2text.txt``). Images: the ImageNet pictures of each synset, which
    the user supplies, one folder per synset id as in ImageNet's training set (``n02084071/n02084071_1.JPEG``).

    ---
    name: WN9-IMG
    statistics:
        entities: 6555
        relations: 9
        training: 11741
        testing: 1319
        validation: 1337
        triples: 14397
    citation:
        author: Xie
        year: 2017
        link: https://www.ijcai.org/proceedings/2017/438
        github: thunlp/IKRL
    """

    required_files = (*SPLIT_FILES, "entity2text.txt")
    optional_files = ("image_list.txt", "image2count.txt")
    directory_env = WN9_DIRECTORY_ENV
    images_env = WN9_IMAGES_ENV
    preset = "wn9"
    source_hint = (
        "WN9-IMG is published only inside a RAR archive (https://github.com/thunlp/IKRL, data.rar) and cannot be "
        "downloaded automatically; docs/datasets.md shows how to build the directory from it."
    )


@parse_docdata
class MultimodalDemo(MultimodalDataset):
    """A small connected subset of WN9 shipped with the package, with precomputed sentence-encoder text features.

    It trains in a few minutes on a laptop CPU without network access. Its ``features_path`` points at the shipped
    features (all-MiniLM-L6-v2 embeddings of the entity texts); ``scripts/build_demo_dataset.py`` rebuilds it.

    ---
    name: Multimodal demo (WN9 subset)
    statistics:
        entities: 500
        relations: 9
        training: 1217
        testing: 150
        validation: 150
        triples: 1517
    citation:
        author: Xie
        year: 2017
        link: https://www.ijcai.org/proceedings/2017/438
    """

    #: the package directory with the demo's files
    package_directory: ClassVar[pathlib.Path] = _DATA_DIRECTORY / "multimodal_demo"
    required_files = (*SPLIT_FILES, "entity2text.txt", FEATURES_FILE)

    def __init__(self, **kwargs) -> None:
        """Initialize the demo dataset from the package data.

        :param kwargs: keyword arguments of :class:`MultimodalDataset` except ``directory`` (always the package
            data), e.g. ``create_inverse_triples`` or ``features_path``
        """
        if "directory" in kwargs:
            raise TypeError("MultimodalDemo always reads the package data; it takes no directory argument.")
        super().__init__(directory=self.package_directory, **kwargs)
        self._rebuild_kwargs.pop("directory")
