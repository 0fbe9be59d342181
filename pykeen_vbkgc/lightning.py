r"""Multi-device training with PyTorch Lightning, on top of :mod:`pykeen.contrib.lightning`.

PyKEEN's :class:`~pykeen.contrib.lightning.SLCWALitModule` already carries twins negatives: its data loader wraps
:class:`~pykeen.triples.instances.BatchedSLCWAInstances`, which calls the negative sampler's ``sample`` (so the
twins ids $N (e + 1) + e'$ of :mod:`pykeen_vbkgc.representation` are made there), and its training step is
:meth:`pykeen.training.SLCWATrainingLoop._process_batch_static`, the same code as PyKEEN's own sLCWA loop. Under
data-parallel training (DDP) it has three gaps, which :class:`TwinsSLCWALitModule` closes while reusing PyKEEN's
modules:

1. The instances are an :class:`~torch.utils.data.IterableDataset` that shards only across DataLoader *workers*,
   and Lightning cannot inject a :class:`~torch.utils.data.DistributedSampler` into an iterable dataset. So every
   rank iterates over *all* positive triples each epoch: with $n$ devices an epoch does $n$ times the work and
   the ranks' shards are not disjoint.
2. The negatives come from the global torch RNG of each process. After ``seed_everything`` every rank has the same
   RNG state, so all ranks draw the *same* permutation and the *same* negatives (duplicated work); without seeding
   they are irreproducible.
3. The twins sampler checks that the model can consume twins ids only inside PyKEEN's training loop; Lightning has
   none, so a model without twins support would fail later with an index error.

Here, the positives of each epoch are split by :class:`ShardedSLCWABatchSampler`, a
:class:`~torch.utils.data.DistributedSampler` (so Lightning recognises it and leaves it alone, and calls its
``set_epoch``): one permutation shared by all ranks (seeded by ``seed + epoch``), of which rank $r$ takes every
$n$-th triple starting at $r$, padded as by ``DistributedSampler`` so that all ranks run the same number of batches.
The negatives of a batch are drawn by PyKEEN's instances under a fresh RNG state seeded from
``(seed, stream, epoch, rank, batch index)`` (:func:`batch_seed`), so that

- the ranks train on disjoint positives and different negatives,
- each rank's negatives are a deterministic function of those five numbers: a re-run, a different number of
  DataLoader workers or another process reproduces them exactly, and
- the global RNG of the training process is left untouched.

Usage, e.g. on 4 GPUs::

    python -m pykeen_vbkgc.lightning --dataset wn9 --accelerator gpu --devices 4 --strategy ddp --epochs 500

or from Python (with ``strategy="ddp"``, Lightning re-runs the calling script once per extra device, so call it
from a script's ``if __name__ == "__main__":`` block, not from an interactive session)::

    from pykeen_vbkgc.lightning import train_lightning

    result = train_lightning(dataset="nations", model_kwargs=dict(features="random", feature_dim=64),
                             accelerator="cpu", devices=2, strategy="ddp", num_epochs=5)
    if result.trainer.is_global_zero:
        print(result.evaluate().get_metric("both.realistic.inverse_harmonic_mean_rank"))
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import signal
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import click
import numpy as np
import torch
import torch.utils.data
from class_resolver import HintOrType, OptionalKwargs
from pykeen.datasets.base import Dataset
from pykeen.evaluation import MetricResults, RankBasedEvaluator
from pykeen.models import Model
from pykeen.sampling import NegativeSampler, negative_sampler_resolver
from pykeen.training import SLCWATrainingLoop
from pykeen.triples import CoreTriplesFactory
from pykeen.triples.instances import BaseBatchedSLCWAInstances, BatchedSLCWAInstances, SLCWABatch
from pykeen.typing import FloatTensor

from .allocator import keep_freed_memory
from .checkpoints import signals_deferred
from .cli import (
    COUNT_RANGE,
    SEED_RANGE,
    dataset_options,
    features_error,
    output_errors,
    quiet_library_logs,
    settings_options,
)
from .dataset_loading import load_dataset_and_features
from .defaults import BEST, Preset
from .features import FeaturesFileError
from .nscaching import NSCachingNegativeSampler
from .sampler import TwinsNegativeSampler, TwinsNotSupportedError
from .staging import OutputError, check_new_output, new_directory
from .validation import FLOAT32_TINY, check_float32, check_positive_int, check_seed

try:
    import pytorch_lightning
    from pykeen.contrib.lightning import SLCWALitModule
    from pytorch_lightning.utilities.exceptions import MisconfigurationException
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "pykeen_vbkgc.lightning needs PyTorch Lightning: pip install 'pykeen-vbkgc[lightning]'"
    ) from error

__all__ = [
    "LightningResult",
    "SLCWABatchKey",
    "SeededSLCWABatches",
    "ShardedSLCWABatchSampler",
    "TrainerSettingsError",
    "TwinsSLCWALitModule",
    "batch_seed",
    "train_lightning",
]

logger = logging.getLogger(__name__)


class TrainerSettingsError(ValueError):
    """Lightning refused the accelerator, devices, strategy or another setting of its trainer."""


#: the RNG streams of the training and the validation data
TRAINING_STREAM, VALIDATION_STREAM = 0, 1


class SLCWABatchKey(NamedTuple):
    """The index of one sLCWA batch: which positives, and everything that seeds its negatives."""

    #: the epoch
    epoch: int
    #: the global rank of the process
    rank: int
    #: the index of the batch within the rank's epoch
    index: int
    #: the ids of the positive triples (rows of the instances' ``mapped_triples``)
    triple_ids: list[int]


def batch_seed(seed: int, stream: int, epoch: int, rank: int, index: int) -> int:
    """Derive the seed of one batch's negatives.

    :param seed: the run's seed
    :param stream: the data stream, e.g., :data:`TRAINING_STREAM` or :data:`VALIDATION_STREAM`
    :param epoch: the epoch
    :param rank: the global rank
    :param index: the index of the batch within the rank's epoch
    :return: a seed for :func:`torch.manual_seed`, a well-mixed function of all five numbers
    """
    if min(seed, stream, epoch, rank, index) < 0:
        raise ValueError(f"All parts of a batch seed must be non-negative: {(seed, stream, epoch, rank, index)}")
    state = np.random.SeedSequence([seed, stream, epoch, rank, index]).generate_state(1, dtype=np.uint64)
    return int(state[0] >> np.uint64(1))


class ShardedSLCWABatchSampler(torch.utils.data.DistributedSampler):
    r"""Split each epoch's positive triples into disjoint per-rank shards and batch them.

    Yields :class:`SLCWABatchKey` objects for :class:`SeededSLCWABatches`. Shuffling and sharding are those of
    :class:`torch.utils.data.DistributedSampler` (one permutation per epoch, seeded by ``seed + epoch`` on every rank;
    rank $r$ takes positions $r, r + n, r + 2n, \ldots$; with ``drop_last=False`` the permutation is padded with its
    first elements to a multiple of $n$). Every rank therefore runs :func:`len` batches, the last one possibly smaller.
    """

    def __init__(
        self,
        num_triples: int,
        batch_size: int,
        num_replicas: int = 1,
        rank: int = 0,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        """Initialize the sampler.

        :param num_triples: the number of positive triples
        :param batch_size: the number of positives per batch (per rank)
        :param num_replicas: the number of ranks (the world size)
        :param rank: the global rank of this process
        :param shuffle: whether to shuffle the triples each epoch
        :param seed: the seed of the shared permutation (and part of each batch's negatives seed)
        :param drop_last: whether to drop the tail of the permutation instead of padding it (as DistributedSampler)
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}.")
        if num_triples < num_replicas:
            raise ValueError(f"Cannot split {num_triples} triples over {num_replicas} ranks.")
        super().__init__(
            dataset=range(num_triples),  # only its length is used
            num_replicas=num_replicas,
            rank=rank,
            shuffle=shuffle,
            seed=seed,
            drop_last=drop_last,
        )
        self.batch_size = batch_size

    def __iter__(self) -> Iterator[SLCWABatchKey]:  # type: ignore[override]
        """Iterate over this rank's batches of the current epoch."""
        ids = list(super().__iter__())
        for index, start in enumerate(range(0, len(ids), self.batch_size)):
            yield SLCWABatchKey(
                epoch=self.epoch, rank=self.rank, index=index, triple_ids=ids[start : start + self.batch_size]
            )

    def __len__(self) -> int:
        """Return the number of batches per epoch (the same on every rank)."""
        return math.ceil(self.num_samples / self.batch_size)


class SeededSLCWABatches(torch.utils.data.Dataset[SLCWABatch]):
    """A map-style view of PyKEEN's sLCWA instances whose negatives are seeded per batch.

    ``dataset[key]`` returns PyKEEN's ``instances[key.triple_ids]`` (positives, negatives from the instances' negative
    sampler, masks, weights), computed under a forked RNG seeded with :func:`batch_seed`.
    """

    def __init__(self, instances: BaseBatchedSLCWAInstances, seed: int = 0, stream: int = TRAINING_STREAM) -> None:
        """Initialize the dataset.

        :param instances: PyKEEN's batched sLCWA instances (they hold the triples and the negative sampler)
        :param seed: the run's seed
        :param stream: the data stream, distinguishing e.g. training from validation batches
        """
        self.instances = instances
        self.seed = seed
        self.stream = stream

    def __len__(self) -> int:
        """Return the number of positive triples."""
        return len(self.instances.mapped_triples)

    def __getitem__(self, key: SLCWABatchKey) -> SLCWABatch:
        """Make the batch of the given key."""
        if not isinstance(key, SLCWABatchKey):
            raise TypeError(f"Expected an SLCWABatchKey (from ShardedSLCWABatchSampler), got {type(key).__name__}.")
        # negative samplers draw from the global CPU RNG; fork it so the process's own stream is unaffected
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(batch_seed(self.seed, self.stream, key.epoch, key.rank, key.index))
            return self.instances[key.triple_ids]


class TwinsSLCWALitModule(SLCWALitModule):
    """PyKEEN's sLCWA Lightning module with per-rank shards of positives and reproducible per-rank negatives.

    See the module docstring for what it changes with respect to :class:`~pykeen.contrib.lightning.SLCWALitModule`.
    The loss is the model's (``model_kwargs=dict(loss=...)``; VBKGC defaults to ``meanmarginranking``).
    """

    def __init__(
        self,
        *,
        negative_sampler: HintOrType[NegativeSampler] = "twins",
        negative_sampler_kwargs: OptionalKwargs = None,
        seed: int = 0,
        num_workers: int = 0,
        **kwargs: Any,
    ) -> None:
        """Initialize the module.

        :param negative_sampler: the negative sampler, or a hint thereof (default: twins)
        :param negative_sampler_kwargs: keyword-based parameters passed to the negative sampler
        :param seed: the seed of the shuffling and of the negatives
        :param num_workers: the number of DataLoader worker processes per rank
        :param kwargs: keyword-based parameters passed to :class:`~pykeen.contrib.lightning.LitModule`, e.g.,
            ``dataset``, ``model``, ``model_kwargs``, ``batch_size``, ``learning_rate``, ``optimizer``
        :raises TwinsNotSupportedError: if twins negatives are requested for a model that cannot consume them
        :raises ValueError: for a batch size, learning rate, seed or number of workers out of range, or the
            ``nscaching`` sampler
        """
        # before the dataset and the model are built
        check_seed("seed", seed)
        check_positive_int("batch_size", kwargs.get("batch_size", 1))
        if "learning_rate" in kwargs:
            check_float32("learning_rate", kwargs["learning_rate"], minimum=FLOAT32_TINY)
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f"num_workers must be a non-negative integer, got {num_workers!r}.")
        sampler_cls = negative_sampler_resolver.lookup(negative_sampler)
        if issubclass(sampler_cls, NSCachingNegativeSampler):
            raise ValueError(
                "The 'nscaching' negative sampler scores its caches with the model of a PyKEEN training loop, which "
                "Lightning has not; train it with pipeline()."
            )
        kwargs.setdefault("model", "vbkgc")
        super().__init__(negative_sampler=negative_sampler, negative_sampler_kwargs=negative_sampler_kwargs, **kwargs)
        if issubclass(sampler_cls, TwinsNegativeSampler) and not getattr(self.model, "supports_twins_negatives", False):
            name = type(self.model).__name__
            raise TwinsNotSupportedError(
                f"The 'twins' negative sampler needs a model that consumes twins negatives, such as model='vbkgc'; "
                f"{name} has only one embedding per entity. Use negative_sampler='basic' for {name}."
            )
        self.seed = seed
        self.num_workers = num_workers

    def _distribution(self) -> tuple[int, int]:
        """Return the world size and the global rank (1 and 0 without an attached trainer)."""
        trainer = self._trainer
        if trainer is None:
            return 1, 0
        return trainer.world_size, trainer.global_rank

    # docstr-coverage: inherited
    def _dataloader(self, triples_factory: CoreTriplesFactory, shuffle: bool = False) -> torch.utils.data.DataLoader:  # noqa: D102
        instances = BatchedSLCWAInstances.from_triples_factory(
            triples_factory,
            batch_size=self.batch_size,
            negative_sampler=self.negative_sampler,
            negative_sampler_kwargs=self.negative_sampler_kwargs,
        )
        world_size, rank = self._distribution()
        return torch.utils.data.DataLoader(
            dataset=SeededSLCWABatches(
                instances=instances, seed=self.seed, stream=TRAINING_STREAM if shuffle else VALIDATION_STREAM
            ),
            sampler=ShardedSLCWABatchSampler(
                num_triples=len(instances.mapped_triples),
                batch_size=self.batch_size,
                num_replicas=world_size,
                rank=rank,
                shuffle=shuffle,
                seed=self.seed,
            ),
            # the sampler yields whole batches: disable automatic batching
            batch_size=None,
            num_workers=self.num_workers,
        )

    # docstr-coverage: inherited
    def _step(self, batch: SLCWABatch, prefix: str) -> FloatTensor:  # noqa: D102
        loss = SLCWATrainingLoop._process_batch_static(
            model=self.model,
            loss=self.loss,
            mode=self.mode,
            batch=batch,
            label_smoothing=self.label_smoothing,
            slice_size=None,
            start=None,
            stop=None,
        )
        # per step on the progress bar, and the epoch mean over all ranks
        self.log(
            f"{prefix}_loss",
            loss,
            on_step=prefix == "train",
            on_epoch=True,
            sync_dist=True,
            batch_size=batch["positives"].shape[0],
            prog_bar=True,
        )
        return loss


@dataclasses.dataclass
class LightningResult:
    """The outcome of :func:`train_lightning`."""

    #: the trained PyKEEN model (on every rank the same parameters)
    model: Model
    #: the dataset it was trained on
    dataset: Dataset
    #: the Lightning module that wrapped the model
    module: TwinsSLCWALitModule
    #: the Lightning trainer, e.g., for ``trainer.is_global_zero`` and ``trainer.callback_metrics``
    trainer: pytorch_lightning.Trainer

    def evaluate(self, batch_size: int | None = None, **kwargs: Any) -> MetricResults:
        """Evaluate the model on the test triples with PyKEEN's filtered rank-based evaluator.

        Call it on one rank only (e.g., ``if result.trainer.is_global_zero``). A model trained in 16-bit precision
        (``precision="16-true"`` or ``"bf16-true"``) is converted to float32 first: PyKEEN's ranks compare scores,
        which half precision rounds into ties (or infinities).

        :param batch_size: the evaluation batch size; found automatically if None
        :param kwargs: keyword-based parameters passed to :meth:`pykeen.evaluation.Evaluator.evaluate`
        :return: the metric results
        """
        if any(parameter.dtype in (torch.float16, torch.bfloat16) for parameter in self.model.parameters()):
            self.model.float()
        filter_triples = [self.dataset.training.mapped_triples]
        if self.dataset.validation is not None:
            filter_triples.append(self.dataset.validation.mapped_triples)
        kwargs.setdefault("additional_filter_triples", filter_triples)
        return RankBasedEvaluator().evaluate(
            model=self.model, mapped_triples=self.dataset.testing.mapped_triples, batch_size=batch_size, **kwargs
        )


def train_lightning(
    *,
    dataset: HintOrType[Dataset] = "nations",
    dataset_kwargs: OptionalKwargs = None,
    model: HintOrType[Model] = "vbkgc",
    model_kwargs: OptionalKwargs = None,
    negative_sampler: HintOrType[NegativeSampler] = "twins",
    negative_sampler_kwargs: OptionalKwargs = None,
    batch_size: int = BEST.batch_size,
    learning_rate: float = BEST.learning_rate,
    optimizer: HintOrType[torch.optim.Optimizer] = "adam",
    optimizer_kwargs: OptionalKwargs = None,
    num_epochs: int = 5,
    accelerator: str = "auto",
    devices: int | str | list[int] = "auto",
    strategy: str | Any = "auto",
    num_nodes: int = 1,
    precision: str | int | None = None,
    random_seed: int = 0,
    num_workers: int = 0,
    validate: bool = False,
    trainer_kwargs: Mapping[str, Any] | None = None,
) -> LightningResult:
    r"""Train a model (by default VBKGC with twins negatives) with PyTorch Lightning, e.g., with DDP on several devices.

    ``accelerator``, ``devices``, ``strategy``, ``num_nodes`` and ``precision`` are passed to
    :class:`pytorch_lightning.Trainer`; e.g., ``accelerator="gpu", devices=4, strategy="ddp"`` trains on 4 GPUs,
    ``accelerator="cpu", devices=2, strategy="ddp"`` in 2 CPU processes (gloo). With ``strategy="ddp"`` Lightning
    starts the extra ranks by re-running the calling script (or ``python -m`` module), so call this function from
    a script's ``if __name__ == "__main__":`` block; every rank returns from it.

    The batch size is per rank: with $n$ devices one optimizer step sees $n \cdot$ ``batch_size`` positives, and
    an epoch has $1/n$ of the steps of a single-device epoch.

    :param dataset: the dataset, or a hint thereof
    :param dataset_kwargs: keyword-based parameters passed to the dataset
    :param model: the model, or a hint thereof
    :param model_kwargs: keyword-based parameters passed to the model, e.g., ``features``, ``embedding_dim`` and
        ``loss`` / ``loss_kwargs`` (VBKGC's default loss is ``meanmarginranking``)
    :param negative_sampler: the negative sampler, or a hint thereof
    :param negative_sampler_kwargs: keyword-based parameters passed to the negative sampler
    :param batch_size: the number of positive triples per batch and rank
    :param learning_rate: the learning rate
    :param optimizer: the optimizer, or a hint thereof
    :param optimizer_kwargs: further keyword-based parameters of the optimizer (not ``lr``)
    :param num_epochs: the number of epochs
    :param accelerator: Lightning's accelerator, e.g. ``"gpu"``, ``"cpu"`` or ``"auto"``
    :param devices: the devices per node, e.g. ``4``, ``[0, 2]`` or ``"auto"``
    :param strategy: Lightning's strategy, e.g. ``"ddp"``, ``"ddp_find_unused_parameters_true"`` (needed when
        ``score_terms`` leave some parameters unused) or ``"auto"``
    :param num_nodes: the number of nodes
    :param precision: Lightning's precision, e.g. ``"bf16-mixed"``; None for its default (32-bit)
    :param random_seed: the seed of the initialisation (all ranks), the shuffling and the negatives
    :param num_workers: DataLoader worker processes per rank
    :param validate: whether to compute the sLCWA loss on the validation triples after each epoch
    :param trainer_kwargs: further keyword-based parameters of :class:`pytorch_lightning.Trainer`; by default no
        logger, no checkpoints and no validation are used
    :return: the trained model, its dataset, the module and the trainer
    :raises TrainerSettingsError: for settings that Lightning refuses
    :raises ValueError: for numbers out of range (before anything is built) or the ``nscaching`` sampler
    """
    # Lightning's max_epochs=-1 would train without end
    check_positive_int("num_epochs", num_epochs)
    check_seed("random_seed", random_seed)
    pytorch_lightning.seed_everything(random_seed, workers=True, verbose=False)
    options: dict[str, Any] = dict(
        accelerator=accelerator,
        devices=devices,
        strategy=strategy,
        num_nodes=num_nodes,
        max_epochs=num_epochs,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    if precision is not None:
        options["precision"] = precision
    if not validate:
        options["limit_val_batches"] = 0
    options.update(trainer_kwargs or {})
    try:
        # before the dataset and model are built: Lightning checks accelerator, devices and strategy here
        trainer = pytorch_lightning.Trainer(**options)
    except (ValueError, TypeError, MisconfigurationException) as error:
        raise TrainerSettingsError(f"Lightning cannot train with these settings: {error}") from None
    module = TwinsSLCWALitModule(
        dataset=dataset,
        dataset_kwargs=dataset_kwargs,
        model=model,
        model_kwargs=model_kwargs,
        negative_sampler=negative_sampler,
        negative_sampler_kwargs=negative_sampler_kwargs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        optimizer=optimizer,
        optimizer_kwargs=optimizer_kwargs,
        seed=random_seed,
        num_workers=num_workers,
    )
    trainer.fit(model=module)
    return LightningResult(model=module.model, dataset=module.dataset, module=module, trainer=trainer)


#: the metrics written by the command line (filtered, realistic ranks, both sides)
REPORTED_METRICS = ("inverse_harmonic_mean_rank", "hits_at_1", "hits_at_3", "hits_at_10")


@click.command()
@dataset_options
@settings_options
@click.option("--feature-dim", type=COUNT_RANGE, default=64, show_default=True, help="For random features.")
@click.option("--epochs", type=COUNT_RANGE, default=50, show_default=True)
@click.option("--accelerator", default="auto", show_default=True, help="gpu, cpu or auto")
@click.option("--devices", default="auto", show_default=True, help="e.g. 4, or auto")
@click.option("--strategy", default="auto", show_default=True, help="e.g. ddp")
@click.option("--num-nodes", type=COUNT_RANGE, default=1, show_default=True)
@click.option("--precision", default=None, help="e.g. bf16-mixed; default 32-true")
@click.option(
    "--num-workers", type=click.IntRange(0, COUNT_RANGE.max), default=0, show_default=True, help="Per device."
)
@click.option("--seed", type=SEED_RANGE, default=0, show_default=True)
@click.option("--output", type=click.Path(file_okay=False, path_type=Path), help="Save model and metrics here.")
def main(
    dataset: str,
    dataset_directory: Path | None,
    features: Path | None,
    min_feature_coverage: float,
    feature_dim: int,
    sampler: str,
    settings: Preset,
    epochs: int,
    accelerator: str,
    devices: str,
    strategy: str,
    num_nodes: int,
    precision: str | None,
    num_workers: int,
    seed: int,
    output: Path | None,
) -> None:
    """Train VBKGC with PyTorch Lightning (e.g., DDP on several GPUs), then evaluate on rank 0.

    The batch size is per device.
    """
    from pytorch_lightning.utilities.exceptions import SIGTERMException

    quiet_library_logs()
    if output is not None:
        # before any training: a run that cannot be saved is not worth starting
        with output_errors():
            check_new_output(output)
    dataset_instance, features = load_dataset_and_features(dataset, dataset_directory, features)
    try:
        result = train_lightning(
            dataset=dataset_instance,
            model="vbkgc",
            model_kwargs=dict(
                features=features,
                min_feature_coverage=min_feature_coverage,
                feature_dim=None if features is not None else feature_dim,
                **settings.model_kwargs(),
                loss=settings.loss,
                loss_kwargs=dict(margin=settings.margin),
                random_seed=seed,
            ),
            negative_sampler=sampler,
            negative_sampler_kwargs=dict(num_negs_per_pos=settings.num_negatives),
            batch_size=settings.batch_size,
            learning_rate=settings.learning_rate,
            num_epochs=epochs,
            accelerator=accelerator,
            devices=int(devices) if devices.isdigit() else devices,
            strategy=strategy,
            num_nodes=num_nodes,
            precision=precision,
            random_seed=seed,
            num_workers=num_workers,
        )
    except TrainerSettingsError as error:
        raise click.UsageError(str(error)) from None
    except FeaturesFileError as error:
        # the model checks the features file when it is built, before any training
        raise features_error(error) from None
    except SIGTERMException:  # Lightning stops at the end of the step and exits as if nothing happened
        click.echo("Stopped by SIGTERM: nothing was saved (this command keeps no checkpoints).", err=True)
        raise click.exceptions.Exit(128 + signal.SIGTERM) from None
    except SystemExit as error:
        if not isinstance(error.__context__, KeyboardInterrupt):
            raise
        # Lightning turns Ctrl-C into exit status 1, after its own notice
        click.echo("Interrupted: nothing was saved (this command keeps no checkpoints).", err=True)
        raise click.exceptions.Exit(128 + signal.SIGINT) from None
    if not result.trainer.is_global_zero:
        return
    if not all(bool(torch.isfinite(parameter).all()) for parameter in result.model.parameters()):
        # evaluating NaN scores would fail deep inside PyKEEN's metrics
        hint = (
            " (float16 weights are prone to it: try --precision 16-mixed or bf16-mixed)"
            if precision == "16-true"
            else ""
        )
        raise click.ClickException(
            f"training diverged: the model's parameters are not finite{hint}; nothing was saved."
        )
    metrics = result.evaluate()
    summary = {metric: metrics.get_metric(f"both.realistic.{metric}") for metric in REPORTED_METRICS}
    summary["world_size"] = result.trainer.world_size
    summary["train_loss"] = float(result.trainer.callback_metrics["train_loss_epoch"])
    click.echo(json.dumps(summary, indent=2))
    if output is not None:
        try:
            # the directory whole or not at all; a Ctrl-C now waits the moment until it is in place
            with signals_deferred(), new_directory(output) as directory:
                torch.save(result.model.state_dict(), directory / "model_state.pt")
                (directory / "metrics.json").write_text(json.dumps(summary, indent=2) + "\n")
        except (OSError, OutputError) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error).rstrip(".")
            raise click.ClickException(f"cannot save to {output}: {reason}; nothing was saved.") from None
        click.echo(f"saved to {output}", err=True)


if __name__ == "__main__":
    # the program owns its process: freed memory stays in it for reuse (fewer page faults, see allocator)
    keep_freed_memory()
    main()
