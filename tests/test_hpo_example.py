"""The HPO example (examples/hpo.py) in --quick mode with its zero-setup SQLite storage."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import optuna
import pytest
from click.testing import CliRunner

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "hpo.py"


@pytest.fixture(scope="module")
def hpo_main():
    spec = importlib.util.spec_from_file_location("vbkgc_hpo_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def test_help(hpo_main):
    result = CliRunner().invoke(hpo_main, ["--help"])
    assert result.exit_code == 0
    for option in ("--storage", "--study-name", "--n-trials", "--dataset", "--epochs", "--quick"):
        assert option in result.output


def test_bad_storage(hpo_main):
    result = CliRunner().invoke(hpo_main, ["--quick", "--storage", "not a url"])
    assert result.exit_code != 0
    assert "Not an SQLAlchemy URL" in result.output


@pytest.fixture
def single_thread():
    """Run torch on one thread (much faster for these tiny models on a busy 2-core machine); restore afterwards."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_quick_sqlite_resumes_study(hpo_main, tmp_path, monkeypatch, single_thread):
    """--quick writes results/hpo.db; a second worker with the same study name adds its trial to the same study."""
    monkeypatch.setenv("PYKEEN_VBKGC_COMPILE", "0")
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    first = runner.invoke(hpo_main, ["--quick", "--n-trials", "1", "--seed", "0"], catch_exceptions=False)
    assert first.exit_code == 0, first.output
    database = tmp_path / "results" / "hpo.db"
    assert database.is_file()
    second = runner.invoke(hpo_main, ["--quick", "--n-trials", "1", "--seed", "1"], catch_exceptions=False)
    assert second.exit_code == 0, second.output
    summary = json.loads(second.stdout[second.stdout.index("{") :])
    assert summary["trials_in_study"] == summary["complete"] == 2

    study = optuna.load_study(study_name="vbkgc-twins", storage=f"sqlite:///{database}")
    assert sorted(trial.number for trial in study.trials) == [0, 1]
    params = study.trials[0].params
    assert params["loss.margin"] in (4.0, 6.0, 8.0, 10.0)
    assert params["optimizer.lr"] in (2e-5, 1e-4, 5e-4, 1e-3)
    assert params["model.embedding_dim"] == 128
    # Nations has 1592 training triples: 4 or 8 batches per epoch in --quick mode
    assert params["training.batch_size"] in (398, 199)
    assert study.best_params == summary["best_params"]
