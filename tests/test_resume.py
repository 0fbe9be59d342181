"""``train --output``: checkpoints, resuming after a signal, one train per output, nothing left by a failed run."""

import io
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch
from click.testing import CliRunner

from pykeen_vbkgc.checkpoints import CHECKPOINT_NAME, read_checkpoint
from pykeen_vbkgc.cli import main
from pykeen_vbkgc.run_files import load_run
from pykeen_vbkgc.staging import OutputError, OutputInUseError, RunStaging

#: a small, quick training on the demo: a few seconds per process, most of it start-up
TRAIN = ["train", "--epochs", "3", "--embedding-dim", "8", "--batch-size", "1024", "--num-negatives", "2"]


@pytest.fixture(autouse=True)
def _eager_kernels(monkeypatch):
    """Compiling the fused kernels would take longer than these trainings; the subprocesses do without, too."""
    monkeypatch.setenv("PYKEEN_VBKGC_COMPILE", "0")


def _start(output, *options: str):
    """Start ``train --output`` in a process of its own, as a user would; ``options`` override :data:`TRAIN`'s."""
    return subprocess.Popen(
        [sys.executable, "-m", "pykeen_vbkgc.cli", *TRAIN, *options, "--output", str(output)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYKEEN_VBKGC_COMPILE="0"),
    )


def _wait_for_checkpoint(process, staging, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not (staging / CHECKPOINT_NAME).is_file():
        if process.poll() is not None:
            pytest.fail(f"train ended before its first checkpoint: {process.communicate()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("no checkpoint in time")
        time.sleep(0.02)


def test_sigint_then_the_same_command_resumes_and_ends_as_if_uninterrupted(tmp_path):
    output = tmp_path / "run"
    staging = tmp_path / "run.incomplete"
    process = _start(output)
    _wait_for_checkpoint(process, staging)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 130, stderr
    match = re.fullmatch(
        rf"Interrupted: the checkpoint of epoch (\d) is saved in {re.escape(str(staging))}; run the same command "
        r"again to resume from epoch (\d)\.",
        stderr.strip().splitlines()[-1],
    )
    assert match and match[1] == match[2], stderr[-2000:]
    epoch = int(match[1])
    assert not output.exists() and read_checkpoint(staging / CHECKPOINT_NAME)["epoch"] == epoch
    # the same command again
    result = CliRunner().invoke(main, [*TRAIN, "--output", str(output)])
    assert result.exit_code == 0, result.output
    assert f"resuming from epoch {epoch} of 3 (the checkpoint in {staging})\n" in result.stderr
    assert result.stderr.endswith(f"saved to {output}\n") and not staging.exists()
    assert result.stdout.splitlines()[-1].startswith("both")
    # on the CPU, the same model as a run that was never stopped
    uninterrupted = tmp_path / "uninterrupted"
    result = CliRunner().invoke(main, [*TRAIN, "--output", str(uninterrupted)])
    assert result.exit_code == 0, result.output
    assert "resuming" not in result.stderr
    if torch.cuda.is_available():
        return  # CUDA's atomic additions make two uninterrupted runs differ, too
    resumed, _ = load_run(output, device="cpu")
    model, _ = load_run(uninterrupted, device="cpu")
    assert all(torch.equal(a, b) for a, b in zip(resumed.state_dict().values(), model.state_dict().values()))
    assert (output / "metrics_summary.json").read_text() == (uninterrupted / "metrics_summary.json").read_text()


def test_two_trains_into_one_output_the_second_is_refused_then_sigterm_keeps_the_checkpoint(tmp_path):
    output = tmp_path / "run"
    staging = tmp_path / "run.incomplete"
    # enough epochs that the winner is still training when the other one has been refused and the SIGTERM comes,
    # however slowly either process starts on a busy machine
    long_train = ("--epochs", "1000")
    processes = [_start(output, *long_train), _start(output, *long_train)]
    deadline = time.monotonic() + 300
    while all(process.poll() is None for process in processes) and time.monotonic() < deadline:
        time.sleep(0.05)
    (refused,) = [process for process in processes if process.poll() is not None]
    (winner,) = [process for process in processes if process is not refused]
    _, stderr = refused.communicate()
    assert refused.returncode == 2, stderr
    assert re.fullmatch(
        rf"Error: Invalid value for --output: {re.escape(str(output))} is in use: another train run \(process "
        rf"{winner.pid}\) is writing it in {re.escape(str(staging))}\.",
        stderr.strip().splitlines()[-1],
    ), stderr
    # the winner goes on: it is stopped as a job scheduler would stop it
    _wait_for_checkpoint(winner, staging)
    winner.send_signal(signal.SIGTERM)
    _, stderr = winner.communicate(timeout=300)
    assert winner.returncode == 128 + signal.SIGTERM, stderr
    match = re.fullmatch(
        rf"Stopped by SIGTERM: the checkpoint of epoch (\d) is saved in {re.escape(str(staging))}; run the same "
        r"command again to resume from epoch \d\.",
        stderr.strip().splitlines()[-1],
    )
    assert match, stderr[-2000:]
    assert not output.exists()
    # an unfinished run is no run for predict and evaluate
    for command in (
        ["predict", str(staging), "--head", "n00004475", "--relation", "_hyponym"],
        ["evaluate", str(staging)],
    ):
        result = CliRunner().invoke(main, command)
        assert result.exit_code == 1 and result.output == (
            f"Error: {staging} is an unfinished train run (it holds a checkpoint, no model yet); run the same train "
            "command again to finish it.\n"
        )
    # another command does not take it over
    result = CliRunner().invoke(main, [*TRAIN, "--output", str(output), "--epochs", "7", "--seed", "1"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1] == (
        f"Error: Invalid value for --output: {staging} holds an interrupted run of another train command (epochs "
        f"was 1000, now 7, seed was 0, now 1); run that command again to resume it, or delete {staging} to start over."
    )
    # a damaged checkpoint is reported, not loaded
    (staging / CHECKPOINT_NAME).write_bytes(os.urandom(100))
    result = CliRunner().invoke(main, [*TRAIN, *long_train, "--output", str(output)])
    assert result.exit_code == 2
    assert (
        result.output.strip()
        .splitlines()[-1]
        .startswith(f"Error: Invalid value for --output: {staging / CHECKPOINT_NAME} is not a readable checkpoint: ")
    )
    assert result.output.strip().endswith(f"; delete {staging} to start over.")
    assert staging.is_dir() and not output.exists()


def test_a_checkpoint_of_other_data_is_refused_in_one_line_and_kept(tmp_path):
    """The same command, but the features file or the training triples were rewritten since the checkpoint.

    Resumed, the checkpoint would have restored the old features (they are part of the model's state) under the new
    file's name, or trained its first epochs on other triples.
    """
    import shutil

    from pykeen_vbkgc import EntityFeatures, load_features, save_features
    from pykeen_vbkgc.datasets import MultimodalDemo, TriplesDirectory
    from pykeen_vbkgc.digests import input_digests

    graph = tmp_path / "graph"
    graph.mkdir()
    for name in ("train.txt", "valid.txt", "test.txt", "features.safetensors"):
        shutil.copy(MultimodalDemo.package_directory / name, graph / name)
    output = tmp_path / "run"
    staging = tmp_path / "run.incomplete"
    command = ("--dataset", str(graph), "--epochs", "1000")
    process = _start(output, *command)
    _wait_for_checkpoint(process, staging)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 128 + signal.SIGTERM, stderr
    epoch = read_checkpoint(staging / CHECKPOINT_NAME)["epoch"]

    def refused(key: str, before: str, now: str) -> None:
        result = CliRunner().invoke(main, [*TRAIN, *command, "--output", str(output)])
        assert result.exit_code == 2, result.output
        assert result.stderr.strip().splitlines()[-1] == (
            f"Error: Invalid value for --output: {staging} holds an interrupted run of another train command ({key} "
            f'was "{before}", now "{now}"); run that command again to resume it, or delete {staging} to start over.'
        )
        assert "Traceback" not in result.output
        assert read_checkpoint(staging / CHECKPOINT_NAME)["epoch"] == epoch and not output.exists()

    path = graph / "features.safetensors"
    recorded = input_digests(TriplesDirectory(graph).training, path)
    original = path.read_bytes()
    features = load_features(path)
    # the same labels and width, other vectors
    save_features(path, EntityFeatures(labels=features.labels, vectors=-features.vectors))
    refused(
        "features_sha256",
        recorded["features_sha256"],
        input_digests(TriplesDirectory(graph).training, path)["features_sha256"],
    )
    path.write_bytes(original)
    with (graph / "train.txt").open("a") as file:
        file.write("n00007846\t_hyponym\tn00015388\n")  # known entities: the model keeps its shape
    now = input_digests(TriplesDirectory(graph).training, path)["training_triples_sha256"]
    refused("training_triples_sha256", recorded["training_triples_sha256"], now)


def test_a_checkpoint_of_another_model_names_its_file(tmp_path, tiny_factory):
    """PyKEEN's message would name the in-memory buffer the safe loop reads the checkpoint into."""
    from pykeen.models import TransE
    from pykeen.training.training_loop import CheckpointMismatchError

    from pykeen_vbkgc.checkpoints import SafeCheckpointSLCWATrainingLoop

    path = tmp_path / "c.pt"
    for dim in (4, 6):
        loop = SafeCheckpointSLCWATrainingLoop(
            model=TransE(triples_factory=tiny_factory, embedding_dim=dim), triples_factory=tiny_factory
        )
        if dim == 4:
            loop._save_state(path)
    with pytest.raises(CheckpointMismatchError) as error:
        loop._load_state(path)
    assert str(error.value) == (
        f"The checkpoint {path} was saved with another model or optimizer (e.g., other training triples, features "
        "or settings); it cannot resume this run."
    )


@pytest.mark.parametrize("loop", ["host", "device"])
def test_a_checkpoint_is_replaced_whole_or_not_at_all(tmp_path, tiny_factory, monkeypatch, loop):
    """A process killed while it writes a checkpoint (kill -9) leaves the previous one readable."""
    from pykeen.pipeline import pipeline

    from pykeen_vbkgc import checkpoints

    result = pipeline(
        training=tiny_factory,
        testing=tiny_factory,
        model="transe",
        model_kwargs=dict(embedding_dim=4),
        training_loop=checkpoints.safe_checkpoint_training_loop(torch.device("cpu" if loop == "host" else "cuda")),
        training_kwargs=dict(
            checkpoint_name="c.pt", checkpoint_directory=tmp_path, checkpoint_frequency=0, use_tqdm=False
        ),
        epochs=2,
        random_seed=0,
        clear_optimizer=False,
    )
    assert read_checkpoint(tmp_path / "c.pt")["epoch"] == 2
    assert torch.serialization.get_unsafe_globals_in_checkpoint(tmp_path / "c.pt") == []

    save = torch.save

    def killed_while_writing(state, file, **kwargs):
        if isinstance(file, io.BytesIO):  # PyKEEN's checkpoint in memory, before it is written
            return save(state, file, **kwargs)
        file.write(b"half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoints.torch, "save", killed_while_writing)
    loop = result.training_loop
    loop._epoch = 3
    with pytest.raises(KeyboardInterrupt):
        loop._save_state(tmp_path / "c.pt")
    assert read_checkpoint(tmp_path / "c.pt")["epoch"] == 2


def _checkpointed_pipeline(factory, loop, epochs: int, directory):
    """Train TransE on ``factory`` with ``loop``, checkpointing after every epoch into ``directory``."""
    from pykeen.pipeline import pipeline

    return pipeline(
        training=factory,
        testing=factory,
        model="transe",
        model_kwargs=dict(embedding_dim=4),
        training_loop=loop,
        training_kwargs=dict(
            checkpoint_name="c.pt", checkpoint_directory=directory, checkpoint_frequency=0, batch_size=3
        ),
        epochs=epochs,
        random_seed=0,
        use_tqdm=False,
        device="cpu",  # bit for bit: CUDA's scattered additions are not deterministic
    )


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_a_resumed_pipeline_trains_the_model_of_an_uninterrupted_one(tmp_path, tiny_factory, monkeypatch, device):
    """Both loops with safe checkpoints (the one the train command picks for ``device``, run here on the CPU)."""

    from pykeen_vbkgc.checkpoints import (
        SafeCheckpointDeviceSLCWATrainingLoop,
        SafeCheckpointSLCWATrainingLoop,
        safe_checkpoint_training_loop,
    )

    loop = safe_checkpoint_training_loop(torch.device(device))
    assert loop is (SafeCheckpointSLCWATrainingLoop if device == "cpu" else SafeCheckpointDeviceSLCWATrainingLoop)

    def run(epochs: int, directory):
        return _checkpointed_pipeline(tiny_factory, loop, epochs, directory)

    batches = []
    process_batch = loop._process_batch
    monkeypatch.setattr(
        loop, "_process_batch", lambda self, **kwargs: batches.append(1) or process_batch(self, **kwargs)
    )
    whole = run(4, tmp_path / "whole")
    batches_of_four_epochs = len(batches)
    run(2, tmp_path / "resumed")
    batches_of_two_epochs = len(batches) - batches_of_four_epochs
    resumed = run(4, tmp_path / "resumed")
    # the resumed run trained epochs 3 and 4 only: 8 triples in batches of 3, 3 batches an epoch (a fresh run also
    # tries batches for PyKEEN's memory search first)
    assert len(batches) - batches_of_four_epochs - batches_of_two_epochs == 2 * 3
    assert batches_of_four_epochs - batches_of_two_epochs == 2 * 3
    assert isinstance(resumed.training_loop, loop)
    assert resumed.losses == whole.losses
    for ours, theirs in zip(resumed.model.parameters(), whole.model.parameters(), strict=True):
        assert torch.equal(ours, theirs)


def test_pykeens_own_loop_resumes_a_safe_checkpoint(tmp_path, tiny_factory):
    """The safe format is one that PyKEEN's loop reads, too: a run can go on without this package's loop."""
    from pykeen.training import SLCWATrainingLoop

    from pykeen_vbkgc.checkpoints import SafeCheckpointSLCWATrainingLoop

    def run(epochs: int, loop, directory):
        return _checkpointed_pipeline(tiny_factory, loop, epochs, directory)

    whole = run(4, SafeCheckpointSLCWATrainingLoop, tmp_path / "whole")
    run(2, SafeCheckpointSLCWATrainingLoop, tmp_path / "resumed")
    state = torch.load(tmp_path / "resumed" / "c.pt", weights_only=True)
    kind, keys, *_ = state["np_random_state"]
    assert kind == "MT19937" and keys.dtype == torch.int64 and keys.shape == (624,)
    resumed = run(4, SLCWATrainingLoop, tmp_path / "resumed")
    assert type(resumed.training_loop) is SLCWATrainingLoop
    assert resumed.losses == whole.losses
    for ours, theirs in zip(resumed.model.parameters(), whole.model.parameters(), strict=True):
        assert torch.equal(ours, theirs)


def test_a_checkpoint_of_the_earlier_safe_format_is_read(tmp_path):
    """Earlier versions stored NumPy's random state as a mapping."""
    import numpy as np

    kind, keys, position, has_gauss, cached_gaussian = np.random.RandomState(3).get_state()
    path = tmp_path / "c.pt"
    legacy = dict(
        kind=kind,
        keys=torch.from_numpy(keys.astype("int64")),
        position=position,
        has_gauss=has_gauss,
        cached_gaussian=cached_gaussian,
    )
    torch.save(dict(epoch=2, model_state_dict={}, np_random_state=legacy), path)
    state = read_checkpoint(path)["np_random_state"]
    assert state[0] == kind and state[1].dtype == np.uint32 and np.array_equal(state[1], keys)
    assert state[2:] == (position, has_gauss, cached_gaussian)


@pytest.fixture
def bad_features(tmp_path):
    path = tmp_path / "features.safetensors"
    path.write_text("not safetensors")
    return path


def test_a_failed_run_leaves_nothing_behind(tmp_path, bad_features):
    output = tmp_path / "a" / "b" / "c" / "run"
    result = CliRunner().invoke(
        main, ["train", "--epochs", "1", "--features", str(bad_features), "--output", str(output)]
    )
    assert result.exit_code == 1 and "is not a readable safetensors file" in result.output
    assert sorted(path.name for path in tmp_path.iterdir()) == ["features.safetensors"]


@pytest.mark.parametrize(
    ("error", "exit_code", "message"),
    [
        (
            lambda staging: PermissionError(13, "Permission denied", str(staging / ".checkpoint.pt.tmp")),
            1,
            "Error: cannot write the checkpoint in {staging}: Permission denied.",
        ),
        (
            lambda staging: __import__("pykeen_vbkgc.checkpoints").checkpoints.Interrupted(signal.SIGTERM),
            143,
            "Stopped by SIGTERM before the first epoch finished: nothing was saved.",
        ),
        # an unexpected error keeps its traceback (not shown by the test runner), and leaves nothing, too
        (lambda staging: RuntimeError("boom"), 1, ""),
    ],
)
def test_a_run_stopped_before_its_first_checkpoint_leaves_nothing_behind(
    tmp_path, monkeypatch, error, exit_code, message
):
    from pykeen_vbkgc.checkpoints import SafeCheckpointSLCWATrainingLoop

    output = tmp_path / "a" / "b" / "run"
    staging = tmp_path / "a" / "b" / "run.incomplete"

    def fail(self, *args, **kwargs):
        assert staging.is_dir()  # the run's directory exists while it trains
        raise error(staging)

    monkeypatch.setattr(SafeCheckpointSLCWATrainingLoop, "train", fail)
    result = CliRunner().invoke(main, [*TRAIN, "--output", str(output)])
    assert result.exit_code == exit_code
    if message:
        assert result.output.strip().splitlines()[-1] == message.format(staging=staging)
    else:
        assert isinstance(result.exception, RuntimeError)
    assert list(tmp_path.iterdir()) == []


def test_the_output_is_checked_before_anything_is_created(tmp_path):
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("x")
    for output, message in [
        (tmp_path / "full", "{output} exists and is not empty."),
        (tmp_path / "a-file" / "run", f"cannot create {{output}}: {tmp_path / 'a-file'} is a file, not a directory."),
    ]:
        result = CliRunner().invoke(main, [*TRAIN, "--output", str(output)])
        assert result.exit_code == 2
        assert result.output.strip().splitlines()[-1] == (
            f"Error: Invalid value for --output: {message.format(output=output)}"
        )
        assert "Training VBKGC" not in result.output
    assert sorted(path.name for path in tmp_path.rglob("*")) == ["a-file", "full", "keep.txt"]


def test_staging_refuses_a_second_holder_and_publishes_a_finished_run(tmp_path):
    """The lock within one process (a second open file), and a finished run whose renaming was interrupted."""
    from pykeen_vbkgc.run_files import FORMAT, FORMAT_VERSION

    output = tmp_path / "x" / "run"
    record = dict(dataset="multimodaldemo", epochs=3)
    first = RunStaging(output)
    assert first.acquire(record) is None and first.path == tmp_path / "x" / "run.incomplete"
    second = RunStaging(output)
    with pytest.raises(OutputInUseError, match=rf"is in use: another train run \(process {os.getpid()}\) is writing"):
        second.acquire(record)
    assert first.path.is_dir()  # the holder's directory stays
    # the run's files are written, the description last; then the renaming is interrupted (kill -9)
    description = dict(format=FORMAT, version=FORMAT_VERSION, model="VBKGC", model_kwargs={}, num_entities=1)
    files = dict.fromkeys(["model.safetensors", "entity_to_id.json", "relation_to_id.json"], "")
    files["training_triples.safetensors"] = ""
    description.update(num_relations=1, feature_dim=1, create_inverse_triples=False, files=files)
    (first.path / "vbkgc_model.json").write_text(json.dumps(description))
    first.close()
    assert first.path.is_dir()  # a finished run is kept
    with pytest.raises(OutputError, match=r"holds a finished run of another train command \(epochs was 3, now 4\)"):
        RunStaging(output).acquire(dict(record, epochs=4))
    again = RunStaging(output)
    assert again.acquire(record) is None and again.finished
    again.publish()
    assert sorted(path.name for path in output.iterdir()) == ["vbkgc_model.json", "vbkgc_run.json"]
    assert [path.name for path in output.parent.iterdir()] == ["run"]
    with pytest.raises(OutputError, match="exists and is not empty"):
        RunStaging(output).acquire(record)


@pytest.mark.skipif(sys.platform == "win32", reason="no advisory locks on Windows")
def test_a_run_refused_just_after_the_holder_locked_waits_for_its_process_id(tmp_path, monkeypatch):
    """The holder writes its process id just after taking the lock; a run refused in between names it all the same."""
    import fcntl
    import threading

    from pykeen_vbkgc import staging

    output = tmp_path / "run"
    holder = RunStaging(output)
    holder.path.mkdir()
    fd = os.open(holder.path, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # locked, no process id yet
    try:
        writer = threading.Timer(0.3, lambda: (holder.path / staging.PID_FILE).write_text("4242\n"))
        writer.start()
        with pytest.raises(OutputInUseError) as refused:
            RunStaging(output).acquire({})
        writer.join()
        assert str(refused.value) == (
            f"{output} is in use: another train run (process 4242) is writing it in {output}.incomplete."
        )
        # a holder that never writes it (it is saving: the id is removed before the renaming) is not named
        (holder.path / staging.PID_FILE).unlink()
        monkeypatch.setattr(staging, "PID_WAIT_SECONDS", 0.05)
        with pytest.raises(OutputInUseError) as refused:
            RunStaging(output).acquire({})
        assert str(refused.value) == f"{output} is in use: another train run is writing it in {output}.incomplete."
    finally:
        os.close(fd)
    assert sorted(path.name for path in tmp_path.rglob("*")) == ["run.incomplete"]
