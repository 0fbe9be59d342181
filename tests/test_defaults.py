"""One source of defaults in every entry point; features from the dataset; warnings for random or sparse features."""

import inspect
import logging
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from pykeen.losses import MarginRankingLoss
from pykeen.pipeline import pipeline

from pykeen_vbkgc import VBKGC, MeanMarginRankingLoss, TwinsNegativeSampler, save_features
from pykeen_vbkgc.datasets import MultimodalDemo
from pykeen_vbkgc.defaults import BEST, PAPER, get_preset
from pykeen_vbkgc.features import FEATURES_METADATA_KEY, FeaturesFileError, load_features

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_best_and_paper_presets_have_the_documented_values():
    assert (BEST.scoring_fct_norm, BEST.normalize_relations, BEST.projection_lr_scale) == (2, True, 1e-3)
    assert (BEST.margin, BEST.learning_rate, BEST.num_negatives, BEST.batch_size) == (10.0, 1e-2, 16, 1024)
    assert (BEST.embedding_dim, BEST.normalize, BEST.term_weights) == (128, True, None)
    assert (PAPER.scoring_fct_norm, PAPER.normalize_relations, PAPER.projection_lr_scale) == (1, True, 1.0)
    assert (PAPER.margin, PAPER.learning_rate) == (6.0, 1e-3)
    assert get_preset("paper") is PAPER
    with pytest.raises(ValueError, match=r"Unknown preset 'x'; choose one of \['best', 'paper'\]."):
        get_preset("x")


def test_model_loss_and_sampler_defaults_are_the_best_preset(tiny_factory, tiny_features):
    parameters = inspect.signature(VBKGC).parameters
    for name, value in BEST.model_kwargs().items():
        assert parameters[name].default == value, name
    model = VBKGC(triples_factory=tiny_factory, features=tiny_features)
    assert model.interaction.p == 2 and model.interaction.normalize and model.interaction.normalize_relations
    assert model.interaction.term_weights == (1.0,) * 5
    assert model.entity_representations[2].base.transformation.scale == 1e-3
    assert type(model.loss) is MeanMarginRankingLoss and model.loss.margin == 10.0
    assert MeanMarginRankingLoss().margin == 10.0
    assert inspect.signature(TwinsNegativeSampler).parameters["num_negs_per_pos"].default == 16
    assert VBKGC.hpo_default == dict(
        embedding_dim=dict(type="categorical", choices=[128]),
        scoring_fct_norm=dict(type="categorical", choices=[2]),
        normalize_relations=dict(type="categorical", choices=[True]),
        projection_lr_scale=dict(type="categorical", choices=[1e-3]),
    )
    assert TwinsNegativeSampler.hpo_default == dict(num_negs_per_pos=dict(type="categorical", choices=[16]))
    # the paper's configuration is one set of keyword arguments
    paper = VBKGC(triples_factory=tiny_factory, features=tiny_features, **PAPER.model_kwargs())
    assert paper.interaction.p == 1 and paper.entity_representations[2].base.transformation.scale == 1.0


class _Captured(Exception):
    """Raised by the fakes below once they have the arguments of the call."""


@pytest.mark.parametrize(("preset", "expected"), [([], BEST), (["--preset", "paper"], PAPER)])
def test_train_command_passes_the_preset(monkeypatch, preset, expected):
    import pykeen.pipeline

    calls = []

    def fake_pipeline(**kwargs):
        calls.append(kwargs)
        raise _Captured

    monkeypatch.setattr(pykeen.pipeline, "pipeline", fake_pipeline)
    from pykeen_vbkgc.cli import main

    result = CliRunner().invoke(main, ["train", *preset])
    assert isinstance(result.exception, _Captured), result.output
    (kwargs,) = calls
    expected_kwargs = expected.pipeline_kwargs()
    model_kwargs = kwargs.pop("model_kwargs")
    assert {key: model_kwargs[key] for key in expected_kwargs["model_kwargs"]} == expected_kwargs["model_kwargs"]
    # the demo dataset hands its own features file over
    assert model_kwargs["features"] == MultimodalDemo().features_path.resolve()
    for key in ("loss", "loss_kwargs", "negative_sampler_kwargs", "optimizer", "optimizer_kwargs", "training_kwargs"):
        assert kwargs[key] == expected_kwargs[key], key
    # an explicit option wins over the preset
    calls.clear()
    CliRunner().invoke(main, ["train", "--margin", "3", "--scoring-fct-norm", "1", "--term-weights", "mm=0.5"])
    assert calls[0]["loss_kwargs"] == dict(margin=3.0)
    assert calls[0]["model_kwargs"]["scoring_fct_norm"] == 1
    assert calls[0]["model_kwargs"]["term_weights"] == "mm=0.5"


def test_lightning_command_passes_the_best_preset(monkeypatch):
    pytest.importorskip("pytorch_lightning")
    from pykeen_vbkgc import lightning

    parameters = inspect.signature(lightning.train_lightning).parameters
    assert (parameters["batch_size"].default, parameters["learning_rate"].default) == (1024, 1e-2)
    calls = []

    def fake_train_lightning(**kwargs):
        calls.append(kwargs)
        raise _Captured

    monkeypatch.setattr(lightning, "train_lightning", fake_train_lightning)
    result = CliRunner().invoke(lightning.main, [])
    assert isinstance(result.exception, _Captured), result.output
    (kwargs,) = calls
    model_kwargs = kwargs["model_kwargs"]
    assert {key: model_kwargs[key] for key in BEST.model_kwargs()} == BEST.model_kwargs()
    assert model_kwargs["loss_kwargs"] == dict(margin=BEST.margin)
    assert kwargs["negative_sampler_kwargs"] == dict(num_negs_per_pos=BEST.num_negatives)
    assert (kwargs["batch_size"], kwargs["learning_rate"]) == (BEST.batch_size, BEST.learning_rate)


def test_examples_budget_defaults_are_the_best_preset(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    import common

    budget = common.Budget()
    assert (budget.batch_size, budget.num_negatives, budget.learning_rate, budget.margin) == (1024, 16, 1e-2, 10.0)
    assert (budget.projection_lr_scale, budget.vbkgc_p, budget.vbkgc_normalize_relations) == (1e-3, 2, True)


def test_pipeline_with_defaults_uses_the_dataset_features_and_the_model_loss():
    """pipeline() with only the model and the sampler: features from the dataset, VBKGC's loss, Hits@1 above 0."""
    result = pipeline(
        dataset="multimodaldemo",
        model="vbkgc",
        negative_sampler="twins",
        # the training budget is the user's; PyKEEN's Adam default (lr 1e-3) needs about ten times more steps
        optimizer_kwargs=dict(lr=BEST.learning_rate),
        training_kwargs=dict(num_epochs=25, use_tqdm=False),
        evaluation_kwargs=dict(use_tqdm=False),
        random_seed=0,
    )
    model = result.model
    # PyKEEN's pipeline built MarginRankingLoss(margin=1) for loss=None; the model took its own default instead
    assert type(model.loss) is MeanMarginRankingLoss and model.loss.margin == BEST.margin
    features = load_features(MultimodalDemo().features_path).align(result.training.entity_to_id).vectors
    torch.testing.assert_close(model.entity_representations[2].base.base._embeddings.weight.cpu(), features)
    hits_at_1 = result.metric_results.get_metric("both.realistic.hits_at_1")
    assert hits_at_1 > 0.2, hits_at_1


@pytest.mark.parametrize(
    ("pipeline_kwargs", "loss_type", "margin"),
    [
        (dict(loss_kwargs=dict(margin=7.0)), MeanMarginRankingLoss, 7.0),
        (dict(loss="marginranking"), MarginRankingLoss, 1.0),
        (dict(loss="meanmarginranking"), MeanMarginRankingLoss, 10.0),
    ],
)
def test_pipeline_keeps_an_explicit_loss(pipeline_kwargs, loss_type, margin):
    result = pipeline(
        dataset="nations",
        model="vbkgc",
        model_kwargs=dict(features="random", feature_dim=4, embedding_dim=4),
        training_kwargs=dict(num_epochs=1, use_tqdm=False),
        evaluation_kwargs=dict(use_tqdm=False),
        random_seed=0,
        **pipeline_kwargs,
    )
    assert type(result.model.loss) is loss_type and result.model.loss.margin == margin


def test_multimodal_dataset_attaches_its_features_file(tmp_path):
    demo = MultimodalDemo()
    assert demo.training.metadata[FEATURES_METADATA_KEY] == str(demo.features_path.resolve())
    assert FEATURES_METADATA_KEY not in demo.validation.metadata


def test_random_features_warn(tiny_factory, tiny_features, caplog):
    with caplog.at_level(logging.WARNING, logger="pykeen_vbkgc.model"):
        VBKGC(triples_factory=tiny_factory, random_seed=0)
    assert caplog.messages == [
        "VBKGC got no features and the training triples carry none: every entity gets a random feature (the "
        "ablation 'w/o VisualBERT'). Pass model_kwargs=dict(features=...) with a features file, or "
        "features='random' to choose random features on purpose."
    ]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="pykeen_vbkgc.model"):
        VBKGC(triples_factory=tiny_factory, features="random", random_seed=0)
    assert caplog.messages == ["VBKGC uses random features, as requested (the ablation 'w/o VisualBERT')."]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="pykeen_vbkgc.model"):
        VBKGC(triples_factory=tiny_factory, features=tiny_features, random_seed=0)
    assert caplog.messages == []


def test_random_features_warning_is_visible_without_logging_configuration():
    code = (
        "import numpy as np; from pykeen.triples import TriplesFactory; from pykeen_vbkgc import VBKGC; "
        "VBKGC(triples_factory=TriplesFactory.from_labeled_triples(np.array([['a', 'r', 'b']])))"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "VBKGC got no features and the training triples carry none" in completed.stderr


def test_low_feature_coverage_is_an_error_unless_accepted(tiny_factory, tiny_features, tmp_path, caplog):
    # 2 of 6 entities (33 %) have a feature
    path = save_features(tmp_path / "few.safetensors", ["a", "b"], tiny_features[:2])
    with pytest.raises(FeaturesFileError) as info:
        VBKGC(triples_factory=tiny_factory, features=path)
    assert str(info.value) == (
        f"the features file {path} covers only 2 of 6 entities (33.3%); the other 4 get random features, more than "
        "the accepted 50%. Check that the features were encoded for this graph, or pass min_feature_coverage=0 to "
        "accept them anyway."
    )
    with caplog.at_level(logging.WARNING, logger="pykeen_vbkgc.model"):
        VBKGC(triples_factory=tiny_factory, features=path, min_feature_coverage=0, random_seed=0)
    assert caplog.messages == [
        f"the features file {path} covers only 2 of 6 entities (33.3%); the other 4 get random features."
    ]
    with pytest.raises(ValueError, match="min_feature_coverage must be between 0 and 1, got 2"):
        VBKGC(triples_factory=tiny_factory, features=path, min_feature_coverage=2)
