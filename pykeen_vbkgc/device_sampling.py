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

.. code-block:: python

    from pykeen.pipeline import pipeline

    result = pipeline(dataset="fb15k237", model="TransE", training_loop="deviceslcwa", negative_sampler="basic")
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import torch
from pykeen.training import SLCWATrainingLoop
from pykeen.triples import CoreTriplesFactory
from pykeen.triples.instances import BatchedSLCWAInstances, SLCWABatch
from pykeen.typing import MappedTriples

__all__ = [
    "DeviceSLCWAInstances",
    "DeviceSLCWATrainingLoop",
]


class DeviceSLCWAInstances(BatchedSLCWAInstances):
    """sLCWA batches with their negatives, made on a device.

    The negative sampler (and its filterer) is built as by PyKEEN's :class:`~pykeen.triples.instances.
    BatchedSLCWAInstances` and then moved to the device with the training triples.
    """

    def __init__(self, mapped_triples: MappedTriples, device: torch.device, **kwargs) -> None:
        """Initialize the instances.

        :param mapped_triples: shape: (num_triples, 3); the training triples
        :param device: the device on which batches and negatives are made
        :param kwargs: keyword-based parameters passed to :class:`~pykeen.triples.instances.BatchedSLCWAInstances`
        """
        super().__init__(mapped_triples=mapped_triples, **kwargs)
        self.device = torch.device(device)
        self.mapped_triples = self.mapped_triples.to(self.device)
        self.negative_sampler = self.negative_sampler.to(self.device)

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
