r"""NSCaching: negatives drawn from per-query caches of high-scoring entities ([zhang2019]_).

For every training pair $(h, r)$ the sampler keeps a *tail cache* $\mathcal{T}_{(h,r)}$ of $N_1$ entities, and for
every pair $(r, t)$ a *head cache* $\mathcal{H}_{(r,t)}$. A negative of the positive $(h, r, t)$ replaces its head
by an entity of $\mathcal{H}_{(r,t)}$ or its tail by an entity of $\mathcal{T}_{(h,r)}$. After the negatives of a
batch are drawn, the caches of the batch's pairs are refreshed with the current model: the $N_1$ cached entities and
$N_2$ uniformly drawn ones form the candidates $\mathcal{C}$, and $N_1$ of them are kept.

.. [zhang2019] Zhang, Y., Yao, Q., Shao, Y., & Chen, L. (2019). `NSCaching: Simple and Efficient Negative Sampling
   for Knowledge Graph Embedding <https://arxiv.org/abs/1812.06410>`_. ICDE 2019, 614-625.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import torch
from pykeen.sampling import NegativeSampler
from pykeen.typing import BoolTensor, FloatTensor, LongTensor

from .training_loop import calling_data_loader_workers, calling_training_loop
from .validation import FLOAT32_MAX, check_positive_int, fits_float32, ids_out_of_range

if TYPE_CHECKING:
    from pykeen.models import Model

__all__ = [
    "NSCachingNegativeSampler",
    "importance_probabilities",
    "sample_by_importance",
]

logger = logging.getLogger(__name__)

#: how negatives are drawn from a cache, and how a cache keeps its entities
SAMPLING_CHOICES = ("uniform", "importance", "top")
UPDATE_CHOICES = ("importance", "top")

_WORKERS_MESSAGE = (
    "The 'nscaching' negative sampler keeps its caches in the main process and cannot run in DataLoader worker "
    "processes; train with num_workers=0."
)


def importance_probabilities(scores: FloatTensor, temperature: float) -> FloatTensor:
    r"""Return NSCaching's importance-sampling probabilities of candidates from their scores.

    .. math::

        p(e) = \frac{\exp(f(e) / \tau)}{\sum_{e' \in \mathcal{C}} \exp(f(e') / \tau)}

    where $f$ is the model's score (larger means more plausible, so harder as a negative) and $\tau$ the temperature.

    :param scores: shape: ``(*, num_candidates)``, the scores of the candidates of each cache
    :param temperature: $\tau > 0$; small values approach keeping the top-scored candidates
    :return: shape: ``(*, num_candidates)``, probabilities summing to one over the last dimension
    """
    return torch.softmax(scores / temperature, dim=-1)


def sample_by_importance(scores: FloatTensor, temperature: float, num_samples: int) -> LongTensor:
    r"""Draw candidates without replacement with the probabilities of :func:`importance_probabilities`.

    This is the Gumbel-top-$k$ trick: the $k$ largest of $f(e) / \tau + g_e$ with independent standard Gumbel noise
    $g_e$ are distributed as $k$ successive draws without replacement from $p$, and unlike
    :func:`torch.multinomial` it cannot fail when some probabilities underflow to zero.

    :param scores: shape: ``(n, m)``, the scores of the candidates of each row; $-\infty$ for candidates that must not
        be drawn (unless fewer than $k$ others remain)
    :param temperature: $\tau > 0$
    :param num_samples: $k \le m$, the number of candidates to draw from each row
    :return: shape: ``(n, k)``, the positions of the drawn candidates in each row
    """
    finfo = torch.finfo(scores.dtype)
    uniform = torch.rand(scores.shape, dtype=scores.dtype).clamp_min(finfo.tiny)
    gumbel = -torch.log(-torch.log(uniform))
    # a small temperature makes finite scores overflow: they must still rank above the masked (-inf) candidates
    scaled = torch.where(torch.isinf(scores), scores, (scores / temperature).clamp(-finfo.max, finfo.max))
    return (scaled + gumbel).topk(k=num_samples, dim=-1).indices


class NSCachingNegativeSampler(NegativeSampler):
    r"""The NSCaching negative sampler of [zhang2019]_.

    Each of the ``num_negs_per_pos`` negatives of a positive $(h, r, t)$ replaces the head or the tail (half of the
    batch each, as in :class:`~pykeen.sampling.BasicNegativeSampler`) by an entity of the cache of $(r, t)$ or of
    $(h, r)$, drawn

    - ``sampling="uniform"`` (the reference code's default): uniformly from the $N_1$ cached entities;
    - ``sampling="importance"``: with the probabilities of :func:`importance_probabilities` over the cache, scored
      by the current model;
    - ``sampling="top"``: the highest-scored cached entity.

    Then the head and tail caches of every pair in the batch are refreshed: $N_2$ entities drawn uniformly join the
    $N_1$ cached ones, the current model scores all $N_1 + N_2$, and the cache keeps $N_1$ of them, drawn without
    replacement with :func:`importance_probabilities` (``update="importance"``, the paper's and the reference
    code's default) or the $N_1$ best-scored ones (``update="top"``). As in the reference code the refresh happens
    between drawing the negatives and the optimiser step of the batch, and a candidate may appear twice in a cache.
    The caches start with uniformly drawn entities. A negative never keeps the positive's own entity (as with
    PyKEEN's basic sampler): the draw leaves the cached copies of it out. With ``filtered=True``, negatives that are
    known training triples are removed by PyKEEN's filterer, as with any sampler.

    **How the sampler reaches the model.** PyKEEN's sLCWA training loop builds the negative sampler in
    ``_create_training_data_loader`` with the training triples only. The sampler therefore takes the model of the
    training loop found among its calling frames (:func:`~pykeen_vbkgc.training_loop.calling_training_loop`), so
    ``pipeline(..., negative_sampler="nscaching")`` and ``hpo_pipeline`` need nothing else; a sampler built
    elsewhere takes ``model=``. Sub-batching works (a batch is sampled, and its caches refreshed, once); the caches
    live in the main process, so DataLoader workers (``num_workers > 0``) are refused.

    **Memory.** Two ``int64`` tensors of shape ``(number of pairs, N_1)``, on the CPU: with $N_1 = 50$, 60 MB for
    FB15k-237 (93,372 $(h, r)$ and 56,317 $(r, t)$ pairs in training) and 6.3 MB for WN9 (``docs/nscaching.md``).

    **Checkpoints.** PyKEEN builds a new sampler for every ``train()`` call; the caches are kept on the training
    loop, so a continued training (``continue_training=True``) goes on with them. They are not part of PyKEEN's
    training checkpoints: a training resumed from a checkpoint starts with fresh random caches (a warning says so),
    so it is not bit-identical to an uninterrupted one, unlike runs with the basic and twins samplers.
    """

    #: PyKEEN's range for the number of negatives, plus the cache sizes of the paper's experiments
    hpo_default: ClassVar[Mapping[str, Mapping[str, Any]]] = dict(
        num_negs_per_pos=dict(type=int, low=1, high=100, log=True),
        cache_size=dict(type=int, low=10, high=100, q=10),
        num_candidates=dict(type=int, low=10, high=100, q=10),
    )

    def __init__(
        self,
        *,
        mapped_triples: LongTensor,
        cache_size: int = 50,
        num_candidates: int = 50,
        sampling: Literal["uniform", "importance", "top"] = "uniform",
        update: Literal["importance", "top"] = "importance",
        temperature: float = 2.0,
        model: Model | None = None,
        **kwargs,
    ) -> None:
        r"""Initialize the sampler.

        :param mapped_triples: shape: ``(n, 3)``, the training triples, whose pairs get caches
        :param cache_size: $N_1$, the number of entities in each cache (reference code: 50)
        :param num_candidates: $N_2$, the number of uniformly drawn entities that compete with the cache at each
            refresh (reference code: 50)
        :param sampling: how negatives are drawn from a cache: ``"uniform"``, ``"importance"`` or ``"top"``
        :param update: how a refresh keeps $N_1$ of the candidates: ``"importance"`` or ``"top"``
        :param temperature: $\tau$ of :func:`importance_probabilities` (reference code: 2)
        :param model: the model that scores the candidates; by default the model of the training loop that builds
            the sampler
        :param kwargs: keyword-based parameters passed to :class:`~pykeen.sampling.NegativeSampler`, e.g.,
            ``num_negs_per_pos``, ``filtered``, ``num_entities``
        :raises ValueError: for an invalid setting, triples with ids beyond the sampler's numbers of entities and
            relations, a model with fewer, or DataLoader workers in PyKEEN's loop
        :raises TypeError: for a model that is no PyKEEN model
        """
        cache_size = check_positive_int("cache_size", cache_size)
        num_candidates = check_positive_int("num_candidates", num_candidates)
        if sampling not in SAMPLING_CHOICES:
            raise ValueError(f"sampling must be one of {', '.join(SAMPLING_CHOICES)}; got {sampling!r}.")
        if update not in UPDATE_CHOICES:
            raise ValueError(f"update must be one of {', '.join(UPDATE_CHOICES)}; got {update!r}.")
        if not fits_float32(temperature) or not temperature > 0:
            raise ValueError(
                f"temperature must be a positive number up to {FLOAT32_MAX:.4g} (float32's range), got {temperature!r}."
            )
        if kwargs.get("num_negs_per_pos") is not None:
            kwargs["num_negs_per_pos"] = check_positive_int("num_negs_per_pos", kwargs["num_negs_per_pos"])
        if "corruption_scheme" in kwargs:
            raise ValueError(
                "The 'nscaching' negative sampler corrupts heads and tails, from a cache for each; it takes no "
                "corruption_scheme."
            )
        # here, not at the top: importing PyKEEN's models can import this package (its dataset entry point)
        from pykeen.models import Model

        if model is not None and not isinstance(model, Model):
            raise TypeError(f"model must be a PyKEEN model, got {model!r}.")
        if calling_data_loader_workers():
            raise ValueError(_WORKERS_MESSAGE)
        super().__init__(mapped_triples=mapped_triples, **kwargs)
        # the caches' keys e * num_relations + r of ids beyond the numbers would collide
        out_of_range = ids_out_of_range(mapped_triples, self.num_entities, self.num_relations)
        if out_of_range is not None:
            kind, low, high, number = out_of_range
            raise ValueError(
                f"the training triples hold {kind} ids from {low} to {high}, outside 0 to {number - 1} (the sampler's "
                f"number of {kind} ids)."
            )
        self.cache_size = cache_size
        self.num_candidates = num_candidates
        self.sampling = sampling
        self.update = update
        self.temperature = float(temperature)
        loop = calling_training_loop()
        if model is None and loop is not None:
            model = loop.model
        if model is not None and (model.num_entities < self.num_entities or model.num_relations < self.num_relations):
            raise ValueError(
                f"the model has {model.num_entities} entities and {model.num_relations} relations, fewer than the "
                f"sampler's {self.num_entities} and {self.num_relations}: it cannot score the sampler's negatives."
            )
        self.model = model
        mapped_triples = mapped_triples.cpu()
        heads, relations, tails = mapped_triples.unbind(dim=-1)
        #: sorted keys of the pairs (r, t), whose caches hold heads, and (h, r), whose caches hold tails
        self.head_keys = torch.unique(self._key(relations, tails))
        self.tail_keys = torch.unique(self._key(relations, heads))
        # PyKEEN builds a new sampler for every train() call of a loop: a continued training keeps the caches
        kept = getattr(loop, _LOOP_ATTRIBUTE, None)
        if kept is not None and kept.fits(self):
            self.head_cache, self.tail_cache = kept.head_cache, kept.tail_cache
            return
        if loop is not None and loop._epoch > 0:
            logger.warning(
                "NSCaching's caches are not part of PyKEEN's checkpoints: training resumed after epoch %d starts "
                "with fresh random caches.",
                loop._epoch,
            )
        #: shape: (number of (r, t) pairs, N_1), the head caches
        self.head_cache = self._random_entities(len(self.head_keys), cache_size)
        #: shape: (number of (h, r) pairs, N_1), the tail caches
        self.tail_cache = self._random_entities(len(self.tail_keys), cache_size)
        if loop is not None:
            setattr(loop, _LOOP_ATTRIBUTE, _Caches(self))

    def _key(self, relations: LongTensor, entities: LongTensor) -> LongTensor:
        return entities * self.num_relations + relations

    def _random_entities(self, *shape: int) -> LongTensor:
        return torch.randint(self.num_entities, size=shape)

    def _rows(self, column: int, triples: LongTensor) -> tuple[LongTensor, LongTensor]:
        """Return the caches that replace ``column`` (0: heads, 2: tails) and the rows of the pairs of ``triples``."""
        keys, cache = (self.head_keys, self.head_cache) if column == 0 else (self.tail_keys, self.tail_cache)
        wanted = self._key(triples[:, 1], triples[:, 2 - column])
        rows = torch.searchsorted(keys, wanted).clamp_max(len(keys) - 1)
        if not torch.equal(keys[rows], wanted):
            raise ValueError(
                "NSCaching has caches only for the pairs of its training triples; a positive triple of this batch "
                "is not a training triple."
            )
        return cache, rows

    # docstr-coverage: inherited
    def sample(self, positive_batch: LongTensor) -> tuple[LongTensor, BoolTensor | None]:  # noqa: D102
        if torch.utils.data.get_worker_info() is not None:
            # built elsewhere than in PyKEEN's loop, which refuses workers before they start (see __init__)
            raise RuntimeError(_WORKERS_MESSAGE)
        if self.model is None:
            raise RuntimeError(
                "The 'nscaching' negative sampler has no model to score its cache candidates: build it inside "
                "PyKEEN's sLCWA training loop (negative_sampler='nscaching') or pass model=..."
            )
        return super().sample(positive_batch=positive_batch)

    # docstr-coverage: inherited
    def corrupt_batch(self, positive_batch: LongTensor) -> LongTensor:  # noqa: D102
        batch_shape = positive_batch.shape[:-1]
        positives = positive_batch.view(-1, 3).cpu()
        k = self.num_negs_per_pos
        negatives = positives.repeat_interleave(k, dim=0)
        # the first half of the negatives replaces heads, the second half tails (as PyKEEN's basic sampler)
        split = -(-len(negatives) // 2)
        for column, part in ((0, slice(0, split)), (2, slice(split, len(negatives)))):
            negatives[part, column] = self._draw(column, negatives[part])
        self.refresh(positives)
        # on the positives' device, as PyKEEN's samplers draw (the filterer, e.g., moved with the device loop's
        # sampler, looks them up there)
        return negatives.view(*batch_shape, k, 3).to(positive_batch.device)

    def _draw(self, column: int, triples: LongTensor) -> LongTensor:
        """Draw an entity from the cache of each triple's pair to replace its ``column``, never the entity itself.

        A cache may hold the positive's own entity (caches start random and keep well-scored entities; on Nations'
        14 entities 7 % of the uniform draws were the positive triple itself); as in PyKEEN's basic sampler, the
        draw leaves it out. A cache that holds nothing else gives a uniformly drawn other entity.
        """
        cache, rows = self._rows(column, triples)
        candidates = cache[rows]
        own = candidates == triples[:, column : column + 1]
        if self.sampling == "uniform":
            # the largest of independent uniform keys is a uniform draw among the positions that are not masked
            scores = torch.rand(candidates.shape)
        else:
            # the k negatives of a positive share its cache: score each cache once
            unique, first, inverse = _unique_rows(rows)
            scores = self.score_candidates(triples=triples[first], candidates=cache[unique], column=column)[inverse]
        scores = scores.masked_fill(own, float("-inf"))
        if self.sampling == "importance":
            picked = sample_by_importance(scores, self.temperature, num_samples=1)
        else:
            picked = scores.argmax(dim=1, keepdim=True)
        drawn = candidates.gather(1, picked).squeeze(1)
        only_own = own.all(dim=1)
        if only_own.any():
            # one of the other num_entities - 1 entities, uniformly
            original = triples[only_own, column]
            shift = torch.randint(1, self.num_entities, size=original.shape)
            drawn[only_own] = (original + shift) % self.num_entities
        return drawn

    def score_candidates(self, triples: LongTensor, candidates: LongTensor, column: int) -> FloatTensor:
        """Score each triple of ``triples`` with ``column`` replaced by each of its row's candidates.

        :param triples: shape: ``(n, 3)``
        :param candidates: shape: ``(n, m)``, entity ids
        :param column: 0 to replace heads, 2 to replace tails
        :return: shape: ``(n, m)``, the model's scores, on the CPU
        """
        model = self.model
        device = model.device
        with torch.no_grad():
            if column == 0:
                scores = model.score_h(rt_batch=triples[:, 1:].to(device), heads=candidates.to(device))
            else:
                scores = model.score_t(hr_batch=triples[:, :2].to(device), tails=candidates.to(device))
        return scores.cpu()

    def refresh(self, positives: LongTensor) -> None:
        """Refresh the head and tail caches of the pairs of ``positives`` with the current model.

        :param positives: shape: ``(n, 3)``, the positive triples of a batch
        """
        for column in (0, 2):
            cache, rows = self._rows(column, positives)
            rows, first, _ = _unique_rows(rows)
            candidates = torch.cat([cache[rows], self._random_entities(len(rows), self.num_candidates)], dim=1)
            scores = self.score_candidates(triples=positives[first], candidates=candidates, column=column)
            if self.update == "top":
                kept = scores.topk(k=self.cache_size, dim=1).indices
            else:
                kept = sample_by_importance(scores, self.temperature, num_samples=self.cache_size)
            cache[rows] = candidates.gather(1, kept)


#: where a training loop keeps the caches between its train() calls
_LOOP_ATTRIBUTE = "_nscaching_caches"


class _Caches:
    """The caches of a sampler and what they were made for, kept by the training loop."""

    def __init__(self, sampler: NSCachingNegativeSampler) -> None:
        self.head_keys, self.tail_keys = sampler.head_keys, sampler.tail_keys
        self.head_cache, self.tail_cache = sampler.head_cache, sampler.tail_cache
        self.shape = (sampler.num_entities, sampler.num_relations, sampler.cache_size)

    def fits(self, sampler: NSCachingNegativeSampler) -> bool:
        """Return whether a new sampler of the same loop can continue with these caches."""
        return (
            self.shape == (sampler.num_entities, sampler.num_relations, sampler.cache_size)
            and torch.equal(self.head_keys, sampler.head_keys)
            and torch.equal(self.tail_keys, sampler.tail_keys)
        )


def _unique_rows(rows: LongTensor) -> tuple[LongTensor, LongTensor, LongTensor]:
    """Return the sorted unique rows, the index of the first occurrence of each, and each row's unique index."""
    unique, inverse = torch.unique(rows, return_inverse=True)
    positions = torch.arange(len(rows))
    first = torch.full((len(unique),), len(rows), dtype=torch.long).scatter_reduce(0, inverse, positions, reduce="amin")
    return unique, first, inverse
