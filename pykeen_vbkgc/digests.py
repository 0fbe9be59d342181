"""Digests of the inputs that saved state depends on, so that it is reused only with the same contents.

A resumed ``train --output`` run, a cached result row of the examples and an HPO study shared by workers record the
SHA-256 of the training triples (as a set of labelled triples: the file's order, name and place do not count) and of
the features file, not only their names: a graph or a features file rewritten at the same path is another input.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pykeen.triples import CoreTriplesFactory

__all__ = [
    "file_sha256",
    "input_digests",
    "triples_sha256",
]


def file_sha256(path: str | os.PathLike) -> str:
    """Return the SHA-256 of a file's bytes (hexadecimal).

    :param path: the file
    :return: the digest
    """
    digest = hashlib.sha256()
    with Path(path).open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def triples_sha256(triples_factory: CoreTriplesFactory) -> str:
    """Return the SHA-256 of a factory's triples as a set, with the labels of their ids (hexadecimal).

    :param triples_factory: the triples (labelled or not)
    :return: the digest
    """
    import torch

    labels = [
        sorted(getattr(triples_factory, "entity_to_id", {}).items()),
        sorted(getattr(triples_factory, "relation_to_id", {}).items()),
    ]
    digest = hashlib.sha256(json.dumps(labels, ensure_ascii=False).encode("utf-8"))
    # sorted and without repeats: the same triples in another order are the same graph
    triples = torch.unique(triples_factory.mapped_triples.cpu(), dim=0).to(torch.int64).contiguous()
    digest.update(triples.numpy().tobytes())
    return digest.hexdigest()


def input_digests(training: CoreTriplesFactory, features: str | os.PathLike | None) -> dict[str, str | None]:
    """Return the digests of a run's inputs, shortened to 16 hexadecimal digits (enough to tell changes apart).

    :param training: the training triples
    :param features: the features file, or None for random features
    :return: ``training_triples_sha256`` and ``features_sha256`` (None without a file)
    """
    return dict(
        training_triples_sha256=triples_sha256(training)[:16],
        features_sha256=None if features is None else file_sha256(features)[:16],
    )
