r"""Twins-aware entity representations.

A twins negative replaces entity $e$ by $e'$ in the unimodal score terms, but only $e$'s multimodal embedding in the
cross-modal terms. The sLCWA training loop moves negatives around as plain ``(batch, k, 3)`` index tensors (it
flattens them, slices them into sub-batches, and may build them in DataLoader worker processes), so a twins negative
has to carry both ids inside that tensor. We encode the pair $(e, e')$ as one *twins id*

.. math::

    \operatorname{id}(e, e') = N \cdot (e + 1) + e' \geq N

where $N$ is the number of entities. Plain ids $i < N$ stand for the pair $(i, i)$. :class:`TwinsView` decodes a
(possibly encoded) id into either the replacement $e'$ or the original $e$ before looking up its base
representation, so for plain ids every view returns the usual representation.
"""

from __future__ import annotations

from typing import Literal

import torch
from pykeen.nn.representation import Representation
from pykeen.typing import FloatTensor, LongTensor

from .validation import check_positive_int

__all__ = [
    "TwinsView",
    "decode_twins",
    "encode_twins",
    "encode_corrupted_twins_",
]

TwinsSide = Literal["original", "replacement"]


def encode_twins(original: LongTensor, replacement: LongTensor, num_entities: int) -> LongTensor:
    """Encode (original, replacement) entity pairs as twins ids.

    :param original: the ids of the entities in the positive triple
    :param replacement: the ids of the sampled entities, same shape
    :param num_entities: the number of entities $N$
    :return: the twins ids $N (e + 1) + e'$, each at least $N$
    :raises ValueError: if ``num_entities`` is not a positive integer
    """
    check_positive_int("num_entities", num_entities)
    return num_entities * (original + 1) + replacement


def encode_corrupted_twins_(original: LongTensor, replacement: LongTensor, num_entities: int) -> LongTensor:
    """Encode in place the pairs whose replacement differs from the original; the others stay plain ids.

    The result equals ``torch.where(replacement != original, encode_twins(original, replacement, num_entities),
    replacement)``, written into ``replacement`` with three operators instead of seven (on accelerators each is a
    kernel launch): $N (e + 1)$ is added where the ids differ.

    :param original: the ids of the entities in the positive triples
    :param replacement: the ids of the sampled entities, broadcastable with ``original``; overwritten
    :return: ``replacement``, now holding twins ids where it differed from ``original``
    :raises ValueError: if ``num_entities`` is not a positive integer
    """
    check_positive_int("num_entities", num_entities)
    return replacement.addcmul_(replacement != original, original + 1, value=num_entities)


def decode_twins(ids: LongTensor, num_entities: int, side: TwinsSide) -> LongTensor:
    """Decode (possibly) twins-encoded ids.

    :param ids: plain entity ids (< N) or twins ids (>= N), any shape
    :param num_entities: the number of entities $N$
    :param side: ``"replacement"`` gives $e'$, ``"original"`` gives $e$; plain ids decode to themselves
    :return: plain entity ids of the same shape
    :raises ValueError: for an unknown side, or if ``num_entities`` is not a positive integer
    """
    check_positive_int("num_entities", num_entities)
    if side == "replacement":
        return ids % num_entities
    if side == "original":
        return torch.where(ids < num_entities, ids, torch.div(ids, num_entities, rounding_mode="floor") - 1)
    raise ValueError(f"Invalid twins side: {side!r}. Use 'original' or 'replacement'.")


class TwinsView(Representation):
    """A view on a base representation that decodes twins ids to one side of the pair.

    Several views may share one base (e.g., the structural embedding is looked up for the replacement in the
    unimodal terms and for the original entity in the cross-modal terms); its parameters exist only once.
    """

    def __init__(self, base: Representation, side: TwinsSide, **kwargs) -> None:
        """Initialize the view.

        :param base: the representation to look up, with ``max_id`` = the number of entities
        :param side: which entity of a twins pair to look up, ``"original"`` or ``"replacement"``
        :param kwargs: additional keyword-based parameters passed to :class:`pykeen.nn.representation.Representation`
        :raises TypeError: if ``base`` is no representation
        :raises ValueError: for an unknown side
        """
        if not isinstance(base, Representation):
            raise TypeError(f"base must be a PyKEEN Representation, got {base!r}.")
        if side not in ("original", "replacement"):
            raise ValueError(f"Invalid twins side: {side!r}. Use 'original' or 'replacement'.")
        super().__init__(max_id=base.max_id, shape=base.shape, unique=False, **kwargs)
        self.base = base
        self.side = side

    # docstr-coverage: inherited
    def _plain_forward(self, indices: LongTensor | None = None) -> FloatTensor:  # noqa: D102
        if indices is not None:
            indices = decode_twins(indices, num_entities=self.max_id, side=self.side)
        return self.base(indices=indices)

    def iter_extra_repr(self):  # noqa: D102
        yield from super().iter_extra_repr()
        yield f"side={self.side!r}"
