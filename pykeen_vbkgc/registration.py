"""Registration of our components with PyKEEN's class resolvers.

PyKEEN 1.11 reads entry points only for datasets. Our ``pykeen.datasets`` entry point therefore doubles as an import
hook: PyKEEN imports :mod:`pykeen_vbkgc` when it builds its dataset resolver, and the package registers the model,
negative sampler, loss and interaction.

That import can happen while a PyKEEN package that registering needs is half-imported: in the middle of ``import
pykeen.models`` (which imports ``pykeen.datasets`` before it has created ``model_resolver``), or of ``import pykeen.nn``
(which imports ``pykeen.datasets`` before it has the resolvers that ``pykeen.models`` imports). Then registering at once
is impossible, so :func:`register` defers to the first moment a user can reach a resolver: the first read of a
resolver from its module (``from pykeen.sampling import negative_sampler_resolver``, or PyKEEN's pipeline reading
``model_resolver``), and the end of the import of a resolver's module that was not imported yet, or of one of our
modules (an import hook). It registers then and restores the modules. ``import pykeen_vbkgc`` on its own always
registers at once.

The first read of a resolver can also come from one of our own modules while it is being imported (``from
pykeen_vbkgc import VBKGC`` after ``import pykeen.models``: the model module reads ``loss_resolver`` in its imports).
Registering then would import that module again from within itself, so :func:`register` defers while any of our
modules is half-imported, and the package registers after each lazy import of a public name.
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


#: the modules of the resolvers that we register with, and the resolver that each defines
_RESOLVER_MODULES = {
    "pykeen.models": "model_resolver",
    "pykeen.sampling": "negative_sampler_resolver",
    "pykeen.losses": "loss_resolver",
    "pykeen.training": "training_loop_resolver",
    "pykeen.nn.modules": "interaction_resolver",
}


#: the PyKEEN packages that must not be half-imported when registering: those of the resolvers
_NEEDED = [name.split(".")[:2] for name in _RESOLVER_MODULES]
#: the prefix of our own modules, which must not be half-imported when registering either (registering imports them)
_OWN_MODULES = __name__.rpartition(".")[0] + "."
#: whether :func:`register` has registered everything
_registered = False


def _ready_to_register(finished: str | None = None) -> bool:
    """Return whether registering can import what it needs: no package of :data:`_NEEDED` or ours is half-imported.

    :param finished: a module whose code has run but which the import system still marks as half-imported (the
        import hook's module)
    """
    module = sys.modules.get("pykeen.models")
    # not hasattr: reading the attribute of a deferred module would register
    if module is not None and "model_resolver" not in vars(module):
        return False
    # e.g. "import pykeen.nn" imports pykeen.datasets (and so this package) before pykeen.nn has its resolvers, which
    # pykeen.models imports; or our model module reads a resolver in its imports
    return not any(
        getattr(getattr(module, "__spec__", None), "_initializing", False)
        for name, module in list(sys.modules.items())
        if name != finished and (name.split(".")[:2] in _NEEDED or name.startswith(_OWN_MODULES))
    )


class _RegisterAfterImport(importlib.abc.MetaPathFinder):
    """An import hook that tries to register right after a module of :data:`_RESOLVER_MODULES`, or ours, is imported.

    Our modules count because registering defers while one of them is half-imported: ``from pykeen_vbkgc.run_files
    import load_run`` after ``import pykeen.models`` reads the resolvers during its own import (and keeps them), so
    the end of that import is the last moment to register before the resolvers are used.
    """

    def __init__(self) -> None:
        self._finding = False

    def find_spec(self, fullname: str, path=None, target=None):  # noqa: D102
        if (fullname not in _RESOLVER_MODULES and not fullname.startswith(_OWN_MODULES)) or self._finding:
            return None
        # find the real spec with the other finders
        self._finding = True
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self._finding = False
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_register(module: types.ModuleType) -> None:
            exec_module(module)
            _register(finished=fullname)

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
    """A module class for the modules of :data:`_RESOLVER_MODULES`: the first read of the resolver registers."""

    def __getattribute__(self, name: str):
        value = super().__getattribute__(name)
        if name == _RESOLVER_MODULES.get(super().__getattribute__("__name__")):
            # the attribute exists, so the resolver has been created (register() defers again if still too early)
            self.__class__ = types.ModuleType
            register()
        return value


def _defer() -> None:
    """Register at the first read of a resolver, or after the import of a resolver's module that is not imported."""
    if not any(isinstance(finder, _RegisterAfterImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _RegisterAfterImport())
    for name in _RESOLVER_MODULES:
        module = sys.modules.get(name)
        if module is not None and type(module) is types.ModuleType:
            module.__class__ = _RegisterOnFirstResolverAccess


def _stop_deferring() -> None:
    """Remove the import hook and restore the modules' class."""
    sys.meta_path[:] = [finder for finder in sys.meta_path if not isinstance(finder, _RegisterAfterImport)]
    for name in _RESOLVER_MODULES:
        module = sys.modules.get(name)
        if isinstance(module, _RegisterOnFirstResolverAccess):
            module.__class__ = types.ModuleType


def register() -> bool:
    """Register our model, negative samplers, losses, training loops and interaction with PyKEEN's resolvers.

    Idempotent: calling it again is a no-op.

    :return: whether the registration took place now (False if it was deferred, see the module docstring)
    """
    return _register()


def _register(finished: str | None = None) -> bool:
    """Register, or defer (see :func:`register`); ``finished``: see :func:`_ready_to_register`."""
    global _registered
    if _registered:
        return True
    if not _ready_to_register(finished):
        _defer()
        return False
    _stop_deferring()

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
    _registered = True
    # an import above may have deferred again (registering while one of our modules was half-imported)
    _stop_deferring()
    return True


#: printed by ``pykeen train vbkgc``, which cannot choose a negative sampler
PYKEEN_CLI_NOTE = (
    "Note: PyKEEN's 'pykeen train vbkgc' trains with PyKEEN's basic negative sampler and training defaults (it has no "
    "sampler option) and, without --loss, the preset's loss; 'pykeen-vbkgc train' trains VBKGC with the twins sampler "
    "and all settings of --preset."
)


def _extend_pykeen_cli() -> None:
    """Give ``pykeen train vbkgc`` (PyKEEN's own command) the options of VBKGC that its builder cannot make.

    PyKEEN builds one command per model from the annotations of ``__init__``
    (:func:`pykeen.models.cli.build_cli_from_cls`), taking an option from ``CLI_OPTIONS`` first where one is named
    like the parameter. It cannot make one from ``bool | None`` (``normalize_relations``: it logged "Unable to
    handle parameter") or ``float | None`` (``projection_lr_scale``), skips the features and the score terms, and
    its ``--embedding-dim`` shows and passes 50 for every model. Only VBKGC has the parameters added here, so their
    options are VBKGC's; applied to its command, they also make its ``--embedding-dim`` default VBKGC's and print
    :data:`PYKEEN_CLI_NOTE` when it runs; without ``--loss`` (PyKEEN's option, whose default is the margin ranking
    loss for every model), VBKGC trains with its preset's loss. The negative sampler stays PyKEEN's basic one: the
    command passes none to the pipeline.
    """
    import click
    from click.core import ParameterSource
    from pykeen.models.cli import options

    from .defaults import BEST, PRESETS
    from .preset_loss import PresetLoss

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
            # PyKEEN's --loss is shared by every model and defaults to MarginRankingLoss: without the option, VBKGC
            # takes its preset's loss, as in pipeline()
            context = click.get_current_context(silent=True)
            if context is not None and context.get_parameter_source("loss") is ParameterSource.DEFAULT:
                kwargs["loss"] = PresetLoss
            # PyKEEN's --scoring-fct-norm is shared, too, and always passes its default 2: without the option, the
            # preset's norm (L1 for paper, wn9 and fb15k237)
            if context is not None and context.get_parameter_source("scoring_fct_norm") is ParameterSource.DEFAULT:
                kwargs["scoring_fct_norm"] = None
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
            help="The preset of the settings left out; default: the dataset's (wn9, fb15k237), else best.",
        ),
        # float | None: the builder makes no option from it, and --num-neighbours counts only with a weight
        neighbour_weight=vbkgc_option(
            "--neighbour-weight",
            type=float,
            help="Weight of the neighbours' vote when ranking (0: none); default: the preset's.",
        ),
        num_neighbours=vbkgc_option(
            "--num-neighbours", type=int, help="How many neighbours vote (with --neighbour-weight); default: 50."
        ),
        score_terms=vbkgc_option("--score-terms", help="Which TransE terms to sum, e.g. ss,mm; default: all five."),
        term_weights=vbkgc_option("--term-weights", help="Weights of the score terms, e.g. mm=0.1,all=0.5."),
    )
    for name, option in added.items():
        options.CLI_OPTIONS.setdefault(name, option)
