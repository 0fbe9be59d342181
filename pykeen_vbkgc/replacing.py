"""Write a file so that readers see the old one or the new one, never a part of either.

Every file that another process may read while it is being written (a checkpoint, a features file, the description
of a run, a downloaded dataset file, a process id) is written beside its place under a hidden temporary name and
then moved onto it with :func:`os.replace`, which is atomic on POSIX file systems. If the writing fails, or is
interrupted by an exception such as :class:`KeyboardInterrupt`, the temporary file is removed and the old file, if
any, stays as it was. The new file gets the mode of any new file, as the umask allows, whatever the writer did
(:func:`tempfile.mkstemp` and safetensors' ``save_file`` make files private, 0600): a run or a features file that
the user's umask lets others read can be read by them.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "replacing",
    "temporary_name",
]


def temporary_name(path: str | os.PathLike, suffix: str = ".tmp") -> Path:
    """Return the fixed temporary name that :func:`replacing` writes ``path`` under (unless ``unique``)."""
    path = Path(path)
    return path.with_name(f".{path.name}{suffix}")


@contextlib.contextmanager
def replacing(
    path: str | os.PathLike, *, suffix: str = ".tmp", unique: bool = False, durable: bool = False
) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write; when the block succeeds, it replaces ``path`` in one step.

    :param path: the file to write
    :param suffix: the end of the temporary name, ``.{name}{suffix}`` (see :func:`temporary_name`)
    :param unique: use a new temporary name, ``.{name}.{random}{suffix}``, so that processes writing the same file
        at the same time do not write into one temporary file (the last one to finish wins)
    :param durable: flush the temporary file to the disk before it replaces ``path``, so that a crash of the machine
        cannot leave an empty or partial file in its place
    :yields: the temporary path; the block writes it (and may raise to leave ``path`` unchanged)
    """
    path = Path(path)
    if unique:
        handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
        os.close(handle)
        temporary = Path(name)
    else:
        temporary = temporary_name(path, suffix=suffix)
    try:
        yield temporary
        # after the writing, which may create the file anew (safetensors' save_file makes it private)
        os.chmod(temporary, 0o666 & ~_umask())
        if durable:
            with temporary.open("rb+") as file:
                os.fsync(file.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _umask() -> int:
    """Return the process's umask (reading it means setting it: set it back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
