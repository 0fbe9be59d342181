"""A fixed file for the early stopper's best weights, so that a run resumed from a PyKEEN checkpoint can stop.

PyKEEN's :class:`~pykeen.stoppers.EarlyStopper` keeps the best epoch's weights in a file of its own and reloads them
when it stops. By default that file has a new random name in every process, so a run resumed from a checkpoint
restores the stopper's state (best epoch, remaining patience) but not the file, and fails with a FileNotFoundError
when it stops without a new best epoch after the resume. :func:`resumable_stopper_kwargs` names the file after the
checkpoint (:func:`best_weights`). Used by ``study.py`` and ``pipeline_run.py``.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

__all__ = ["best_weights", "restore_best_weights", "resumable_stopper_kwargs"]


def best_weights(checkpoint: Path) -> Path:
    """Return the early stopper's file of the best weights of a run, beside its training checkpoint."""
    return checkpoint.with_name(f"{checkpoint.stem}-best-weights.pt")


def restore_best_weights(checkpoint: Path) -> None:
    """Write the best weights of a checkpoint of a run that was stopped before it had a fixed best-weights file.

    This is possible when the checkpoint itself is of the best epoch (or holds PyKEEN's best-epoch checkpoint);
    otherwise the run is refused: it would stop with the weights of a later epoch or fail.
    """
    target = best_weights(checkpoint)
    if target.is_file() or not checkpoint.is_file():
        return
    state = torch.load(checkpoint, weights_only=False)
    best_epoch = (state.get("stopper_dict") or {}).get("best_epoch")
    if best_epoch is None:
        return
    if state.get("best_epoch_model_checkpoint"):
        torch.save(state["best_epoch_model_checkpoint"]["model_state_dict"], target)
    elif state["epoch"] == best_epoch:
        torch.save(state["model_state_dict"], target)
    else:
        sys.exit(
            f"{checkpoint} is of epoch {state['epoch']}, its best epoch {best_epoch} was not kept: the weights to "
            f"restore when early stopping stops are lost. Copy that epoch's weights (the file named in the log's "
            f'"New best result at epoch {best_epoch}" line) to {target}, or delete the checkpoint to rerun the seed.'
        )


def resumable_stopper_kwargs(checkpoint: Path, stopper_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """Return the early stopper's keyword arguments with its best weights beside the checkpoint, restored if needed."""
    restore_best_weights(checkpoint)
    return {**stopper_kwargs, "best_model_path": best_weights(checkpoint)}
