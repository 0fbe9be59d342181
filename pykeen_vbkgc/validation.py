"""Checks of user arguments shared by the components, each with one message."""

from __future__ import annotations

import numbers

__all__ = [
    "FLOAT32_MAX",
    "FLOAT32_TINY",
    "MAX_COUNT",
    "MAX_SEED",
    "check_float32",
    "check_positive_int",
    "check_seed",
    "fits_float32",
    "ids_out_of_range",
]

#: the largest finite float32: a setting beyond it becomes infinite in the model's arithmetic
FLOAT32_MAX = 3.4028234663852886e38
#: the smallest normal float32
FLOAT32_TINY = 2.0**-126
#: the largest seed that NumPy's generator takes (PyKEEN seeds it with the run's seed)
MAX_SEED = 2**32 - 1
#: the largest count or size (epochs, dimensions, batches) of the command lines: beyond int32 torch's sizes may
#: overflow (a traceback), and no run needs that many
MAX_COUNT = 2**31 - 1


def check_positive_int(name: str, value: object) -> int:
    """Return ``value`` as an ``int`` if it is a positive integer (not a bool; NumPy's integers count), else raise.

    :param name: the argument's name, for the message
    :param value: the value to check
    :return: the value, as a Python ``int``
    :raises ValueError: ``"<name> must be a positive integer, got <value>."``
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def check_float32(name: str, value: object, *, minimum: float = 0.0) -> float:
    """Return ``value`` if it is a real number (not a bool) from ``minimum`` to :data:`FLOAT32_MAX`, else raise.

    Settings such as margins enter float32 arithmetic: a finite Python float beyond float32's range would make the
    loss infinite only once training has started.

    :param name: the argument's name, for the message
    :param value: the value to check
    :param minimum: the smallest value allowed
    :return: the value
    :raises ValueError: ``"<name> must be a number from <minimum> to 3.403e+38 (float32's range), got <value>."``
    """
    if not fits_float32(value, minimum=minimum):
        raise ValueError(
            f"{name} must be a number from {minimum:.4g} to {FLOAT32_MAX:.4g} (float32's range), got {value!r}."
        )
    return value


def fits_float32(value: object, *, minimum: float = 0.0) -> bool:
    """Return whether ``value`` is a real number (not a bool) from ``minimum`` to :data:`FLOAT32_MAX`.

    :param value: the value to check
    :param minimum: the smallest value allowed
    :return: whether it is
    """
    return not isinstance(value, bool) and isinstance(value, numbers.Real) and minimum <= value <= FLOAT32_MAX


def check_seed(name: str, value: object) -> int:
    """Return ``value`` if it is an integer (not a bool) that NumPy's generator takes as a seed, else raise.

    :param name: the argument's name, for the message
    :param value: the value to check
    :return: the value
    :raises ValueError: ``"<name> must be an integer from 0 to 4294967295, got <value>."``
    """
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
        raise ValueError(f"{name} must be an integer from 0 to {MAX_SEED}, got {value!r}.")
    return value


def ids_out_of_range(mapped_triples, num_entities: int, num_relations: int) -> tuple[str, int, int, int] | None:
    """Return the first kind of id of ``mapped_triples`` outside ``0..n-1``, or None if all are within.

    :param mapped_triples: shape: ``(n, 3)``, id triples
    :param num_entities: the number of entities (heads and tails)
    :param num_relations: the number of relations
    :return: ``("entity" or "relation", the lowest id, the highest id, the number)`` of the first kind out of range
    """
    for kind, ids, number in (
        ("entity", mapped_triples[:, 0::2], num_entities),
        ("relation", mapped_triples[:, 1], num_relations),
    ):
        if ids.numel():
            low, high = int(ids.min()), int(ids.max())
            if low < 0 or high >= number:
                return kind, low, high, number
    return None
