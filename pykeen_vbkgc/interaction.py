r"""The VBKGC interaction: five TransE terms over structural and multimodal entity embeddings."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import ClassVar

import torch
from pykeen.nn.modules import Interaction
from pykeen.typing import FloatTensor
from torch.nn import functional

__all__ = [
    "SCORE_TERMS",
    "VBKGCInteraction",
    "normalize_score_terms",
    "pairwise_l1_distance",
]

#: the score terms of Eq. (4)-(8), in the order of Eq. (9)
SCORE_TERMS: tuple[str, ...] = ("ss", "mm", "sm", "ms", "all")

#: entity representation triple: (structural e_s of the replacement, e_s of the original, multimodal e_m)
EntityRepresentation = tuple[FloatTensor, FloatTensor, FloatTensor]


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


def pairwise_l1_distance(x: FloatTensor, y: FloatTensor, row_block: int = 512, column_block: int = 1024) -> FloatTensor:
    """Compute all pairwise L1 distances, like ``torch.cdist(x, y, p=1)``.

    On CPU without gradients, a blocked loop over the feature dimension is about twice as fast as
    :func:`torch.cdist` and avoids the ``(n, m, d)`` intermediate of broadcasting, because each block of the
    result stays in cache. Elsewhere (CUDA, autograd) it defers to :func:`torch.cdist`.

    :param x: shape: (n, d)
    :param y: shape: (m, d)
    :param row_block: rows of ``x`` per block
    :param column_block: rows of ``y`` per block
    :return: shape: (n, m)
    """
    if x.is_cuda or (torch.is_grad_enabled() and (x.requires_grad or y.requires_grad)):
        return torch.cdist(x, y, p=1)
    n, dim = x.shape
    m = y.shape[0]
    out = torch.zeros(n, m, dtype=x.dtype, device=x.device)
    y_t = y.t().contiguous()
    buffer = torch.empty(min(n, row_block), min(m, column_block), dtype=x.dtype, device=x.device)
    for i in range(0, n, row_block):
        x_block = x[i : i + row_block]
        for j in range(0, m, column_block):
            y_block = y_t[:, j : j + column_block]
            out_block = out[i : i + row_block, j : j + column_block]
            tmp = buffer[: out_block.shape[0], : out_block.shape[1]]
            for k in range(dim):
                torch.sub(x_block[:, k : k + 1], y_block[k], out=tmp)
                out_block.add_(tmp.abs_())
    return out


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

    ``score_terms`` selects any non-empty subset (the ablations S2-S5 of Table 4). With ``normalize=True`` (the
    default, as OpenKE's ``norm_flag`` in the reference code), every argument of $f$ is L2-normalised before the
    distance, i.e., $\mathbf{r}$, $\mathbf{h}_s$, $\mathbf{h}_m$ and the sum $\mathbf{h}_s + \mathbf{h}_m$ (the
    same for the tail).

    Each entity is given as a triple ``(e_s, e_s_original, e_m)``. The unimodal terms ($ss$, $mm$) use ``e_s``
    and ``e_m``; the cross-modal terms ($sm$, $ms$, $all$) use ``e_s_original`` and ``e_m``. For ordinary triples
    ``e_s_original`` equals ``e_s``; for a twins negative (see :class:`pykeen_vbkgc.sampler.TwinsNegativeSampler`)
    it is the structural embedding of the entity that was replaced.

    Scoring against all entities (``score_h``/``score_t``, e.g., in evaluation) avoids materialising five
    ``(batch, num_entities, d)`` difference tensors: for $p=1$ the sum of the five L1 norms is one L1 distance
    between concatenated vectors, computed by :func:`pairwise_l1_distance`; for $p=2$ each term is a
    :func:`torch.cdist`, which uses matrix products.
    ---
    citation:
        author: Zhang
        year: 2022
        link: https://arxiv.org/abs/2209.07084
    """

    entity_shape: ClassVar[Sequence[str]] = ("d", "d", "d")

    def __init__(self, p: float = 1, normalize: bool = True, score_terms: str | Iterable[str] | None = None) -> None:
        """Initialize the interaction.

        :param p: the order of the norm in $f$, typically 1 or 2
        :param normalize: whether to L2-normalise the arguments of each TransE term (OpenKE's ``norm_flag``)
        :param score_terms: the score terms to sum, a non-empty subset of ``("ss", "mm", "sm", "ms", "all")``;
            defaults to all five
        """
        super().__init__()
        if p < 1:
            raise ValueError(f"The norm order p must be at least 1, got {p}.")
        self.p = p
        self.normalize = normalize
        self.score_terms = normalize_score_terms(score_terms)

    def _prepare(self, x: FloatTensor) -> FloatTensor:
        return functional.normalize(x, p=2, dim=-1) if self.normalize else x

    def _pieces(self, entity: EntityRepresentation, side: str) -> list[FloatTensor]:
        """Return, per score term, the argument of $f$ at the given side."""
        structural, structural_original, multimodal = entity
        cross_modal = {
            # the cross-modal terms pair the original structure with the (replacement) modality
            "sm": structural_original if side == "head" else multimodal,
            "ms": multimodal if side == "head" else structural_original,
        }
        pieces = []
        for term in self.score_terms:
            if term == "ss":
                piece = structural
            elif term == "mm":
                piece = multimodal
            elif term == "all":
                piece = structural_original + multimodal
            else:
                piece = cross_modal[term]
            pieces.append(self._prepare(piece))
        return pieces

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
        heads, tails, r = self._pieces(h, side="head"), self._pieces(t, side="tail"), self._prepare(r)
        h_shape, r_shape, t_shape = heads[0].shape[:-1], r.shape[:-1], tails[0].shape[:-1]
        if len(h_shape) == len(r_shape) == len(t_shape) == 2:
            # 1-to-all scoring as in ERModel.score_t: h, r: (b, 1, d); t: (1, n, d)
            if h_shape[1] == r_shape[1] == t_shape[0] == 1 and h_shape[0] == r_shape[0]:
                return -self._pairwise_distance([x[:, 0] + r[:, 0] for x in heads], [y[0] for y in tails])
            # ... and as in ERModel.score_h: h: (1, n, d); r, t: (b, 1, d); note |h + r - t| = |h - (t - r)|
            if h_shape[0] == r_shape[1] == t_shape[1] == 1 and r_shape[0] == t_shape[0]:
                return -self._pairwise_distance([y[:, 0] - r[:, 0] for y in tails], [x[0] for x in heads])
        return -sum(torch.linalg.vector_norm(x + r - y, ord=self.p, dim=-1) for x, y in zip(heads, tails))

    def _pairwise_distance(self, queries: list[FloatTensor], candidates: list[FloatTensor]) -> FloatTensor:
        """Sum the per-term distances between all queries (b, d) and all candidates (n, d)."""
        if self.p == 1:
            # the sum of L1 norms is the L1 norm of the concatenation
            return pairwise_l1_distance(torch.cat(queries, dim=-1), torch.cat(candidates, dim=-1))
        return sum(torch.cdist(x, y, p=self.p) for x, y in zip(queries, candidates))
