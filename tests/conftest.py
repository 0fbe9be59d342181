"""Shared fixtures for the core tests."""

import os

import pytest
import torch
from pykeen.triples import TriplesFactory

import pykeen_vbkgc  # noqa: F401  (registers our components)

os.environ.setdefault("HF_HUB_OFFLINE", "1")

#: labelled triples of a tiny graph: 6 entities, 2 relations
TINY_TRIPLES = [
    ("a", "r1", "b"),
    ("b", "r1", "c"),
    ("c", "r2", "d"),
    ("d", "r2", "e"),
    ("e", "r1", "f"),
    ("a", "r2", "c"),
    ("b", "r2", "f"),
    ("f", "r1", "a"),
]


@pytest.fixture
def tiny_factory() -> TriplesFactory:
    """Return a triples factory of a tiny labelled graph."""
    import numpy as np

    return TriplesFactory.from_labeled_triples(np.asarray(TINY_TRIPLES, dtype=str))


@pytest.fixture
def tiny_features(tiny_factory) -> torch.Tensor:
    """Return random features aligned with the tiny factory, of width 6."""
    generator = torch.Generator().manual_seed(0)
    return torch.randn(tiny_factory.num_entities, 6, generator=generator)
