"""Training checkpoints that survive a killed process and are read back without running code.

PyKEEN's training loop resumes from ``training_kwargs=dict(checkpoint_name=..., checkpoint_directory=...)``, but it
writes the checkpoint in place (a process killed while writing leaves a broken file, and the previous checkpoint is
gone) and reads it with ``torch.load(..., weights_only=False)``, i.e. as a pickle that may run code.
:class:`SafeCheckpointSLCWATrainingLoop` (and :class:`SafeCheckpointDeviceSLCWATrainingLoop`, the same for the
``deviceslcwa`` loop) writes each checkpoint beside the old one and renames it over it, and reads it with
``weights_only=True`` (tensors and plain values only; NumPy's random state keeps its keys in a tensor, which
PyKEEN's own loop reads, too).

:func:`signals_interrupt` turns SIGTERM, like Ctrl-C, into an exception, so that a stopped run ends the same way
whichever signal stopped it.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import signal
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from pykeen.stoppers import NopStopper
from pykeen.training import SLCWATrainingLoop
from pykeen.training.training_loop import CheckpointMismatchError

from .device_sampling import DeviceSLCWATrainingLoop
from .replacing import replacing

__all__ = [
    "CHECKPOINT_NAME",
    "CheckpointError",
    "Interrupted",
    "SafeCheckpointDeviceSLCWATrainingLoop",
    "SafeCheckpointSLCWATrainingLoop",
    "read_checkpoint",
    "safe_checkpoint_training_loop",
    "signals_deferred",
    "signals_interrupt",
]

#: the file name of the checkpoint in a run's directory
CHECKPOINT_NAME = "checkpoint.pt"

#: the signals that stop a training run (Ctrl-C, and what ``kill``, Slurm or ``docker stop`` send)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class CheckpointError(ValueError):
    """A checkpoint cannot be read; the message is one line."""


class Interrupted(KeyboardInterrupt):
    """Training was stopped by a signal (SIGINT or SIGTERM)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        #: the signal's number; a process stopped by it conventionally exits with ``128 + signum``
        self.signum = signum


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint of :class:`SafeCheckpointSLCWATrainingLoop` without unpickling any object.

    :param path: the checkpoint file
    :return: the checkpoint, with NumPy's random state as PyKEEN stores it
    :raises CheckpointError: if the file is not such a checkpoint (damaged, or a pickle of something else)
    """
    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as error:  # the unpickler raises many kinds of errors for bad input
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"{path} is not a readable checkpoint: {message}") from None
    if not isinstance(state, dict) or not isinstance(state.get("epoch"), int) or "model_state_dict" not in state:
        raise CheckpointError(f"{path} is not a checkpoint of a training loop.")
    return _from_safe(state)


class _SafeCheckpoints:
    """Checkpoints replaced atomically and read with ``weights_only=True``, for a subclass of a training loop."""

    def train(self, *args, **kwargs):  # noqa: D102
        if isinstance(kwargs.get("stopper"), NopStopper | None):
            # the pipeline's "no stopper" has no state to save: a resumed run need not warn about its absence
            with _without_log_message(_TRAINING_LOOP_LOGGER, "the training loop was configured with a stopper"):
                return super().train(*args, **kwargs)
        return super().train(*args, **kwargs)

    def _save_state(self, path, stopper=None, best_epoch_model_checkpoint_file_path=None, triples_factory=None):
        buffer = io.BytesIO()
        super()._save_state(
            path=buffer,
            stopper=stopper,
            best_epoch_model_checkpoint_file_path=best_epoch_model_checkpoint_file_path,
            triples_factory=triples_factory,
        )
        buffer.seek(0)
        # our own bytes of a moment ago; they hold NumPy's random state, which weights_only cannot read. On the CPU:
        # PyKEEN's pipeline reads the checkpoint's seed without map_location, which fails for CUDA tensors where
        # there is no GPU (loading the state puts each tensor back on its parameter's device)
        state = _to_safe(torch.load(buffer, weights_only=False, map_location="cpu"))
        if not isinstance(path, str | os.PathLike):
            torch.save(state, path)
            return
        # the previous checkpoint stays whole until the new one is
        with replacing(path, durable=True) as temporary, temporary.open("wb") as file:
            torch.save(state, file)

    def _load_state(self, path, triples_factory=None):
        buffer = io.BytesIO()
        torch.save(read_checkpoint(path), buffer)
        buffer.seek(0)
        try:
            return super()._load_state(path=buffer, triples_factory=triples_factory)
        except CheckpointMismatchError:
            # PyKEEN's message would name the buffer
            raise CheckpointMismatchError(
                f"The checkpoint {path} was saved with another model or optimizer (e.g., other training triples, "
                "features or settings); it cannot resume this run."
            ) from None


class SafeCheckpointSLCWATrainingLoop(_SafeCheckpoints, SLCWATrainingLoop):
    """The sLCWA training loop, whose checkpoints are replaced atomically and read with ``weights_only=True``.

    Use it like PyKEEN's loop, e.g. ``pipeline(..., training_loop=SafeCheckpointSLCWATrainingLoop,
    training_kwargs=dict(checkpoint_name="checkpoint.pt", checkpoint_directory=..., checkpoint_frequency=0))``
    checkpoints after every epoch. PyKEEN's ``pipeline`` reads an existing checkpoint's seed with a plain
    :func:`torch.load` before this loop loads it: check a checkpoint you did not write with :func:`read_checkpoint`
    first. Not for early stopping: PyKEEN keeps the best epoch's model in a temporary pickle.
    """


class SafeCheckpointDeviceSLCWATrainingLoop(_SafeCheckpoints, DeviceSLCWATrainingLoop):
    """The ``deviceslcwa`` loop with the checkpoints of :class:`SafeCheckpointSLCWATrainingLoop`.

    See :class:`~pykeen_vbkgc.DeviceSLCWATrainingLoop`: batches and negatives are drawn on the model's device.
    """


def safe_checkpoint_training_loop(device: torch.device) -> type[SLCWATrainingLoop]:
    """Return the sLCWA training loop with safe checkpoints for a model on ``device``.

    On accelerators, the loop that draws batches and negatives on the device (PyKEEN's loop makes them on the host
    and copies them). On the CPU, PyKEEN's loop: the runs of docs/results.md were made with it, and the same seed
    gives the same run.

    :param device: the model's device
    :return: :class:`SafeCheckpointSLCWATrainingLoop` on the CPU, else :class:`SafeCheckpointDeviceSLCWATrainingLoop`
    """
    return SafeCheckpointSLCWATrainingLoop if device.type == "cpu" else SafeCheckpointDeviceSLCWATrainingLoop


_TRAINING_LOOP_LOGGER = logging.getLogger("pykeen.training.training_loop")


@contextlib.contextmanager
def _without_log_message(logger: logging.Logger, prefix: str) -> Iterator[None]:
    """Drop the log records of ``logger`` that start with ``prefix`` while the block runs."""

    def keep(record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(prefix)

    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)


def _to_safe(state: Mapping[str, Any]) -> dict[str, Any]:
    """Store NumPy's random state (a tuple with an array) with its keys as a tensor.

    The tuple stays a tuple: :func:`numpy.random.set_state` takes the tensor as the keys, so that PyKEEN's own loop
    resumes from the checkpoint, too.
    """
    state = dict(state)
    numpy_state = state.get("np_random_state")
    if isinstance(numpy_state, tuple):
        kind, keys, position, has_gauss, cached_gaussian = numpy_state
        state["np_random_state"] = (
            str(kind),
            torch.from_numpy(keys.astype("int64")),
            int(position),
            int(has_gauss),
            float(cached_gaussian),
        )
    if isinstance(state.get("best_epoch_model_checkpoint"), Mapping):
        state["best_epoch_model_checkpoint"] = _to_safe(state["best_epoch_model_checkpoint"])
    return state


def _from_safe(state: Mapping[str, Any]) -> dict[str, Any]:
    """Undo :func:`_to_safe` (and read the mapping that earlier versions stored instead of the tuple)."""
    import numpy as np

    state = dict(state)
    numpy_state = state.get("np_random_state")
    if isinstance(numpy_state, Mapping):
        numpy_state = tuple(numpy_state[key] for key in ("kind", "keys", "position", "has_gauss", "cached_gaussian"))
    if isinstance(numpy_state, tuple) and isinstance(numpy_state[1], torch.Tensor):
        state["np_random_state"] = (numpy_state[0], numpy_state[1].numpy().astype(np.uint32), *numpy_state[2:])
    if isinstance(state.get("best_epoch_model_checkpoint"), Mapping):
        state["best_epoch_model_checkpoint"] = _from_safe(state["best_epoch_model_checkpoint"])
    return state


@contextlib.contextmanager
def signals_interrupt() -> Iterator[None]:
    """Raise :class:`Interrupted` on SIGINT or SIGTERM while the block runs; restore the handlers afterwards.

    Outside the main thread, where Python cannot install signal handlers, the block runs unchanged.
    """
    with _signal_handlers(_raise_interrupted):
        yield


@contextlib.contextmanager
def signals_deferred() -> Iterator[list[int]]:
    """Hold SIGINT and SIGTERM back while the block runs (e.g. while a finished run is saved).

    :yield: the signals that arrived meanwhile, for the caller to act on after the block
    """
    received: list[int] = []
    with _signal_handlers(lambda signum, frame: received.append(signum)):
        yield received


def _raise_interrupted(signum: int, frame: Any) -> None:
    raise Interrupted(signum)


@contextlib.contextmanager
def _signal_handlers(handler) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, handler) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, old in previous.items():
            # None: a handler installed from C, which cannot be put back; the default is the closest
            signal.signal(signum, signal.SIG_DFL if old is None else old)
