"""The margin ranking loss against the mean of the negatives (Eq. 15 of the VBKGC paper)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pykeen.losses import MarginPairwiseLoss, UnsupportedLabelSmoothingError
from pykeen.typing import BoolTensor, FloatTensor

from .defaults import BEST
from .validation import check_float32

__all__ = [
    "MeanMarginRankingLoss",
]


class MeanMarginRankingLoss(MarginPairwiseLoss):
    r"""The margin ranking loss between each positive and the mean of its negatives [zhang2022]_.

    .. math ::
        L = \sum_{(h, r, t) \in \mathcal{T}} \max\left(
            \gamma - F(h, r, t) + \frac{1}{k} \sum_{i=1}^{k} F(h'_i, r, t'_i), 0\right)

    where $\gamma$ is the margin and $(h'_i, r, t'_i)$ are the $k$ negatives of the positive triple. Unlike
    :class:`~pykeen.losses.MarginRankingLoss`, which applies the hinge to every (positive, negative) pair, the mean
    of the negative scores goes *inside* the hinge. If a filter removed some negatives of a positive, the mean runs
    over the remaining ones; a positive without any remaining negative does not contribute. With ``reduction="mean"``
    (the default) the sum over positives is divided by their number.

    It works with any model, e.g., ``pipeline(model="TransE", loss="meanmarginranking", ...)``.
    """

    #: the registration name is derived from the class name; MarginPairwiseLoss defines no synonyms to inherit
    synonyms = None

    #: Margins around the presets' (10 for ``best``, 12 for ``wn9``; docs/results.md): smaller ones leave the query's
    #: own entity first on WN9 (margin 6: Hits@1 0.02). The paper's grid (4-10) is
    #: :data:`pykeen_vbkgc.hpo.PAPER_HPO_RANGES`.
    hpo_default: ClassVar[Mapping[str, Any]] = dict(
        margin=dict(type="categorical", choices=[8.0, 10.0, 12.0, 16.0, 24.0]),
    )

    def __init__(self, margin: float = BEST.margin, reduction: str = "mean") -> None:
        r"""Initialize the loss.

        :param margin: the margin $\gamma$; the default (10) keeps the hinge active for VBKGC's five L2 terms (see
            :mod:`pykeen_vbkgc.defaults`)
        :param reduction: how to aggregate the per-positive losses, ``"mean"`` or ``"sum"``
        """
        if reduction not in ("mean", "sum"):
            raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}.")
        check_float32("margin", margin)
        super().__init__(margin=margin, margin_activation="relu", reduction=reduction)

    def process_slcwa_scores(
        self,
        positive_scores: FloatTensor,
        negative_scores: FloatTensor,
        label_smoothing: float | None = None,
        batch_filter: BoolTensor | None = None,
        num_entities: int | None = None,
        pos_weights: FloatTensor | None = None,
        neg_weights: FloatTensor | None = None,
    ) -> FloatTensor:
        """Contrast each positive score with the mean of its (kept) negative scores.

        :param positive_scores: shape: (batch_size, 1)
        :param negative_scores: shape: (batch_size, k), or (num_kept,) if ``batch_filter`` is given
        :param label_smoothing: not supported
        :param batch_filter: shape: (batch_size, k); True where a negative was kept by the sampler's filter
        :param num_entities: unused
        :param pos_weights: not supported
        :param neg_weights: not supported
        :return: the scalar loss
        """
        if label_smoothing:
            raise UnsupportedLabelSmoothingError(self)
        self._raise_on_weights(pos_weights)
        self._raise_on_weights(neg_weights)
        positive_scores = positive_scores.view(-1)
        if batch_filter is None:
            negative_means = negative_scores.view(positive_scores.shape[0], -1).mean(dim=1)
        else:
            # negative_scores holds only the kept negatives, in row-major order of batch_filter
            dense = negative_scores.new_zeros(batch_filter.shape)
            dense[batch_filter] = negative_scores.view(-1)
            counts = batch_filter.sum(dim=1)
            keep = counts > 0
            if not keep.any():
                return _no_contribution(positive_scores, negative_scores)
            negative_means = dense.sum(dim=1)[keep] / counts[keep]
            positive_scores = positive_scores[keep]
        return self(pos_scores=positive_scores, neg_scores=negative_means)

    def process_lcwa_scores(
        self,
        predictions: FloatTensor,
        labels: FloatTensor,
        label_smoothing: float | None = None,
        num_entities: int | None = None,
        weights: FloatTensor | None = None,
    ) -> FloatTensor:
        """Contrast each positive entry with the mean score of the negative entries of its row.

        :param predictions: shape: (batch_size, num_entities)
        :param labels: shape: (batch_size, num_entities); 1 for positives
        :param label_smoothing: not supported
        :param num_entities: unused
        :param weights: not supported
        :return: the scalar loss
        """
        if label_smoothing:
            raise UnsupportedLabelSmoothingError(self)
        self._raise_on_weights(weights)
        # every positive entry of a row is contrasted with the mean score of the row's negative entries
        positive = labels == 1
        negative = ~positive
        counts = negative.sum(dim=1, keepdim=True)
        negative_means = (predictions * negative).sum(dim=1, keepdim=True) / counts.clamp_min(1)
        valid = positive & (counts > 0)
        if not valid.any():
            return _no_contribution(predictions)
        return self(pos_scores=predictions[valid], neg_scores=negative_means.expand_as(predictions)[valid])


def _no_contribution(*scores: FloatTensor) -> FloatTensor:
    """Return the loss of a batch in which no positive has a negative to contrast with: zero.

    The zero is computed from the scores, so that it belongs to the autograd graph and ``backward()`` still works
    (with zero gradients); the mean over no positives would be NaN.
    """
    return sum(score.sum() for score in scores) * 0.0
