"""Run directories without pickle: what ``train --output`` saves, and how ``predict``/``evaluate`` read it."""

import json
import os
import pickle
import shlex
import shutil

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file, save_file

from pykeen_vbkgc.cli import main
from pykeen_vbkgc.run_files import PickleOnlyRunError, RunFilesError, load_run, save_run_files

#: the constructor arguments of the saved model: not the defaults, so that a rebuild with defaults would show
MODEL_KWARGS = dict(
    embedding_dim=8,
    score_terms=["ss", "mm", "all"],
    term_weights="mm=0.5",
    projection_lr_scale=0.01,
    scoring_fct_norm=1,
    neighbour_weight=0.1,
    num_neighbours=3,
    neighbour_mirror_gate=True,
    loss="meanmarginranking",
    loss_kwargs=dict(margin=4.0),
)
QUERY = ["--head", "n00004475", "--relation", "_hyponym", "--top-k", "3"]


@pytest.fixture(scope="module")
def demo_model():
    """An (untrained) VBKGC on the demo dataset, with its training triples."""
    from pykeen_vbkgc import VBKGC
    from pykeen_vbkgc.datasets import MultimodalDemo

    training = MultimodalDemo().training
    return VBKGC(triples_factory=training, random_seed=1, **MODEL_KWARGS), training


@pytest.fixture
def run(tmp_path, demo_model):
    """A run directory as ``train --output`` writes it (PyKEEN's pickles included), for the demo dataset."""
    model, training = demo_model
    directory = tmp_path / "run"
    directory.mkdir()
    torch.save(model, directory / "trained_model.pkl")
    training.to_path_binary(directory / "training_triples")
    (directory / "vbkgc_run.json").write_text(json.dumps(dict(dataset="multimodaldemo", dataset_directory=None)))
    save_run_files(directory, model, training, model_kwargs=dict(MODEL_KWARGS, features="ignored.safetensors"))
    return directory


def test_load_run_rebuilds_the_model_without_pickle(run, demo_model):
    model, training = demo_model
    loaded, loaded_training = load_run(run, device="cpu")
    assert type(loaded) is type(model) and not loaded.training
    assert loaded.score_terms == ("ss", "mm", "all") and loaded.interaction.p == 1
    assert loaded.interaction.term_weights == (1.0, 0.5, 1.0)
    assert loaded.entity_representations[2].base.transformation.scale == 0.01
    assert loaded.loss.margin == 4.0
    state, loaded_state = model.state_dict(), loaded.state_dict()
    assert state.keys() == loaded_state.keys()
    assert all(torch.equal(state[key], loaded_state[key]) for key in state)  # the features among them
    assert loaded_training.entity_to_id == training.entity_to_id
    assert loaded_training.relation_to_id == training.relation_to_id
    assert torch.equal(loaded_training.mapped_triples, training.mapped_triples)
    batch = training.mapped_triples[:5]
    model.eval()
    assert torch.equal(loaded.score_hrt(batch), model.score_hrt(batch))
    # the neighbours' vote is rebuilt from the training triples and uses the loaded features, not the placeholder
    assert loaded.neighbour_weight == 0.1 and loaded.neighbour_vote.num_neighbours == 3
    assert loaded.neighbour_vote.mirror_gate
    torch.testing.assert_close(loaded.predict_t(batch[:, :2]), model.predict_t(batch[:, :2]))
    assert sorted(path.name for path in run.iterdir()) == [
        "entity_to_id.json",
        "model.safetensors",
        "relation_to_id.json",
        "trained_model.pkl",
        "training_triples",
        "training_triples.safetensors",
        "vbkgc_model.json",
        "vbkgc_run.json",
    ]


def test_load_run_refuses_bad_arguments_before_reading_anything(run, tmp_path, monkeypatch):
    # only PyKEEN's pickle is left: trust_pickle decides
    for name in ("vbkgc_model.json", "model.safetensors", "entity_to_id.json", "relation_to_id.json"):
        (run / name).unlink()
    (run / "training_triples.safetensors").unlink()
    with pytest.raises(TypeError) as error:
        load_run(run, trust_pickle="no")  # truthy, but surely not meant as trust
    assert str(error.value) == "trust_pickle must be True or False, got 'no'."
    # not even the trusted pickle is read with a device that cannot be used
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch, "load", lambda *args, **kwargs: pytest.fail("read"))
    for device, message in [
        ("bogus", "'bogus' is not a device; use e.g. cpu, cuda or cuda:1."),
        # PyKEEN would fall back to the CPU, saying so in a log line only
        ("cuda", "'cuda': CUDA is not available on this machine."),
        (torch.device("cuda:1"), "'cuda:1': CUDA is not available on this machine."),
        # the meta device holds no values; torch failed only after every file was read
        ("meta", "'meta': use cpu, cuda or mps."),
    ]:
        with pytest.raises(ValueError) as error:
            load_run(run, device=device, trust_pickle=True)
        assert str(error.value) == message
    with pytest.raises(RunFilesError) as error:
        load_run(tmp_path / "no-such-run")
    assert str(error.value) == f"{tmp_path / 'no-such-run'} does not exist."


def test_the_run_files_have_the_mode_that_the_umask_gives(tmp_path, demo_model):
    """Another user whom the umask lets read the run's JSON files can read its weights too (safetensors: 0600)."""
    model, training = demo_model
    previous = os.umask(0o022)
    try:
        save_run_files(tmp_path, model, training, model_kwargs=dict(MODEL_KWARGS, features="ignored.safetensors"))
    finally:
        os.umask(previous)
    modes = {path.name: path.stat().st_mode & 0o777 for path in tmp_path.iterdir()}
    assert modes == {
        "entity_to_id.json": 0o644,
        "model.safetensors": 0o644,
        "relation_to_id.json": 0o644,
        "training_triples.safetensors": 0o644,
        "vbkgc_model.json": 0o644,
    }


def _plant(path, marker):
    """Write a pickle that runs a shell command when it is loaded (it creates ``marker``), like a planted file."""

    class Planted:
        def __reduce__(self):
            return os.system, (f"touch {shlex.quote(str(marker))}",)

    path.write_bytes(pickle.dumps(Planted()))


def _one_line_error(result, exit_code: int = 1) -> str:
    assert result.exit_code == exit_code, result.output
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


@pytest.mark.parametrize("command", [["predict", *QUERY], ["evaluate"]])
def test_predict_and_evaluate_never_unpickle_a_planted_pickle(run, tmp_path, command):
    marker = tmp_path / "code-ran"
    _plant(run / "trained_model.pkl", marker)
    _plant(run / "training_triples" / "base.pth", marker)
    # a run of this version: read from safetensors and JSON; the planted pickles beside them are never opened
    result = CliRunner().invoke(main, [command[0], str(run), *command[1:]])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].split()[0] in ("rank", "side")
    # the same pickles alone (an older run): refused in one line that names the flag
    old = tmp_path / "old"
    old.mkdir()
    shutil.move(run / "trained_model.pkl", old)
    shutil.move(run / "training_triples", old)
    result = CliRunner().invoke(main, [command[0], str(old), *command[1:]])
    assert _one_line_error(result) == (
        f"Error: {old} holds only PyKEEN's pickle trained_model.pkl (an older run, or one saved by PyKEEN), which can "
        "run any code when it is loaded; if you trust its origin, pass --trust-pickle."
    )
    assert not marker.exists()
    with pytest.raises(PickleOnlyRunError, match="trust_pickle=True"):
        load_run(old)
    # with --trust-pickle the pickle is loaded, and its code runs: what the flag is for, and why it is not the default
    result = CliRunner().invoke(main, [command[0], str(old), *command[1:], "--trust-pickle"])
    assert marker.exists()
    assert _one_line_error(result).startswith(f"Error: {old / 'trained_model.pkl'} is not a readable PyKEEN model: ")


@pytest.mark.parametrize("damage", ["random", "truncated", "crafted"])
def test_a_bad_trusted_pickle_is_one_line(run, tmp_path, damage):
    old = tmp_path / "old"
    old.mkdir()
    shutil.move(run / "training_triples", old)
    pickled = old / "trained_model.pkl"
    data = (run / "trained_model.pkl").read_bytes()
    if damage == "random":
        pickled.write_bytes(os.urandom(4096))
    elif damage == "truncated":
        pickled.write_bytes(data[: len(data) // 2])
    else:
        torch.save(dict(not_a="model"), pickled)
    result = CliRunner().invoke(main, ["predict", str(old), *QUERY, "--trust-pickle"])
    expected = "is not a PyKEEN model: it holds a dict." if damage == "crafted" else "is not a readable PyKEEN model: "
    assert _one_line_error(result).startswith(f"Error: {pickled} {expected}")


def test_a_trusted_pickle_and_triples_of_another_graph_are_refused(run, tmp_path):
    """The numbers of both are named (the message said "entities" when only the relations differed)."""
    from pykeen.datasets import Nations

    old = tmp_path / "old"
    old.mkdir()
    shutil.move(run / "trained_model.pkl", old)
    Nations().training.to_path_binary(old / "training_triples")
    result = CliRunner().invoke(main, ["predict", str(old), *QUERY, "--trust-pickle"])
    assert _one_line_error(result) == (
        f"Error: {old}/trained_model.pkl and {old}/training_triples/ do not belong together: the model has 500 "
        "entities and 9 relations, the triples 14 and 55."
    )


def _rewrite(run, name, change):
    """Change a file of the run and record its new SHA-256, as a crafted run would."""
    from pykeen_vbkgc.digests import file_sha256

    change(run / name)
    description = json.loads((run / "vbkgc_model.json").read_text())
    description["files"][name] = file_sha256(run / name)
    _write_sealed(run, description)


def _edit_description(run, seal: bool = True, **changes):
    """Change the description; ``seal``: record its new SHA-256, as a crafted run would."""
    description = json.loads((run / "vbkgc_model.json").read_text())
    description.update(changes)
    if seal:
        _write_sealed(run, description)
    else:
        (run / "vbkgc_model.json").write_text(json.dumps(description))


def _write_sealed(run, description):
    from pykeen_vbkgc.run_files import DESCRIPTION_DIGEST, _description_digest

    description[DESCRIPTION_DIGEST] = _description_digest(description)
    (run / "vbkgc_model.json").write_text(json.dumps(description))


def _nested(path, depth):
    path.write_text("[" * depth + "]" * depth)


DAMAGES = {
    "random weights": (
        lambda run: (run / "model.safetensors").write_bytes(os.urandom(1000)),
        "{run}/model.safetensors was changed or damaged after it was saved (its SHA-256 differs).",
    ),
    "truncated description": (
        lambda run: (run / "vbkgc_model.json").write_text((run / "vbkgc_model.json").read_text()[:50]),
        "{run}/vbkgc_model.json is not valid JSON: ",
    ),
    "no description": (
        lambda run: [(run / name).unlink() for name in ("vbkgc_model.json", "trained_model.pkl")],
        "{run} has model.safetensors but no vbkgc_model.json, which train writes last: the run is damaged or "
        "unfinished.",
    ),
    # the pickle beside it is no way around a damaged run
    "no description beside a pickle": (
        lambda run: (run / "vbkgc_model.json").unlink(),
        "{run} has model.safetensors but no vbkgc_model.json, which train writes last: the run is damaged or "
        "unfinished.",
    ),
    "edited description": (
        lambda run: _edit_description(run, seal=False, model_kwargs=dict(MODEL_KWARGS, scoring_fct_norm=2)),
        "{run}/vbkgc_model.json was changed or damaged after it was saved (its SHA-256 differs).",
    ),
    "deeply nested description": (
        lambda run: _nested(run / "vbkgc_model.json", 100_000),
        "{run}/vbkgc_model.json is not valid JSON: it is nested too deeply.",
    ),
    # checked against the weights' header before the model is built with it (10**9 features: no memory)
    "huge feature width": (
        lambda run: _edit_description(run, feature_dim=10**9),
        "{run}/model.safetensors does not fit the model of vbkgc_model.json: its "
        "entity_representations.2.base.base._embeddings.weight has shape [500, 384], the description's feature_dim "
        "is 1000000000.",
    ),
    "huge embedding width": (
        lambda run: _edit_description(run, model_kwargs=dict(MODEL_KWARGS, embedding_dim=10**9)),
        "{run}/model.safetensors does not fit the model of vbkgc_model.json: its "
        "entity_representations.0.base._embeddings.weight has shape [500, 8], the description's embedding_dim is "
        "1000000000.",
    ),
    "huge number of entities": (
        lambda run: _edit_description(run, num_entities=10**12),
        "{run}/entity_to_id.json must give the ids 0 to 999999999999 once each (500 labels found).",
    ),
    "wrong type": (
        lambda run: _edit_description(run, num_entities="500"),
        "{run}/vbkgc_model.json: 'num_entities' must be a positive integer, got a string.",
    ),
    "newer version": (
        lambda run: _edit_description(run, version=2),
        "{run}/vbkgc_model.json has format version 2; this version of pykeen-vbkgc reads version 1.",
    ),
    "missing file": (
        lambda run: (run / "entity_to_id.json").unlink(),
        "{run}/entity_to_id.json is missing; vbkgc_model.json lists it as part of the run.",
    ),
    "unknown argument": (
        lambda run: _edit_description(run, model_kwargs=dict(MODEL_KWARGS, colour="blue")),
        "{run}/vbkgc_model.json: cannot rebuild the model: TypeError: ",
    ),
    "weights of another model": (
        lambda run: _rewrite(
            run,
            "model.safetensors",
            lambda path: save_file({"relation_representations.0._embeddings.weight": torch.zeros(9, 4)}, path),
        ),
        "{run}/model.safetensors does not fit the model of vbkgc_model.json: size mismatch for "
        "relation_representations.0._embeddings.weight: copying a param with shape torch.Size([9, 4]) from "
        "checkpoint, the shape in current model is torch.Size([9, 8]).",
    ),
    "weights that are not finite": (
        lambda run: _rewrite(
            run,
            "model.safetensors",
            lambda path: save_file(
                {
                    key: value.clone().fill_(float("nan")) if key.startswith("relation") else value.clone()
                    for key, value in load_file(path).items()
                },
                path,
            ),
        ),
        "{run}/model.safetensors holds values that are not finite (NaN or infinite) in "
        "relation_representations.0._embeddings.weight.",
    ),
    "mapping with a gap": (
        lambda run: _rewrite(run, "relation_to_id.json", lambda path: path.write_text('{"a": 0, "b": 7}')),
        "{run}/relation_to_id.json must give the ids 0 to 8 once each (2 labels found).",
    ),
    "triples out of range": (
        lambda run: _rewrite(
            run,
            "training_triples.safetensors",
            lambda path: save_file({"mapped_triples": torch.tensor([[0, 0, 900]])}, path),
        ),
        "{run}/training_triples.safetensors has ids outside the entities and relations of the run.",
    ),
    "checkpoint only": (
        lambda run: [(run / "vbkgc_model.json").unlink(), (run / "checkpoint.pt").write_bytes(b"")],
        "{run} is an unfinished train run (it holds a checkpoint, no model yet); run the same train command again "
        "to finish it.",
    ),
}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_a_damaged_or_crafted_run_is_refused_in_one_line(run, damage):
    change, message = DAMAGES[damage]
    change(run)
    result = CliRunner().invoke(main, ["predict", str(run), *QUERY])
    assert _one_line_error(result).startswith(f"Error: {message.format(run=run)}")
    with pytest.raises(RunFilesError):
        load_run(run)


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ("{", "{path} is not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
        ("[1]", "{path} is not a run record: expected a JSON object, got a list."),
        ('{"dataset": 5}', "{path}: 'dataset' must be a non-empty string, got 5."),
        # would be read as the working directory
        ('{"dataset": ""}', "{path}: 'dataset' must be a non-empty string, got an empty string."),
        (
            '{"dataset": "x", "dataset_directory": true}',
            "{path}: 'dataset_directory' must be a string or null, got true.",
        ),
    ],
)
def test_evaluate_reports_an_invalid_run_record_in_one_line(run, record, message):
    path = run / "vbkgc_run.json"
    path.write_text(record)
    result = CliRunner().invoke(main, ["evaluate", str(run)])
    assert _one_line_error(result) == f"Error: {message.format(path=path)} Name the dataset with --dataset."
    # --dataset does without it
    result = CliRunner().invoke(main, ["evaluate", str(run), "--dataset", "multimodaldemo"])
    assert result.exit_code == 0, result.output


def test_evaluate_names_the_run_record_when_its_dataset_is_gone(run, tmp_path):
    moved = tmp_path / "moved"
    (run / "vbkgc_run.json").write_text(json.dumps(dict(dataset=str(moved), dataset_directory=None)))
    result = CliRunner().invoke(main, ["evaluate", str(run)])
    assert _one_line_error(result) == (
        f"Error: the dataset that {run}/vbkgc_run.json names cannot be opened: directory not found: {moved} Name the "
        "dataset with --dataset."
    )


def test_evaluate_refuses_a_dataset_whose_training_triples_changed(run, tmp_path):
    """Triples moved from train.txt to test.txt: the model would be tested on triples it was trained on."""
    from pykeen_vbkgc.datasets import MultimodalDemo

    demo = MultimodalDemo()
    graph = tmp_path / "graph"
    graph.mkdir()
    training = demo.training.triples
    for name, triples in dict(
        train=training[10:], valid=demo.validation.triples, test=[*demo.testing.triples, *training[:10]]
    ).items():
        (graph / f"{name}.txt").write_text("".join("\t".join(triple) + "\n" for triple in triples))
    result = CliRunner().invoke(main, ["evaluate", str(run), "--dataset", str(graph)])
    assert _one_line_error(result) == (
        f"Error: The training triples of {graph} ({len(training) - 10:,}) differ from those the model of {run} was "
        f"trained on ({len(training):,})."
    )


def test_a_model_with_inverse_triples_is_saved_and_loaded(tmp_path):
    """The description's number of relations is the mapping's, without PyKEEN's inverse relations."""
    from pykeen.datasets import Nations

    from pykeen_vbkgc import VBKGC

    training = Nations(create_inverse_triples=True).training
    kwargs = dict(embedding_dim=4, feature_dim=8, neighbour_weight=0.5, num_neighbours=3)
    model = VBKGC(triples_factory=training, features="random", random_seed=0, **kwargs).eval()
    save_run_files(tmp_path, model, training, model_kwargs=kwargs)
    loaded, loaded_training = load_run(tmp_path, device="cpu")
    assert loaded.use_inverse_triples and loaded.num_relations == model.num_relations == 2 * 55
    assert loaded_training.relation_to_id == training.relation_to_id
    queries = training.mapped_triples[:20]
    with torch.no_grad():
        torch.testing.assert_close(loaded.predict_h(queries[:, 1:]), model.predict_h(queries[:, 1:]))
        torch.testing.assert_close(loaded.predict_t(queries[:, :2]), model.predict_t(queries[:, :2]))
