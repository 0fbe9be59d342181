"""Digests of the inputs that saved state depends on."""

import hashlib

import numpy as np
from pykeen.triples import TriplesFactory

from pykeen_vbkgc.digests import file_sha256, input_digests, triples_sha256

TRIPLES = [("a", "r", "b"), ("b", "r", "c"), ("c", "s", "a")]


def factory(triples) -> TriplesFactory:
    return TriplesFactory.from_labeled_triples(np.asarray(triples, dtype=str))


def test_triples_are_digested_as_a_labelled_set():
    digest = triples_sha256(factory(TRIPLES))
    # another order, or a repeated triple, is the same graph
    assert triples_sha256(factory(TRIPLES[::-1])) == digest
    assert triples_sha256(factory([*TRIPLES, TRIPLES[0]])) == digest
    # another triple, or other labels with the same ids, is not
    assert triples_sha256(factory([*TRIPLES, ("a", "s", "c")])) != digest
    assert triples_sha256(factory([(h, r, t.replace("c", "d")) for h, r, t in TRIPLES])) != digest


def test_files_are_digested_by_their_bytes(tmp_path):
    path = tmp_path / "features.safetensors"
    path.write_bytes(b"x" * 3_000_000)  # more than one block
    assert file_sha256(path) == hashlib.sha256(b"x" * 3_000_000).hexdigest()
    digests = input_digests(factory(TRIPLES), path)
    assert digests == dict(
        training_triples_sha256=triples_sha256(factory(TRIPLES))[:16], features_sha256=file_sha256(path)[:16]
    )
    assert input_digests(factory(TRIPLES), None)["features_sha256"] is None
