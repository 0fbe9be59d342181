"""The ``--device`` option of the commands that compute (``train``, ``encode``), checked when it is read."""

from __future__ import annotations

import click

__all__ = [
    "check_device",
    "parse_device",
]


def parse_device(value: str):
    """Return the torch device that ``value`` names (PyKEEN's ``"gpu"`` meaning ``"cuda"``).

    :param value: e.g. ``cpu``, ``cuda``, ``cuda:1`` or ``gpu``
    :return: the :class:`torch.device`
    :raises ValueError: for a name that is no device
    """
    import torch

    try:
        return torch.device("cuda" if value == "gpu" else value)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"{value!r} is not a device; use e.g. cpu, cuda or cuda:1.") from None


def check_device(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Check ``--device`` when the command line is read, before any data or model is loaded.

    Without the check, PyKEEN would train on the CPU instead of a missing CUDA device, silently, and torch would end
    ``encode`` with a traceback after loading the encoder.

    :param ctx: the click context
    :param param: the option
    :param value: the device, e.g. ``cpu``, ``cuda``, ``cuda:1``, or None for the command's own choice
    :return: the device
    :raises click.BadParameter: for a name that is no device, or a device that this machine does not have
    """
    if value is None:
        return None
    import torch

    try:
        device = parse_device(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise click.BadParameter(
                f"{value!r}: CUDA is not available on this machine; leave out --device, or use --device cpu."
            )
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise click.BadParameter(f"{value!r}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}.")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise click.BadParameter(f"{value!r}: MPS is not available on this machine; use --device cpu.")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise click.BadParameter(f"{value!r}: use cpu, cuda or mps.")
    return value
