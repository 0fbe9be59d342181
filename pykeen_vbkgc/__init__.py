"""VBKGC for PyKEEN: multimodal knowledge graph completion with twins negative sampling.

Importing this package registers the ``vbkgc`` model, the ``twins`` and ``nscaching`` negative samplers, the
``meanmarginranking``, ``nosampling`` and ``preset`` losses, the ``nosampling`` and ``deviceslcwa`` training loops and
the ``vbkgc`` interaction with PyKEEN's resolvers, so that they can be used by name in
:func:`pykeen.pipeline.pipeline` and :func:`pykeen.hpo.hpo_pipeline`. The ``pykeen.datasets`` entry point imports
this package too, so the names also resolve without an explicit import (see :mod:`pykeen_vbkgc.registration`).

The data flows through the modules in this order:

1. :mod:`pykeen_vbkgc.encoders` turns entity texts and images into VisualBERT [CLS] features,
2. :mod:`pykeen_vbkgc.features` stores them as a labelled features file,
3. :mod:`pykeen_vbkgc.representation` and :mod:`pykeen_vbkgc.model` turn them into entity representations,
4. :mod:`pykeen_vbkgc.interaction` scores triples with the five TransE terms (fused by :mod:`pykeen_vbkgc.kernels`),
5. :mod:`pykeen_vbkgc.sampler` makes (twins) negatives and :mod:`pykeen_vbkgc.loss` contrasts them.

Two further training strategies work with any PyKEEN model: :mod:`pykeen_vbkgc.nscaching` (negatives from caches of
hard negatives) and :mod:`pykeen_vbkgc.nosampling` (no negatives: a loss over all entities); and
:mod:`pykeen_vbkgc.device_sampling` draws sLCWA batches and negatives on the model's device (GPU) instead of the host.
"""

import importlib

from .registration import register

__version__ = "0.1.0"

__all__ = [
    "VBKGC",
    "DeviceSLCWATrainingLoop",
    "EntityFeatures",
    "MeanMarginRankingLoss",
    "NSCachingNegativeSampler",
    "NoSamplingLoss",
    "NoSamplingTrainingLoop",
    "PresetLoss",
    "TwinsNegativeSampler",
    "VBKGCInteraction",
    "load_features",
    "register",
    "save_features",
]

# public names are imported lazily: the pykeen.datasets entry point imports this package while
# pykeen.models is still half-initialised, when the model module cannot be imported yet
_LAZY = {
    "VBKGC": "model",
    "VBKGCInteraction": "interaction",
    "TwinsNegativeSampler": "sampler",
    "NSCachingNegativeSampler": "nscaching",
    "MeanMarginRankingLoss": "loss",
    "NoSamplingLoss": "nosampling",
    "NoSamplingTrainingLoop": "nosampling",
    "PresetLoss": "preset_loss",
    "DeviceSLCWATrainingLoop": "device_sampling",
    "EntityFeatures": "features",
    "load_features": "features",
    "save_features": "features",
}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        # a registration deferred while that module was half-imported (see pykeen_vbkgc.registration) happens now
        register()
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


register()
