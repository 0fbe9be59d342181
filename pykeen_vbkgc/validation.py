"""Checks of user arguments shared by the components, each with one message."""

from __future__ import annotations

__all__ = [
    "check_positive_int",
]


def check_positive_int(name: str, value: object) -> int:
    """Return ``value`` if it is a positive integer (not a bool), else raise.

    :param name: the argument's name, for the message
    :param value: the value to check
    :return: the value
    :raises ValueError: ``"<name> must be a positive integer, got <value>."``
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return value
