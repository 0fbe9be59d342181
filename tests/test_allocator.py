"""Keeping freed memory in the process: glibc's thresholds, left alone where the user chose them."""

import os
import platform
import subprocess
import sys

import pytest

from pykeen_vbkgc import allocator, cli

GLIBC = sys.platform == "linux" and platform.libc_ver()[0] == "glibc"

# the page faults of twenty rounds of allocating, touching and freeing five 16 MiB tensors at once, as a training batch
# does with its large tensors; with KEEP the thresholds are set first
_FAULTS = """
import resource, sys, torch
from pykeen_vbkgc.allocator import keep_freed_memory
assert keep_freed_memory() if sys.argv[1] == "KEEP" else True
def batch():
    tensors = [torch.ones(4 * 1024 * 1024) for _ in range(5)]
    return float(sum(tensor[0] for tensor in tensors))
batch()
batch()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    batch()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _page_faults(mode: str) -> int:
    # without malloc settings of this environment, which would make the defaults' run another one
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith("MALLOC_") and name != "GLIBC_TUNABLES"
    }
    return int(
        subprocess.run(
            [sys.executable, "-c", _FAULTS, mode], capture_output=True, text=True, check=True, env=environment
        ).stdout
    )


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc only")
def test_freed_blocks_are_reused_instead_of_faulted_in_again():
    # each round touches 20,480 new pages: by default glibc gives the freed 80 MiB back to the kernel (more than its
    # trim threshold), and the next round faults them in again; kept, they are reused
    default, kept = _page_faults("DEFAULT"), _page_faults("KEEP")
    assert kept * 3 < default, (kept, default)


@pytest.mark.parametrize(
    "name, value",
    [
        ("MALLOC_MMAP_THRESHOLD_", "1048576"),
        ("MALLOC_TRIM_THRESHOLD_", "0"),
        ("GLIBC_TUNABLES", "glibc.malloc.tcache_count=0"),
    ],
)
def test_the_users_malloc_settings_are_kept(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    # refused before mallopt is reached: this test process is left as it was
    assert allocator.keep_freed_memory() is False


def test_other_platforms_are_left_alone(monkeypatch):
    monkeypatch.setattr(allocator.sys, "platform", "darwin")
    assert allocator.keep_freed_memory() is False


def test_the_program_keeps_freed_memory_and_runs_the_command_line(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(cli, "keep_freed_memory", lambda: calls.append("kept"))
    monkeypatch.setattr(sys, "argv", ["pykeen-vbkgc", "--version"])
    with pytest.raises(SystemExit) as exit_info:
        cli.run()
    assert exit_info.value.code == 0 and calls == ["kept"]
    assert "pykeen-vbkgc, version" in capsys.readouterr().out
