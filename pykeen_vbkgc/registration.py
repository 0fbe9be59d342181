"""Registration of our components with PyKEEN's class resolvers.

PyKEEN 1.11 reads entry points only for datasets. Our ``pykeen.datasets`` entry point therefore doubles as an import
hook: PyKEEN imports :mod:`pykeen_vbkgc` when it builds its dataset resolver, and the package registers the model,
negative sampler, loss and interaction.

That import can happen in the middle of ``import pykeen.models`` (``pykeen.models`` imports ``pykeen.datasets`` before
it has created ``model_resolver``). Then registering at once is impossible, so :func:`register` defers: it lets the
half-initialised ``pykeen.models`` module complete the registration the first time anybody reads its
``model_resolver`` (as ``pykeen.pipeline``, ``pykeen.hpo`` and ``from pykeen.models import model_resolver`` do), and
then restores the module. It can also happen while another PyKEEN module is half-imported (``import pykeen.nn``
imports ``pykeen.datasets`` before ``pykeen.nn`` has the resolvers that ``pykeen.models`` imports); then
:func:`register` waits for ``pykeen.models`` to be imported (an import hook) and registers right after.
``import pykeen_vbkgc`` on its own always registers at once.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.util
import logging
import sys
import types

__all__ = [
    "register",
]

logger = logging.getLogger(__name__)


#: the PyKEEN packages that registering imports (directly, or through our modules)
_NEEDED = [["pykeen", package] for package in ("nn", "models", "losses", "sampling", "training")]


def _pykeen_models_ready() -> bool:
    """Return whether registering can import what it needs now: none of :data:`_NEEDED` is half-imported."""
    module = sys.modules.get("pykeen.models")
    if module is not None and not hasattr(module, "model_resolver"):
        return False
    # e.g. "import pykeen.nn" imports pykeen.datasets (and so this package) before pykeen.nn has its resolvers, which
    # pykeen.models imports
    return not any(
        getattr(getattr(module, "__spec__", None), "_initializing", False)
        for name, module in list(sys.modules.items())
        if name.split(".")[:2] in _NEEDED
    )


class _RegisterAfterImport(importlib.abc.MetaPathFinder):
    """An import hook that registers our components right after ``pykeen.models`` has been imported."""

    def find_spec(self, fullname: str, path=None, target=None):  # noqa: D102
        if fullname != "pykeen.models":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_register(module: types.ModuleType) -> None:
            exec_module(module)
            register()

        spec.loader.exec_module = exec_and_register
        return spec


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
    """Register our model, negative samplers, losses, training loops and interaction with PyKEEN's resolvers.

    Idempotent: calling it again is a no-op.

    :return: whether the registration took place now (False if it was deferred, see the module docstring)
    """
    if not _pykeen_models_ready():
        module = sys.modules.get("pykeen.models")
        if module is None:
            if not any(isinstance(finder, _RegisterAfterImport) for finder in sys.meta_path):
                sys.meta_path.insert(0, _RegisterAfterImport())
        elif type(module) is types.ModuleType:
            module.__class__ = _RegisterOnFirstResolverAccess
        return False

    from pykeen.losses import loss_resolver
    from pykeen.models import model_resolver
    from pykeen.nn.modules import interaction_resolver
    from pykeen.sampling import negative_sampler_resolver
    from pykeen.training import training_loop_resolver

    from .device_sampling import DeviceSLCWATrainingLoop
    from .interaction import VBKGCInteraction
    from .loss import MeanMarginRankingLoss
    from .model import VBKGC
    from .nosampling import NoSamplingLoss, NoSamplingTrainingLoop
    from .nscaching import NSCachingNegativeSampler
    from .preset_loss import PresetLoss
    from .sampler import TwinsNegativeSampler

    _register_once(model_resolver, VBKGC)
    _register_once(negative_sampler_resolver, TwinsNegativeSampler)
    _register_once(negative_sampler_resolver, NSCachingNegativeSampler)
    _register_once(loss_resolver, MeanMarginRankingLoss)
    _register_once(loss_resolver, NoSamplingLoss)
    _register_once(loss_resolver, PresetLoss)
    _register_once(training_loop_resolver, NoSamplingTrainingLoop)
    _register_once(training_loop_resolver, DeviceSLCWATrainingLoop)
    _register_once(interaction_resolver, VBKGCInteraction)
    _extend_pykeen_cli()
    return True


#: printed by ``pykeen train vbkgc``, which cannot choose a negative sampler
PYKEEN_CLI_NOTE = (
    "Note: PyKEEN's 'pykeen train vbkgc' trains with PyKEEN's basic negative sampler and training defaults (it has no "
    "sampler option); 'pykeen-vbkgc train' trains VBKGC with the twins sampler and the settings of --preset."
)


def _extend_pykeen_cli() -> None:
    """Give ``pykeen train vbkgc`` (PyKEEN's own command) the options of VBKGC that its builder cannot make.

    PyKEEN builds one command per model from the annotations of ``__init__``
    (:func:`pykeen.models.cli.build_cli_from_cls`), taking an option from ``CLI_OPTIONS`` first where one is named
    like the parameter. It cannot make one from ``bool | None`` (``normalize_relations``: it logged "Unable to
    handle parameter") or ``float | None`` (``projection_lr_scale``), skips the features and the score terms, and
    its ``--embedding-dim`` shows and passes 50 for every model. Only VBKGC has the parameters added here, so their
    options are VBKGC's; applied to its command, they also make its ``--embedding-dim`` default VBKGC's and print
    :data:`PYKEEN_CLI_NOTE` when it runs. The negative sampler stays PyKEEN's basic one: the command passes none to
    the pipeline.
    """
    import click
    from pykeen.models.cli import options

    from .defaults import BEST, PRESETS

    def adapt(command):
        # the options of this command so far: embedding_dim comes before normalize_relations in VBKGC.__init__
        for param in getattr(command, "__click_params__", []):
            if param.name == "embedding_dim":
                param.default = BEST.embedding_dim
        if getattr(command, "_vbkgc_note", False):
            return command

        @functools.wraps(command)
        def with_note(*args, **kwargs):
            click.echo(PYKEEN_CLI_NOTE, err=True)
            return command(*args, **kwargs)

        with_note._vbkgc_note = True
        return with_note

    def vbkgc_option(*param_decls, **attrs):
        option = click.option(*param_decls, **attrs)
        return lambda command: adapt(option(command))

    added = dict(
        features=vbkgc_option(
            "--features",
            help="A features file, or 'random'; default: the dataset's own (multimodal datasets), else random. For "
            "the twins sampler and the presets, use 'pykeen-vbkgc train' (this command has no sampler option).",
        ),
        normalize_relations=vbkgc_option(
            "--normalize-relations",
            type=bool,
            help="L2-normalise relation vectors; default: the preset's.",
        ),
        # float | None: the builder makes no option from it
        projection_lr_scale=vbkgc_option(
            "--projection-lr-scale", type=float, help="Factor on the learning rate of W; default: the preset's."
        ),
        preset=vbkgc_option(
            "--preset",
            type=click.Choice(sorted(PRESETS)),
            help="The preset of the settings left out; default: the dataset's (wn9, fb15k237), else best. PyKEEN's "
            "--scoring-fct-norm always passes its own default (2).",
        ),
        score_terms=vbkgc_option("--score-terms", help="Which TransE terms to sum, e.g. ss,mm; default: all five."),
        term_weights=vbkgc_option("--term-weights", help="Weights of the score terms, e.g. mm=0.1,all=0.5."),
    )
    for name, option in added.items():
        options.CLI_OPTIONS.setdefault(name, option)
