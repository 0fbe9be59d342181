r"""The paper's hyper-parameter search space (Sec. 5.3), ready for :func:`pykeen.hpo.hpo_pipeline`.

The model carries its part as ``hpo_default`` (embedding dimension 128). The paper's margins belong to its loss (Eq. 15,
``meanmarginranking``), and PyKEEN takes learning-rate and batch-size ranges only from ``hpo_pipeline``'s own
arguments, so this module provides the loss and those ranges::

    from pykeen.hpo import hpo_pipeline
    from pykeen_vbkgc.hpo import PAPER_HPO_RANGES

    hpo_pipeline(dataset="nations", model="vbkgc", negative_sampler="twins", n_trials=30, **PAPER_HPO_RANGES)

The paper tunes "the number of batches" in {100, 400}; PyKEEN tunes the batch size instead. Use
:func:`batch_sizes_for` to turn numbers of batches into batch sizes for a given training set.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from .defaults import PAPER

__all__ = [
    "PAPER_HPO_RANGES",
    "PAPER_LEARNING_RATES",
    "PAPER_MARGINS",
    "PAPER_NUMBERS_OF_BATCHES",
    "batch_sizes_for",
    "paper_hpo_ranges",
]

PAPER_MARGINS = (4.0, 6.0, 8.0, 10.0)
PAPER_LEARNING_RATES = (2e-5, 1e-4, 5e-4, 1e-3)
PAPER_NUMBERS_OF_BATCHES = (100, 400)


def batch_sizes_for(num_triples: int, numbers_of_batches: Iterable[int] = PAPER_NUMBERS_OF_BATCHES) -> list[int]:
    """Convert numbers of batches per epoch into batch sizes.

    :param num_triples: the number of training triples
    :param numbers_of_batches: the numbers of batches per epoch
    :return: the batch sizes, one per number of batches, in the same order
    """
    sizes = []
    for number in numbers_of_batches:
        if number < 1:
            raise ValueError(f"The number of batches must be positive, got {number}.")
        sizes.append(max(1, math.ceil(num_triples / number)))
    return sizes


def paper_hpo_ranges(
    batch_sizes: Iterable[int] | None = None,
) -> dict[str, Mapping[str, Mapping[str, Any]]]:
    """Return ``hpo_pipeline`` keyword arguments with the paper's grid.

    :param batch_sizes: the batch sizes to try (see :func:`batch_sizes_for`); defaults to {64, 256}, which suits
        small graphs such as Nations
    :return: ``loss`` (the paper's Eq. 15), ``model_kwargs_ranges``, ``loss_kwargs_ranges``,
        ``optimizer_kwargs_ranges`` and ``training_kwargs_ranges``
    """
    batch_sizes = sorted(set(batch_sizes or (64, 256)))
    return dict(
        # the margins are the paper's for its own loss; VBKGC's default loss is its preset's, which may differ
        loss=PAPER.loss,
        model_kwargs_ranges=dict(embedding_dim=dict(type="categorical", choices=[128])),
        loss_kwargs_ranges=dict(margin=dict(type="categorical", choices=list(PAPER_MARGINS))),
        optimizer_kwargs_ranges=dict(lr=dict(type="categorical", choices=list(PAPER_LEARNING_RATES))),
        training_kwargs_ranges=dict(batch_size=dict(type="categorical", choices=batch_sizes)),
    )


#: the paper's grid with batch sizes {64, 256}; use :func:`paper_hpo_ranges` for other graph sizes
PAPER_HPO_RANGES = paper_hpo_ranges()
