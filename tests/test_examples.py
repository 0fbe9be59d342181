"""Smoke tests of the paper-experiment examples in --quick mode (tiny data, one epoch)."""

import csv
import json
import sys
from pathlib import Path

import pytest
import torch

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
sys.path.insert(0, str(EXAMPLES))

import figure2_negatives  # noqa: E402
import figure3_inference_time  # noqa: E402
import table2_link_prediction  # noqa: E402
import table3_negative_sampling  # noqa: E402
import table4_ablation  # noqa: E402

METRIC_COLUMNS = {"setting", "mrr", "hits@1", "hits@3", "hits@10", "inference_seconds"}


def check_outputs(paths, expected_settings, columns=METRIC_COLUMNS):
    assert {"md", "csv", "json"} <= set(paths)
    for path in paths.values():
        assert path.is_file() and path.stat().st_size > 0
    with paths["csv"].open() as file:
        rows = list(csv.DictReader(file))
    assert [row["setting"] for row in rows] == expected_settings
    assert columns <= set(rows[0])
    for row in rows:
        assert 0 < float(row["mrr"]) <= 1
    data = json.loads(paths["json"].read_text())
    assert [row["setting"] for row in data["rows"]] == expected_settings
    markdown = paths["md"].read_text()
    assert all(f"| {setting} |" in markdown for setting in expected_settings)
    return data


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A row cache shared by the scripts, as in docs/results.md: identical settings are trained once."""
    return str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def table2(tmp_path_factory, cache):
    output = tmp_path_factory.mktemp("table2")
    return table2_link_prediction.main(["--quick", "--output", str(output), "--cache", cache])


def test_table2(table2):
    data = check_outputs(table2, ["TransE", "IKRL-style", "VBKGC+Normal", "VBKGC+Twins"])
    assert data["dataset"] == "multimodaldemo"
    assert "The paper's numbers" not in table2["md"].read_text()  # no paper numbers for the demo graph


def test_table3_reuses_table2_rows(table2, cache, tmp_path):
    paths = table3_negative_sampling.main(["--quick", "--output", str(tmp_path), "--cache", cache])
    labels = ["Normal", "Bernoulli", "Twins", "NSCaching", "NoSampling"]
    rows = check_outputs(paths, [*labels, "TransE+Normal", "TransE+NSCaching", "TransE+NoSampling"])["rows"]
    assert [row["sampler"] for row in rows] == [*["basic", "bernoulli", "twins", "nscaching", "nosampling"], *[
        "basic", "nscaching", "nosampling"]]  # fmt: skip
    table2_rows = {row["setting"]: row for row in json.loads(table2["json"].read_text())["rows"]}
    # the same configuration under another label is read from the cache, not trained again
    assert rows[0]["mrr"] == table2_rows["VBKGC+Normal"]["mrr"]
    assert rows[0]["train_seconds"] == table2_rows["VBKGC+Normal"]["train_seconds"]
    assert rows[2]["train_seconds"] == table2_rows["VBKGC+Twins"]["train_seconds"]
    assert rows[5]["train_seconds"] == table2_rows["TransE"]["train_seconds"]


def test_table4(tmp_path, cache):
    paths = table4_ablation.main(["--quick", "--output", str(tmp_path), "--cache", cache])
    data = check_outputs(paths, [setting.label for setting in table4_ablation.settings()])
    assert [row["k"] for row in data["rows"]][-1] == 1


def test_figure2(tmp_path):
    paths = figure2_negatives.main(["--quick", "--output", str(tmp_path)])
    check_outputs(paths, ["VBKGC+Normal k=1", "VBKGC+Twins k=1", "VBKGC+Normal k=4", "VBKGC+Twins k=4"])
    assert paths["png"].read_bytes().startswith(b"\x89PNG")


def test_figure3_from_table2(table2, tmp_path):
    paths = figure3_inference_time.main(["--quick", "--from-table", str(table2["json"]), "--output", str(tmp_path)])
    columns = set(figure3_inference_time.COLUMNS)
    check_outputs(paths, ["TransE", "IKRL-style", "VBKGC+Normal", "VBKGC+Twins"], columns=columns)
    assert paths["png"].read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize(
    "module",
    [table2_link_prediction, table3_negative_sampling, table4_ablation, figure2_negatives, figure3_inference_time],
)
def test_help(module, capsys):
    with pytest.raises(SystemExit) as error:
        module.main(["--help"])
    assert error.value.code == 0
    assert "--quick" in capsys.readouterr().out


def test_cached_vbkgc_rows_are_keyed_by_the_dataset_preset(tmp_path, monkeypatch):
    """A row cached before the dataset's preset changed (e.g. its term weights) is not reused for VBKGC."""
    import dataclasses
    from types import SimpleNamespace

    import common

    from pykeen_vbkgc import defaults

    def path(setting, preset_name, triples=((0, 0, 1),), features=None):
        training = SimpleNamespace(
            metadata={defaults.PRESET_METADATA_KEY: preset_name},
            mapped_triples=torch.as_tensor(triples),
            entity_to_id={"a": 0, "b": 1},
            relation_to_id={"r": 0},
        )
        experiment = common.Experiment(
            dataset_name="wn9",
            dataset=SimpleNamespace(training=training),
            features=features,
            budget=common.QUICK_BUDGET,
            output=tmp_path,
            quick=True,
            cache=tmp_path,
        )
        return common._cache_path(setting, experiment)

    vbkgc, transe = common.vbkgc("VBKGC+Twins"), common.transe()
    before = path(vbkgc, "wn9"), path(transe, "wn9")
    changed = dataclasses.replace(defaults.WN9_PRESET, term_weights="mm=0.5")
    monkeypatch.setitem(defaults.PRESETS, "wn9", changed)
    assert path(vbkgc, "wn9") != before[0]
    assert path(transe, "wn9") == before[1]  # TransE takes nothing from the preset
    monkeypatch.setitem(defaults.PRESETS, "wn9", defaults.WN9_PRESET)
    assert path(vbkgc, "wn9") == before[0]
    assert path(vbkgc, "fb15k237") != before[0]
    # the contents of the inputs, too: rows of other training triples, or of a features file rewritten at the same
    # path, are not reused
    for setting, cached in zip((vbkgc, transe), before, strict=True):
        assert path(setting, "wn9", triples=((0, 0, 1), (1, 0, 0))) != cached
    features = tmp_path / "features.safetensors"
    features.write_bytes(b"one")
    first = path(vbkgc, "wn9", features=features)
    features.write_bytes(b"two")
    assert path(vbkgc, "wn9", features=features) != first


def test_quick_takes_the_dataset_given_on_the_command_line(tmp_path, monkeypatch):
    """As a script (arguments from sys.argv), --dataset with --quick is honoured."""
    argv = ["table2_link_prediction.py", "--quick", "--dataset", "nations", "--models", "transe"]
    monkeypatch.setattr(sys, "argv", [*argv, "--output", str(tmp_path)])
    paths = table2_link_prediction.main()
    assert paths["json"] == tmp_path / "table2_nations.json"
    assert json.loads(paths["json"].read_text())["dataset"] == "nations"


@pytest.mark.parametrize(
    ("module", "arguments", "message"),
    [
        (table2_link_prediction, ["--epochs", "0"], "argument --epochs: must be from 1 to 2147483647, got 0"),
        (
            table2_link_prediction,
            ["--evaluation-subset", "-5"],
            "argument --evaluation-subset: must be from 1 to 2147483647, got -5",
        ),
        (table2_link_prediction, ["--batch-size", "0"], "argument --batch-size: must be from 1 to 2147483647, got 0"),
        (table2_link_prediction, ["--threads", "-1"], "argument --threads: must be from 1 to 2147483647, got -1"),
        (
            table2_link_prediction,
            ["--learning-rate", "-1"],
            "argument --learning-rate: value must be a number from 1.175e-38 to 3.403e+38 (float32's range), got -1.0.",
        ),
        (
            table2_link_prediction,
            ["--margin", "1e300"],
            "argument --margin: value must be a number from 0 to 3.403e+38 (float32's range), got 1e+300.",
        ),
        (table2_link_prediction, ["--seed", "-1"], "argument --seed: must be from 0 to 4294967295, got -1"),
        (table2_link_prediction, ["--features", "no-such.safetensors"], "argument --features: no such file"),
        (figure2_negatives, ["--ks", "0"], "argument --ks: must be from 1 to 2147483647, got 0"),
        # beyond int32: torch's sizes may overflow
        (table2_link_prediction, ["--epochs", "2147483648"], "argument --epochs: must be from 1 to 2147483647, got "),
        (figure3_inference_time, ["--from-table", "no-such.json"], "argument --from-table: no such file"),
    ],
)
def test_bad_arguments_are_one_line_errors_before_training(module, arguments, message, tmp_path, capsys):
    output = tmp_path / "out"
    with pytest.raises(SystemExit) as error:
        module.main(["--quick", "--output", str(output), *arguments])
    assert error.value.code == 2
    assert message in capsys.readouterr().err.splitlines()[-1]
    assert not output.exists()


def test_outputs_that_cannot_be_written_are_refused_before_training(tmp_path, capsys):
    blocked = tmp_path / "a file"
    blocked.write_text("")
    for option in ("--output", "--cache"):
        with pytest.raises(SystemExit):
            table2_link_prediction.main(["--quick", option, str(blocked / "sub")])
        assert (
            capsys.readouterr()
            .err.splitlines()[-1]
            .endswith(f"argument {option}: cannot create {blocked / 'sub'}: {blocked} is a file, not a directory")
        )
    table = tmp_path / "table.json"
    for text, error in [("{", "JSONDecodeError"), ('{"rows": []}', "KeyError: 'dataset'")]:
        table.write_text(text)
        with pytest.raises(SystemExit):
            figure3_inference_time.main(["--from-table", str(table), "--output", str(tmp_path / "out")])
        last = capsys.readouterr().err.splitlines()[-1]
        assert f"argument --from-table: {table} is not a table written by table2_link_prediction.py ({error}" in last
    assert not (tmp_path / "out").exists()


def test_a_damaged_cached_row_is_trained_again_and_rows_are_written_whole(tmp_path, monkeypatch):
    cache, output = tmp_path / "cache", tmp_path / "out"
    arguments = ["--quick", "--models", "transe", "--output", str(output), "--cache", str(cache)]
    first = json.loads(table2_link_prediction.main(arguments)["json"].read_text())["rows"][0]
    (row,) = cache.iterdir()
    row.write_text(row.read_text()[:20])  # as an interrupted plain write would leave it
    second = json.loads(table2_link_prediction.main(arguments)["json"].read_text())["rows"][0]
    assert second["mrr"] == first["mrr"]  # the same seed: trained again, not read from the damaged file
    assert json.loads(row.read_text())["mrr"] == first["mrr"]
    assert sorted(path.name for path in cache.iterdir()) == [row.name]  # no temporary file left

    write_text = Path.write_text

    def interrupted(self, text, *args, **kwargs):
        if self.parent != cache:
            return write_text(self, text, *args, **kwargs)
        write_text(self, text[:20])  # Ctrl-C in the middle of writing the row
        raise KeyboardInterrupt

    row.unlink()
    monkeypatch.setattr(Path, "write_text", interrupted)
    with pytest.raises(KeyboardInterrupt):
        table2_link_prediction.main(arguments)
    assert list(cache.iterdir()) == []


@pytest.mark.parametrize("script", sorted(path.name for path in EXAMPLES.glob("*.py") if path.name != "common.py"))
def test_a_script_keeps_freed_memory_for_its_process(script, monkeypatch, capsys):
    """Run as a script (not when imported), each example first sets glibc's malloc thresholds, as the CLI does."""
    import runpy

    from pykeen_vbkgc import allocator

    calls = []
    monkeypatch.setattr(allocator, "keep_freed_memory", lambda: calls.append("kept"))
    monkeypatch.setattr(sys, "argv", [script, "--help"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(EXAMPLES / script), run_name="__main__")
    assert exit_info.value.code == 0 and calls == ["kept"]
    assert "usage:" in capsys.readouterr().out.lower()
