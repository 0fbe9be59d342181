"""Shared fixtures for the dataset tests: the location of the offline benchmark data and tiny dataset directories."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

#: the offline benchmark copies (see ../shared/data/README.md)
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_directory(name: str) -> Path:
    """Return a directory of the shared data, skipping the test if it is absent."""
    directory = SHARED_DATA / name
    if not (directory / "train.txt").is_file():
        pytest.skip(f"offline benchmark data not found at {directory} (expected a checkout next to ../shared/data)")
    return directory


TINY_TRIPLES = {
    "train.txt": [
        ("/m/01", "/r/a", "/m/02"),
        ("/m/02", "/r/b", "/m/03"),
        ("/m/03", "/r/a", "/m/04"),
        ("/m/04", "/r/b", "/m/01"),
    ],
    "valid.txt": [("/m/01", "/r/b", "/m/03")],
    # /m/05 occurs only in the test split
    "test.txt": [("/m/02", "/r/a", "/m/05")],
}
TINY_NAMES = {"/m/01": "Alpha", "/m/02": "Beta", "/m/03": "Gamma", "/m/04": "Delta", "/m/99": "Not in any triple"}
TINY_WIKIDATA = {
    "/m/01": {"label": "Alpha", "description": "the first letter"},
    "/m/02": {"label": "Beta", "description": ""},
    "/m/05": {"label": "Epsilon", "description": "the fifth letter"},
}


def write_tiny_fb(directory: Path, *, checksums: bool = True) -> Path:
    """Write a tiny dataset directory in the FB15k-237 layout (with ``SHA256SUMS`` unless disabled)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, triples in TINY_TRIPLES.items():
        (directory / name).write_text("".join("\t".join(triple) + "\n" for triple in triples), encoding="utf-8")
    (directory / "entity2text.txt").write_text(
        "".join(f"{label}\t{name}\n" for label, name in TINY_NAMES.items()), encoding="utf-8"
    )
    (directory / "entity2wikidata.json").write_text(json.dumps(TINY_WIKIDATA), encoding="utf-8")
    (directory / "relation2text.txt").write_text("/r/a\trelation a\n", encoding="utf-8")
    if checksums:
        write_checksums(directory)
    return directory


def write_checksums(directory: Path) -> None:
    """Write a ``SHA256SUMS`` file for all other files of a directory."""
    lines = [
        f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.name}\n"
        for path in sorted(directory.iterdir())
        if path.is_file() and path.name != "SHA256SUMS"
    ]
    (directory / "SHA256SUMS").write_text("".join(lines), encoding="utf-8")
