"""Registration of our components with PyKEEN's class resolvers.

PyKEEN 1.11 reads entry points only for datasets. Our ``pykeen.datasets`` entry point therefore doubles as an import
hook: PyKEEN imports :mod:`pykeen_vbkgc` when it builds its dataset resolver, and the package registers the model,
negative sampler, loss and interaction.

That import can happen in the middle of ``import pykeen.models`` (``pykeen.models`` imports ``pykeen.datasets`` before
it has created ``model_resolver``). Then registering at once is impossible, so :func:`register` defers: it lets the
half-initialised ``pykeen.models`` module complete the registration the first time anybody reads its
``model_resolver`` (as ``pykeen.pipeline``, ``pykeen.hpo`` and ``from pykeen.models import model_resolver`` do), and
then restores the module. ``import pykeen_vbkgc`` always registers at once.
"""

from __future__ import annotations

import logging
import sys
import types

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


class _RegisterOnFirstResolverAccess(types.ModuleType):
    """A module class for ``pykeen.models`` that registers our components when ``model_resolver`` is first read."""

    def __getattribute__(self, name: str):
        value = super().__getattribute__(name)
        if name == "model_resolver":
            # the attribute exists, so pykeen.models has finished initialising
            self.__class__ = types.ModuleType
            register()
        return value


def register() -> bool:
    """Register our model, negative sampler, loss and interaction with PyKEEN's resolvers.

    Idempotent: calling it again is a no-op.

    :return: whether the registration took place now (False if it was deferred, see the module docstring)
    """
    if not _pykeen_models_ready():
        module = sys.modules["pykeen.models"]
        if type(module) is types.ModuleType:
            module.__class__ = _RegisterOnFirstResolverAccess
        return False

    from pykeen.losses import loss_resolver
    from pykeen.models import model_resolver
    from pykeen.nn.modules import interaction_resolver
    from pykeen.sampling import negative_sampler_resolver
    from pykeen.training import training_loop_resolver

    from .interaction import VBKGCInteraction
    from .loss import MeanMarginRankingLoss
    from .model import VBKGC
    from .nosampling import NoSamplingLoss, NoSamplingTrainingLoop
    from .nscaching import NSCachingNegativeSampler
    from .sampler import TwinsNegativeSampler

    _register_once(model_resolver, VBKGC)
    _register_once(negative_sampler_resolver, TwinsNegativeSampler)
    _register_once(negative_sampler_resolver, NSCachingNegativeSampler)
    _register_once(loss_resolver, MeanMarginRankingLoss)
    _register_once(loss_resolver, NoSamplingLoss)
    _register_once(training_loop_resolver, NoSamplingTrainingLoop)
    _register_once(interaction_resolver, VBKGCInteraction)
    return True
