"""Tests for writing files by replacing them in one step."""

import os

import pytest
import torch
from safetensors.torch import save_file

from pykeen_vbkgc import replacing as replacing_module
from pykeen_vbkgc.replacing import replacing, temporary_name
from pykeen_vbkgc.run_files import _write_json


def test_the_new_file_replaces_the_old_one_and_nothing_else_is_left(tmp_path):
    path = tmp_path / "run.json"
    path.write_text("old")
    with replacing(path) as temporary:
        assert temporary == tmp_path / ".run.json.tmp" == temporary_name(path)
        temporary.write_text("new")
        # readers still see the old file while the new one is written
        assert path.read_text() == "old"
    assert path.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), KeyboardInterrupt()])
@pytest.mark.parametrize("unique", [False, True])
def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path, error, unique):
    path = tmp_path / "features.safetensors"
    path.write_text("old")
    with pytest.raises(type(error)), replacing(path, unique=unique) as temporary:
        temporary.write_text("half")
        raise error
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["features.safetensors"]


def test_a_failed_first_write_leaves_no_file(tmp_path):
    with pytest.raises(ValueError, match="bad value"), replacing(tmp_path / "x.json", suffix=".part") as temporary:
        assert temporary.name == ".x.json.part"
        temporary.write_text("half")
        raise ValueError("bad value")
    assert list(tmp_path.iterdir()) == []


def test_unique_temporary_names_let_two_writers_write_at_once(tmp_path):
    path = tmp_path / "features.safetensors"
    with replacing(path, unique=True) as first, replacing(path, unique=True) as second:
        assert first != second
        assert first.name.startswith(".features.safetensors.") and first.name.endswith(".tmp")
        first.write_text("first")
        second.write_text("second")
    # the writer that finishes last wins
    assert path.read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["features.safetensors"]


@pytest.mark.parametrize("unique", [False, True])
def test_new_files_have_the_mode_that_the_umask_gives(tmp_path, unique):
    """Whatever the writer made of it: safetensors' save_file and mkstemp make files private (0600)."""
    old = os.umask(0o027)
    try:
        with replacing(tmp_path / "a.safetensors", unique=unique) as temporary:
            save_file({"x": torch.zeros(2)}, temporary)
            assert temporary.stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)
    assert (tmp_path / "a.safetensors").stat().st_mode & 0o777 == 0o640


def test_durable_files_reach_the_disk_before_they_replace_the_old_one(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(replacing_module.os, "fsync", lambda fd: events.append("fsync") or real_fsync(fd))
    monkeypatch.setattr(replacing_module.os, "replace", lambda a, b: events.append("replace") or real_replace(a, b))
    with replacing(path, durable=True) as temporary:
        temporary.write_bytes(b"state")
    assert events == ["fsync", "replace"]
    events.clear()
    with replacing(path) as temporary:
        temporary.write_bytes(b"state")
    assert events == ["replace"]


def test_a_run_description_that_cannot_be_written_leaves_the_old_one(tmp_path, monkeypatch):
    """The description of a run is written last and atomically: a full disk leaves the old one and no .tmp file."""
    path = tmp_path / "vbkgc_model.json"
    _write_json(path, {"a": 1})

    def full_disk(self, *args, **kwargs):
        self.open("w").write("{")  # a part is written, then the disk is full
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(type(path), "write_text", full_disk)
    with pytest.raises(OSError, match="No space left on device"):
        _write_json(path, {"a": 2})
    monkeypatch.undo()
    assert path.read_text() == '{\n  "a": 1\n}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vbkgc_model.json"]
