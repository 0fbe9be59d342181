r"""The VBKGC interaction: five TransE terms over structural and multimodal entity embeddings."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import ClassVar

import torch
from pykeen.nn.modules import Interaction
from pykeen.typing import FloatTensor, LongTensor

from .kernels import pairwise_l1_distance, piece_table, sum_rows, term_distances, unit_rows, weighted_sum
from .validation import fits_float32

__all__ = [
    "MEAN_TERM_WEIGHTS",
    "SCORE_TERMS",
    "VBKGCInteraction",
    "normalize_score_terms",
    "normalize_term_weights",
    "stack_pieces",
]

#: entity representation triple: (structural e_s of the replacement, e_s of the original, multimodal e_m)
EntityRepresentation = tuple[FloatTensor, FloatTensor, FloatTensor]

#: the score terms of Eq. (4)-(8), in the order of Eq. (9)
SCORE_TERMS: tuple[str, ...] = ("ss", "mm", "sm", "ms", "all")

#: the ``term_weights`` that average the scored terms instead of summing them
MEAN_TERM_WEIGHTS = "mean"
#: the largest finite norm order p of the TransE terms: with L2-normalised arguments (the default) the components of
#: h + r - t are at most 3 in magnitude, and 3^64 (about 3.4e30) stays within float32
MAX_NORM_ORDER = 64


def normalize_score_terms(score_terms: str | Iterable[str] | None) -> tuple[str, ...]:
    """Validate a selection of score terms.

    :param score_terms: a subset of :data:`SCORE_TERMS` (a sequence, or a comma/plus separated string such as
        ``"ss+mm"``); ``None`` selects all five
    :return: the selected terms, in canonical order
    :raises ValueError: for an empty selection or an unknown term
    """
    if score_terms is None:
        return SCORE_TERMS
    if isinstance(score_terms, str):
        score_terms = score_terms.replace("+", ",").split(",")
    selected = {term.strip().lower() for term in score_terms if term.strip()}
    unknown = selected.difference(SCORE_TERMS)
    if unknown:
        raise ValueError(f"Unknown score term(s) {sorted(unknown)}; choose a non-empty subset of {list(SCORE_TERMS)}.")
    if not selected:
        raise ValueError(f"score_terms must be a non-empty subset of {list(SCORE_TERMS)}.")
    return tuple(term for term in SCORE_TERMS if term in selected)


def normalize_term_weights(
    term_weights: Mapping[str, float] | str | None, score_terms: Sequence[str]
) -> tuple[float, ...]:
    """Validate per-term weights.

    :param term_weights: a weight per score term, as a mapping or a string such as ``"mm=0.5,all=2"``; terms that
        are not mentioned weigh 1. ``None`` weighs every term 1 (the paper's unweighted sum); ``"mean"`` weighs each
        of the $n$ scored terms $1/n$, so that the score has the scale of one TransE term whichever terms are scored.
    :param score_terms: the selected score terms, see :func:`normalize_score_terms`
    :return: one weight per selected term, in the order of ``score_terms``
    :raises ValueError: for a term that is not selected, a term named twice, a negative or non-finite weight, or all
        weights zero
    """
    if term_weights is None:
        return (1.0,) * len(score_terms)
    if isinstance(term_weights, str) and term_weights.strip().lower() == MEAN_TERM_WEIGHTS:
        return (1.0 / len(score_terms),) * len(score_terms)
    if isinstance(term_weights, str):
        try:
            pairs = [
                (key.strip().lower(), float(value))
                for key, value in (item.split("=") for item in term_weights.split(",") if item.strip())
            ]
        except ValueError:
            raise ValueError(
                f"term_weights must look like 'mm=0.5,all=2' (term=weight, comma separated), got {term_weights!r}."
            ) from None
        # a dict would silently keep the last of two weights
        twice = sorted({key for key, _ in pairs if sum(other == key for other, _ in pairs) > 1})
        if twice:
            raise ValueError(f"term_weights names term(s) {twice} more than once, got {term_weights!r}.")
        term_weights = dict(pairs)
    if not isinstance(term_weights, Mapping):
        raise ValueError(
            f"term_weights must be a mapping, a string such as 'mm=0.5,all=2', or 'mean'; got {term_weights!r}."
        )
    unknown = set(term_weights).difference(score_terms)
    if unknown:
        raise ValueError(
            f"term_weights names term(s) {sorted(unknown)} that are not scored; scored: {list(score_terms)}."
        )
    weights = tuple(term_weights.get(term, 1.0) for term in score_terms)
    # numbers that float32 holds: a weight of 1e39 would make every score infinite
    if not all(fits_float32(weight) for weight in weights):
        raise ValueError(f"term_weights must be finite and non-negative, got {dict(zip(score_terms, weights))}.")
    weights = tuple(float(weight) for weight in weights)
    if not any(weights):
        raise ValueError("term_weights must not all be zero.")
    return weights


def stack_pieces(entity: EntityRepresentation, normalize: bool) -> FloatTensor:
    r"""Stack the four vectors that can be an argument of a TransE term of VBKGC.

    :param entity: ``(e_s, e_s_original, e_m)``, shape: ``(*batch_dims, d)`` each
    :param normalize: whether to L2-normalise each vector
    :return: shape: ``(*batch_dims, 4, d)``; $[\mathbf{e}_s, \mathbf{e}^{o}_s, \mathbf{e}_m,
        \mathbf{e}^{o}_s + \mathbf{e}_m]$
    """
    structural, structural_original, multimodal = entity
    pieces = torch.stack([structural, structural_original, multimodal, structural_original + multimodal], dim=-2)
    return unit_rows(pieces) if normalize else pieces


def _term_sum(
    h: FloatTensor,
    r: FloatTensor,
    t: FloatTensor,
    head_pieces: Sequence[int],
    tail_pieces: Sequence[int],
    p: float,
    weights: Sequence[float],
) -> FloatTensor:
    """Sum the weighted negative TransE terms, given broadcastable pieces ``(*, 4, d)`` and relations ``(*, d)``."""
    # unbind, not index: indexing would zero-fill a (*, 4, d) gradient per term in backward
    h, t = h.unbind(dim=-2), t.unbind(dim=-2)
    distances = (torch.linalg.vector_norm(h[i] + r - t[j], ord=p, dim=-1) for i, j in zip(head_pieces, tail_pieces))
    return -weighted_sum(distances, weights)


class VBKGCInteraction(Interaction[EntityRepresentation, FloatTensor, EntityRepresentation]):
    r"""The VBKGC interaction of [zhang2022]_.

    Each entity comes with a structural embedding $\mathbf{e}_s$ and a multimodal embedding $\mathbf{e}_m$. With
    the TransE function $f(\mathbf{h}, \mathbf{r}, \mathbf{t}) = -\|\mathbf{h} + \mathbf{r} - \mathbf{t}\|_p$, the
    score is the sum of five terms (Eq. 4-9)

    .. math::

        F(h, r, t) = \underbrace{f(\mathbf{h}_s, \mathbf{r}, \mathbf{t}_s)}_{ss}
            + \underbrace{f(\mathbf{h}_m, \mathbf{r}, \mathbf{t}_m)}_{mm}
            + \underbrace{f(\mathbf{h}_s, \mathbf{r}, \mathbf{t}_m)}_{sm}
            + \underbrace{f(\mathbf{h}_m, \mathbf{r}, \mathbf{t}_s)}_{ms}
            + \underbrace{f(\mathbf{h}_s + \mathbf{h}_m, \mathbf{r}, \mathbf{t}_s + \mathbf{t}_m)}_{all}

    ``score_terms`` selects any non-empty subset (the ablations S2-S5 of Table 4), and ``term_weights`` weighs the
    selected terms, $F = \sum_j w_j f_j$ (an option beyond the paper, whose sum is unweighted). With
    ``normalize=True`` (the default, as OpenKE's ``norm_flag`` in the reference code), every entity argument of $f$
    is L2-normalised before the distance: $\mathbf{h}_s$, $\mathbf{h}_m$ and the sum $\mathbf{h}_s + \mathbf{h}_m$
    (the same for the tail). ``normalize_relations`` decides whether $\mathbf{r}$ is L2-normalised, too (OpenKE
    does; PyKEEN's TransE does not); by default it follows ``normalize``. :class:`~pykeen_vbkgc.VBKGC` passes its
    own defaults (:mod:`pykeen_vbkgc.defaults`).

    Each entity is given as a triple ``(e_s, e_s_original, e_m)``. The unimodal terms ($ss$, $mm$) use ``e_s``
    and ``e_m``; the cross-modal terms ($sm$, $ms$, $all$) use ``e_s_original`` and ``e_m``. For ordinary triples
    ``e_s_original`` equals ``e_s``; for a twins negative (see :class:`~pykeen_vbkgc.TwinsNegativeSampler`) it is
    the structural embedding of the entity that was replaced.

    Scoring against all entities (``score_h``/``score_t``, e.g., in evaluation) avoids materialising five
    ``(batch, num_entities, d)`` difference tensors: for $p=1$ the sum of the five L1 norms is one L1 distance
    between concatenated vectors, computed by :func:`~pykeen_vbkgc.kernels.pairwise_l1_distance`; for $p=2$ each
    term is a :func:`torch.cdist`, which uses matrix products. For training batches, :meth:`score_rows` reads the
    normalised pieces from one table built by :meth:`piece_table`, with a fused forward and a hand-written backward.
    ---
    citation:
        author: Zhang
        year: 2022
        link: https://arxiv.org/abs/2209.07084
    """

    entity_shape: ClassVar[Sequence[str]] = ("d", "d", "d")

    #: for each score term, the index of its head and its tail argument in :func:`stack_pieces`
    HEAD_PIECE: ClassVar[dict[str, int]] = dict(ss=0, mm=2, sm=1, ms=2, all=3)
    TAIL_PIECE: ClassVar[dict[str, int]] = dict(ss=0, mm=2, sm=2, ms=1, all=3)

    def __init__(
        self,
        p: float = 1,
        normalize: bool = True,
        score_terms: str | Iterable[str] | None = None,
        normalize_relations: bool | None = None,
        term_weights: Mapping[str, float] | str | None = None,
    ) -> None:
        """Initialize the interaction.

        :param p: the order of the norm in $f$, typically 1 or 2
        :param normalize: whether to L2-normalise the entity arguments of each TransE term (OpenKE's ``norm_flag``)
        :param score_terms: the score terms to sum, a non-empty subset of ``("ss", "mm", "sm", "ms", "all")``;
            defaults to all five
        :param normalize_relations: whether to L2-normalise the relation vector, too; ``None`` follows ``normalize``
        :param term_weights: a non-negative weight per score term (see :func:`normalize_term_weights`); default:
            all 1
        """
        super().__init__()
        # a larger p overflows float32 (see MAX_NORM_ORDER); inf is the maximum norm
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not (1 <= p <= MAX_NORM_ORDER or p == math.inf):
            raise ValueError(f"The norm order p must be a number from 1 to {MAX_NORM_ORDER}, or inf; got {p!r}.")
        for name, value in dict(normalize=normalize, normalize_relations=normalize_relations).items():
            if not isinstance(value, bool) and not (name == "normalize_relations" and value is None):
                raise ValueError(f"{name} must be True or False, got {value!r}.")
        self.p = p
        self.normalize = normalize
        self.normalize_relations = normalize if normalize_relations is None else normalize_relations
        self.score_terms = normalize_score_terms(score_terms)
        self.head_pieces = tuple(self.HEAD_PIECE[term] for term in self.score_terms)
        self.tail_pieces = tuple(self.TAIL_PIECE[term] for term in self.score_terms)
        self.term_weights = normalize_term_weights(term_weights, self.score_terms)

    def forward(self, h: EntityRepresentation, r: FloatTensor, t: EntityRepresentation) -> FloatTensor:
        """Evaluate the interaction function.

        .. seealso::
            :meth:`Interaction.forward <pykeen.nn.modules.Interaction.forward>` for a detailed description about
            the generic batched form of the interaction function.

        :param h: shape: ``(*batch_dims, d)`` each; the head representations ``(e_s, e_s_original, e_m)``
        :param r: shape: ``(*batch_dims, d)``; the relation representations
        :param t: shape: ``(*batch_dims, d)`` each; the tail representations ``(e_s, e_s_original, e_m)``
        :return: shape: ``batch_dims``; the scores
        """
        h, t = stack_pieces(h, normalize=self.normalize), stack_pieces(t, normalize=self.normalize)
        if self.normalize_relations:
            r = unit_rows(r)
        h_shape, r_shape, t_shape = h.shape[:-2], r.shape[:-1], t.shape[:-2]
        if len(h_shape) == len(r_shape) == len(t_shape) == 2:
            # 1-to-all scoring as in ERModel.score_t: h, r: (b, 1); t: (1, n)
            if h_shape[1] == r_shape[1] == t_shape[0] == 1 and h_shape[0] == r_shape[0]:
                queries = h[:, 0, self.head_pieces] + r[:, 0, None]
                return -self._pairwise_distance(queries, t[0, :, self.tail_pieces])
            # ... and as in ERModel.score_h: h: (1, n); r, t: (b, 1); note |h + r - t| = |h - (t - r)|
            if h_shape[0] == r_shape[1] == t_shape[1] == 1 and r_shape[0] == t_shape[0]:
                queries = t[:, 0, self.tail_pieces] - r[:, 0, None]
                return -self._pairwise_distance(queries, h[0, :, self.head_pieces])
        return _term_sum(
            h, r, t, head_pieces=self.head_pieces, tail_pieces=self.tail_pieces, p=self.p, weights=self.term_weights
        )

    def piece_table(
        self,
        structural: FloatTensor,
        multimodal: FloatTensor,
        twins: tuple[FloatTensor, FloatTensor] | None = None,
        relations: FloatTensor | None = None,
        sums: bool = True,
    ) -> FloatTensor:
        r"""Stack the (normalised) pieces of plain entities into one table for :meth:`score_rows`.

        :param structural: shape: ``(n, d)``; $\mathbf{e}_s$ of entities $0, \dots, n - 1$
        :param multimodal: shape: ``(n, d)``; $\mathbf{e}_m$ of the same entities
        :param twins: shape: ``(k, d)`` each; $\mathbf{e}_s$ of replaced entities and $\mathbf{e}'_m$ of the
            sampled ones: their sum pieces (see :meth:`twins_sum_pieces`) follow as rows $3n, \dots, 3n + k - 1$
        :param relations: shape: ``(q, d)``; the relation vectors, appended last (normalised if ``normalize``: pass
            them only where ``normalize_relations`` is the same)
        :param sums: whether the block $\mathbf{e}_s + \mathbf{e}_m$ is in the table; without it (for ``twins``
            with a sum piece for every position), the optional rows start at $2n$
        :return: shape: ``(3n + k + q, d)``, without ``sums`` ``(2n + k + q, d)``; the rows $[\mathbf{e}_s;
            \mathbf{e}_m; \mathbf{e}_s + \mathbf{e}_m]$ for all entities, each block in entity order, then the optional
            rows, L2-normalised if ``normalize``
        """
        return piece_table(
            structural, multimodal, normalize=self.normalize, twins=twins, relations=relations, sums=sums
        )

    def twins_sum_pieces(self, structural_original: FloatTensor, multimodal_replacement: FloatTensor) -> FloatTensor:
        r"""Return the (normalised) argument $\mathbf{e}_s + \mathbf{e}'_m$ of the ``all`` term of twins negatives.

        :param structural_original: shape: ``(n, d)``; $\mathbf{e}_s$ of the replaced entities
        :param multimodal_replacement: shape: ``(n, d)``; $\mathbf{e}'_m$ of the sampled entities
        :return: shape: ``(n, d)``
        """
        return sum_rows(structural_original, multimodal_replacement, normalize=self.normalize)

    def score_rows(
        self,
        table: FloatTensor,
        h_index: LongTensor,
        relations: FloatTensor | None,
        r_index: LongTensor,
        t_index: LongTensor,
        twins_sums: FloatTensor | None = None,
    ) -> FloatTensor:
        r"""Score triples whose entity pieces are rows of a piece table (see :meth:`piece_table`).

        The four pieces of an entity, in the order of :func:`stack_pieces`, are $\mathbf{e}_s$, $\mathbf{e}^{o}_s$,
        $\mathbf{e}_m$ and $\mathbf{e}^{o}_s + \mathbf{e}_m$, already normalised. The gradient is accumulated into
        the table without autograd's scattered additions; large batches run fused kernels (see
        :func:`pykeen_vbkgc.kernels.term_distances`).

        :param table: shape: ``(m, d)``; the piece table
        :param h_index: shape: ``(n, 4)``; the table rows of the four pieces of each head
        :param relations: shape: ``(num_relations, d)``; all relation representations, not yet normalised; None if
            they are rows of the table (see :meth:`piece_table`)
        :param r_index: shape: ``(n,)``; the relation of each triple, or with ``relations`` None its table row
        :param t_index: shape: ``(n, 4)``; the table rows of the four pieces of each tail
        :param twins_sums: shape: ``(k, d)``; the sum pieces of twins ids (see :meth:`twins_sum_pieces`); the index
            $m + j$ of the last piece means row $j$ of these
        :return: shape: ``(n,)``; the scores
        """
        if relations is not None and self.normalize_relations:
            # normalise the (small) relation table, not one row per triple
            relations = unit_rows(relations)
        return term_distances(
            table,
            None if relations is None else relations.index_select(0, r_index),
            h_index,
            t_index,
            head_pieces=self.head_pieces,
            tail_pieces=self.tail_pieces,
            p=self.p,
            extra=twins_sums,
            extra_piece=3,
            weights=self.term_weights,
            r_index=r_index if relations is None else None,
        )

    def _pairwise_distance(self, queries: FloatTensor, candidates: FloatTensor) -> FloatTensor:
        """Sum the per-term distances between all queries (b, num_terms, d) and all candidates (n, num_terms, d)."""
        weights = self.term_weights
        if self.p == 1:
            # the sum of (weighted) L1 norms is the L1 norm of the concatenation (of the weighted vectors)
            if any(weight != 1 for weight in weights):
                scale = queries.new_tensor(weights).unsqueeze(dim=-1)
                queries, candidates = queries * scale, candidates * scale
            return pairwise_l1_distance(queries.flatten(start_dim=1), candidates.flatten(start_dim=1))
        distances = (torch.cdist(queries[:, i], candidates[:, i], p=self.p) for i in range(len(self.score_terms)))
        return weighted_sum(distances, weights)
