"""The ``pykeen-vbkgc train`` command (the README's main job) on the embedded demo dataset."""

import json

import torch
from click.testing import CliRunner

from pykeen_vbkgc.cli import main


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
    model = torch.load(output / "trained_model.pkl", weights_only=False)
    # the defaults of the command: L2 terms, unit relations (the model's default), the chosen projection scale
    assert model.interaction.p == 2 and model.interaction.normalize_relations
    assert model.entity_representations[2].base.transformation.scale == 0.01


def test_train_refuses_a_non_empty_output_directory(tmp_path):
    (tmp_path / "keep.txt").write_text("x")
    result = CliRunner().invoke(main, ["train", "--epochs", "1", "--output", str(tmp_path)])
    assert result.exit_code == 2
    assert "exists and is not empty" in result.output
    assert sorted(path.name for path in tmp_path.iterdir()) == ["keep.txt"]
