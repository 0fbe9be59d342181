"""Keeping freed memory in the process: glibc's thresholds, left alone where the user chose them."""

import os
import platform
import subprocess
import sys

import pytest

from pykeen_vbkgc import allocator, cli

GLIBC = sys.platform == "linux" and platform.libc_ver()[0] == "glibc"

# a training batch's large tensors, four of 30 MiB (30,720 pages), allocated, touched and freed: the resident memory
# that the first round leaves behind, in MiB, and the page faults of twenty more rounds; KEEP makes the settings first
_ROUNDS = """
import os, resource, sys, torch
from pykeen_vbkgc.allocator import keep_freed_memory
assert keep_freed_memory() if sys.argv[1] == "KEEP" else True
def resident():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
def batch():
    tensors = [torch.ones(30 * 256 * 1024) for _ in range(4)]
    return float(sum(tensor[0] for tensor in tensors))
start = resident()
batch()
left = (resident() - start) / 2**20
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    batch()
print(left, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""
PAGES_PER_ROUND = 4 * 30 * 256


def _rounds(mode: str) -> tuple[float, int]:
    # without malloc settings of this environment, which would make the defaults' run another one
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith("MALLOC_") and name != "GLIBC_TUNABLES"
    }
    left, faults = subprocess.run(
        [sys.executable, "-c", _ROUNDS, mode], capture_output=True, text=True, check=True, env=environment
    ).stdout.split()
    return float(left), int(faults)


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc only")
def test_freed_blocks_stay_in_the_process_and_are_reused():
    # by default glibc maps blocks this large afresh (or trims its heap: 120 MiB free is above any trim threshold it
    # picks itself), so freed memory goes back to the kernel, and later rounds fault it in again
    default_left, default_faults = _rounds("DEFAULT")
    assert default_left < 30 and default_faults > PAGES_PER_ROUND, (default_left, default_faults)
    # kept: the freed blocks stay resident, and twenty more rounds fault in less than one round's pages
    kept_left, kept_faults = _rounds("KEEP")
    assert kept_left > 100 and kept_faults < PAGES_PER_ROUND, (kept_left, kept_faults)


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
