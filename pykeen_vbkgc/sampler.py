"""Twins negative sampling (Sec. 4.4.2 of the VBKGC paper)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pykeen.constants import LABEL_HEAD, LABEL_TAIL, TARGET_TO_INDEX
from pykeen.sampling.basic_negative_sampler import BasicNegativeSampler
from pykeen.typing import BoolTensor, LongTensor

from .defaults import BEST
from .representation import encode_corrupted_twins_
from .training_loop import calling_training_loop
from .validation import check_positive_int

__all__ = [
    "TwinsNegativeSampler",
    "TwinsNotSupportedError",
]


class TwinsNotSupportedError(TypeError):
    """Raised when twins negatives are requested for a model that cannot consume them."""


class TwinsNegativeSampler(BasicNegativeSampler):
    r"""The twins negative sampler of [zhang2022]_.

    Like :class:`~pykeen.sampling.BasicNegativeSampler`, it makes ``num_negs_per_pos`` negatives per positive
    triple by replacing its head or its tail by a uniformly drawn different entity. Each entity $e$ of a
    multimodal model has a structural embedding $\mathbf{e}_s$ and a multimodal embedding $\mathbf{e}_m$; a twins
    negative treats the score terms differently:

    - unimodal terms ($ss$, $mm$) see ordinary negatives, i.e., $e$ is fully replaced by $(\mathbf{e}'_s,
      \mathbf{e}'_m)$;
    - cross-modal terms ($sm$, $ms$, $all$) see only the modality replaced, i.e., $(\mathbf{e}_s, \mathbf{e}'_m)$.

    For a tail-corrupted negative $(h, r, t')$ of the positive $(h, r, t)$, VBKGC therefore scores

    .. math::

        f(\mathbf{h}_s, \mathbf{r}, \mathbf{t}'_s) + f(\mathbf{h}_m, \mathbf{r}, \mathbf{t}'_m)
        + f(\mathbf{h}_s, \mathbf{r}, \mathbf{t}'_m) + f(\mathbf{h}_m, \mathbf{r}, \mathbf{t}_s)
        + f(\mathbf{h}_s + \mathbf{h}_m, \mathbf{r}, \mathbf{t}_s + \mathbf{t}'_m)

    and for a head-corrupted negative $(h', r, t)$

    .. math::

        f(\mathbf{h}'_s, \mathbf{r}, \mathbf{t}_s) + f(\mathbf{h}'_m, \mathbf{r}, \mathbf{t}_m)
        + f(\mathbf{h}_s, \mathbf{r}, \mathbf{t}_m) + f(\mathbf{h}'_m, \mathbf{r}, \mathbf{t}_s)
        + f(\mathbf{h}_s + \mathbf{h}'_m, \mathbf{r}, \mathbf{t}_s + \mathbf{t}_m)

    The corrupted position holds the twins id $N (e + 1) + e'$ (see :mod:`pykeen_vbkgc.representation`), so the
    negatives stay an ordinary ``(batch, k, 3)`` index tensor that the sLCWA training loop can slice, filter and
    build in DataLoader workers. With ``filtered=True`` the filter is applied to the plain corrupted triple
    $(h, r, t')$ before encoding. Only models that declare ``supports_twins_negatives`` (such as
    :class:`~pykeen_vbkgc.VBKGC`) can consume twins ids; a training loop of any other model fails at once.
    """

    #: the number of negatives is fixed to the default's in hyper-parameter optimisation (tune it explicitly)
    hpo_default: ClassVar[Mapping[str, Mapping[str, Any]]] = dict(
        num_negs_per_pos=dict(type="categorical", choices=[BEST.num_negatives]),
    )

    def __init__(self, *, num_negs_per_pos: int = BEST.num_negatives, **kwargs) -> None:
        """Initialize the sampler.

        :param num_negs_per_pos: the number of negatives $k$ per positive (default: 16, the best-known setting of
            :mod:`pykeen_vbkgc.defaults`; PyKEEN's basic sampler draws 1)
        :param kwargs: keyword-based parameters passed to :class:`~pykeen.sampling.BasicNegativeSampler`, e.g.,
            ``filtered`` and ``corruption_scheme`` (default: head and tail)
        """
        num_negs_per_pos = check_positive_int("num_negs_per_pos", num_negs_per_pos)
        super().__init__(num_negs_per_pos=num_negs_per_pos, **kwargs)
        _check_training_model()
        columns = {TARGET_TO_INDEX[side] for side in self.corruption_scheme if side in (LABEL_HEAD, LABEL_TAIL)}
        if not columns:
            raise ValueError(
                f"The 'twins' negative sampler replaces heads or tails; corruption_scheme={self.corruption_scheme!r} "
                "replaces neither. Add 'head' or 'tail' (or use negative_sampler='basic')."
            )
        #: the corrupted entity columns: head and tail (0 and 2), or one of them
        self._entity_column_slice = slice(0, 3, 2) if columns == {0, 2} else slice(min(columns), min(columns) + 1)

    # docstr-coverage: inherited
    def sample(self, positive_batch: LongTensor) -> tuple[LongTensor, BoolTensor | None]:  # noqa: D102
        negative_batch = super().corrupt_batch(positive_batch=positive_batch)
        # filter on the plain triples, before the corrupted entity is twins-encoded
        mask = None if self.filterer is None else self.filterer(negative_batch=negative_batch)
        return self._encode_(positive_batch=positive_batch, negative_batch=negative_batch), mask

    # docstr-coverage: inherited
    def corrupt_batch(self, positive_batch: LongTensor) -> LongTensor:  # noqa: D102
        return self._encode_(
            positive_batch=positive_batch, negative_batch=super().corrupt_batch(positive_batch=positive_batch)
        )

    def _encode_(self, positive_batch: LongTensor, negative_batch: LongTensor) -> LongTensor:
        """Replace each corrupted entity of plain negatives by its twins id, in place.

        :param positive_batch: shape: ``(*batch_dims, 3)``, the positive triples
        :param negative_batch: shape: ``(*batch_dims, k, 3)``, plain negatives made from them; overwritten
        :return: ``negative_batch``, now the twins negatives
        """
        # all entity columns at once (a slice, not a list: a list would be copied to the device); the basic
        # corruption never draws the original entity, so a changed id marks the corrupted column
        columns = self._entity_column_slice
        encode_corrupted_twins_(
            original=positive_batch.unsqueeze(dim=-2)[..., columns],
            replacement=negative_batch[..., columns],
            num_entities=self.num_entities,
        )
        return negative_batch


def _check_training_model() -> None:
    """Fail early if the training loop that builds this sampler trains a model without twins support.

    Without a training loop among the callers (e.g., a sampler made by hand), nothing is checked.
    """
    loop = calling_training_loop()
    if loop is not None and not getattr(loop.model, "supports_twins_negatives", False):
        name = type(loop.model).__name__
        raise TwinsNotSupportedError(
            f"The 'twins' negative sampler needs a model that consumes twins negatives, such as model='vbkgc'; "
            f"{name} has only one embedding per entity. Use negative_sampler='basic' (or 'bernoulli') for {name}."
        )
