"""Distributed HPO: two worker processes share one Optuna study in a real PostgreSQL server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from postgres_fixtures import postgres_url  # noqa: F401  (fixture)

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "hpo.py"
STUDY = "vbkgc-shared"
TRIALS_PER_WORKER = 2


def test_postgres_fixture_is_loopback(postgres_url):  # noqa: F811
    """The server listens on 127.0.0.1 and accepts SQL."""
    import sqlalchemy

    url = sqlalchemy.engine.make_url(postgres_url)
    assert url.host == "127.0.0.1"
    engine = sqlalchemy.create_engine(postgres_url)
    try:
        with engine.connect() as connection:
            assert connection.execute(sqlalchemy.text("SHOW listen_addresses")).scalar() == "127.0.0.1"
    finally:
        engine.dispose()


def test_two_workers_share_one_study(postgres_url, tmp_path):  # noqa: F811
    """Two concurrent hpo_pipeline workers against one study: 4 trials, numbered 0..3, all complete, none lost."""
    import optuna

    # one thread per worker: two workers with one OpenMP thread pool per core each oversubscribe 2 cores badly
    env = dict(os.environ, PYKEEN_VBKGC_COMPILE="0", OMP_NUM_THREADS="1")
    command = [sys.executable, str(EXAMPLE), "--quick", "--storage", postgres_url, "--study-name", STUDY]
    workers = [
        subprocess.Popen(
            [*command, "--n-trials", str(TRIALS_PER_WORKER), "--seed", str(seed)],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in (1, 2)
    ]
    outputs = []
    try:
        for worker in workers:
            stdout, stderr = worker.communicate(timeout=420)
            assert worker.returncode == 0, stderr[-4000:]
            outputs.append((stdout, stderr))
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()

    # the trials each worker ran, from Optuna's log lines
    ran = [{int(n) for n in re.findall(r"Trial (\d+) finished", stderr)} for _, stderr in outputs]
    assert [len(numbers) for numbers in ran] == [TRIALS_PER_WORKER, TRIALS_PER_WORKER]
    assert ran[0].isdisjoint(ran[1])

    study = optuna.load_study(study_name=STUDY, storage=postgres_url)
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == 2 * TRIALS_PER_WORKER
    assert sorted(trial.number for trial in trials) == list(range(2 * TRIALS_PER_WORKER))
    assert ran[0] | ran[1] == {trial.number for trial in trials}
    assert all(trial.state == optuna.trial.TrialState.COMPLETE for trial in trials)
    assert all(trial.value is not None and 0 < trial.value <= 1 for trial in trials)
    # searched: the paper's grid; the other settings are the preset's
    assert all(
        set(trial.params) == {"model.embedding_dim", "loss.margin", "optimizer.lr", "training.batch_size"}
        for trial in trials
    )
    assert study.user_attrs["model"] == "vbkgc" and study.user_attrs["negative_sampler"] == "twins"
    # each worker's summary saw its own trials in the shared study; the later one saw all of them
    summaries = [json.loads(stdout[stdout.index("{") :]) for stdout, _ in outputs]
    assert all(summary["complete"] >= TRIALS_PER_WORKER for summary in summaries)
    assert max(summary["trials_in_study"] for summary in summaries) == 2 * TRIALS_PER_WORKER
