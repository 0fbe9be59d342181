"""The ``pykeen-vbkgc train`` command (the README's main job) on the embedded demo dataset."""

import json
import logging
import os

import click
import pytest
import torch
from click.testing import CliRunner

from pykeen_vbkgc.cli import main
from pykeen_vbkgc.run_files import load_run


def test_train_reports_metrics_and_saves_the_configured_model(tmp_path):
    output = tmp_path / "run"
    result = CliRunner().invoke(
        main,
        ["train", "--epochs", "1", "--batch-size", "512", "--output", str(output), "--projection-lr-scale", "0.01"],
    )
    assert result.exit_code == 0, result.output
    lines = [line.split() for line in result.stdout.splitlines() if line.split()[:1] in (["head"], ["tail"], ["both"])]
    assert [line[0] for line in lines] == ["head", "tail", "both"]
    summary = json.loads((output / "metrics_summary.json").read_text())
    assert float(lines[2][1]) == round(summary["both"]["inverse_harmonic_mean_rank"], 3)
    assert 0 < summary["both"]["inverse_harmonic_mean_rank"] <= 1
    model, _ = load_run(output)  # rebuilt from the JSON description and the safetensors weights
    # the defaults of the command: L2 terms, unit relations (the model's default), the chosen projection scale
    assert model.interaction.p == 2 and model.interaction.normalize_relations
    assert model.entity_representations[2].base.transformation.scale == 0.01


def test_train_refuses_a_non_empty_output_directory(tmp_path):
    (tmp_path / "keep.txt").write_text("x")
    result = CliRunner().invoke(main, ["train", "--epochs", "1", "--output", str(tmp_path)])
    assert result.exit_code == 2
    assert "exists and is not empty" in result.output
    assert sorted(path.name for path in tmp_path.iterdir()) == ["keep.txt"]


def _bad_features_files(directory):
    """Write features files that are broken in the ways users meet: NaN rows, truncated, empty, not safetensors."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    from pykeen_vbkgc.datasets import MultimodalDemo

    source = MultimodalDemo().features_path
    with safe_open(str(source), framework="pt") as handle:
        metadata, tensors = handle.metadata(), {key: handle.get_tensor(key) for key in handle.keys()}
    tensors["features"][3, 0] = float("nan")
    save_file(tensors, directory / "nan.safetensors", metadata=metadata)
    data = source.read_bytes()
    (directory / "truncated.safetensors").write_bytes(data[: len(data) // 2])
    (directory / "empty.safetensors").write_bytes(b"")
    (directory / "text.safetensors").write_text("entity\tvector\n")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "nan",
            "Error: Features file {path}: vectors contains NaN or infinite values, or values beyond float32's range, "
            "in 1 rows (first rows: [3]).",
        ),
        ("truncated", "Error: {path} is not a readable safetensors file: Error while deserializing header: "),
        ("empty", "Error: {path} is not a readable safetensors file: Error while deserializing header: "),
        ("text", "Error: {path} is not a readable safetensors file: Error while deserializing header: "),
    ],
)
def test_train_reports_a_bad_features_file_in_one_line(tmp_path, name, message):
    _bad_features_files(tmp_path)
    path, output = tmp_path / f"{name}.safetensors", tmp_path / "run"
    result = CliRunner().invoke(main, ["train", "--epochs", "1", "--features", str(path), "--output", str(output)])
    assert result.exit_code == 1
    assert result.stdout == "" and "Traceback" not in result.output
    assert result.stderr.splitlines()[-1].startswith(message.format(path=path))
    assert not output.exists()  # nothing left behind


def test_train_and_lightning_accept_a_low_feature_coverage_only_when_told(tmp_path):
    """The model's advice names the commands' option, which passes the setting on."""
    from pykeen_vbkgc.datasets import MultimodalDemo
    from pykeen_vbkgc.features import load_features, save_features
    from pykeen_vbkgc.lightning import main as lightning_main

    demo = load_features(MultimodalDemo().features_path)
    path = save_features(tmp_path / "third.safetensors", demo.labels[:166], demo.vectors[:166])
    output = tmp_path / "run"
    for command, arguments in [(main, ["train"]), (lightning_main, [])]:
        result = CliRunner().invoke(
            command, [*arguments, "--epochs", "1", "--features", str(path), "--output", str(output)]
        )
        assert result.exit_code == 1, result.output
        assert result.stderr.splitlines()[-1] == (
            f"Error: the features file {path} covers only 166 of 500 entities (33.2%); the other 334 get random "
            "features, more than the accepted 50%. Check that the features were encoded for this graph, or lower "
            "--min-feature-coverage (e.g. to 0) to accept them anyway."
        )
        assert "Traceback" not in result.output and not output.exists()
    arguments = ["train", "--epochs", "1", "--embedding-dim", "8", "--features", str(path), "--output", str(output)]
    result = CliRunner().invoke(main, [*arguments, "--min-feature-coverage", "0.3"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1].startswith("both")
    # the saved run keeps the setting: evaluate rebuilds the model with it
    assert json.loads((output / "vbkgc_model.json").read_text())["model_kwargs"]["min_feature_coverage"] == 0.3
    result = CliRunner().invoke(main, ["train", "--min-feature-coverage", "1.5"])
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        "Error: Invalid value for '--min-feature-coverage': 1.5 is not in the range 0<=x<=1."
    )


@pytest.mark.parametrize("command", [["train"], ["encode", "--encoder", "text", "-o", "features.safetensors"]])
@pytest.mark.parametrize("dataset", ["nations", "multimodaldemo"])
def test_train_and_encode_refuse_a_directory_for_a_dataset_without_one(tmp_path, dataset, command):
    """train and encode open --dataset the same way, with the same messages."""
    result = CliRunner().invoke(main, [*command, "--dataset", dataset, "--dataset-directory", str(tmp_path)])
    assert result.exit_code == 2
    assert f"Invalid value for --dataset-directory: the dataset '{dataset}' takes no data directory (" in result.output
    assert "leave out --dataset-directory." in result.output
    result = CliRunner().invoke(main, [*command, "--dataset", "no-such-dataset"])
    assert result.exit_code == 2
    assert "Invalid value for --dataset: Invalid Dataset name: no-such-dataset" in result.output


def test_train_checks_the_output_before_training(tmp_path):
    (tmp_path / "a-file").write_text("x")
    output = tmp_path / "a-file" / "run"
    result = CliRunner().invoke(main, ["train", "--epochs", "1", "--output", str(output)])
    assert result.exit_code == 2
    message = f"Invalid value for --output: cannot create {output}: {tmp_path / 'a-file'} is a file, not a directory."
    assert message in result.output
    assert "Training VBKGC" not in result.output  # refused before any training


def test_train_on_your_own_graph_directory(tmp_path):
    """``--dataset`` takes a directory of train/valid/test.txt; its features file is used by default."""
    import shutil

    from pykeen_vbkgc.datasets import MultimodalDemo

    graph = tmp_path / "my graph"
    graph.mkdir()
    for name in ("train.txt", "valid.txt", "test.txt", "features.safetensors"):
        shutil.copy(MultimodalDemo.package_directory / name, graph / name)
    result = CliRunner().invoke(main, ["train", "--dataset", str(graph), "--epochs", "1", "--batch-size", "512"])
    assert result.exit_code == 0, result.output
    assert f"Training VBKGC+twins on {graph} with features {graph / 'features.safetensors'}" in result.stderr
    assert result.stdout.splitlines()[-1].startswith("both")
    result = CliRunner().invoke(main, ["train", "--dataset", str(graph), "--dataset-directory", str(tmp_path)])
    assert result.exit_code == 2 and "is a directory: it is the data itself" in result.output
    (graph / "test.txt").write_text("x\ty\n")
    result = CliRunner().invoke(main, ["train", "--dataset", str(graph), "--epochs", "1"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == (
        f"Error: {graph / 'test.txt'}, line 1: expected three non-empty tab-separated fields "
        "'head<TAB>relation<TAB>tail', got 'x\\ty'."
    )


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
    """A model trained on the demo and saved with ``train --output``, with the table ``train`` printed."""
    output = tmp_path_factory.mktemp("run") / "run"
    result = CliRunner().invoke(main, ["train", "--epochs", "3", "--batch-size", "256", "--output", str(output)])
    assert result.exit_code == 0, result.output
    return output, [line for line in result.stdout.splitlines() if line.split()[0] in ("side", "head", "tail", "both")]


def _rows(output: str) -> list[list[str]]:
    return [line.split() for line in output.splitlines()[1:]]


def test_predict_lists_the_top_k_without_the_query_entity_and_known_triples(saved_run):
    from pykeen.triples import TriplesFactory

    run, _ = saved_run
    query = ["predict", str(run), "--head", "n00004475", "--relation", "_hyponym"]
    result = CliRunner().invoke(main, [*query, "--top-k", "5"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].split() == ["rank", "score", "tail"]
    rows = _rows(result.stdout)
    assert [row[0] for row in rows] == ["1", "2", "3", "4", "5"]
    scores = [float(row[1]) for row in rows]
    assert scores == sorted(scores, reverse=True)
    training = TriplesFactory.from_path_binary(run / "training_triples")
    known = {t for h, r, t in training.triples if h == "n00004475" and r == "_hyponym"}
    assert known and not known & {row[2] for row in rows} and "n00004475" not in {row[2] for row in rows}
    # with both flags, everything is ranked: the query entity and the known tails come back
    result = CliRunner().invoke(main, [*query, "--top-k", "500", "--keep-query-entity", "--keep-known"])
    everything = {row[2] for row in _rows(result.stdout)}
    assert len(everything) == 500 and "n00004475" in everything and known <= everything
    # heads of (?, _hyponym, n00007846)
    result = CliRunner().invoke(main, ["predict", str(run), "--relation", "_hyponym", "--tail", "n00007846"])
    assert result.exit_code == 0 and result.stdout.splitlines()[0].split() == ["rank", "score", "head"]
    assert len(_rows(result.stdout)) == 10


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--head", "nope", "--relation", "_hyponym"], "Invalid value for --head: 'nope' is not in the graph"),
        (["--head", "n00004475", "--relation", "likes"], "Invalid value for --relation: 'likes' is not in the graph"),
        (["--relation", "_hyponym"], "Give exactly one of --head (to predict tails) and --tail (to predict heads)."),
        (["--head", "a", "--tail", "b", "--relation", "r"], "Give exactly one of --head"),
    ],
)
def test_predict_errors(saved_run, arguments, message):
    result = CliRunner().invoke(main, ["predict", str(saved_run[0]), *arguments])
    assert result.exit_code == 2 and message in result.output


def test_evaluate_a_saved_run_reproduces_the_numbers_of_train(saved_run, tmp_path):
    run, printed = saved_run
    result = CliRunner().invoke(main, ["evaluate", str(run)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == printed
    assert "test split of multimodaldemo: 150 triples" in result.stderr
    result = CliRunner().invoke(main, ["evaluate", str(run), "--split", "valid"])
    assert result.exit_code == 0 and "valid split of multimodaldemo: 150 triples" in result.stderr
    result = CliRunner().invoke(main, ["evaluate", str(tmp_path)])
    assert result.exit_code == 1 and result.output == (
        f"Error: {tmp_path} holds no saved run (expected vbkgc_model.json from train --output).\n"
    )
    result = CliRunner().invoke(main, ["evaluate", str(run), "--dataset", "nations"])
    assert result.exit_code == 1
    assert "The entities or relations of nations differ from those the model of" in result.output


def test_every_option_of_train_predict_and_evaluate_explains_itself():
    for name in ("train", "predict", "evaluate"):
        command = main.commands[name]
        assert command.help
        unexplained = [p.name for p in command.params if isinstance(p, click.Option) and not p.help]
        assert unexplained == [], (name, unexplained)


def test_train_shows_results_not_library_internals(tmp_path):
    """No PyKEEN INFO lines, pin_memory or memory-utilisation warnings, CPU notices (a real process, real logging)."""
    import subprocess
    import sys

    completed = subprocess.run(
        [sys.executable, "-m", "pykeen_vbkgc.cli", "train", "--epochs", "1", "--output", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    for noise in ("INFO:", "pin_memory", "Encountered tensors", "No cuda devices", "WARNING:"):
        assert noise not in completed.stderr, noise
    assert completed.stdout.splitlines()[0].split() == ["side", "MRR", "Hits@1", "Hits@3", "Hits@10"]


# -- one-line errors before anything is loaded or trained --------------------------------------------------------------

ALL_TERMS = "['ss', 'mm', 'sm', 'ms', 'all']"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            ["--term-weights", "mm=abc"],
            "Invalid value for --term-weights: term_weights must look like 'mm=0.5,all=2' (term=weight, comma "
            "separated), got 'mm=abc'.",
        ),
        (
            ["--term-weights", "mm"],
            "Invalid value for --term-weights: term_weights must look like 'mm=0.5,all=2' (term=weight, comma "
            "separated), got 'mm'.",
        ),
        (
            ["--term-weights", "zz=1"],
            f"Invalid value for --term-weights: term_weights names term(s) ['zz'] that are not scored; scored: "
            f"{ALL_TERMS}.",
        ),
        (
            ["--term-weights", "mm=-1"],
            "Invalid value for --term-weights: term_weights must be finite and non-negative, got {'ss': 1.0, "
            "'mm': -1.0, 'sm': 1.0, 'ms': 1.0, 'all': 1.0}.",
        ),
        (
            ["--term-weights", "mm=nan"],
            "Invalid value for --term-weights: term_weights must be finite and non-negative, got {'ss': 1.0, "
            "'mm': nan, 'sm': 1.0, 'ms': 1.0, 'all': 1.0}.",
        ),
        (
            ["--term-weights", "mm=inf"],
            "Invalid value for --term-weights: term_weights must be finite and non-negative, got {'ss': 1.0, "
            "'mm': inf, 'sm': 1.0, 'ms': 1.0, 'all': 1.0}.",
        ),
        (
            ["--term-weights", "ss=0,mm=0,sm=0,ms=0,all=0"],
            "Invalid value for --term-weights: term_weights must not all be zero.",
        ),
        (
            ["--score-terms", "ss,mm", "--term-weights", "all=2"],
            "Invalid value for --term-weights: term_weights names term(s) ['all'] that are not scored; scored: "
            "['ss', 'mm'].",
        ),
        (
            ["--term-weights", "mm=0.1,mm=5"],
            "Invalid value for --term-weights: term_weights names term(s) ['mm'] more than once, got 'mm=0.1,mm=5'.",
        ),
        (["--learning-rate", "nan"], "Invalid value for '--learning-rate': nan is not a finite number."),
        (["--learning-rate", "inf"], "Invalid value for '--learning-rate': inf is not a finite number."),
        (["--margin", "nan"], "Invalid value for '--margin': nan is not a finite number."),
        (["--margin", "inf"], "Invalid value for '--margin': inf is not a finite number."),
        (["--projection-lr-scale", "inf"], "Invalid value for '--projection-lr-scale': inf is not a finite number."),
        # finite, but infinite in the model's float32 (the loss, resp. W stored divided by the scale)
        (["--margin", "1e300"], "Invalid value for '--margin': 1e+300 is beyond float32's range (at most 3.403e+38)."),
        (
            ["--projection-lr-scale", "1e-45"],
            "Invalid value for '--projection-lr-scale': 1e-45 is not in the range x>=1.1754943508222875e-38.",
        ),
        # NumPy's generator takes seeds from 0 to 2**32 - 1
        (["--seed", "-1"], "Invalid value for '--seed': -1 is not in the range 0<=x<=4294967295."),
        (["--seed", "4294967296"], "Invalid value for '--seed': 4294967296 is not in the range 0<=x<=4294967295."),
        # beyond int64, torch's sizes overflowed in a traceback
        (
            ["--embedding-dim", str(2**63)],
            "Invalid value for '--embedding-dim': 9223372036854775808 is not in the range 1<=x<=2147483647.",
        ),
        (["--neighbour-weight", "inf"], "Invalid value for '--neighbour-weight': inf is not a finite number."),
        (["--neighbour-weight", "-1"], "Invalid value for '--neighbour-weight': -1.0 is not in the range x>=0."),
        (["--device", "bogus"], "Invalid value for '--device': 'bogus' is not a device; use e.g. cpu, cuda or cuda:1."),
        (["--dataset", "./my_grap"], "Invalid value for --dataset: directory not found: ./my_grap"),
    ],
)
def test_train_refuses_bad_settings_in_one_line_and_leaves_nothing(tmp_path, arguments, message):
    output = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", "--epochs", "1", "--output", str(output), *arguments])
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines()[-1] == f"Error: {message}"
    assert "Traceback" not in result.output and "Training VBKGC" not in result.output
    assert not output.exists()


def test_train_refuses_a_device_that_the_machine_lacks(tmp_path, monkeypatch):
    """Without CUDA, PyKEEN would train on the CPU instead of --device cuda, saying nothing (a GPU machine, too)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    result = CliRunner().invoke(main, ["train", "--device", "cuda", "--output", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        "Error: Invalid value for '--device': 'cuda': CUDA is not available on this machine; leave out --device, or "
        "use --device cpu."
    )
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    result = CliRunner().invoke(main, ["train", "--device", "cuda:3"])
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        "Error: Invalid value for '--device': 'cuda:3': this machine has 1 CUDA device(s), cuda:0 to cuda:0."
    )
    assert not (tmp_path / "run").exists()


def test_a_named_dataset_without_its_files_names_the_option(monkeypatch):
    monkeypatch.delenv("PYKEEN_VBKGC_WN9_DIR", raising=False)
    result = CliRunner().invoke(main, ["train", "--dataset", "wn9"])
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("Error: WN9: ")
    assert (
        "lacks 4 required file(s): train.txt, valid.txt, test.txt, entity2text.txt. Set PYKEEN_VBKGC_WN9_DIR or "
        "pass --dataset-directory. WN9-IMG is published only inside a RAR archive" in line
    )
    assert "directory=" not in line


def test_a_named_dataset_refuses_a_directory_with_another_graph(tmp_path):
    """--dataset wn9 --dataset-directory <the demo> would train on the demo and record 'wn9'."""
    import shutil

    from pykeen_vbkgc.datasets import MultimodalDemo

    directory = shutil.copytree(MultimodalDemo.package_directory, tmp_path / "wn9")
    output = tmp_path / "run"
    result = CliRunner().invoke(
        main, ["train", "--dataset", "wn9", "--dataset-directory", str(directory), "--output", str(output)]
    )
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        f"Error: Invalid value for --dataset-directory: {directory} holds 1,217 / 150 / 150 train / valid / test "
        f"triples, not those of wn9 (11,741 / 1,337 / 1,319): it is another graph. To train on it, pass the "
        f"directory itself: --dataset {directory}"
    )
    assert not output.exists()


def test_dataset_paths_that_are_not_directories(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "graph.txt").write_text("a\tr\tb\n")
    for command in (["train"], ["encode", "--encoder", "text", "-o", "f.safetensors"]):
        result = CliRunner().invoke(main, [*command, "--dataset", "graph.txt"])
        assert result.exit_code == 2
        assert result.stderr.splitlines()[-1] == (
            "Error: Invalid value for --dataset: graph.txt is a file; give a dataset name or a directory with "
            "train.txt, valid.txt and test.txt."
        )
        result = CliRunner().invoke(main, [*command, "--dataset", "~/no/such/graph"])
        not_found = "Error: Invalid value for --dataset: directory not found: ~/no/such/graph"
        assert result.stderr.splitlines()[-1] == not_found
        # a plain word is a dataset name, or a directory here
        result = CliRunner().invoke(main, [*command, "--dataset", "my_grap"])
        assert result.stderr.splitlines()[-1].startswith("Error: Invalid value for --dataset: Invalid Dataset name: ")
        assert result.stderr.splitlines()[-1].endswith("] Nor is it a directory.")


# -- data problems: warnings with counts, and predict refuses what training never saw -----------------------------

#: a small graph with the problems a hand-made split has: entities (Oslo, Norway) and a relation (located_in) that
#: no training triple has, and a test triple that is a training triple
SMALL_GRAPH = {
    "train.txt": [
        ("Paris", "capital_of", "France"),
        ("Berlin", "capital_of", "Germany"),
        ("Rome", "capital_of", "Italy"),
        ("Madrid", "capital_of", "Spain"),
        ("France", "neighbour_of", "Germany"),
        ("France", "neighbour_of", "Italy"),
        ("France", "neighbour_of", "Spain"),
        ("Germany", "neighbour_of", "France"),
    ],
    "valid.txt": [("Italy", "neighbour_of", "France"), ("Oslo", "capital_of", "Norway")],
    "test.txt": [
        ("Spain", "neighbour_of", "France"),
        ("Paris", "capital_of", "France"),
        ("Rome", "located_in", "Europe"),
    ],
}


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(f"{record.name}: {record.getMessage()}")


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """The small graph trained for one epoch with ``train --output``; the warnings logged meanwhile."""
    graph = tmp_path_factory.mktemp("small") / "graph"
    graph.mkdir()
    for name, triples in SMALL_GRAPH.items():
        (graph / name).write_text("".join("\t".join(triple) + "\n" for triple in triples), encoding="utf-8")
    output = graph.parent / "run"
    records = _Records()
    logging.getLogger("pykeen_vbkgc").addHandler(records)
    try:
        arguments = ["--embedding-dim", "8", "--batch-size", "8", "--num-negatives", "2", "--epochs", "1"]
        result = CliRunner().invoke(main, ["train", "--dataset", str(graph), *arguments, "--output", str(output)])
    finally:
        logging.getLogger("pykeen_vbkgc").removeHandler(records)
    assert result.exit_code == 0, result.output
    return graph, output, records.messages


def test_unseen_entities_and_relations_and_leaked_test_triples_are_warned_about(small_run):
    graph, _, messages = small_run
    assert [message for message in messages if message.startswith("pykeen_vbkgc.datasets")] == [
        f"pykeen_vbkgc.datasets: {graph / 'valid.txt'}: 1 of 2 triples have an entity or a relation that occurs in no "
        "train.txt triple (entities: 2, e.g. 'Norway', 'Oslo'; relations: 0): their embeddings are never trained, yet "
        "these triples are evaluated.",
        f"pykeen_vbkgc.datasets: {graph / 'test.txt'}: 1 of 3 triples have an entity or a relation that occurs in no "
        "train.txt triple (entities: 1, e.g. 'Europe'; relations: 1): their embeddings are never trained, yet these "
        "triples are evaluated.",
        f"pykeen_vbkgc.datasets: {graph / 'test.txt'}: 1 of 3 triples are train.txt triples, too (leakage): a model "
        "that memorises its training triples ranks them first.",
    ]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--head", "Oslo", "--relation", "capital_of"], "Invalid value for --head: 'Oslo'"),
        (["--tail", "Europe", "--relation", "capital_of"], "Invalid value for --tail: 'Europe'"),
        (["--head", "Rome", "--relation", "located_in"], "Invalid value for --relation: 'located_in'"),
    ],
)
def test_predict_refuses_what_no_training_triple_has(small_run, arguments, message):
    """Oslo is in the entity index (it is in valid.txt), but its embedding was never trained."""
    _, run, _ = small_run
    result = CliRunner().invoke(main, ["predict", str(run), *arguments])
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        f"Error: {message} occurs in no training triple of {run}: its embedding was never trained, so a ranking for "
        "it would be noise."
    )


def test_predict_says_which_known_answers_it_leaves_out(small_run):
    _, run, _ = small_run
    query = ["predict", str(run), "--head", "Paris", "--relation", "capital_of", "--top-k", "20"]
    result = CliRunner().invoke(main, query)
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[-1] == (
        "Left out 1 known tail(s) that form a training triple with the query (--keep-known lists them): France"
    )
    assert "France" not in [row[2] for row in _rows(result.stdout)]
    result = CliRunner().invoke(main, [*query, "--keep-known"])
    assert "Left out" not in result.stderr and "France" in [row[2] for row in _rows(result.stdout)]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs Linux's /dev/full")
def test_a_full_disk_for_the_output_is_one_line():
    """click handles a closed pipe itself, not a write that fails for want of room (e.g. ``predict > file``)."""
    import subprocess
    import sys

    with open("/dev/full", "w") as full:
        result = subprocess.run(
            [sys.executable, "-m", "pykeen_vbkgc.cli", "--version"], stdout=full, stderr=subprocess.PIPE, text=True
        )
    assert result.returncode == 1
    assert result.stderr == "Error: cannot write the output: No space left on device.\n"


def test_a_diverged_training_is_one_line_and_leaves_nothing(tmp_path):
    """Finite settings whose loss overflows float32 in the first batch: PyKEEN's NonFiniteLossError, as one line."""
    output = tmp_path / "a" / "run"
    arguments = ["--epochs", "1", "--embedding-dim", "8", "--learning-rate", "1e38", "--margin", "1e38"]
    result = CliRunner().invoke(main, ["train", *arguments, "--output", str(output)])
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines()[-1] == (
        "Error: training diverged: the loss is not finite (NaN or infinite); nothing was saved. Lower "
        "--learning-rate (or --margin)."
    )
    assert sorted(tmp_path.iterdir()) == []
