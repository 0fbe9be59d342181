"""A throw-away PostgreSQL server on 127.0.0.1 for the tests of distributed HPO.

The fixture :func:`postgres_url` runs ``initdb`` on a temporary data directory (trust authentication, no fsync),
starts ``postgres`` listening only on 127.0.0.1 at a free port (its Unix socket in the temporary directory), yields
an SQLAlchemy URL, and afterwards stops the server (``pg_ctl stop -m immediate``) and removes the directory.

The binaries are looked up on the ``PATH`` and in Debian's ``/usr/lib/postgresql/<version>/bin``; the test is
skipped with the reason if they are missing (``.ci/run`` installs Debian's ``postgresql`` package). ``initdb`` refuses
to run as root, so as root the server runs as the ``postgres`` user (via ``runuser``).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = [
    "find_postgres_bin",
    "postgres_url",
]


def find_postgres_bin() -> Path | None:
    """Return the directory holding ``initdb`` and ``pg_ctl``, or None."""
    found = shutil.which("initdb"), shutil.which("pg_ctl")
    if all(found):
        return Path(os.path.realpath(found[0])).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), reverse=True)
    for directory in versions:
        if (directory / "initdb").is_file() and (directory / "pg_ctl").is_file():
            return directory
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """Start a PostgreSQL server on 127.0.0.1 and yield the SQLAlchemy URL of its ``postgres`` database."""
    pytest.importorskip(
        "psycopg2", reason="the PostgreSQL driver psycopg2 is not installed (pip install psycopg2-binary)"
    )
    bin_directory = find_postgres_bin()
    if bin_directory is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found; on Debian: apt-get install postgresql")
    prefix: list[str] = []
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root, and there is no 'postgres' user to run the PostgreSQL server as")
        runuser = shutil.which("runuser")
        if runuser is None:
            pytest.skip("running as root, and runuser is missing to start PostgreSQL as the 'postgres' user")
        prefix = [runuser, "-u", "postgres", "--"]

    root = Path(tempfile.mkdtemp(prefix="pykeen-vbkgc-postgres-"))
    root.chmod(0o755)
    data = root / "data"
    data.mkdir(mode=0o700)
    if prefix:
        os.chown(root, user.pw_uid, user.pw_gid)
        os.chown(data, user.pw_uid, user.pw_gid)
    port = _free_port()

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(prefix + list(args), capture_output=True, text=True, check=check, timeout=120)

    log = root / "server.log"
    started = False
    try:
        run(
            str(bin_directory / "initdb"),
            "-D", str(data),
            "-U", "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--no-sync",
        )  # fmt: skip
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -F"
        completed = run(
            str(bin_directory / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(log), "-w", "-t", "60", "start",
            check=False,
        )  # fmt: skip
        started = completed.returncode == 0
        if not started:
            server_log = log.read_text() if log.is_file() else ""
            raise RuntimeError(f"PostgreSQL did not start:\n{completed.stdout}\n{completed.stderr}\n{server_log}")
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres"
    finally:
        if started:
            run(str(bin_directory / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(root, ignore_errors=True)
