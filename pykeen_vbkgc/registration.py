"""Registration of our components with PyKEEN's class resolvers.

PyKEEN 1.11 reads entry points only for datasets. Our ``pykeen.datasets`` entry point therefore doubles as an import
hook: PyKEEN imports :mod:`pykeen_vbkgc` when it builds its dataset resolver, and the package registers the model,
negative sampler, loss and interaction.

That import can happen in the middle of ``import pykeen.models`` (``pykeen.models`` imports ``pykeen.datasets`` before
it has created ``model_resolver``). Then registering at once is impossible, so :func:`register` installs a one-shot
import hook which completes the registration at the next import after ``pykeen.models`` has finished, e.g. the
``from pykeen.pipeline import pipeline`` that precedes every use by name. ``import pykeen_vbkgc`` always works.
"""

from __future__ import annotations

import importlib.abc
import logging
import sys

__all__ = [
    "register",
]

logger = logging.getLogger(__name__)


def _pykeen_models_ready() -> bool:
    """Return whether ``pykeen.models`` is not half-imported."""
    module = sys.modules.get("pykeen.models")
    return module is None or hasattr(module, "model_resolver")


def _register_once(resolver, cls) -> None:
    """Register a class unless the resolver already knows its name."""
    key = resolver.normalize_cls(cls)
    existing = resolver.lookup_dict.get(key)
    if existing is None:
        resolver.register(cls)
    elif existing is not cls:
        raise RuntimeError(
            f"Another class is already registered as {key!r} in {resolver}: {existing.__module__}.{existing.__name__}"
        )


class _DeferredRegistration(importlib.abc.MetaPathFinder):
    """Complete the registration at the first import after ``pykeen.models`` has finished initialising."""

    def find_spec(self, fullname, path, target=None):  # noqa: D102
        if _pykeen_models_ready():
            sys.meta_path.remove(self)
            register()
        return None  # never finds anything itself


def register() -> bool:
    """Register our model, negative sampler, loss and interaction with PyKEEN's resolvers.

    Idempotent: calling it again is a no-op.

    :return: whether the registration took place now (False if it was deferred, see the module docstring)
    """
    if not _pykeen_models_ready():
        if not any(isinstance(finder, _DeferredRegistration) for finder in sys.meta_path):
            sys.meta_path.insert(0, _DeferredRegistration())
        return False

    from pykeen.losses import loss_resolver
    from pykeen.models import model_resolver
    from pykeen.nn.modules import interaction_resolver
    from pykeen.sampling import negative_sampler_resolver

    from .interaction import VBKGCInteraction
    from .loss import MeanMarginRankingLoss
    from .model import VBKGC
    from .sampler import TwinsNegativeSampler

    _register_once(model_resolver, VBKGC)
    _register_once(negative_sampler_resolver, TwinsNegativeSampler)
    _register_once(loss_resolver, MeanMarginRankingLoss)
    _register_once(interaction_resolver, VBKGCInteraction)
    return True
