"""The features file: frozen per-entity multimodal features, labelled by entity.

The encoding module writes one of these; :class:`pykeen_vbkgc.VBKGC` reads it and aligns its rows to a triples
factory's ``entity_to_id``. The container is `safetensors <https://huggingface.co/docs/safetensors>`_: one float
matrix ``features`` of shape ``(n, d)``, optionally an integer vector ``num_images`` of shape ``(n,)`` (how many
images each entity's feature was encoded from; the encoding module writes it), and string metadata. The entity
labels are stored in the metadata as a JSON list (key ``labels``), so loading never unpickles arbitrary objects.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .replacing import replacing

__all__ = [
    "FEATURES_METADATA_KEY",
    "FORMAT_NAME",
    "AlignedFeatures",
    "EntityFeatures",
    "FeaturesFileError",
    "check_output_file",
    "load_features",
    "save_features",
]

logger = logging.getLogger(__name__)

#: the value of the ``format`` metadata key, which identifies our files
FORMAT_NAME = "pykeen-vbkgc-features"
#: the version of the layout; bump it on incompatible changes
FORMAT_VERSION = "1"
#: the key under which a dataset stores its features file in the training triples' ``metadata``; VBKGC reads it
#: when it is given no features
FEATURES_METADATA_KEY = "vbkgc_features"
#: the largest number of images per entity that a file holds (int32)
_INT32_MAX = 2**31 - 1
#: metadata keys that the file layout itself owns
_RESERVED_KEYS = frozenset({"format", "format_version", "labels", "num_entities", "dim"})


class FeaturesFileError(ValueError):
    """Raised for a features file, or feature matrix, that cannot be used."""


@dataclass(frozen=True)
class AlignedFeatures:
    """Feature rows aligned to an ``entity_to_id`` mapping."""

    #: shape: (num_entities, dim); rows of entities without a feature are zero
    vectors: torch.Tensor
    #: shape: (num_entities,); True where the entity has a feature
    mask: torch.Tensor
    #: the number of labels in the file that the mapping does not know (ignored)
    num_ignored: int

    @property
    def num_covered(self) -> int:
        """Return the number of entities that have a feature."""
        return int(self.mask.sum().item())


@dataclass(frozen=True)
class EntityFeatures:
    """A labelled feature matrix, i.e., the content of a features file."""

    #: the entity labels, one per row
    labels: tuple[str, ...]
    #: shape: (len(labels), dim)
    vectors: torch.Tensor
    #: free-form string metadata (encoder, checkpoint, backbone, creation time, ...)
    metadata: Mapping[str, str] = field(default_factory=dict)
    #: shape: (len(labels),); the number of images each row was encoded from, if known
    num_images: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if isinstance(self.labels, str):  # would be read as one label per character
            raise FeaturesFileError("labels must be a sequence of strings, one per row.")
        object.__setattr__(self, "labels", tuple(self.labels))
        if not all(isinstance(label, str) for label in self.labels):
            raise FeaturesFileError("labels must be a sequence of strings, one per row.")
        validate_matrix(self.vectors, name="vectors")
        if len(self.labels) != self.vectors.shape[0]:
            raise FeaturesFileError(
                f"{len(self.labels)} labels but {self.vectors.shape[0]} feature rows; they must match one to one."
            )
        if self.num_images is not None:
            num_images = self.num_images
            if (
                not isinstance(num_images, torch.Tensor)
                or num_images.ndim != 1
                or num_images.is_floating_point()
                or num_images.is_complex()
                or num_images.dtype == torch.bool
            ):
                raise FeaturesFileError("num_images must be a 1-D integer tensor.")
            if num_images.shape[0] != len(self.labels):
                raise FeaturesFileError(f"{len(self.labels)} labels but {num_images.shape[0]} num_images entries.")
            if bool((num_images < 0).any()):
                raise FeaturesFileError("num_images must not be negative.")
            # files store int32
            object.__setattr__(self, "num_images", num_images.long())
        if len(set(self.labels)) != len(self.labels):
            seen: set[str] = set()
            duplicates = sorted({label for label in self.labels if label in seen or seen.add(label)})
            raise FeaturesFileError(f"Duplicate entity labels in features: {duplicates[:5]} ...")
        bad_keys = _RESERVED_KEYS.intersection(self.metadata)
        if bad_keys:
            raise FeaturesFileError(f"Metadata keys {sorted(bad_keys)} are reserved by the features file layout.")
        for key, value in self.metadata.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise FeaturesFileError(f"Metadata must map strings to strings, got {key!r}: {value!r}.")

    @property
    def dim(self) -> int:
        """Return the feature dimension."""
        return self.vectors.shape[1]

    def align(self, entity_to_id: Mapping[str, int]) -> AlignedFeatures:
        """Align rows to an entity-to-id mapping.

        :param entity_to_id: the mapping from entity labels to ids ``0..num_entities-1``
        :return: the aligned rows, the coverage mask and the number of ignored labels
        :raises FeaturesFileError: if the ids are not ``0..num_entities-1``, each once
        """
        num_entities = len(entity_to_id)
        if sorted(entity_to_id.values()) != list(range(num_entities)):
            # e.g. -1 would fill the last row, a repeated id would overwrite one
            raise FeaturesFileError(
                f"entity_to_id must map its {num_entities} labels to the ids 0..{num_entities - 1}."
            )
        vectors = torch.zeros(num_entities, self.dim, dtype=torch.get_default_dtype())
        mask = torch.zeros(num_entities, dtype=torch.bool)
        rows, ids = [], []
        for row, label in enumerate(self.labels):
            entity_id = entity_to_id.get(label)
            if entity_id is not None:
                rows.append(row)
                ids.append(entity_id)
        if ids:
            index = torch.as_tensor(ids, dtype=torch.long)
            vectors[index] = self.vectors[torch.as_tensor(rows, dtype=torch.long)].to(vectors.dtype)
            mask[index] = True
        return AlignedFeatures(vectors=vectors, mask=mask, num_ignored=len(self.labels) - len(ids))

    def select(self, labels: Sequence[str]) -> EntityFeatures:
        """Return the rows of the given labels, in the given order.

        :param labels: a subset of :attr:`labels`
        :return: the selected rows, with the same metadata
        :raises FeaturesFileError: if a label is not in the features
        """
        if isinstance(labels, str):  # would be read as one label per character
            raise FeaturesFileError(f"labels must be a sequence of labels, not the string {labels!r}.")
        row_of = {label: row for row, label in enumerate(self.labels)}
        missing = [label for label in labels if label not in row_of]
        if missing:
            raise FeaturesFileError(f"{len(missing)} labels are not in the features, e.g. {missing[:5]}.")
        index = torch.as_tensor([row_of[label] for label in labels], dtype=torch.long)
        return EntityFeatures(
            labels=tuple(labels),
            vectors=self.vectors[index],
            metadata=dict(self.metadata),
            num_images=None if self.num_images is None else self.num_images[index],
        )


def validate_matrix(matrix: torch.Tensor, *, name: str = "features") -> None:
    """Check that a feature matrix is a finite, 2-D floating point tensor.

    :param matrix: the matrix
    :param name: how to call it in error messages
    :raises FeaturesFileError: if it is not
    """
    if not isinstance(matrix, torch.Tensor):
        raise FeaturesFileError(f"{name} must be a torch.Tensor, got {type(matrix).__name__}.")
    if matrix.ndim != 2:
        raise FeaturesFileError(f"{name} must be 2-D (entities x dim), got shape {tuple(matrix.shape)}.")
    if not matrix.is_floating_point():
        raise FeaturesFileError(f"{name} must be a floating point tensor, got {matrix.dtype}.")
    if matrix.shape[1] == 0:
        raise FeaturesFileError(f"{name} has feature dimension 0.")
    # files store float32, and the model computes in it: larger finite values would become infinite
    finite = torch.isfinite(matrix.float()).all(dim=1)
    if not bool(finite.all()):
        bad = (~finite).nonzero().view(-1)
        raise FeaturesFileError(
            f"{name} contains NaN or infinite values, or values beyond float32's range, in {bad.numel()} rows "
            f"(first rows: {bad[:5].tolist()})."
        )


def check_output_file(path: str | os.PathLike) -> None:
    """Check that a file can be written at ``path``: it is no directory, and no file stands where its directory goes.

    :param path: the file to write
    :raises FeaturesFileError: if it cannot be
    """
    path = Path(path)
    if path.is_dir():
        raise FeaturesFileError(f"{path} is a directory; give the name of a file to write.")
    existing = next(parent for parent in path.parents if parent.exists())
    if not existing.is_dir():
        raise FeaturesFileError(f"Cannot write {path}: {existing} is a file, not a directory.")


def save_features(
    path: str | os.PathLike,
    labels: Sequence[str] | EntityFeatures,
    vectors: torch.Tensor | None = None,
    metadata: Mapping[str, str] | None = None,
    num_images: torch.Tensor | None = None,
) -> Path:
    """Write a features file atomically (temporary file, then rename).

    A crash while writing leaves the previous file (if any) untouched and no temporary file behind.

    :param path: the target path, conventionally ending in ``.safetensors``
    :param labels: the entity labels, or an :class:`EntityFeatures` (then ``vectors``, ``metadata`` and
        ``num_images`` are taken from it)
    :param vectors: shape: (len(labels), dim)
    :param metadata: additional string metadata
    :param num_images: shape: (len(labels),); how many images each row was encoded from
    :return: the path written
    """
    from safetensors.torch import save_file

    if isinstance(labels, EntityFeatures):
        features = labels
    else:
        if vectors is None:
            raise FeaturesFileError("save_features needs vectors when given labels.")
        features = EntityFeatures(
            labels=tuple(labels), vectors=vectors, metadata=dict(metadata or {}), num_images=num_images
        )
    path = Path(path)
    check_output_file(path)
    if features.num_images is not None and bool((features.num_images > _INT32_MAX).any()):
        raise FeaturesFileError(f"num_images must be at most {_INT32_MAX} (files store int32).")
    path.parent.mkdir(parents=True, exist_ok=True)
    header = {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "package_version": _package_version(),
        **features.metadata,
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "num_entities": str(len(features.labels)),
        "dim": str(features.dim),
        "labels": json.dumps(list(features.labels)),
    }
    tensors = {"features": features.vectors.detach().to(device="cpu", dtype=torch.float32).contiguous()}
    if features.num_images is not None:
        tensors["num_images"] = features.num_images.detach().to(device="cpu", dtype=torch.int32).contiguous()
    # a unique temporary name: two processes may encode into the same file at once
    with replacing(path, unique=True) as temporary:
        save_file(tensors, temporary, metadata=header)
    return path


def load_features(path: str | os.PathLike) -> EntityFeatures:
    """Read a features file written by :func:`save_features`.

    :param path: the path
    :return: the labelled features
    :raises FeaturesFileError: if the file is missing, not a features file, or inconsistent
    """
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if path.is_dir():
        raise FeaturesFileError(f"{path} is a directory, not a features file.")
    if not path.is_file():
        raise FeaturesFileError(f"Features file not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as handle:
            header = dict(handle.metadata() or {})
            if header.get("format") != FORMAT_NAME:
                raise FeaturesFileError(f"{path} is not a {FORMAT_NAME} file (metadata 'format' is missing).")
            if header.get("format_version") != FORMAT_VERSION:
                raise FeaturesFileError(
                    f"{path} has features file version {header.get('format_version')!r}; "
                    f"this package reads version {FORMAT_VERSION}."
                )
            keys = set(handle.keys())
            if "features" not in keys:
                raise FeaturesFileError(f"{path} has no 'features' tensor.")
            vectors = handle.get_tensor("features")
            num_images = handle.get_tensor("num_images") if "num_images" in keys else None
    except SafetensorError as error:
        raise FeaturesFileError(f"{path} is not a readable safetensors file: {error}") from error
    try:
        labels = json.loads(header.pop("labels"))
    except (KeyError, json.JSONDecodeError) as error:
        raise FeaturesFileError(f"{path} has no valid 'labels' metadata: {error}") from error
    if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        raise FeaturesFileError(f"{path} has no valid 'labels' metadata: it must be a JSON list of strings.")
    for key in _RESERVED_KEYS:
        header.pop(key, None)
    try:
        return EntityFeatures(labels=tuple(labels), vectors=vectors, metadata=header, num_images=num_images)
    except FeaturesFileError as error:
        # the checks of EntityFeatures do not know the file; name it
        raise FeaturesFileError(f"Features file {path}: {error}") from error


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pykeen-vbkgc")
    except PackageNotFoundError:
        return "unknown"
