"""Keep freed memory in the process for reuse: fewer page faults per training batch on Linux (glibc).

Every training batch allocates and frees the same large tensors again (tens of MiB at FB15k-237's size: the piece
table, the gradient buffers, the projected features). glibc's ``malloc`` serves blocks above its mmap threshold with
fresh mappings and gives freed memory at the top of its heap back to the kernel, so each batch touches new pages, and
the kernel zero-fills each 4 KiB page at its first touch (a minor page fault). :func:`keep_freed_memory` raises the
mmap threshold to glibc's maximum (32 MiB) and the trim threshold to 2 GiB: freed blocks stay in the process, where
the next batch reuses them. The values of the tensors, and so the training, are the same; the process's resident
memory stays at its peak instead of shrinking between batches. Measured in docs/speed.md (FB15k-237, d = 128, 2 CPU
cores, 16 negatives: VBKGC+twins' epoch about a fifth shorter, TransE's a quarter, with a quarter of the page faults;
64 negatives: two fifths and half). Blocks above 32 MiB are still mapped afresh: turning glibc's ``mmap`` off
altogether was faster at 64 negatives, but its heap fragmented and grew by half in one of two runs.

The ``pykeen-vbkgc`` command, ``python -m pykeen_vbkgc.lightning`` and the scripts in ``examples/`` call it at their
start. A program that trains through :func:`pykeen.pipeline.pipeline`
may call it first, or set the same thresholds for any process through glibc's environment variables::

    MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=2147483647 python train.py
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform
import sys

__all__ = [
    "MMAP_THRESHOLD",
    "TRIM_THRESHOLD",
    "keep_freed_memory",
]

logger = logging.getLogger(__name__)

#: glibc's largest mmap threshold on 64-bit systems (``DEFAULT_MMAP_THRESHOLD_MAX``): larger blocks are always mapped
MMAP_THRESHOLD = 32 * 1024 * 1024
#: free memory at the top of the heap that glibc keeps instead of returning it (``mallopt`` takes a C int)
TRIM_THRESHOLD = 2**31 - 1

# mallopt's parameter numbers (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

#: environment settings of glibc's malloc that a user may have chosen; if any is set, nothing is changed
_USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_")


def keep_freed_memory() -> bool:
    """Set glibc's mmap and trim thresholds so that freed blocks stay in the process (see the module's text).

    Setting either threshold also stops glibc from adjusting them itself, which is why both are set. Nothing is
    changed off Linux, with another C library, or where the user set glibc's malloc variables (``MALLOC_*_`` or
    ``glibc.malloc`` tunables in ``GLIBC_TUNABLES``).

    :return: whether both thresholds were set
    """
    if sys.platform != "linux" or platform.libc_ver()[0] != "glibc":
        return False
    if any(name in os.environ for name in _USER_SETTINGS) or "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", ""):
        logger.debug("glibc's malloc settings of the environment are kept")
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # pragma: no cover - glibc always has mallopt
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    # mallopt returns 1 on success; the mmap threshold first: setting the trim threshold alone would leave the small
    # default mmap threshold fixed, which maps (and faults) even more
    return mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
