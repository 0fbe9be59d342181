"""Where ``train --output RUN`` works until the run is finished: ``RUN.incomplete``, beside ``RUN``.

The directory holds the training checkpoint (:mod:`pykeen_vbkgc.checkpoints`, replaced after every epoch), the run
record (``vbkgc_run.json``: how the run was made) and, at the end, the files of the finished run
(:mod:`pykeen_vbkgc.run_files`); then it is renamed to ``RUN``, so that ``RUN`` appears whole or not at all.

- A second ``train`` into the same ``RUN`` is refused while the first holds the directory's lock (an advisory
  ``flock``, released by the system when the process ends, however it ends).
- A ``train`` that finds an unlocked ``RUN.incomplete`` with a checkpoint resumes from it, if it was started with
  the same settings (else it is refused and says so).
- A run that fails or is stopped before its first checkpoint removes ``RUN.incomplete``, and the parent directories
  that it created; one with a checkpoint keeps it, to be resumed.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from .checkpoints import CHECKPOINT_NAME, CheckpointError, read_checkpoint
from .replacing import replacing, temporary_name
from .run_files import RUN_RECORD, is_finished_run

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; a concurrent second train is then not detected
    fcntl = None

__all__ = [
    "INCOMPLETE_SUFFIX",
    "OutputError",
    "OutputInUseError",
    "RunStaging",
    "check_new_output",
    "check_writable_directory",
    "new_directory",
]

#: the suffix of the directory beside ``--output`` in which a run is made
INCOMPLETE_SUFFIX = ".incomplete"
#: the process id of the train run that holds the directory (for messages only; the lock decides)
PID_FILE = "train.pid"
#: where the process id is written before it is renamed to :data:`PID_FILE`
PARTIAL_PID_FILE = temporary_name(PID_FILE).name
#: how long a refused run waits for the holder, which has just taken the lock, to write its process id
PID_WAIT_SECONDS = 2.0


class OutputError(ValueError):
    """The output directory cannot be used; the message is one line."""


class OutputInUseError(OutputError):
    """Another train run is writing the output directory."""


def check_new_output(output: str | os.PathLike) -> None:
    """Check, before any work, that ``output`` is new or an empty directory, and that it can be made and written.

    :param output: the output directory
    :raises OutputError: if it cannot be used
    """
    output = Path(output)
    if output.exists() or output.is_symlink():
        if not output.is_dir():
            raise OutputError(f"{output} exists and is not a directory.")
        try:
            empty = not any(output.iterdir())
        except OSError as error:
            raise OutputError(f"cannot read {output}: {error.strerror}.") from None
        if not empty:
            raise OutputError(f"{output} exists and is not empty.")
    check_writable_directory(output)


def check_writable_directory(directory: str | os.PathLike) -> None:
    """Check that ``directory`` exists or can be made, and that files can be written into it.

    :param directory: the directory
    :raises OutputError: if it cannot be made or written
    """
    directory = Path(directory)
    existing = next(parent for parent in (directory, *directory.parents) if parent.exists())
    if not existing.is_dir():
        raise OutputError(f"cannot create {directory}: {existing} is a file, not a directory.")
    try:  # os.access would not tell for root, nor for file systems such as /proc
        os.rmdir(tempfile.mkdtemp(prefix=".write-check-", dir=existing))
    except OSError as error:
        raise OutputError(f"cannot write {directory}: {existing}: {error.strerror}.") from None


@contextlib.contextmanager
def new_directory(output: str | os.PathLike) -> Iterator[Path]:
    """Yield a new directory beside ``output`` to fill; when the block succeeds, it is renamed to ``output``.

    For a command that saves its results at the end, all at once: ``output`` appears whole or not at all. If the
    block fails or is interrupted, the directory and the parents of ``output`` that were created for it are removed.

    :param output: the directory to make (new, or empty)
    :yields: the directory to fill
    :raises OutputError: if the directory cannot be created
    :raises OSError: if it cannot be renamed to ``output`` (e.g., ``output`` is not empty any more)
    """
    output = Path(os.path.abspath(output))
    missing = _missing_parents(output)
    temporary = output.with_name(f".{output.name}.{secrets.token_hex(4)}{INCOMPLETE_SUFFIX}")
    try:
        temporary.parent.mkdir(parents=True, exist_ok=True)
        temporary.mkdir()  # the mode that the umask gives, as the directories of train
    except OSError as error:
        _remove_empty(missing)
        raise OutputError(f"cannot create {output}: {error.strerror}.") from None
    try:
        yield temporary
        # replaces an empty directory, fails for a non-empty one
        os.rename(temporary, output)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        _remove_empty(missing)
        raise


def _missing_parents(path: Path) -> list[Path]:
    """Return the parents of ``path`` that do not exist, deepest first."""
    missing = []
    parent = path.parent
    while not (parent.exists() or parent.is_symlink()):
        missing.append(parent)
        parent = parent.parent
    return missing


def _remove_empty(directories: list[Path]) -> None:
    """Remove the directories, deepest first, up to the first that is not empty (or cannot be removed)."""
    for directory in directories:
        try:
            directory.rmdir()
        except OSError:
            break


class RunStaging:
    """The directory ``RUN.incomplete`` in which ``train --output RUN`` makes its run."""

    def __init__(self, output: str | os.PathLike) -> None:
        """Prepare the staging of a run; nothing is created until :meth:`acquire`.

        :param output: the run directory to make (new, or empty)
        """
        #: the run directory, as the user named it
        self.output = Path(output)
        absolute = Path(os.path.abspath(self.output))
        #: the directory in which the run is made
        self.path = absolute.with_name(absolute.name + INCOMPLETE_SUFFIX)
        #: how messages name :attr:`path`: like the user named the output
        self.display = Path(f"{self.output}{INCOMPLETE_SUFFIX}") if self.output.name else self.path
        #: whether :attr:`path` holds a finished run that was not yet renamed (its saving was interrupted)
        self.finished = False
        self._fd: int | None = None
        self._created: list[Path] = []

    @property
    def checkpoint(self) -> Path:
        """Return the path of the checkpoint."""
        return self.path / CHECKPOINT_NAME

    def training_kwargs(self) -> dict[str, Any]:
        """Return the ``training_kwargs`` of :func:`pykeen.pipeline.pipeline` that checkpoint into this directory.

        A checkpoint after every epoch: PyKEEN's frequency is in whole minutes, and an epoch of the datasets here
        takes seconds to minutes on a CPU.
        """
        return dict(checkpoint_name=CHECKPOINT_NAME, checkpoint_directory=self.path, checkpoint_frequency=0)

    def acquire(self, record: Mapping[str, Any]) -> int | None:
        """Create (or take over) the directory, lock it and record how the run is made.

        :param record: how the run is made (JSON values); a checkpoint is resumed only if it was made by a run with
            the same record
        :return: the epoch of the checkpoint to resume from, or None to start from scratch
        :raises OutputInUseError: if another train run holds the directory
        :raises OutputError: if the output exists and is not empty, a directory cannot be created, or the
            directory holds a checkpoint of other settings or a damaged one
        """
        record = json.loads(json.dumps(record))  # as it reads back: lists, not tuples
        for _ in range(3):
            self.check_output()
            self._create()
            if self._lock():
                break
        else:
            raise self._in_use()
        try:
            self.check_output()  # a run into the same output may have finished since the first check
            self._write_pid()
            epoch = self._resumable(record)
            (self.path / RUN_RECORD).write_text(json.dumps(record, indent=2) + "\n")
        except OSError as error:
            self.close()
            raise OutputError(f"cannot write in {self.display}: {error.strerror}.") from None
        except BaseException:
            self.close()
            raise
        return epoch

    def publish(self) -> None:
        """Rename the directory, which holds the finished run, to the output; release the lock.

        :raises OutputError: if the output cannot be replaced (the finished run then stays where it is)
        """
        for name in (CHECKPOINT_NAME, temporary_name(CHECKPOINT_NAME).name, PID_FILE, PARTIAL_PID_FILE):
            (self.path / name).unlink(missing_ok=True)
        try:
            # replaces an empty directory, fails for a non-empty one
            os.rename(self.path, self.output)
        except OSError as error:
            self._release()
            raise OutputError(
                f"cannot move the finished run from {self.display} to {self.output}: {error.strerror}; move it "
                "yourself."
            ) from None
        self._release()

    def close(self) -> int | None:
        """End a run that did not finish: keep the directory if it holds a checkpoint, else remove what was created.

        :return: the epoch of the kept checkpoint, or None if there is none (or it is unreadable: the directory is
            then kept for the user to look at)
        """
        epoch = None
        if self.checkpoint.is_file():
            try:
                epoch = read_checkpoint(self.checkpoint)["epoch"]
            except CheckpointError:
                epoch = None
        if self.checkpoint.is_file() or is_finished_run(self.path):
            for name in (PID_FILE, PARTIAL_PID_FILE):
                (self.path / name).unlink(missing_ok=True)
        else:
            shutil.rmtree(self.path, ignore_errors=True)
            _remove_empty(self._created)
        self._release()
        return epoch

    def check_output(self) -> None:
        """Check that the output is new or an empty directory, and that it can be made (see :func:`check_new_output`).

        :raises OutputError: if it is not
        """
        check_new_output(self.output)

    def _create(self) -> None:
        """Create the directory and the missing parents; remember the parents for :meth:`close`."""
        missing = _missing_parents(self.path)
        try:
            if missing:
                self.path.parent.mkdir(parents=True, exist_ok=True)  # another train may be creating them, too
            self.path.mkdir(exist_ok=True)
        except OSError as error:
            _remove_empty(missing)
            raise OutputError(f"cannot create {self.output}: {error.strerror}.") from None
        self._created = self._created or missing  # deepest first

    def _lock(self) -> bool:
        """Lock the directory; return False if it was replaced meanwhile (try again).

        :raises OutputInUseError: if another process holds the lock
        """
        try:
            fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except FileNotFoundError:
            return False  # removed by a run that failed meanwhile
        except OSError as error:
            raise OutputError(f"cannot open {self.display}: {error.strerror}.") from None
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                _remove_empty(self._created)  # only parents that hold nothing; the other run's directory stays
                raise self._in_use() from None
        # the holder may have renamed (finished) or removed (failed) the directory between our open and lock
        try:
            current = os.stat(self.path)
        except FileNotFoundError:
            current = None
        held = os.fstat(fd)
        if current is None or (current.st_dev, current.st_ino) != (held.st_dev, held.st_ino):
            os.close(fd)
            return False
        self._fd = fd
        return True

    def _write_pid(self) -> None:
        """Write this process's id; renamed into place, so that a refused run never reads half of it."""
        with replacing(self.path / PID_FILE) as partial:
            partial.write_text(f"{os.getpid()}\n")

    def _holder_pid(self) -> int | None:
        """Return the process id of the lock's holder, or None if it does not write one in time.

        The holder writes it just after taking the lock, so a run refused in between waits a moment for it.
        """
        deadline = time.monotonic() + PID_WAIT_SECONDS
        while True:
            try:
                return int((self.path / PID_FILE).read_text().strip())
            except (OSError, ValueError):
                if time.monotonic() >= deadline:
                    return None
            time.sleep(0.01)

    def _in_use(self) -> OutputInUseError:
        pid = self._holder_pid()
        holder = "another train run" if pid is None else f"another train run (process {pid})"
        return OutputInUseError(f"{self.output} is in use: {holder} is writing it in {self.display}.")

    def _resumable(self, record: Mapping[str, Any]) -> int | None:
        """Return the epoch of a checkpoint made with ``record``; note a finished run made with it."""
        self.finished = is_finished_run(self.path)
        if not (self.finished or self.checkpoint.is_file()):
            return None
        what = "a finished run" if self.finished else "an interrupted run"
        try:
            previous = json.loads((self.path / RUN_RECORD).read_text())
        except (OSError, ValueError):
            previous = None
        differences = _differences(previous, record) if isinstance(previous, dict) else ["its settings are unknown"]
        if differences:
            raise OutputError(
                f"{self.display} holds {what} of another train command ({', '.join(differences)}); run that command "
                f"again to {'finish' if self.finished else 'resume'} it, or delete {self.display} to start over."
            )
        if self.finished:
            return None
        try:
            return read_checkpoint(self.checkpoint)["epoch"]
        except CheckpointError as error:
            raise OutputError(f"{error}; delete {self.display} to start over.") from None

    def _release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _differences(previous: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """Describe how two run records differ, setting by setting (the preset's settings flattened)."""

    def flat(record: Mapping[str, Any]) -> dict[str, Any]:
        values = {key: value for key, value in record.items() if key != "settings"}
        settings = record.get("settings")
        if isinstance(settings, Mapping):
            values.update({key: value for key, value in settings.items() if key != "name"})
            values["preset"] = settings.get("name")
        return values

    old, new = flat(previous), flat(current)
    return [
        f"{key} was {json.dumps(old.get(key))}, now {json.dumps(new.get(key))}"
        for key in sorted(set(old) | set(new))
        if old.get(key) != new.get(key)
    ]
