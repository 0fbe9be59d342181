r"""Non-sampling training after NS-KGE [li2021]_ for any PyKEEN model: a loss and a training loop.

Negative sampling scores each positive triple against a few drawn negatives. Non-sampling training scores it
against *every* entity, with a weighted square loss whose negative part can be summed over all entities without
scoring them one by one when the interaction is a bilinear form. Two components implement it:

- :class:`NoSamplingLoss` (``loss="nosampling"``) is the weighted square loss. It works on the dense scores of
  PyKEEN's LCWA training loop, i.e., ``pipeline(training_loop="lcwa", loss="nosampling", model=...)`` runs with any
  model, at the LCWA's cost: a ``(batch_size, num_entities)`` score matrix per batch.
- :class:`NoSamplingTrainingLoop` (``training_loop="nosampling"``) computes the same loss without that matrix:
  through the decomposition of [li2021]_ when the model's interaction is a bilinear form (see
  :func:`bilinear_form`), else exactly but in chunks of entities, each with its own backward pass, so that memory
  is bounded by the chunk. By default it scores both sides of each positive, heads and tails.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Literal

import torch
from pykeen.losses import Loss, UnsupportedLabelSmoothingError
from pykeen.models import ERModel
from pykeen.nn.modules import (
    ClampedInteraction,
    ComplExInteraction,
    DistMultInteraction,
    Interaction,
    LineaREInteraction,
    PairREInteraction,
    RESCALInteraction,
    RotatEInteraction,
    SEInteraction,
    SimplEInteraction,
    TorusEInteraction,
    TransDInteraction,
    TransEInteraction,
    TransHInteraction,
    TransRInteraction,
    TripleREInteraction,
    UMInteraction,
)
from pykeen.training import LCWATrainingLoop
from pykeen.training.training_loop import NonFiniteLossError
from pykeen.triples import CoreTriplesFactory, LCWAInstances
from pykeen.triples.instances import LCWABatch
from pykeen.typing import COLUMN_HEAD, COLUMN_TAIL, BoolTensor, FloatTensor, InductiveMode, LongTensor
from torch.utils.data import DataLoader, Dataset

from .device_sampling import has_regularizer
from .interaction import VBKGCInteraction
from .validation import check_positive_int

__all__ = [
    "DEFAULT_MAX_CHUNK_SCORES",
    "NoSamplingLoss",
    "NoSamplingTrainingLoop",
    "bilinear_form",
    "supports_bilinear_form",
]

#: the number of scores ``rows x entities`` that one chunk of the chunked exact form holds at most by default
DEFAULT_MAX_CHUNK_SCORES = 2**18

#: interactions whose scores are negative (powered) distances, i.e., never above 0
_DISTANCE_INTERACTIONS: tuple[type[Interaction], ...] = (
    TransEInteraction,
    TransHInteraction,
    TransRInteraction,
    TransDInteraction,
    RotatEInteraction,
    TorusEInteraction,
    PairREInteraction,
    TripleREInteraction,
    LineaREInteraction,
    SEInteraction,
    UMInteraction,
    VBKGCInteraction,
)

Side = Literal["head", "tail"]
#: the column of the target entity of each side in PyKEEN's triples
_SIDE_COLUMN: Mapping[Side, int] = {"head": COLUMN_HEAD, "tail": COLUMN_TAIL}


def _check_number(name: str, value: Any, *, positive: bool) -> float:
    """Return ``value`` as a float if it is a finite (and, if requested, positive) number, else raise."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}.")
    if positive and not value > 0:
        raise ValueError(f"{name} must be positive, got {value!r}.")
    return float(value)


class NoSamplingLoss(Loss):
    r"""The weighted square loss of non-sampling training (NS-KGE) [li2021]_, over all entities of each query.

    For a query $q = (h, r)$ with the set $\mathcal{T}_q$ of its training tails, every entity $e \in \mathcal{E}$
    is a candidate: the positives $e \in \mathcal{T}_q$ and all others as negatives, with no sampling. With the score
    $s_{qe} = f(h, r, e)$ of the model, the loss of the query is

    .. math ::
        L_q = \sum_{e \in \mathcal{T}_q} c^{+} \left(s_{qe} - y^{+}\right)^2
            + \sum_{e \in \mathcal{E} \setminus \mathcal{T}_q} c^{-} \left(s_{qe} - y^{-}\right)^2

    with the positive and negative weights $c^{+}$ and $c^{-}$ and targets $y^{+}$ and $y^{-}$ (NS-KGE: $y^{+} = 1$,
    $y^{-} = 0$, $c^{-} \ll c^{+}$, since negatives outnumber positives). Head queries $(r, t)$ are treated the
    same way. With ``reduction="mean"`` (the default) the losses of the queries of a batch are averaged, with
    ``"sum"`` summed. Rewritten as in [li2021]_, the negative sum runs over *all* entities and the positives correct
    it:

    .. math ::
        L_q = c^{-} \sum_{e \in \mathcal{E}} \left(s_{qe} - y^{-}\right)^2
            + \sum_{e \in \mathcal{T}_q} \left[c^{+} \left(s_{qe} - y^{+}\right)^2
            - c^{-} \left(s_{qe} - y^{-}\right)^2\right]

    If the score is a bilinear form $s_{qe} = \langle \mathbf{q}, \boldsymbol{\psi}_e \rangle$ of a query vector
    and a candidate vector (DistMult, ComplEx, RESCAL, SimplE, and TransE with the squared L2 distance; see
    :func:`bilinear_form`), the first sum needs only the mean $\boldsymbol{\mu}$ and the scatter matrix
    $\mathbf{C} = \sum_e (\boldsymbol{\psi}_e - \boldsymbol{\mu})(\boldsymbol{\psi}_e - \boldsymbol{\mu})^\top$
    of the candidate vectors, computed once per batch:

    .. math ::
        \sum_{e \in \mathcal{E}} \left(s_{qe} - y^{-}\right)^2
            = |\mathcal{E}| \left(\langle \mathbf{q}, \boldsymbol{\mu} \rangle - y^{-}\right)^2
            + \mathbf{q}^\top \mathbf{C} \mathbf{q}

    which costs $O((|\mathcal{B}| + |\mathcal{E}|) k^2)$ for $k$-dimensional vectors instead of
    $O(|\mathcal{B}| |\mathcal{E}| k)$ and never holds a ``(batch, entities)`` matrix (:meth:`process_bilinear_scores`;
    [li2021]_ expand the Gram matrix; centring it keeps both terms non-negative, which avoids cancellation in
    ``float32``).

    Differences to [li2021]_: the paper sums the negatives over the whole tensor $\mathcal{E} \times \mathcal{R}
    \times \mathcal{E}$ and trains on all triples at once; here, as in PyKEEN's LCWA, the negatives of a batch are
    those of its queries, so that one epoch covers every query that occurs in training (every query $(h, r)$ and,
    with :class:`NoSamplingTrainingLoop`'s default ``target="both"``, every $(r, t)$) against all entities, and
    mini-batches work. The targets are free parameters here because PyKEEN's scores are not all similarities: for
    negative distances (TransE, VBKGC) $y^{+} = 1$ cannot be reached, and NS-KGE's own TransE variant corresponds to
    $y^{+} = 0$, $y^{-} = -3$ on the score $-\|\mathbf{h} + \mathbf{r} - \mathbf{t}\|_2^2$ of unit vectors (it fits
    $3 - \|\mathbf{h} + \mathbf{r} - \mathbf{t}\|_2^2$ to 3 and 0; 3 is the squared distance of unrelated ones).

    Use it with PyKEEN's LCWA loop and any model, ``pipeline(training_loop="lcwa", loss="nosampling", ...)``, or with
    :class:`NoSamplingTrainingLoop`, which avoids the dense scores. The sLCWA loop is refused: with sampled negatives
    this would not be non-sampling training.
    ---
    citation:
        author: Li
        year: 2021
        link: https://arxiv.org/abs/2104.10796
        github: rutgerswiselab/NS-KGE
    """

    #: the registration name is derived from the class name
    synonyms = None

    #: The default strategy for optimizing the loss's hyper-parameters. Only the ratio $c^{-} / c^{+}$ matters
    #: under Adam-type optimizers (they are invariant to the scale of the loss), so $c^{+}$ stays 1 and $c^{-}$ is
    #: searched on a log scale; the targets depend on the model's score range and are not searched.
    hpo_default: ClassVar[Mapping[str, Any]] = dict(
        positive_weight=dict(type="categorical", choices=[1.0]),
        negative_weight=dict(type=float, low=1.0e-05, high=1.0e-01, log=True),
    )

    def __init__(
        self,
        positive_weight: float = 1.0,
        negative_weight: float = 1.0e-03,
        positive_target: float = 1.0,
        negative_target: float = 0.0,
        reduction: str = "mean",
    ) -> None:
        r"""Initialize the loss.

        :param positive_weight: the weight $c^{+} > 0$ of each positive
        :param negative_weight: the weight $c^{-} > 0$ of each negative, i.e., of each entity that is not a positive
            of the query. The total weight of the negatives of a query is about $c^{-} |\mathcal{E}|$, so a larger
            graph wants a smaller $c^{-}$ (NS-KGE uses $10^{-4}$ on WN18RR and FB15k-237, over all
            $|\mathcal{E}|^2 |\mathcal{R}|$ triples)
        :param positive_target: the target score $y^{+}$ of positives (NS-KGE: 1; 0 for negative distances)
        :param negative_target: the target score $y^{-}$ of negatives (NS-KGE: 0; e.g. -3 for TransE with the
            squared L2 distance), below ``positive_target``
        :param reduction: how to aggregate the losses of the queries, ``"mean"`` or ``"sum"``
        :raises ValueError: for a non-positive or non-finite weight, a non-finite target, a positive target that
            is not above the negative one, or an unknown reduction
        """
        if reduction not in ("mean", "sum"):
            raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}.")
        weights = [
            _check_number(name, value, positive=True)
            for name, value in [("positive_weight", positive_weight), ("negative_weight", negative_weight)]
        ]
        targets = [
            _check_number(name, value, positive=False)
            for name, value in [("positive_target", positive_target), ("negative_target", negative_target)]
        ]
        if not targets[0] > targets[1]:
            raise ValueError(
                f"positive_target must be greater than negative_target (PyKEEN ranks higher scores first), got "
                f"positive_target={positive_target!r} and negative_target={negative_target!r}."
            )
        super().__init__(reduction=reduction)
        self.positive_weight, self.negative_weight = weights
        self.positive_target, self.negative_target = targets

    def extra_repr(self) -> str:  # noqa: D102
        return (
            f"positive_weight={self.positive_weight}, negative_weight={self.negative_weight}, "
            f"positive_target={self.positive_target}, negative_target={self.negative_target}, "
            f"reduction={self.reduction!r}"
        )

    def query_losses(self, predictions: FloatTensor, labels: FloatTensor) -> FloatTensor:
        """Return the loss of each query from its dense scores, summed over the given candidates.

        Applied to a block of the candidates (a chunk of entities), it returns that block's share of the loss; the
        shares add up to the loss over all candidates.

        :param predictions: shape: ``(num_queries, num_candidates)``; the scores
        :param labels: shape: ``(num_queries, num_candidates)``; 1 for positives, 0 for negatives
        :return: shape: ``(num_queries,)``
        """
        positive = labels > 0.5
        # tensors of the scores' dtype: torch.where with two Python floats would round them to float32
        weights = torch.where(positive, *predictions.new_tensor([self.positive_weight, self.negative_weight]))
        targets = torch.where(positive, *predictions.new_tensor([self.positive_target, self.negative_target]))
        return (weights * (predictions - targets).square()).sum(dim=-1)

    def bilinear_query_losses(self, queries: FloatTensor, candidates: FloatTensor, labels: FloatTensor) -> FloatTensor:
        r"""Return the loss of each query whose scores are $\langle \mathbf{q}, \boldsymbol{\psi}_e \rangle$.

        Exact, but computed with the decomposition of the class docstring: no ``(num_queries, num_candidates)``
        scores are formed (``labels`` is only searched for the positives).

        :param queries: shape: ``(num_queries, k)``; the query vectors $\mathbf{q}$
        :param candidates: shape: ``(num_candidates, k)``; the candidate vectors $\boldsymbol{\psi}_e$ of all
            entities
        :param labels: shape: ``(num_queries, num_candidates)``; 1 for positives, 0 for negatives
        :return: shape: ``(num_queries,)``
        """
        num_candidates = candidates.shape[0]
        mean = candidates.mean(dim=0)
        centred = candidates - mean
        scatter = centred.t() @ centred
        # sum over all candidates of (s - y-)^2 = n (<q, mu> - y-)^2 + q^T C q; both terms are non-negative
        offset = queries @ mean - self.negative_target
        all_negative = num_candidates * offset.square() + ((queries @ scatter) * queries).sum(dim=-1)
        losses = self.negative_weight * all_negative
        rows, columns = (labels > 0.5).nonzero(as_tuple=True)
        positive_scores = (queries.index_select(0, rows) * candidates.index_select(0, columns)).sum(dim=-1)
        # a positive was counted as a negative above: replace its term
        correction = (
            self.positive_weight * (positive_scores - self.positive_target).square()
            - self.negative_weight * (positive_scores - self.negative_target).square()
        )
        return losses.index_add(0, rows, correction)

    def reduce(self, query_losses: FloatTensor) -> FloatTensor:
        """Aggregate the losses of the queries of a (sub-)batch with the loss's reduction.

        :param query_losses: shape: ``(num_queries,)``
        :return: the scalar loss
        """
        return self._reduction_method(query_losses)

    def process_lcwa_scores(
        self,
        predictions: FloatTensor,
        labels: FloatTensor,
        label_smoothing: float | None = None,
        num_entities: int | None = None,
        weights: FloatTensor | None = None,
    ) -> FloatTensor:
        """Compute the loss from the dense scores of PyKEEN's LCWA loop: all candidates of each query.

        :param predictions: shape: ``(batch_size, num_entities)``; the scores
        :param labels: shape: ``(batch_size, num_entities)``; 1 for positives, 0 for negatives
        :param label_smoothing: not supported
        :param num_entities: unused
        :param weights: not supported
        :return: the scalar loss
        """
        if label_smoothing:
            raise UnsupportedLabelSmoothingError(self)
        self._raise_on_weights(weights)
        return self.reduce(self.query_losses(predictions=predictions, labels=labels))

    def process_bilinear_scores(
        self, queries: FloatTensor, candidates: FloatTensor, labels: FloatTensor
    ) -> FloatTensor:
        r"""Compute the loss of scores $\langle \mathbf{q}, \boldsymbol{\psi}_e \rangle$ without forming them.

        :param queries: shape: ``(batch_size, k)``
        :param candidates: shape: ``(num_entities, k)``
        :param labels: shape: ``(batch_size, num_entities)``; 1 for positives, 0 for negatives
        :return: the scalar loss, equal to :meth:`process_lcwa_scores` on ``queries @ candidates.T``
        """
        return self.reduce(self.bilinear_query_losses(queries=queries, candidates=candidates, labels=labels))

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
        """Refuse sampled negatives: non-sampling training scores all entities.

        :param positive_scores: unused
        :param negative_scores: unused
        :param label_smoothing: unused
        :param batch_filter: unused
        :param num_entities: unused
        :param pos_weights: unused
        :param neg_weights: unused
        :raises NotImplementedError: always
        """
        raise NotImplementedError(
            "NoSamplingLoss scores every entity, not sampled negatives: use training_loop='nosampling' (or 'lcwa') "
            "instead of 'slcwa', and no negative_sampler."
        )


# bilinear forms ------------------------------------------------------------------------------------------------------

#: ``form(interaction, h, r, t, side) -> (queries, candidates)``; the candidates are the representations of ``side``
BilinearForm = Callable[[Interaction, Any, Any, Any, Side], tuple[FloatTensor, FloatTensor]]


def _distmult_form(interaction: Interaction, h, r, t, side: Side) -> tuple[FloatTensor, FloatTensor]:
    # <h, r, t>
    return (h * r, t) if side == "tail" else (r * t, h)


def _complex_form(interaction: Interaction, h, r, t, side: Side) -> tuple[FloatTensor, FloatTensor]:
    # Re <h, r, conj(t)> = <[Re q, Im q], [Re t, Im t]> with q = h r; = <[Re w, -Im w], [Re h, Im h]> with w = r conj(t)
    if side == "tail":
        query, candidate = h * r, t
        return torch.cat([query.real, query.imag], dim=-1), torch.cat([candidate.real, candidate.imag], dim=-1)
    query, candidate = r * torch.conj(t), h
    return torch.cat([query.real, -query.imag], dim=-1), torch.cat([candidate.real, candidate.imag], dim=-1)


def _rescal_form(interaction: Interaction, h, r, t, side: Side) -> tuple[FloatTensor, FloatTensor]:
    # h^T R t
    if side == "tail":
        return torch.einsum("bd,bde->be", h, r), t
    return torch.einsum("bde,be->bd", r, t), h


def _simple_form(interaction: Interaction, h, r, t, side: Side) -> tuple[FloatTensor, FloatTensor]:
    # (<h_0, r_0, t_0> + <t_1, r_1, h_1>) / 2, see DirectionAverageInteraction.forward
    if side == "tail":
        return 0.5 * torch.cat([h[0] * r[0], h[1] * r[1]], dim=-1), torch.cat([t[0], t[1]], dim=-1)
    return 0.5 * torch.cat([r[0] * t[0], r[1] * t[1]], dim=-1), torch.cat([h[0], h[1]], dim=-1)


def _transe_form(interaction: Interaction, h, r, t, side: Side) -> tuple[FloatTensor, FloatTensor]:
    # -|q - e|^2 = <[-|q|^2, 1, 2q], [1, -|e|^2, e]> with q = h + r (tail side) or q = t - r (head side)
    query, candidate = (h + r, t) if side == "tail" else (t - r, h)
    query_ones, candidate_ones = query.new_ones(query.shape[0], 1), candidate.new_ones(candidate.shape[0], 1)
    return (
        torch.cat([-query.square().sum(dim=-1, keepdim=True), query_ones, 2 * query], dim=-1),
        torch.cat([candidate_ones, -candidate.square().sum(dim=-1, keepdim=True), candidate], dim=-1),
    )


def _unwrap(interaction: Interaction) -> Interaction:
    """Return the interaction behind a clamp that clamps nothing (as SimplE's default)."""
    if isinstance(interaction, ClampedInteraction) and interaction.clamp_score is None:
        return _unwrap(interaction.base)
    return interaction


def _get_form(interaction: Interaction) -> BilinearForm | None:
    """Return the bilinear form of an interaction, or None if its score is not one."""
    interaction = _unwrap(interaction)
    kind = type(interaction)
    if kind is TransEInteraction:
        # only the squared L2 distance expands into inner products
        return _transe_form if interaction.p == 2 and interaction.power_norm else None
    return {
        DistMultInteraction: _distmult_form,
        ComplExInteraction: _complex_form,
        RESCALInteraction: _rescal_form,
        SimplEInteraction: _simple_form,
    }.get(kind)


def supports_bilinear_form(model: Any) -> bool:
    r"""Return whether the model's scores are bilinear forms that :func:`bilinear_form` can decompose.

    That holds for :class:`~pykeen.models.ERModel` instances that score with PyKEEN's own ``score_h``/``score_t``
    and one of the interactions DistMult, ComplEx (complex representations), RESCAL, SimplE (unclamped) and TransE
    with the squared L2 distance (``scoring_fct_norm=2, power_norm=True``), whatever their representations. Not for
    L1 or (non-squared) L2 distances, such as PyKEEN's default TransE or VBKGC: a sum of such norms over all
    entities has no expansion into a fixed number of inner products.

    :param model: a PyKEEN model
    :return: whether :func:`bilinear_form` applies
    """
    if not isinstance(model, ERModel):
        return False
    if type(model).score_t is not ERModel.score_t or type(model).score_h is not ERModel.score_h:
        return False
    return _get_form(model.interaction) is not None


def bilinear_form(
    model: ERModel, pairs: LongTensor, side: Side, mode: InductiveMode | None = None
) -> tuple[FloatTensor, FloatTensor]:
    r"""Write the model's scores of all entities as $\langle \mathbf{q}, \boldsymbol{\psi}_e \rangle$ for a batch.

    ``queries @ candidates.T`` equals ``model.score_t(pairs)`` (``side="tail"``) or ``model.score_h(pairs)``
    (``side="head"``), up to rounding. The representations are looked up as in those methods, so regularizers see
    the same calls.

    :param model: a model for which :func:`supports_bilinear_form` holds
    :param pairs: shape: ``(batch_size, 2)``; $(h, r)$ pairs for ``side="tail"``, $(r, t)$ pairs for ``"head"``
    :param side: which entity is scored, ``"head"`` or ``"tail"``
    :param mode: the inductive mode, as in ``score_t``
    :return: the queries, shape: ``(batch_size, k)``, and the candidates, shape: ``(num_entities, k)``
    :raises ValueError: if the model's score is not a supported bilinear form
    """
    form = _get_form(model.interaction) if supports_bilinear_form(model) else None
    if form is None:
        raise ValueError(
            f"The scores of {type(model).__name__} ({type(_unwrap(model.interaction)).__name__}) are not a "
            f"bilinear form that the non-sampling decomposition supports; use strategy='chunked'."
        )
    if side == "tail":
        h, r, t = model._get_representations(h=pairs[:, 0], r=pairs[:, 1], t=None, mode=mode)
    else:
        h, r, t = model._get_representations(h=None, r=pairs[:, 0], t=pairs[:, 1], mode=mode)
    return form(_unwrap(model.interaction), h, r, t, side)


# training loop -------------------------------------------------------------------------------------------------------


class _SidedInstances(Dataset):
    """LCWA instances of several sides in one dataset; each item says its side's column in ``"side"``."""

    def __init__(self, instances: Sequence[tuple[int, LCWAInstances]]) -> None:
        self.instances = instances
        self.offsets = [0]
        for _, part in instances:
            self.offsets.append(self.offsets[-1] + len(part))

    def __len__(self) -> int:
        return self.offsets[-1]

    def __getitem__(self, item: int) -> LCWABatch:
        for (column, part), start, stop in zip(self.instances, self.offsets, self.offsets[1:]):
            if item < stop:
                result = part[item - start]
                result["side"] = column
                return result
        raise IndexError(item)


class NoSamplingTrainingLoop(LCWATrainingLoop):
    r"""Non-sampling training [li2021]_: each query is scored against all entities with :class:`NoSamplingLoss`.

    The batches are PyKEEN's LCWA batches: queries $(h, r)$ with all their training tails (and, for
    ``target="both"``, the default, also queries $(r, t)$ with all their training heads). The loss of a batch is
    computed in one of two ways, both exact:

    - ``"bilinear"``: if the model's score is a bilinear form (:func:`supports_bilinear_form`: DistMult, ComplEx,
      RESCAL, SimplE, TransE with the squared L2 distance), through the decomposition of [li2021]_
      (:meth:`NoSamplingLoss.bilinear_query_losses`), without a ``(batch, entities)`` score matrix;
    - ``"chunked"``: for every other model, e.g. VBKGC (five L2 or L1 norms) or PyKEEN's default TransE (L1), the
      scores of a chunk of entities at a time, each chunk with its own backward pass, so that the memory holds one
      chunk's scores and graph. The loss is a sum over entities, so the accumulated gradient is the full one.

    ``strategy="auto"`` (the default) picks the first that applies. The chunk size is ``chunk_size`` if given, else
    the ``slice_size`` of ``train()`` (so that PyKEEN's automatic memory search bounds the memory for real; the LCWA
    loop's slicing only splits the forward pass), else as many entities as keep a chunk under
    :data:`DEFAULT_MAX_CHUNK_SCORES` scores. Sub-batching (``sub_batch_size``) works with both.

    Use it by name with the loss ``"nosampling"``::

        pipeline(dataset="nations", model="TransE", training_loop="nosampling", loss="nosampling",
                 model_kwargs=dict(scoring_fct_norm=2, power_norm=True),
                 loss_kwargs=dict(positive_target=0.0, negative_target=-3.0))

    Regularizers see the representation calls of ``score_t``/``score_h`` for all entities, one per side and
    (sub-)batch, in both modes: in chunked mode, the lookups of the chunks are not regularized, and the sub-batch's
    representations are looked up once more as ERModel's ``score_t``/``score_h`` look them up for all entities, for
    the regularizer alone (only if the model has one).
    """

    def __init__(
        self,
        *,
        target: Literal["head", "tail", "both"] | int = "both",
        strategy: Literal["auto", "bilinear", "chunked"] = "auto",
        chunk_size: int | None = None,
        **kwargs,
    ) -> None:
        """Initialize the training loop.

        :param target: which entity of a triple is replaced by all entities: ``"tail"`` (queries $(h, r)$, as the
            LCWA loop), ``"head"`` (queries $(r, t)$) or ``"both"`` (default; both kinds of queries, as head-or-tail
            corruption in negative sampling). Relations (PyKEEN's target 1) are not supported.
        :param strategy: ``"auto"``, ``"bilinear"`` or ``"chunked"``, see the class docstring
        :param chunk_size: the number of entities scored at once in chunked mode; None: see the class docstring
        :param kwargs: keyword-based parameters passed to :class:`~pykeen.training.LCWATrainingLoop`, such as
            ``model`` and ``optimizer``; the model's loss must be a :class:`NoSamplingLoss`
        :raises ValueError: for an unknown target, strategy or chunk size, a model loss other than
            :class:`NoSamplingLoss`, ``strategy="bilinear"`` with a model whose score is not a supported bilinear
            form, a positive target above 0 for a model whose scores are negative distances, or a model with a
            regularizer that is no :class:`~pykeen.models.ERModel` in chunked mode
        """
        sides: dict[int | str, tuple[Side, ...]] = {
            "tail": ("tail",),
            COLUMN_TAIL: ("tail",),
            "head": ("head",),
            COLUMN_HEAD: ("head",),
            "both": ("head", "tail"),
        }
        if isinstance(target, bool) or target not in sides:
            raise ValueError(f"target must be 'head', 'tail' or 'both', got {target!r}.")
        if strategy not in ("auto", "bilinear", "chunked"):
            raise ValueError(f"strategy must be 'auto', 'bilinear' or 'chunked', got {strategy!r}.")
        if chunk_size is not None and (
            isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1
        ):
            raise ValueError(f"chunk_size must be a positive integer or None, got {chunk_size!r}.")
        self.sides = sides[target]
        # the parent's score method and target column describe one side (the tail for "both"); we use self.sides
        super().__init__(target=_SIDE_COLUMN[self.sides[-1]], **kwargs)
        loss = self.model.loss
        if not isinstance(loss, NoSamplingLoss):
            raise ValueError(
                f"training_loop='nosampling' needs loss='nosampling' (NoSamplingLoss), but the model's loss is "
                f"{type(loss).__name__}; pass loss='nosampling' to pipeline()."
            )
        interaction = getattr(self.model, "interaction", None)
        if isinstance(_unwrap(interaction), _DISTANCE_INTERACTIONS) and loss.positive_target > 0:
            raise ValueError(
                f"{type(_unwrap(interaction)).__name__} scores are negative distances (at most 0), so "
                f"positive_target={loss.positive_target} cannot be reached; pass loss_kwargs with positive_target=0 "
                f"and a negative negative_target (e.g. positive_target=0.0, negative_target=-3.0)."
            )
        bilinear = supports_bilinear_form(self.model)
        if strategy == "bilinear" and not bilinear:
            raise ValueError(
                f"strategy='bilinear' needs a model whose score is a supported bilinear form (DistMult, ComplEx, "
                f"RESCAL, SimplE, TransE with scoring_fct_norm=2 and power_norm=True), got {type(self.model).__name__} "
                f"with {type(_unwrap(interaction)).__name__}; use strategy='chunked' or 'auto'."
            )
        if strategy == "auto":
            strategy = "bilinear" if bilinear else "chunked"
        #: whether the model has a regularizer, whose term chunked training computes apart (see _forward_pass)
        self._regularized = has_regularizer(self.model)
        if strategy == "chunked" and self._regularized and not isinstance(self.model, ERModel):
            raise ValueError(
                f"strategy='chunked' regularizes the lookups of ERModel's score_t and score_h, but "
                f"{type(self.model).__name__} is no ERModel; train it without a regularizer."
            )
        #: the strategy in use, "bilinear" or "chunked"
        self.strategy: Literal["bilinear", "chunked"] = strategy
        self.chunk_size = chunk_size

    # docstr-coverage: inherited
    def _create_training_data_loader(
        self, triples_factory: CoreTriplesFactory, sampler: str | None, **kwargs
    ) -> DataLoader[LCWABatch]:  # noqa: D102
        if sampler:
            raise NotImplementedError(f"Non-sampling training uses no batch sampler, got sampler={sampler!r}.")
        instances = [
            (
                column,
                LCWAInstances.from_triples_factory(
                    triples_factory,
                    target=column,
                    loss_weighter=self.loss_weighter,
                    loss_weighter_kwargs=self.loss_weighter_kwargs,
                ),
            )
            for column in (_SIDE_COLUMN[side] for side in self.sides)
        ]
        return DataLoader(dataset=_SidedInstances(instances), **kwargs)

    def _unpack(self, batch: LCWABatch, start: int, stop: int) -> tuple[LongTensor, FloatTensor, LongTensor]:
        """Return the queries, labels and side columns of a sub-batch, on the model's device."""
        if batch.get("weights") is not None:
            self.loss._raise_on_weights(batch["weights"])
        device = self.model.device
        pairs = batch["pairs"][start:stop].to(device=device)
        labels = batch["target"][start:stop].to(device=device)
        sides = batch["side"][start:stop].to(device=device)
        return pairs, labels, sides

    def _groups(self, sides: LongTensor) -> list[tuple[Side, BoolTensor]]:
        """Return each side of the loop with the mask of its rows in the sub-batch (sides without rows left out)."""
        groups = [(side, sides == _SIDE_COLUMN[side]) for side in self.sides]
        return [(side, mask) for side, mask in groups if mask.any()]

    def _score(self, side: Side, pairs: LongTensor, ids: LongTensor | None) -> FloatTensor:
        """Score the given entities (all if None) as heads or tails of the queries."""
        if side == "tail":
            return self.model.score_t(pairs, mode=self.mode, tails=ids)
        return self.model.score_h(pairs, mode=self.mode, heads=ids)

    def _chunk_size(self, num_rows: int, slice_size: int | None) -> int:
        """Return the number of entities per chunk of the chunked exact form."""
        if self.chunk_size is not None:
            return self.chunk_size
        if slice_size:
            # PyKEEN passes slice_size through unchecked: a negative one would make the chunks empty (no training)
            return check_positive_int("slice_size", slice_size)
        return max(1, DEFAULT_MAX_CHUNK_SCORES // max(num_rows, 1))

    # docstr-coverage: inherited
    def _process_batch(
        self,
        batch: LCWABatch,
        start: int,
        stop: int,
        label_smoothing: float = 0.0,
        slice_size: int | None = None,
    ) -> FloatTensor:  # noqa: D102
        # the loss of a whole sub-batch in one graph: bilinear, or all entities in one chunk
        if label_smoothing:
            raise UnsupportedLabelSmoothingError(self.loss)
        pairs, labels, sides = self._unpack(batch, start, stop)
        losses = []
        for side, mask in self._groups(sides):
            if self.strategy == "bilinear":
                queries, candidates = bilinear_form(self.model, pairs[mask], side=side, mode=self.mode)
                losses.append(self.loss.bilinear_query_losses(queries, candidates, labels[mask]))
            else:
                losses.append(self.loss.query_losses(self._score(side, pairs[mask], ids=None), labels[mask]))
        return self.loss.reduce(torch.cat(losses)) + self.model.collect_regularization_term()

    # docstr-coverage: inherited
    def _forward_pass(
        self,
        batch: LCWABatch,
        start: int,
        stop: int,
        current_batch_size: int,
        label_smoothing: float,
        slice_size: int | None,
        backward: bool = True,
    ) -> float:  # noqa: D102
        num_entities = self.num_targets
        chunk_size = self._chunk_size(num_rows=stop - start, slice_size=slice_size)
        if self.strategy == "bilinear" or chunk_size >= num_entities:
            return super()._forward_pass(
                batch, start, stop, current_batch_size, label_smoothing, slice_size, backward=backward
            )
        if label_smoothing:
            raise UnsupportedLabelSmoothingError(self.loss)
        pairs, labels, sides = self._unpack(batch, start, stop)
        groups = self._groups(sides)
        # the correction of the parent's _forward_pass for the mean over sub-batches
        scale = (stop - start) / current_batch_size if self.loss.reduction == "mean" else 1.0
        total = 0.0
        for chunk_start in range(0, num_entities, chunk_size):
            chunk = slice(chunk_start, min(chunk_start + chunk_size, num_entities))
            ids = torch.arange(chunk.start, chunk.stop, device=pairs.device)
            # this chunk's share of the loss of every query of the sub-batch
            shares = [
                self.loss.query_losses(self._score(side, pairs[mask], ids=ids), labels[mask, chunk])
                for side, mask in groups
            ]
            # a chunk's lookups are not the unchunked form's (the query side once per chunk): their regularization
            # is dropped here, and the unchunked form's is added once below
            self.model.collect_regularization_term()
            total += self._backward(self.loss.reduce(torch.cat(shares)), scale=scale, backward=backward)
        if self._regularized:
            total += self._backward(self._regularization_term(pairs, groups), scale=scale, backward=backward)
        self.model.post_forward_pass()
        return total

    def _regularization_term(self, pairs: LongTensor, groups: list[tuple[Side, BoolTensor]]) -> FloatTensor:
        """Return the regularization term of the unchunked form: its lookups, as ERModel's score_t/score_h make them."""
        for side, mask in groups:
            rows = pairs[mask]
            if side == "tail":
                self.model._get_representations(h=rows[:, 0], r=rows[:, 1], t=None, mode=self.mode)
            else:
                self.model._get_representations(h=None, r=rows[:, 0], t=rows[:, 1], mode=self.mode)
        return self.model.collect_regularization_term()

    @staticmethod
    def _backward(loss: FloatTensor, scale: float, backward: bool) -> float:
        """Scale a part of the loss, check it, and (if ``backward``) free its graph by a backward pass."""
        if not torch.isfinite(loss):
            raise NonFiniteLossError("Loss is non-finite.")
        loss = loss * scale
        # (a regularizer whose representations were not looked up gives a constant term)
        if backward and loss.requires_grad:
            # free this part's graph before the next one: memory holds one chunk at a time
            loss.backward()
        return loss.item()
