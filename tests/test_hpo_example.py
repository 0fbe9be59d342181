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


def test_storage_and_seed_problems_are_one_line_errors_that_leave_no_database(hpo_main, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("a file").write_text("")
    file_in_the_way = "cannot open sqlite:///a file/hpo.db: a file is a file, not a directory"
    cases = [
        (["--storage", "sqlite:///a file/hpo.db"], f"Error: Invalid value for --storage: {file_in_the_way}"),
        (
            ["--storage", "postgresql+nosuchdriver://user@localhost:1/db"],
            "Error: Invalid value for --storage: cannot open postgresql+nosuchdriver://user@localhost:1/db: the Python "
            "driver of 'postgresql+nosuchdriver' is not installed (Can't load plugin: "
            "sqlalchemy.dialects:postgresql.nosuchdriver)",
        ),
        (["--seed", "-1"], "Error: Invalid value for '--seed': -1 is not in the range 0<=x<=4294967295."),
    ]
    for arguments, message in cases:
        result = CliRunner().invoke(hpo_main, ["--quick", *arguments])
        assert result.exit_code == 2, result.output
        assert result.stderr.strip().splitlines()[-1] == message
    # PostgreSQL: without its driver (here) Optuna's ImportError, with it (nothing listens on port 1) the connection's
    # error; either as the error line
    result = CliRunner().invoke(hpo_main, ["--quick", "--storage", "postgresql://user@localhost:1/db"])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith("Error: Invalid value for --storage: cannot open postgresql://user@localhost:1/db: ")
    )
    # a bad dataset is found before the database is made
    result = CliRunner().invoke(hpo_main, ["--dataset", "no-such-graph", "--storage", "sqlite:///new/hpo.db"])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a file"]


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
    # a worker with another setup does not add its trials to the study, whose trials it could not be compared with
    third = runner.invoke(hpo_main, ["--quick", "--n-trials", "1", "--epochs", "2"])
    assert third.exit_code == 2
    assert third.stderr.strip().splitlines()[-1] == (
        "Error: the study 'vbkgc-twins' holds trials of another setup (epochs was 1, now 2); give another "
        "--study-name, or the same options as its other workers."
    )
    assert len(optuna.load_study(study_name="vbkgc-twins", storage=f"sqlite:///{database}").trials) == 2
    # the setup names the data by its contents: workers keep their files elsewhere, and a graph rewritten at the same
    # path is another setup
    from pykeen.datasets import Nations

    from pykeen_vbkgc.digests import input_digests

    setup = study.user_attrs["vbkgc_hpo_setup"]
    assert setup["training_triples_sha256"] == input_digests(Nations().training, None)["training_triples_sha256"]
    assert setup["features_sha256"] is None and "dataset" not in setup
