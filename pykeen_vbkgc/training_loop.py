"""Find the PyKEEN training loop that is building a component.

PyKEEN's sLCWA training loop creates its negative sampler inside ``_create_training_data_loader`` and passes it the
training triples only, not the model. Samplers that need the model (to check it, as
:class:`~pykeen_vbkgc.sampler.TwinsNegativeSampler` does, or to score candidates, as
:class:`~pykeen_vbkgc.nscaching.NSCachingNegativeSampler` does) find the loop among their calling frames.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pykeen.training import TrainingLoop

__all__ = [
    "calling_data_loader_workers",
    "calling_training_loop",
]


def calling_training_loop() -> TrainingLoop | None:
    """Return the training loop among the calling frames, or None if the caller was not called by one.

    :return: the innermost :class:`~pykeen.training.TrainingLoop` whose method is on the call stack
    """
    from pykeen.training import TrainingLoop

    frame = inspect.currentframe()
    try:
        while frame is not None:
            candidate = frame.f_locals.get("self")
            if isinstance(candidate, TrainingLoop):
                return candidate
            frame = frame.f_back
        return None
    finally:
        del frame


def calling_data_loader_workers() -> int:
    """Return the number of DataLoader worker processes of PyKEEN's sLCWA loop that is building the caller.

    :class:`~pykeen.training.SLCWATrainingLoop` builds the negative sampler in ``_create_training_data_loader``, which
    gets ``num_workers`` from ``train()``; a loop that overrides it (e.g. ``deviceslcwa``) has no worker processes.

    :return: ``num_workers`` of that call, or 0 if the caller was not called by it
    """
    from pykeen.training import SLCWATrainingLoop

    code = SLCWATrainingLoop._create_training_data_loader.__code__
    frame = inspect.currentframe()
    try:
        while frame is not None:
            if frame.f_code is code:
                return int(frame.f_locals.get("kwargs", {}).get("num_workers") or 0)
            frame = frame.f_back
        return 0
    finally:
        del frame
