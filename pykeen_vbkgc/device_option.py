"""The ``--device`` option of the commands that compute (``train``, ``encode``), checked when it is read."""

from __future__ import annotations

import click

__all__ = [
    "check_device",
    "device_problem",
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


def device_problem(device) -> str | None:
    """Return why this machine cannot compute on ``device`` (a sentence without a full stop), or None if it can.

    :param device: a :class:`torch.device`
    :return: the problem, or None
    """
    import torch

    if device.type == "cuda":
        if not torch.cuda.is_available():
            return "CUDA is not available on this machine"
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            return f"this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}"
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            return "MPS is not available on this machine"
    elif device.type != "cpu":
        return "use cpu, cuda or mps"
    return None


#: what the command lines advise for a device that the machine lacks
_ADVICE = {
    "CUDA is not available on this machine": "; leave out --device, or use --device cpu",
    "MPS is not available on this machine": "; use --device cpu",
}


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
    try:
        device = parse_device(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None
    problem = device_problem(device)
    if problem is not None:
        raise click.BadParameter(f"{value!r}: {problem}{_ADVICE.get(problem, '')}.")
    return value
