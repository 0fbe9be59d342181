"""Training through PyKEEN's Lightning integration: sharding, seeded twins negatives, CPU DDP with 2 processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

pytest.importorskip("pytorch_lightning")

from lightning_ddp_worker import CONFIG  # noqa: E402  (tests/ is on sys.path, as for the other fixture modules)
from pykeen.datasets import get_dataset  # noqa: E402
from pykeen.triples.instances import BatchedSLCWAInstances  # noqa: E402

from pykeen_vbkgc.lightning import (  # noqa: E402
    SeededSLCWABatches,
    ShardedSLCWABatchSampler,
    TwinsSLCWALitModule,
    batch_seed,
)
from pykeen_vbkgc.representation import decode_twins  # noqa: E402
from pykeen_vbkgc.sampler import TwinsNotSupportedError  # noqa: E402

TESTS = Path(__file__).resolve().parent


def _shard_ids(num_triples: int, batch_size: int, world_size: int, epoch: int, seed: int = 0) -> list[list[int]]:
    """Return the triple ids of each rank in one epoch."""
    shards = []
    for rank in range(world_size):
        sampler = ShardedSLCWABatchSampler(
            num_triples=num_triples, batch_size=batch_size, num_replicas=world_size, rank=rank, seed=seed
        )
        sampler.set_epoch(epoch)
        keys = list(sampler)
        assert len(keys) == len(sampler)
        assert [key.index for key in keys] == list(range(len(keys)))
        assert all(key.rank == rank and key.epoch == epoch for key in keys)
        shards.append([i for key in keys for i in key.triple_ids])
    return shards


def test_sharded_batch_sampler():
    """Ranks get disjoint shards that cover the epoch, the same number of batches, and a new order per epoch."""
    shards = _shard_ids(num_triples=100, batch_size=16, world_size=2, epoch=0)
    assert len(shards[0]) == len(shards[1]) == 50
    assert set(shards[0]).isdisjoint(shards[1])
    assert set(shards[0]) | set(shards[1]) == set(range(100))
    assert _shard_ids(100, 16, 2, epoch=0) == shards
    assert _shard_ids(100, 16, 2, epoch=1) != shards
    # an odd split is padded (as DistributedSampler does): same number of batches everywhere, nothing lost
    odd = _shard_ids(num_triples=101, batch_size=16, world_size=3, epoch=0)
    assert {len(shard) for shard in odd} == {34}
    assert set().union(*odd) == set(range(101))
    with pytest.raises(ValueError):
        ShardedSLCWABatchSampler(num_triples=1, batch_size=4, num_replicas=2, rank=0)


def test_batch_seed():
    """Batch seeds are deterministic and differ when any part differs."""
    seeds = {
        batch_seed(0, stream, epoch, rank, index)
        for stream in (0, 1)
        for epoch in range(3)
        for rank in range(2)
        for index in range(4)
    }
    assert len(seeds) == 2 * 3 * 2 * 4
    assert batch_seed(1, 0, 2, 1, 3) == batch_seed(1, 0, 2, 1, 3)
    with pytest.raises(ValueError):
        batch_seed(-1, 0, 0, 0, 0)


def _instances(dataset, num_negs_per_pos: int, batch_size: int) -> BatchedSLCWAInstances:
    return BatchedSLCWAInstances.from_triples_factory(
        dataset.training,
        batch_size=batch_size,
        negative_sampler="twins",
        negative_sampler_kwargs=dict(num_negs_per_pos=num_negs_per_pos),
    )


def _assert_twins(positives: torch.Tensor, negatives: torch.Tensor, num_entities: int) -> None:
    """Assert that each negative corrupts exactly one entity of its positive, encoded as a twins id."""
    positives = positives.unsqueeze(1).expand_as(negatives)
    same = negatives == positives
    assert same[..., 1].all(), "the relation is never corrupted"
    corrupted = ~same[..., [0, 2]]
    assert (corrupted.sum(dim=-1) == 1).all(), "exactly one of head and tail is corrupted"
    for column in (0, 2):
        mask = ~same[..., column]
        ids = negatives[..., column][mask]
        assert (ids >= num_entities).all()
        original = decode_twins(ids, num_entities=num_entities, side="original")
        replacement = decode_twins(ids, num_entities=num_entities, side="replacement")
        assert torch.equal(original, positives[..., column][mask])
        assert (replacement != original).all() and (replacement < num_entities).all()


def test_seeded_twins_batches():
    """Negatives are twins-encoded, reproducible from the batch key alone, and leave the global RNG untouched."""
    dataset = get_dataset(dataset="nations")
    dataset_a = SeededSLCWABatches(_instances(dataset, num_negs_per_pos=3, batch_size=32), seed=5)
    dataset_b = SeededSLCWABatches(_instances(dataset, num_negs_per_pos=3, batch_size=32), seed=5)
    sampler = ShardedSLCWABatchSampler(num_triples=len(dataset_a), batch_size=32, num_replicas=2, rank=1, seed=5)
    keys = list(sampler)[:3]
    state = torch.get_rng_state()
    batches = [dataset_a[key] for key in keys]
    assert torch.equal(torch.get_rng_state(), state)
    for key, batch in zip(keys, batches):
        assert torch.equal(batch["positives"], dataset.training.mapped_triples[key.triple_ids])
        assert batch["negatives"].shape == (len(key.triple_ids), 3, 3)
        _assert_twins(batch["positives"], batch["negatives"], num_entities=dataset.num_entities)
    # the same key gives the same negatives, in reverse order and in another instance
    for key, batch in reversed(list(zip(keys, batches))):
        assert torch.equal(dataset_b[key]["negatives"], batch["negatives"])
    # another rank (same epoch and index) draws other negatives
    other = keys[0]._replace(rank=0)
    assert not torch.equal(dataset_a[other]["negatives"], batches[0]["negatives"])
    with pytest.raises(TypeError):
        dataset_a[[0, 1, 2]]


def test_twins_needs_twins_model():
    """Lightning has no training loop for the sampler's own check, so the module checks the model."""
    with pytest.raises(TwinsNotSupportedError):
        TwinsSLCWALitModule(dataset="nations", model="transe", model_kwargs=dict(embedding_dim=8))


def test_single_process_training(tmp_path):
    """Two epochs in-process: the module trains VBKGC with twins negatives and the losses are finite.

    With ``validate=True``: the validation step scores twins negatives with the model in evaluation mode (it failed
    after the first epoch).
    """
    from pykeen_vbkgc.lightning import train_lightning

    result = train_lightning(
        dataset="nations",
        model_kwargs=dict(features=None, feature_dim=8, embedding_dim=8),
        negative_sampler_kwargs=dict(num_negs_per_pos=2),
        batch_size=256,
        num_epochs=2,
        accelerator="cpu",
        devices=1,
        validate=True,
        trainer_kwargs=dict(enable_progress_bar=False, default_root_dir=tmp_path),
    )
    assert result.trainer.world_size == 1
    assert torch.isfinite(result.trainer.callback_metrics["train_loss_epoch"])
    assert torch.isfinite(result.trainer.callback_metrics["val_loss"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        # Lightning's max_epochs=-1 trains without end
        (dict(num_epochs=-1), "num_epochs must be a positive integer, got -1."),
        (dict(batch_size="256"), "batch_size must be a positive integer, got '256'."),
        (dict(batch_size=2.5), "batch_size must be a positive integer, got 2.5."),
        (
            dict(learning_rate=-1.0),
            "learning_rate must be a number from 1.175e-38 to 3.403e+38 (float32's range), got -1.0.",
        ),
        (dict(random_seed=-1), "random_seed must be an integer from 0 to 4294967295, got -1."),
        (dict(num_workers=-1), "num_workers must be a non-negative integer, got -1."),
        (
            dict(negative_sampler="nscaching"),
            "The 'nscaching' negative sampler scores its caches with the model of a PyKEEN training loop, which "
            "Lightning has not; train it with pipeline().",
        ),
    ],
)
def test_train_lightning_refuses_bad_settings_in_one_line(kwargs, message):
    from pykeen_vbkgc.lightning import train_lightning

    settings = dict(dataset="nations", accelerator="cpu", devices=1, num_epochs=1) | kwargs
    with pytest.raises(ValueError) as error:
        train_lightning(**settings, trainer_kwargs=dict(enable_progress_bar=False))
    assert str(error.value) == message


def test_ddp_cpu_two_processes(tmp_path):
    """Lightning DDP on CPU (gloo, 2 processes): consistent negatives, decreasing loss, evaluation on rank 0.

    "Consistent" means: (1) in each epoch the ranks train on disjoint halves of the training triples that together
    cover all of them, with the same number of batches; (2) every negative a rank trained on equals what
    :class:`SeededSLCWABatches` rebuilds here, in this process, from (seed, epoch, rank, batch index) alone - the
    negatives are reproducible per rank and independent of the process that drew them; (3) they are valid twins
    negatives of their positives; (4) both ranks end with the same parameters.
    """
    # one OpenMP thread per rank (as torchrun does), else the 2 ranks oversubscribe the cores
    # the project first, then whatever PYTHONPATH already holds (e.g. where the dependencies are installed)
    python_path = os.pathsep.join(filter(None, [str(TESTS.parent), os.environ.get("PYTHONPATH")]))
    env = dict(
        os.environ, PYKEEN_VBKGC_COMPILE="0", MASTER_ADDR="127.0.0.1", OMP_NUM_THREADS="1", PYTHONPATH=python_path
    )
    env.pop("CUDA_VISIBLE_DEVICES", None)
    completed = subprocess.run(
        [sys.executable, str(TESTS / "lightning_ddp_worker.py"), str(tmp_path)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    records = [torch.load(tmp_path / f"rank{rank}.pt", weights_only=False) for rank in (0, 1)]
    assert [record["world_size"] for record in records] == [2, 2]
    assert [record["rank"] for record in records] == [0, 1]

    dataset = get_dataset(dataset=CONFIG["dataset"])
    training = dataset.training.mapped_triples
    rebuilt = SeededSLCWABatches(
        _instances(dataset, num_negs_per_pos=CONFIG["num_negs_per_pos"], batch_size=CONFIG["batch_size"]),
        seed=CONFIG["seed"],
    )
    for epoch in range(CONFIG["num_epochs"]):
        seen = []
        for rank, record in enumerate(records):
            batches = record["batches"][epoch]
            assert len(batches) == len(records[0]["batches"][epoch])
            sampler = ShardedSLCWABatchSampler(
                num_triples=len(training),
                batch_size=CONFIG["batch_size"],
                num_replicas=2,
                rank=rank,
                seed=CONFIG["seed"],
            )
            sampler.set_epoch(epoch)
            for key, batch in zip(sampler, batches, strict=True):
                expected = rebuilt[key]
                assert torch.equal(batch["positives"], expected["positives"])
                assert torch.equal(batch["negatives"], expected["negatives"])
                _assert_twins(batch["positives"], batch["negatives"], num_entities=dataset.num_entities)
            seen.append({tuple(row) for batch in batches for row in batch["positives"].tolist()})
        assert seen[0].isdisjoint(seen[1])
        assert seen[0] | seen[1] == {tuple(row) for row in training.tolist()}

    for record in records:
        losses = [sum(epoch) / len(epoch) for epoch in record["losses"]]
        assert losses[-1] < losses[0], losses
    assert records[0]["parameters"] == records[1]["parameters"]

    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert 0 < metrics["trained_mrr"] <= 1 and 0 < metrics["trained_hits_at_10"] <= 1
    assert metrics["trained_mrr"] > metrics["untrained_mrr"], metrics


def test_cli_refuses_a_seed_that_numpy_cannot_take(tmp_path):
    from pykeen_vbkgc.lightning import main

    output = tmp_path / "run"
    result = CliRunner().invoke(main, ["--epochs", "1", "--output", str(output), "--seed", "-1"])
    assert result.exit_code == 2, result.output
    assert (
        result.stderr.splitlines()[-1] == "Error: Invalid value for '--seed': -1 is not in the range 0<=x<=4294967295."
    )
    assert not output.exists()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--accelerator", "banana"], "You selected an invalid accelerator name: `accelerator='banana'`."),
        (["--accelerator", "cpu", "--devices", "x"], "`devices` selected with `CPUAccelerator` should be an int > 0."),
        (["--strategy", "banana"], "You selected an invalid strategy name: `strategy='banana'`."),
    ],
)
def test_cli_refuses_settings_that_lightning_cannot_use_in_one_message(tmp_path, arguments, message):
    """Lightning's own message, without its traceback, and nothing written."""
    from pykeen_vbkgc.lightning import main

    output = tmp_path / "run"
    result = CliRunner().invoke(main, ["--epochs", "1", "--output", str(output), *arguments])
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines()[-1].startswith(f"Error: Lightning cannot train with these settings: {message}")
    assert "Traceback" not in result.output
    assert not output.exists()


def test_cli_checks_its_output_before_training(tmp_path):
    from pykeen_vbkgc.lightning import main

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "metrics.json").write_text("{}")  # e.g. an earlier run: not overwritten
    (tmp_path / "a-file").write_text("")
    for output, message in [
        (tmp_path / "run", f"{tmp_path / 'run'} exists and is not empty."),
        (
            tmp_path / "a-file" / "run",
            f"cannot create {tmp_path / 'a-file' / 'run'}: {tmp_path / 'a-file'} is a file, not a directory.",
        ),
    ]:
        result = CliRunner().invoke(main, ["--epochs", "1", "--output", str(output)])
        assert result.exit_code == 2, result.output
        assert result.stderr.splitlines()[-1] == f"Error: Invalid value for --output: {message}"
        assert "Epoch" not in result.output  # nothing trained
    assert (tmp_path / "run" / "metrics.json").read_text() == "{}"


def test_cli_reports_a_diverged_training_and_saves_nothing(tmp_path, monkeypatch):
    """float16 weights (precision 16-true) on the CPU end with NaN parameters: one line, not PyKEEN's traceback."""
    from pykeen_vbkgc.lightning import main

    monkeypatch.setenv("PYKEEN_VBKGC_COMPILE", "0")
    monkeypatch.chdir(tmp_path)
    output = tmp_path / "run"
    arguments = ["--epochs", "1", "--embedding-dim", "8", "--accelerator", "cpu", "--precision", "16-true"]
    result = CliRunner().invoke(main, [*arguments, "--output", str(output)])
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines()[-1] == (
        "Error: training diverged: the model's parameters are not finite (float16 weights are prone to it: try "
        "--precision 16-mixed or bf16-mixed); nothing was saved."
    )
    assert not output.exists()


@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGINT"])
def test_cli_stopped_by_a_signal_says_so_and_exits_with_the_shells_code(tmp_path, monkeypatch, signal_name):
    """Lightning ends a run stopped by SIGTERM with status 0 (SIGTERMException), by Ctrl-C with 1 (sys.exit)."""
    import signal

    from pytorch_lightning.utilities.exceptions import SIGTERMException

    from pykeen_vbkgc import lightning

    def stopped(**kwargs):
        if signal_name == "SIGTERM":
            raise SIGTERMException
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            sys.exit(1)  # as Lightning's trainer does

    monkeypatch.setattr(lightning, "train_lightning", stopped)
    result = CliRunner().invoke(lightning.main, ["--epochs", "1", "--output", str(tmp_path / "run")])
    assert result.exit_code == 128 + signal.Signals[signal_name], result.output
    stopped_by = "Stopped by SIGTERM" if signal_name == "SIGTERM" else "Interrupted"
    assert result.stderr.splitlines()[-1] == f"{stopped_by}: nothing was saved (this command keeps no checkpoints)."
    assert not (tmp_path / "run").exists()


def test_cli_saves_its_output_whole_or_not_at_all(tmp_path, monkeypatch):
    """The directory appears when both files are in it; a failed save leaves nothing, not even the parents it made."""
    import errno
    import os
    import signal

    from pykeen_vbkgc import lightning

    monkeypatch.setenv("PYKEEN_VBKGC_COMPILE", "0")
    monkeypatch.chdir(tmp_path)
    arguments = ["--epochs", "1", "--embedding-dim", "8", "--accelerator", "cpu"]
    save = torch.save

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(lightning.torch, "save", disk_full)
    output = tmp_path / "a" / "b" / "run"
    result = CliRunner().invoke(lightning.main, [*arguments, "--output", str(output)])
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines()[-1] == (
        f"Error: cannot save to {output}: No space left on device; nothing was saved."
    )
    assert sorted(path.name for path in tmp_path.iterdir()) == []

    def interrupted_while_saving(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C: waits until the directory is in place
        save(*args, **kwargs)

    monkeypatch.setattr(lightning.torch, "save", interrupted_while_saving)
    result = CliRunner().invoke(lightning.main, [*arguments, "--output", str(output)])
    assert result.exit_code == 0, result.output
    assert sorted(path.name for path in output.iterdir()) == ["metrics.json", "model_state.pt"]
    assert sorted(path.name for path in output.parent.iterdir()) == ["run"]
