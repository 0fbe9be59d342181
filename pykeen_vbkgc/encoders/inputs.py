"""Reading the encoder's inputs: entity texts, entity image lists, and the images themselves.

Texts come as a mapping ``label -> text``:

- TSV: one ``label<TAB>text`` line per entity (no header; a text may contain further tabs, which are kept),
- JSON: an object ``{"label": "text", ...}``.

Images come as a mapping ``label -> [path, ...]`` (zero or more files per entity):

- a directory with one sub-directory per entity, holding its image files (sorted by file name),
- TSV: ``label<TAB>path`` lines, one per image; relative paths are relative to the TSV's directory.

Freebase labels such as ``/m/06rf7`` cannot be directory names; image collections for FB15k(-237) name their
directories ``m.06rf7``, which ``dir_names="freebase"`` maps back.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Literal

from PIL import Image, UnidentifiedImageError

__all__ = [
    "IMAGE_SUFFIXES",
    "EncodingInputError",
    "check_inputs",
    "load_image",
    "read_images",
    "read_texts",
]

logger = logging.getLogger(__name__)

#: file name suffixes that count as images in a per-entity image directory
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff"})

DirNames = Literal["label", "freebase"]


class EncodingInputError(ValueError):
    """Raised for encoder inputs (texts, images, entity lists) that cannot be used."""


def _examples(items: Iterable[object], k: int = 5) -> str:
    items = list(items)
    suffix = ", ..." if len(items) > k else ""
    return ", ".join(repr(item) for item in items[:k]) + suffix


def read_texts(path: str | os.PathLike) -> dict[str, str]:
    """Read entity texts from a TSV (``label<TAB>text``) or JSON (``{label: text}``) file.

    The format is chosen by the suffix: ``.json`` is JSON, anything else TSV, whose labels are stripped of surrounding
    whitespace like the labels of triples files.

    :param path: the file
    :return: the texts, in file order
    :raises EncodingInputError: for a missing file, a file that is not UTF-8, a malformed line, a duplicate label or
        a non-string text
    """
    path = Path(path)
    if path.is_dir():
        raise EncodingInputError(f"{path} is a directory, not a texts file (label<TAB>text lines, or a JSON object).")
    if not path.is_file():
        raise EncodingInputError(f"Texts file not found: {path}")
    try:
        return _read_texts(path)
    except UnicodeDecodeError as error:
        raise EncodingInputError(f"{path} is not UTF-8 text: {error}") from None


def _read_texts(path: Path) -> dict[str, str]:
    # utf-8-sig: a byte order mark at the start is no part of the first label
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8-sig"))
        except json.JSONDecodeError as error:
            raise EncodingInputError(f"{path} is not valid JSON: {error}") from error
        if not isinstance(data, dict):
            raise EncodingInputError(f"{path} must hold a JSON object mapping entity labels to texts.")
        bad = [label for label, text in data.items() if not isinstance(text, str)]
        if bad:
            raise EncodingInputError(f"{path}: the texts of {len(bad)} labels are not strings: {_examples(bad)}")
        return dict(data)
    texts: dict[str, str] = {}
    with path.open(encoding="utf-8-sig") as file:
        for line_number, line in enumerate(file, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            label, tab, text = line.partition("\t")
            # stripped like the labels of the triples files, which they must match
            label = label.strip()
            if not tab or not label:
                raise EncodingInputError(f"{path}:{line_number}: expected 'label<TAB>text', got {line[:80]!r}")
            if label in texts:
                raise EncodingInputError(f"{path}:{line_number}: duplicate entity label {label!r}")
            texts[label] = text
    return texts


def _label_from_dir_name(name: str, dir_names: DirNames) -> str:
    if dir_names == "label":
        return name
    if dir_names == "freebase":
        # m.06rf7 -> /m/06rf7 (the naming of the FB15k image collections)
        return "/" + name.replace(".", "/", 1)
    raise EncodingInputError(f"Unknown dir_names={dir_names!r}; use 'label' or 'freebase'.")


def read_images(path: str | os.PathLike, *, dir_names: DirNames = "label") -> dict[str, list[Path]]:
    """Read the image lists of entities from a directory of per-entity directories or a TSV file.

    :param path: a directory (one sub-directory per entity) or a TSV file (``label<TAB>path`` per image)
    :param dir_names: how directory names map to entity labels: ``"label"`` (the name is the label) or
        ``"freebase"`` (``m.06rf7`` is ``/m/06rf7``); only used for directories
    :return: the image paths of each entity that has at least one image; sorted by name within a directory, in
        file order for a TSV
    :raises EncodingInputError: for a missing path, a TSV file that is not UTF-8, a malformed line, or an image file
        that does not exist
    """
    path = Path(path)
    images: dict[str, list[Path]] = {}
    if path.is_dir():
        for entity_dir in sorted(p for p in path.iterdir() if p.is_dir()):
            files = sorted(p for p in entity_dir.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if files:
                images[_label_from_dir_name(entity_dir.name, dir_names)] = files
        return images
    if not path.is_file():
        raise EncodingInputError(f"Images path not found (expected a directory or a TSV file): {path}")
    missing: list[str] = []
    try:
        lines = path.read_text(encoding="utf-8-sig").split("\n")
    except UnicodeDecodeError as error:
        raise EncodingInputError(f"{path} is not UTF-8 text: {error}") from None
    for line_number, line in enumerate(lines, start=1):
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        label, tab, image = line.partition("\t")
        if not tab or not label or not image:
            raise EncodingInputError(f"{path}:{line_number}: expected 'label<TAB>image path', got {line[:80]!r}")
        image_path = Path(image)
        if not image_path.is_absolute():
            image_path = path.parent / image_path
        if not image_path.is_file():
            missing.append(f"{image_path} (line {line_number}, entity {label!r})")
        images.setdefault(label, []).append(image_path)
    if missing:
        raise EncodingInputError(f"{len(missing)} image files listed in {path} do not exist: {_examples(missing, 3)}")
    return images


def check_inputs(
    texts: Mapping[str, str],
    images: Mapping[str, Sequence[str | os.PathLike]] | None,
    entities: Sequence[str] | None = None,
) -> tuple[str, ...]:
    """Check that texts, images and the entity list fit together; return the entity list.

    :param texts: the entity texts
    :param images: the image paths of entities; labels without images may be left out
    :param entities: the entities to encode, in output order; defaults to the labels of ``texts``
    :return: the entities to encode
    :raises EncodingInputError: for an empty entity list, duplicate entities, entities without text, empty texts,
        or images of unknown entities
    """
    if isinstance(entities, str):
        raise EncodingInputError(f"entities must be a sequence of entity labels, not the string {entities!r}.")
    given = () if entities is None else tuple(entities)
    not_labels = [e for e in (*texts, *given, *(images or {})) if not isinstance(e, str)]
    entities = given if entities is not None else tuple(texts)
    if not entities:
        raise EncodingInputError("There are no entities to encode.")
    if not_labels:
        raise EncodingInputError(f"Entity labels must be strings, got {_examples(not_labels)}.")
    not_texts = [label for label, text in texts.items() if not isinstance(text, str)]
    if not_texts:
        raise EncodingInputError(f"The texts of {len(not_texts)} entities are not strings: {_examples(not_texts)}")
    not_lists = [label for label, paths in (images or {}).items() if isinstance(paths, str | os.PathLike)]
    if not_lists:
        raise EncodingInputError(
            f"The images of an entity are a sequence of paths, but {len(not_lists)} entities have a single path: "
            f"{_examples(not_lists)}"
        )
    if len(set(entities)) != len(entities):
        seen: set[str] = set()
        duplicates = [e for e in entities if e in seen or seen.add(e)]
        raise EncodingInputError(f"The entity list has {len(duplicates)} duplicates: {_examples(duplicates)}")
    no_text = [e for e in entities if e not in texts]
    if no_text:
        raise EncodingInputError(f"{len(no_text)} entities have no text (unknown entity labels): {_examples(no_text)}")
    empty = [e for e in entities if not texts[e].strip()]
    if empty:
        raise EncodingInputError(
            f"{len(empty)} entities have an empty text: {_examples(empty)}. "
            "Give every entity at least its name as text."
        )
    if images:
        known = set(entities)
        unknown = [label for label in images if label not in known]
        if unknown:
            raise EncodingInputError(
                f"Images are given for {len(unknown)} entity labels that are not among the {len(entities)} entities "
                f"to encode: {_examples(unknown)}. Check the label spelling (for FB15k directories named 'm.xxx' "
                "use dir_names='freebase' / --image-dir-names freebase)."
            )
    return entities


def load_image(path: str | os.PathLike, *, label: str | None = None) -> Image.Image:
    """Load an image fully (so that truncated files fail here) and convert it to RGB.

    :param path: the image file
    :param label: the entity the image belongs to, for the error message
    :return: the RGB image
    :raises EncodingInputError: if the file is missing, not an image, or corrupt
    """
    owner = "" if label is None else f" (entity {label!r})"
    try:
        with Image.open(path) as image:
            image.load()
            return image.convert("RGB")
    except FileNotFoundError as error:
        raise EncodingInputError(f"Image file not found: {path}{owner}") from error
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise EncodingInputError(f"Cannot read image {path}{owner}: {error}") from error
