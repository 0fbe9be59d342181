"""Running an encoder over many entities: batching, progress, resuming, sharding and merging shards.

Resuming: while :func:`encode_entities` runs it keeps a partial features file ``<output>.partial`` up to date
(every ``checkpoint_interval`` seconds and when interrupted: Ctrl-C, SIGTERM as sent by ``timeout``, ``kill`` and batch
schedulers, or an error). A new run with the same
encoder settings and weights (the fingerprint covers both: a checkpoint replaced at the same path is another
encoder) takes the finished entities from it and encodes only the rest; each entity's inputs are
fingerprinted, so an entity whose text or images changed is encoded again. The output is written only at the end,
atomically (temporary file + rename), and the partial file is then removed: a features file is always complete.
Temporary files that a hard kill (SIGKILL) left behind are removed by the next run.

Sharding: ``shard=(i, n)`` encodes the ``i``-th of ``n`` contiguous slices (0-based) of the entity list, so that
several GPUs or machines can share the work. Each shard file records its index, the number of shards and a hash of
the full entity list; :func:`merge_features` checks that the shards fit together and cover every entity exactly once.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..features import EntityFeatures, FeaturesFileError, check_output_file, load_features, save_features
from ..validation import check_positive_int
from .base import EntityEncoder, EntityInput
from .inputs import EncodingInputError, check_inputs

__all__ = [
    "EncodingTerminated",
    "encode_entities",
    "merge_features",
    "parse_shard",
    "partial_path",
    "shard_slice",
]

logger = logging.getLogger(__name__)

#: metadata keys that describe one run rather than the encoder; ignored when comparing files
RUN_KEYS = frozenset(
    {
        "created",
        "package_version",
        "device",
        "shard",
        "num_truncated",
        "num_merged",
        "resume_fingerprint",
        "input_hashes",
        "truncated",
    }
)
#: metadata keys that describe the sharding
SHARD_KEYS = ("shard", "shard_entities_total", "shard_entities_sha256")


class EncodingTerminated(KeyboardInterrupt):
    """Raised when SIGTERM arrives while encoding; handled like Ctrl-C (the finished entities are kept)."""


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into :class:`EncodingTerminated` for the duration of the block (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be installed in the main thread
        return

    def handler(signum, frame):
        raise EncodingTerminated(f"terminated by signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _remove_stale_temporaries(output: Path) -> None:
    """Remove the temporary files of earlier writes of ``output`` (and of its partial file) that were killed."""
    for name in (output.name, partial_path(output).name):
        for stale in output.parent.glob(f".{glob.escape(name)}.*.tmp"):
            logger.info(f"Removing {stale}, left behind by an interrupted write")
            stale.unlink(missing_ok=True)


def parse_shard(value: str) -> tuple[int, int]:
    """Parse a shard specification ``"i/n"`` (0-based index ``i`` of ``n`` shards).

    :param value: the specification
    :return: the pair ``(i, n)``
    :raises ValueError: if it is malformed or out of range
    """
    index, slash, total = value.partition("/")
    try:
        shard = int(index), int(total)
    except ValueError:
        raise ValueError(f"A shard is given as 'i/n' (e.g. 0/4), got {value!r}.") from None
    if not slash:
        raise ValueError(f"A shard is given as 'i/n' (e.g. 0/4), got {value!r}.")
    _check_shard(shard)
    return shard


def _check_shard(shard: tuple[int, int]) -> None:
    if (
        not isinstance(shard, tuple | list)
        or len(shard) != 2
        or not all(isinstance(part, int) and not isinstance(part, bool) for part in shard)
    ):
        raise ValueError(f"A shard is a pair of integers (i, n), got {shard!r}.")
    index, total = shard
    if total < 1 or not 0 <= index < total:
        raise ValueError(f"Invalid shard {index}/{total}: the index is 0-based, 0 <= i < n.")


def shard_slice(num_entities: int, shard: tuple[int, int]) -> slice:
    """Return the contiguous slice of the entity list that a shard encodes.

    :param num_entities: the length of the full entity list
    :param shard: ``(i, n)``
    :return: the slice; the slices of all ``n`` shards partition ``range(num_entities)``
    """
    _check_shard(shard)
    index, total = shard
    return slice(index * num_entities // total, (index + 1) * num_entities // total)


def partial_path(output: str | os.PathLike) -> Path:
    """Return the path of the partial (resume) file of an output file.

    :param output: the features file being written
    :return: ``<output>.partial``
    """
    output = Path(output)
    return output.with_name(output.name + ".partial")


def _sha256_json(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode("utf-8")).hexdigest()


def _resume_fingerprint(encoder: EntityEncoder, metadata: Mapping[str, str]) -> str:
    """Return what a partial file must have been written with: the encoder's settings, output width and weights.

    The metadata name a checkpoint by its path; the weights are hashed as well, so that rows of a checkpoint that was
    replaced at the same path are not mixed with the new one's.
    """
    digest = hashlib.sha256(_sha256_json({**metadata, "width": getattr(encoder, "dim", None)}).encode("utf-8"))
    for value in vars(encoder).values():
        if isinstance(value, torch.nn.Module):
            for name, tensor in value.state_dict().items():
                digest.update(name.encode("utf-8"))
                digest.update(tensor.detach().cpu().contiguous().flatten().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _input_hash(entity: EntityInput) -> str:
    images = []
    for path in entity.images:
        try:
            stat = path.stat()
            images.append([str(path), stat.st_size, stat.st_mtime_ns])
        except OSError:
            images.append([str(path)])
    return _sha256_json([entity.text, images])[:16]


def _load_partial(path: Path, fingerprint: str) -> tuple[dict[str, torch.Tensor], dict[str, str], dict[str, tuple]]:
    """Load a partial file; return rows, input hashes and (truncated, num_images) of finished entities."""
    try:
        partial = load_features(path)
        fingerprint_matches = partial.metadata.get("resume_fingerprint") == fingerprint
        hashes = json.loads(partial.metadata.get("input_hashes", "[]"))
        truncated = json.loads(partial.metadata.get("truncated", "[]"))
        num_images = partial.num_images if partial.num_images is not None else torch.zeros(len(partial.labels))
        rows = {label: partial.vectors[i] for i, label in enumerate(partial.labels)}
        extra = {label: (bool(truncated[i]), int(num_images[i])) for i, label in enumerate(partial.labels)}
    except (FeaturesFileError, ValueError, IndexError, KeyError, TypeError) as error:
        # e.g. truncated by a full disk: the user needs the way out, not only the diagnosis
        raise EncodingInputError(
            f"The partial file {path} is unreadable ({error}). It only holds the finished entities of an interrupted "
            "encode: delete it, or pass resume=False (--restart) to encode everything again."
        ) from None
    if not fingerprint_matches:
        raise EncodingInputError(
            f"The partial file {path} was written with different encoder settings or weights. Delete it, or pass "
            "resume=False (--restart) to encode everything again."
        )
    return rows, dict(zip(partial.labels, hashes)), extra


def encode_entities(
    encoder: EntityEncoder,
    texts: Mapping[str, str],
    images: Mapping[str, Sequence[str | os.PathLike]] | None = None,
    *,
    output: str | os.PathLike | None = None,
    entities: Sequence[str] | None = None,
    batch_size: int = 32,
    shard: tuple[int, int] | None = None,
    resume: bool = True,
    overwrite: bool = False,
    checkpoint_interval: float = 60.0,
    progress: bool = True,
) -> EntityFeatures:
    """Encode entities and (optionally) write the features file.

    :param encoder: the encoder, e.g. :class:`~pykeen_vbkgc.encoders.VisualBertEncoder`
    :param texts: the text of each entity
    :param images: the image files of each entity (entities without images may be left out)
    :param output: the features file to write; None only returns the features (no resuming)
    :param entities: the entities to encode, in output order; defaults to the labels of ``texts``
    :param batch_size: entities per forward pass
    :param shard: ``(i, n)``: encode only the ``i``-th of ``n`` contiguous slices of the entity list (0-based)
    :param resume: continue from ``<output>.partial`` if it exists; False discards it
    :param overwrite: replace an existing output file
    :param checkpoint_interval: seconds between updates of the partial file
    :param progress: show a progress bar
    :return: the features of the encoded entities (those of the shard, if sharded)
    :raises EncodingInputError: for unusable inputs, an existing output without ``overwrite``, or a partial file
        from other settings
    """
    batch_size = check_positive_int("batch_size", batch_size)
    all_entities = check_inputs(texts, images, entities)
    images = dict(images or {})
    if images and not encoder.uses_images:
        raise EncodingInputError(
            f"Images are given for {len(images)} entities, but the {type(encoder).__name__} does not use images; "
            "leave the images out or use a VisualBERT encoder with an image backbone."
        )
    metadata = encoder.metadata()
    # the encoder's own settings (before the shard's are added): what a partial file must have been written with
    settings = dict(metadata)
    fingerprint = None
    selected = all_entities
    if shard is not None:
        selected = all_entities[shard_slice(len(all_entities), shard)]
        if not selected:
            raise EncodingInputError(
                f"Shard {shard[0]}/{shard[1]} holds no entity: {len(all_entities)} entities make at most "
                f"{len(all_entities)} shards."
            )
        metadata.update(
            shard=f"{shard[0]}/{shard[1]}",
            shard_entities_total=str(len(all_entities)),
            shard_entities_sha256=_sha256_json(list(all_entities)),
        )
    inputs = [
        EntityInput(label=label, text=texts[label], images=tuple(Path(p) for p in images.get(label, ())))
        for label in selected
    ]
    hashes = {entity.label: _input_hash(entity) for entity in inputs}

    rows: dict[str, torch.Tensor] = {}
    extra: dict[str, tuple] = {}
    partial = None
    if output is not None:
        output = Path(output)
        # before any encoding: the work would be lost when the file cannot be written
        check_output_file(output)
        if output.exists() and not overwrite:
            raise EncodingInputError(
                f"The output file {output} exists; pass overwrite=True (--overwrite) to replace it."
            )
        partial = partial_path(output)
        if partial.is_dir():
            raise EncodingInputError(f"{partial} is a directory; the resume file of {output} goes there.")
        # only with a partial file to read or write: it hashes the weights
        fingerprint = _resume_fingerprint(encoder, settings)
        _remove_stale_temporaries(output)
        if partial.exists() and not resume:
            partial.unlink()
        elif partial.exists():
            old_rows, old_hashes, old_extra = _load_partial(partial, fingerprint)
            for label, row in old_rows.items():
                if hashes.get(label) is not None and old_hashes.get(label) == hashes[label]:
                    rows[label] = row
                    extra[label] = old_extra[label]
            logger.info(f"Resuming from {partial}: {len(rows):,} of {len(inputs):,} entities are done")

    def write_partial() -> None:
        if partial is None or not rows:
            return
        labels = list(rows)
        save_features(
            partial,
            labels,
            torch.stack([rows[label] for label in labels]),
            metadata={
                "resume_fingerprint": fingerprint,
                "input_hashes": json.dumps([hashes.get(label, "") for label in labels]),
                "truncated": json.dumps([extra[label][0] for label in labels]),
            },
            num_images=torch.as_tensor([extra[label][1] for label in labels], dtype=torch.long),
        )

    # longest first: batches of similar length waste less padding, and a too-large batch fails at once
    todo = sorted(
        (entity for entity in inputs if entity.label not in rows),
        key=lambda entity: (len(entity.text), len(entity.images)),
        reverse=True,
    )
    last_checkpoint = time.monotonic()
    written = len(rows)
    bar = tqdm(total=len(inputs), initial=len(rows), unit="entity", desc="Encoding", disable=not progress)
    try:
        # SIGTERM (timeout, kill, batch schedulers) keeps the finished entities, as Ctrl-C does
        with _sigterm_as_interrupt():
            for start in range(0, len(todo), batch_size):
                batch = todo[start : start + batch_size]
                result = encoder.encode(batch)
                for i, entity in enumerate(batch):
                    rows[entity.label] = result.vectors[i]
                    extra[entity.label] = (bool(result.truncated[i]), int(result.num_images[i]))
                bar.update(len(batch))
                if partial is not None and time.monotonic() - last_checkpoint > checkpoint_interval:
                    write_partial()
                    written, last_checkpoint = len(rows), time.monotonic()
    except BaseException:
        if len(rows) > written:
            logger.warning(f"Interrupted: keeping {len(rows):,} finished entities in {partial} for resuming")
            write_partial()
        raise
    finally:
        bar.close()

    labels = [entity.label for entity in inputs]
    num_truncated = sum(extra[label][0] for label in labels)
    if num_truncated:
        logger.warning(
            f"{num_truncated:,} of {len(labels):,} texts were truncated to {metadata.get('max_length')} tokens"
        )
    metadata.update(num_truncated=str(num_truncated), device=str(getattr(encoder, "device", "cpu")))
    features = EntityFeatures(
        labels=tuple(labels),
        vectors=torch.stack([rows[label] for label in labels]).float(),
        metadata=metadata,
        num_images=torch.as_tensor([extra[label][1] for label in labels], dtype=torch.long),
    )
    if output is not None:
        save_features(output, features)
        if partial is not None:
            partial.unlink(missing_ok=True)
    return features


def _encoder_settings(features: EntityFeatures) -> dict[str, str]:
    return {k: v for k, v in features.metadata.items() if k not in RUN_KEYS and k not in SHARD_KEYS}


def merge_features(
    paths: Sequence[str | os.PathLike],
    output: str | os.PathLike | None = None,
    *,
    expected_labels: Sequence[str] | None = None,
    overwrite: bool = False,
) -> EntityFeatures:
    """Merge features files (e.g. the shards of one encoding run) into one, checking that they fit together.

    Checks: all files have the same dimension and encoder settings; no entity is in two files; if the files are
    shards, all ``n`` shards of the same entity list are there, each once; if ``expected_labels`` is given, exactly
    these entities are covered. Shards are merged in shard order, which restores the original entity order.

    :param paths: the features files
    :param output: where to write the merged file (atomically); None only returns it
    :param expected_labels: the entities that the merged file must cover exactly
    :param overwrite: replace an existing output file
    :return: the merged features
    :raises FeaturesFileError: for gaps, overlaps, or dimension or encoder mismatches
    """
    if not paths:
        raise FeaturesFileError("merge_features needs at least one features file.")
    if output is not None and Path(output).exists() and not overwrite:
        raise FeaturesFileError(f"The output file {output} exists; pass overwrite=True (--overwrite) to replace it.")
    parts = [(str(path), load_features(path)) for path in paths]
    first_path, first = parts[0]
    for path, part in parts[1:]:
        if part.dim != first.dim:
            raise FeaturesFileError(f"Dimension mismatch: {first_path} has dim {first.dim}, {path} has dim {part.dim}.")
        a, b = _encoder_settings(first), _encoder_settings(part)
        differing = sorted(key for key in a.keys() | b.keys() if a.get(key) != b.get(key))
        if differing:
            details = "; ".join(f"{key}: {a.get(key)!r} vs {b.get(key)!r}" for key in differing[:5])
            raise FeaturesFileError(f"Encoder mismatch between {first_path} and {path}: {details}.")

    sharded = [part.metadata.get("shard") is not None for _, part in parts]
    if any(sharded):
        if not all(sharded):
            plain = [path for (path, _), is_shard in zip(parts, sharded) if not is_shard]
            raise FeaturesFileError(f"Some files are shards and some are not (not shards: {plain}).")
        parts = _check_shards(parts)

    owner: dict[str, str] = {}
    overlaps: list[str] = []
    for path, part in parts:
        for label in part.labels:
            if label in owner:
                overlaps.append(f"{label!r} ({owner[label]} and {path})")
            else:
                owner[label] = path
    if overlaps:
        raise FeaturesFileError(f"{len(overlaps)} entities are in more than one file: {', '.join(overlaps[:5])}")
    if expected_labels is not None:
        expected = set(expected_labels)
        missing = [label for label in expected_labels if label not in owner]
        unexpected = [label for label in owner if label not in expected]
        if missing:
            raise FeaturesFileError(f"{len(missing)} expected entities are in no file (gap): {missing[:5]}")
        if unexpected:
            raise FeaturesFileError(f"{len(unexpected)} entities are not expected: {unexpected[:5]}")

    metadata = _encoder_settings(first)
    num_truncated = sum(_metadata_int(path, part, "num_truncated", default=0) for path, part in parts)
    metadata.update(num_truncated=str(num_truncated), num_merged=str(len(parts)))
    has_images = all(part.num_images is not None for _, part in parts)
    merged = EntityFeatures(
        labels=tuple(label for _, part in parts for label in part.labels),
        vectors=torch.cat([part.vectors for _, part in parts]),
        metadata=metadata,
        num_images=torch.cat([part.num_images for _, part in parts]) if has_images else None,
    )
    if output is not None:
        save_features(output, merged)
    return merged


def _metadata_int(path: str, features: EntityFeatures, key: str, default: int) -> int:
    """Read an integer from a features file's metadata (written by encode; a foreign file may hold anything)."""
    value = features.metadata.get(key, str(default))
    if not value.isdigit():
        raise FeaturesFileError(f"{path}: its {key!r} metadata must be a non-negative integer, got {value!r}.")
    return int(value)


def _check_shards(parts: list[tuple[str, EntityFeatures]]) -> list[tuple[str, EntityFeatures]]:
    """Check that shard files are all shards of one entity list, each once; return them in shard order."""
    by_index: dict[int, str] = {}
    first_path, first = parts[0]
    total = first.metadata["shard"].partition("/")[2]
    for path, part in parts:
        index, _, count = part.metadata["shard"].partition("/")
        if not (index.isdigit() and count.isdigit()):
            raise FeaturesFileError(f"{path}: its 'shard' metadata must be 'i/n', got {part.metadata['shard']!r}.")
        for key in ("shard_entities_total", "shard_entities_sha256"):
            if part.metadata.get(key) != first.metadata.get(key):
                raise FeaturesFileError(
                    f"{path} and {first_path} are shards of different entity lists ({key} differs)."
                )
        if count != total:
            raise FeaturesFileError(f"{path} is a shard of {count}, but {first_path} is a shard of {total}.")
        if int(index) in by_index:
            raise FeaturesFileError(
                f"Shard {index}/{count} is given twice (overlap): {by_index[int(index)]} and {path}."
            )
        by_index[int(index)] = path
    missing = sorted(set(range(int(total))) - set(by_index))
    if missing:
        raise FeaturesFileError(
            f"Shards are missing (gap): {', '.join(f'{i}/{total}' for i in missing)}; got {len(by_index)} of {total}."
        )
    parts = sorted(parts, key=lambda item: int(item[1].metadata["shard"].partition("/")[0]))
    num_labels = sum(len(part.labels) for _, part in parts)
    if str(num_labels) != first.metadata.get("shard_entities_total"):
        raise FeaturesFileError(
            f"The shards hold {num_labels} entities, but the entity list has {first.metadata['shard_entities_total']}."
        )
    return parts
