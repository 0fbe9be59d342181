r"""An sLCWA training loop that draws batches and negatives on the model's device, for any PyKEEN model.

PyKEEN's :class:`~pykeen.training.SLCWATrainingLoop` builds every batch on the host: a
:class:`~torch.utils.data.DataLoader` shuffles Python lists of triple ids, the negative sampler corrupts the
positives on the CPU, and the loop copies both to the device. On a GPU that host work (and the copies, which
synchronise with the device) can cost more than the batch's arithmetic, for any model.

:class:`DeviceSLCWATrainingLoop` (``training_loop="deviceslcwa"``) keeps the training triples on the model's device
and runs the *same* negative sampler there: PyKEEN's samplers draw with :func:`torch.randint` on the device of the
positives they are given, and the filterers (``filtered=True``) are modules that move with the sampler (the Bloom
filter's bit array) or answer on the batch's device. So the negatives have the distribution of PyKEEN's loop
(tested in ``tests/test_device_sampling.py``), including :class:`~pykeen_vbkgc.TwinsNegativeSampler`'s twins
negatives, while no index ever leaves the device. Each epoch is one random permutation of the triples, split into
batches (the last one smaller unless ``drop_last``), as in PyKEEN's loop.

The loop also scores a batch's positives and negatives in one call of
:meth:`~pykeen.models.Model.score_hrt` instead of PyKEEN's two: on a GPU each call launches its own kernels (the
lookups, the interaction, their backward), and with both in one call VBKGC+twins launches about a third fewer per
batch (``benchmarks/launch_counts.py``). The scores are the same, row by row; only models whose scores depend on the
other rows of a call, or whose regularization term depends on how the rows are split into calls, keep two calls
(see :func:`scores_rows_independently`).

.. code-block:: python

    from pykeen.pipeline import pipeline

    result = pipeline(dataset="fb15k237", model="TransE", training_loop="deviceslcwa", negative_sampler="basic")
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Literal

import torch
from pykeen.models.base import Model
from pykeen.regularizers import NoRegularizer, Regularizer
from pykeen.training import SLCWATrainingLoop
from pykeen.triples import CoreTriplesFactory
from pykeen.triples.instances import BatchedSLCWAInstances, SLCWABatch
from pykeen.typing import FloatTensor, MappedTriples
from torch.nn.modules.batchnorm import _BatchNorm

from .validation import check_positive_int

__all__ = [
    "DeviceSLCWAInstances",
    "DeviceSLCWATrainingLoop",
    "has_regularizer",
    "scores_rows_independently",
]


def scores_rows_independently(model: Model) -> bool:
    """Return whether scoring positives and negatives in one call of ``score_hrt`` trains ``model`` as two calls do.

    Two kinds of modules make a difference: batch normalisation (its statistics are taken over the rows of a call,
    e.g., in ConvE) and regularizers (PyKEEN's add one term per call, each a mean over that call's rows, or only
    the first call's with ``apply_only_once``).

    :param model: the model
    :return: whether no module of ``model`` is a batch normalisation or a regularizer other than
        :class:`~pykeen.regularizers.NoRegularizer`
    """
    return not has_regularizer(model) and not any(isinstance(module, _BatchNorm) for module in model.modules())


def has_regularizer(model: Model) -> bool:
    """Return whether a module of ``model`` is a regularizer other than :class:`~pykeen.regularizers.NoRegularizer`.

    :param model: the model
    :return: whether it is regularized
    """
    return any(isinstance(module, Regularizer) and not isinstance(module, NoRegularizer) for module in model.modules())


class DeviceSLCWAInstances(BatchedSLCWAInstances):
    """sLCWA batches with their negatives, made on a device.

    The negative sampler (and its filterer) and the loss weighter are built as by PyKEEN's
    :class:`~pykeen.triples.instances.BatchedSLCWAInstances` and then moved to the device with the training triples.
    """

    def __init__(self, mapped_triples: MappedTriples, device: torch.device, **kwargs) -> None:
        """Initialize the instances.

        :param mapped_triples: shape: (num_triples, 3); the training triples
        :param device: the device on which batches and negatives are made
        :param kwargs: keyword-based parameters passed to :class:`~pykeen.triples.instances.BatchedSLCWAInstances`
        """
        super().__init__(mapped_triples=mapped_triples, **kwargs)
        # PyKEEN's torch sampler refuses it in its loop; batches of range(0, n, True) would be of 1 triple
        check_positive_int("batch_size", self.batch_size)
        # PyKEEN's samplers take 0, and the loss of no negatives is NaN only once training runs
        check_positive_int("num_negs_per_pos", self.negative_sampler.num_negs_per_pos)
        self.device = torch.device(device)
        self.mapped_triples = self.mapped_triples.to(self.device)
        self.negative_sampler = self.negative_sampler.to(self.device)
        if self.loss_weighter is not None:
            # PyKEEN's loss weighters are plain objects, not modules: a copy holds their tensors on the device (the
            # weights of device triples, e.g., RelationLossWeighter's, are looked up there)
            self.loss_weighter = copy.copy(self.loss_weighter)
            for name, value in vars(self.loss_weighter).items():
                if isinstance(value, torch.Tensor):
                    setattr(self.loss_weighter, name, value.to(self.device))

    def __iter__(self) -> Iterator[SLCWABatch]:
        """Iterate over the batches of one random permutation of the triples."""
        num_triples = self.mapped_triples.shape[0]
        permutation = torch.randperm(num_triples, device=self.device)
        # the batch sizes are known on the host: slicing needs no synchronisation
        stop = num_triples - num_triples % self.batch_size if self.drop_last else num_triples
        for start in range(0, stop, self.batch_size):
            yield self[permutation[start : min(start + self.batch_size, stop)]]


class DeviceSLCWATrainingLoop(SLCWATrainingLoop):
    """The sLCWA training loop with batches and negatives drawn on the model's device (see the module's text).

    It takes the same arguments as :class:`~pykeen.training.SLCWATrainingLoop` (``negative_sampler``,
    ``negative_sampler_kwargs``, ...) and is registered with PyKEEN as ``training_loop="deviceslcwa"``. The
    DataLoader options of :meth:`~pykeen.training.TrainingLoop.train` (``num_workers``, ``pin_memory``) have no
    effect, and the ``"schlichtkrull"`` sub-graph sampler is not supported.
    """

    # docstr-coverage: inherited
    def _create_training_data_loader(
        self,
        triples_factory: CoreTriplesFactory,
        *,
        sampler: Literal["schlichtkrull"] | None,
        batch_size: int,
        drop_last: bool,
        **kwargs,
    ) -> DeviceSLCWAInstances:  # noqa: D102
        if sampler is not None:
            raise ValueError(f"{type(self).__name__} does not support sampler={sampler!r}; use training_loop='slcwa'.")
        return DeviceSLCWAInstances(
            mapped_triples=triples_factory._add_inverse_triples_if_necessary(
                mapped_triples=triples_factory.mapped_triples
            ),
            device=self.model.device,
            batch_size=batch_size,
            drop_last=drop_last,
            num_entities=triples_factory.num_entities,
            num_relations=triples_factory.num_relations,
            negative_sampler=self.negative_sampler,
            negative_sampler_kwargs=self.negative_sampler_kwargs,
            loss_weighter=self.loss_weighter,
            loss_weighter_kwargs=self.loss_weighter_kwargs,
        )

    #: whether this loop's model is scored in one call per batch (see :func:`scores_rows_independently`); decided at
    #: the first batch (the model's modules are fixed by then), not per batch: the check walks all modules
    _one_call: bool | None = None

    # docstr-coverage: inherited
    def _process_batch(
        self,
        batch: SLCWABatch,
        start: int,
        stop: int,
        label_smoothing: float = 0.0,
        slice_size: int | None = None,
    ) -> FloatTensor:  # noqa: D102
        if self._one_call is None:
            self._one_call = scores_rows_independently(self.model)
        if not self._one_call:
            return super()._process_batch(
                batch=batch, start=start, stop=stop, label_smoothing=label_smoothing, slice_size=slice_size
            )
        if slice_size is not None:
            raise AttributeError("Slicing is not possible for sLCWA training loops.")
        model = self.model
        # as PyKEEN's loop: a filter keeps the negatives it marks; the copies to the model's device are no-ops but
        # for samplers that draw on the host (e.g., nscaching)
        device = model.device
        positive_batch = batch["positives"][start:stop].to(device=device)
        negative_batch = batch["negatives"][start:stop]
        positive_filter = batch.get("masks")
        if positive_filter is not None:
            positive_filter = positive_filter[start:stop]
            negative_batch = negative_batch[positive_filter]
            positive_filter = positive_filter.to(device)
        negative_batch = negative_batch.to(device)
        pos_weights, neg_weights = batch.get("pos_weights"), batch.get("neg_weights")
        if pos_weights is not None:
            pos_weights = pos_weights[start:stop].to(device=device)
        if neg_weights is not None:
            neg_weights = neg_weights[start:stop].to(device=device)
        negative_shape = negative_batch.shape[:-1]
        negative_batch = negative_batch.view(-1, 3)
        # split, not sliced: the backward of a split is one concatenation, that of two slices two zero-filled copies
        positive_scores, negative_scores = model.score_hrt(
            torch.cat([positive_batch, negative_batch]), mode=self.mode
        ).split([positive_batch.shape[0], negative_batch.shape[0]])
        return (
            self.loss.process_slcwa_scores(
                positive_scores=positive_scores,
                negative_scores=negative_scores.view(*negative_shape),
                label_smoothing=label_smoothing,
                batch_filter=positive_filter,
                num_entities=model._get_entity_len(mode=self.mode),
                pos_weights=pos_weights,
                neg_weights=neg_weights,
            )
            + model.collect_regularization_term()
        )
