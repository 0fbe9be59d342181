r"""A stand-in for the loss of VBKGC's preset, so that ``hpo_pipeline`` tunes each dataset's own loss.

PyKEEN's :func:`~pykeen.hpo.hpo_pipeline` takes the loss of a trial from the model class (``loss_default``) before
it knows the dataset, while VBKGC's best-known loss depends on the dataset (see :mod:`pykeen_vbkgc.defaults`: the
self-adversarial loss with margin 9 on WN9 and FB15k-237, the mean margin ranking loss with margin 10 elsewhere).
VBKGC's ``loss_default`` is therefore :class:`PresetLoss`: VBKGC replaces it by its preset's loss with the preset's
margin times ``margin_scale``, and the margins that ``hpo_pipeline`` tries are centred on each dataset's best-known
one::

    from pykeen.hpo import hpo_pipeline

    hpo_pipeline(dataset="fb15k237multimodal", model="vbkgc", negative_sampler="twins", n_trials=10)

``loss="preset"`` asks for it explicitly, e.g.
``pipeline(model="vbkgc", loss="preset", loss_kwargs=dict(margin_scale=2))``. Only VBKGC knows a preset: any other
model that is handed this loss fails on its first batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pykeen.losses import Loss, loss_resolver
from pykeen.typing import FloatTensor

from .defaults import Preset
from .validation import FLOAT32_MAX, fits_float32

__all__ = [
    "PresetLoss",
]


class PresetLoss(Loss):
    r"""The loss of VBKGC's preset with the margin $\gamma = s \cdot \gamma_{\text{preset}}$; VBKGC replaces it."""

    #: factors on the preset's margin: for the margin 9 of WN9 and FB15k-237, 4.5-18; for the best preset's 10, 5-20
    hpo_default: ClassVar[Mapping[str, Any]] = dict(
        margin_scale=dict(type="categorical", choices=[0.5, 0.75, 1.0, 1.5, 2.0]),
    )

    def __init__(self, margin_scale: float = 1.0) -> None:
        r"""Initialize the stand-in.

        :param margin_scale: the factor $s > 0$ on the preset's margin
        :raises ValueError: for a factor that is not a positive number within float32's range
        """
        if not fits_float32(margin_scale) or not margin_scale > 0:
            raise ValueError(
                f"margin_scale must be a positive number up to {FLOAT32_MAX:.4g} (float32's range), got "
                f"{margin_scale!r}."
            )
        super().__init__(reduction="mean")
        self.margin_scale = float(margin_scale)

    def resolve(self, preset: Preset) -> Loss:
        """Return the preset's loss with the scaled margin.

        :param preset: the model's preset
        :return: a new loss of the preset's kind
        :raises ValueError: if the scaled margin is beyond float32's range
        """
        margin = self.margin_scale * preset.margin
        if not fits_float32(margin):
            raise ValueError(
                f"margin_scale={self.margin_scale!r} times the {preset.name!r} preset's margin {preset.margin} is "
                f"beyond float32's range ({FLOAT32_MAX:.4g})."
            )
        return loss_resolver.make(preset.loss, dict(margin=margin))

    def process_slcwa_scores(self, *args, **kwargs) -> FloatTensor:  # noqa: D102
        raise self._unresolved()

    def process_lcwa_scores(self, *args, **kwargs) -> FloatTensor:  # noqa: D102
        raise self._unresolved()

    def forward(self, *args, **kwargs) -> FloatTensor:  # noqa: D102
        raise self._unresolved()

    def _unresolved(self) -> TypeError:
        return TypeError(
            "PresetLoss stands in for the loss of VBKGC's preset and VBKGC replaces it; another model needs a "
            "loss of its own, e.g. loss='nssa'."
        )

    def extra_repr(self) -> str:  # noqa: D102
        return f"margin_scale={self.margin_scale}"
