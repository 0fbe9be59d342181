"""One source of defaults in every entry point; features from the dataset; warnings for random or sparse features."""

import inspect
import logging
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from pykeen.losses import MarginRankingLoss, NSSALoss
from pykeen.pipeline import pipeline

from pykeen_vbkgc import VBKGC, MeanMarginRankingLoss, PresetLoss, TwinsNegativeSampler, save_features
from pykeen_vbkgc.datasets import MultimodalDemo
from pykeen_vbkgc.defaults import BEST, FB15K237_PRESET, PAPER, PRESET_METADATA_KEY, WN9_PRESET, get_preset
from pykeen_vbkgc.features import FEATURES_METADATA_KEY, FeaturesFileError, load_features

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_best_and_paper_presets_have_the_documented_values():
    assert (BEST.scoring_fct_norm, BEST.normalize_relations, BEST.projection_lr_scale) == (2, True, 1e-3)
    assert (BEST.margin, BEST.learning_rate, BEST.num_negatives, BEST.batch_size) == (10.0, 1e-2, 16, 1024)
    assert (BEST.embedding_dim, BEST.normalize, BEST.term_weights) == (128, True, None)
    assert (PAPER.scoring_fct_norm, PAPER.normalize_relations, PAPER.projection_lr_scale) == (1, True, 1.0)
    assert (PAPER.margin, PAPER.learning_rate) == (6.0, 1e-3)
    assert get_preset("paper") is PAPER
    with pytest.raises(ValueError, match=r"Unknown preset 'x'; choose one of \['best', 'fb15k237', 'paper', 'wn9'\]."):
        get_preset("x")


def test_dataset_presets_have_the_documented_values():
    assert (WN9_PRESET.scoring_fct_norm, WN9_PRESET.normalize_relations, WN9_PRESET.projection_lr_scale) == (
        1,
        True,
        1e-3,
    )
    assert (WN9_PRESET.loss, WN9_PRESET.margin, WN9_PRESET.learning_rate, WN9_PRESET.num_negatives) == (
        "nssa",
        9.0,
        1e-3,
        16,
    )
    assert WN9_PRESET.term_weights == "mm=0.05,sm=0.05,ms=0.05,all=0.05"
    assert (WN9_PRESET.neighbour_weight, WN9_PRESET.neighbour_mirror_gate) == (0.5, True)
    assert (FB15K237_PRESET.neighbour_weight, FB15K237_PRESET.neighbour_mirror_gate) == (0.05, False)
    assert (FB15K237_PRESET.scoring_fct_norm, FB15K237_PRESET.term_weights) == (1, "mm=0.03,sm=0.03,ms=0.03,all=0.03")
    assert (FB15K237_PRESET.normalize_relations, FB15K237_PRESET.relation_initializer) == (True, "xavier_uniform_norm")
    assert (FB15K237_PRESET.loss, FB15K237_PRESET.margin, FB15K237_PRESET.num_negatives) == ("nssa", 9.0, 64)
    assert FB15K237_PRESET.learning_rate == 1e-3
    assert get_preset("wn9") is WN9_PRESET and get_preset("fb15k237") is FB15K237_PRESET


def test_model_loss_and_sampler_defaults_are_the_best_preset(tiny_factory, tiny_features):
    parameters = inspect.signature(VBKGC).parameters
    preset_settings = {
        "preset",
        "scoring_fct_norm",
        "normalize_relations",
        "projection_lr_scale",
        "term_weights",
        "relation_initializer",
        "neighbour_weight",
        "num_neighbours",
        "neighbour_mirror_gate",
    }
    for name, value in BEST.model_kwargs().items():
        # the settings that differ between presets default to None: the dataset's preset, else BEST
        expected = None if name in preset_settings else value
        assert parameters[name].default == expected, name
    model = VBKGC(triples_factory=tiny_factory, features=tiny_features)
    assert model.interaction.p == 2 and model.interaction.normalize and model.interaction.normalize_relations
    assert model.interaction.term_weights == (1.0,) * 5
    assert model.entity_representations[2].base.transformation.scale == 1e-3
    assert type(model.loss) is MeanMarginRankingLoss and model.loss.margin == 10.0
    assert MeanMarginRankingLoss().margin == 10.0
    assert inspect.signature(TwinsNegativeSampler).parameters["num_negs_per_pos"].default == 16
    # the settings that differ between datasets are left to the dataset's preset
    assert VBKGC.hpo_default == dict(embedding_dim=dict(type="categorical", choices=[128]))
    assert TwinsNegativeSampler.hpo_default == dict(num_negs_per_pos=dict(type="categorical", choices=[16]))
    # the paper's configuration is one set of keyword arguments
    paper = VBKGC(triples_factory=tiny_factory, features=tiny_features, **PAPER.model_kwargs())
    assert paper.interaction.p == 1 and paper.entity_representations[2].base.transformation.scale == 1.0
    assert type(paper.loss) is MeanMarginRankingLoss and paper.loss.margin == 6.0


def _settings(model: VBKGC) -> tuple:
    return (
        model.interaction.p,
        model.interaction.term_weights,
        model.entity_representations[2].base.transformation.scale,
        type(model.loss).__name__,
        model.loss.margin,
    )


def test_model_takes_the_dataset_preset_for_every_setting_left_out(tiny_factory, tiny_features):
    tiny_factory.metadata[PRESET_METADATA_KEY] = "wn9"
    assert _settings(VBKGC(triples_factory=tiny_factory, features=tiny_features)) == (
        1,
        (1.0, 0.05, 0.05, 0.05, 0.05),
        1e-3,
        "NSSALoss",
        9.0,
    )
    # the preset's weights of the terms that are scored
    model = VBKGC(triples_factory=tiny_factory, features=tiny_features, score_terms="ss,sm")
    assert model.interaction.term_weights == (1.0, 0.05)
    # explicit settings win; {} weighs every term 1
    model = VBKGC(
        triples_factory=tiny_factory,
        features=tiny_features,
        scoring_fct_norm=2,
        term_weights={},
        loss="meanmarginranking",
        loss_kwargs=dict(margin=5.0),
    )
    assert _settings(model) == (2, (1.0,) * 5, 1e-3, "MeanMarginRankingLoss", 5.0)
    # an explicit preset wins over the dataset's
    assert _settings(VBKGC(triples_factory=tiny_factory, features=tiny_features, preset="best")) == (
        2,
        (1.0,) * 5,
        1e-3,
        "MeanMarginRankingLoss",
        10.0,
    )
    tiny_factory.metadata[PRESET_METADATA_KEY] = "fb15k237"
    model = VBKGC(triples_factory=tiny_factory, features=tiny_features)
    assert _settings(model) == (1, (1.0, 0.03, 0.03, 0.03, 0.03), 1e-3, "NSSALoss", 9.0)
    # unit relations, starting at unit length as PyKEEN's TransE's do
    assert model.interaction.normalize_relations
    torch.testing.assert_close(model.relation_representations[0]().norm(dim=-1), torch.ones(tiny_factory.num_relations))
    model = VBKGC(triples_factory=tiny_factory, features=tiny_features, score_terms="ss,all")
    assert model.interaction.term_weights == (1.0, 0.03)
    # "mean" weighs the scored terms equally, whichever they are
    model = VBKGC(triples_factory=tiny_factory, features=tiny_features, score_terms="ss,all", term_weights="mean")
    assert model.interaction.term_weights == (0.5, 0.5)
    # the other presets start relations with Xavier's values, not normalised
    tiny_factory.metadata[PRESET_METADATA_KEY] = "wn9"
    model = VBKGC(triples_factory=tiny_factory, features=tiny_features)
    assert not torch.allclose(model.relation_representations[0]().norm(dim=-1), torch.ones(2))
    tiny_factory.metadata[PRESET_METADATA_KEY] = "nope"
    with pytest.raises(ValueError, match=r"^Unknown preset 'nope'; choose one of"):
        VBKGC(triples_factory=tiny_factory, features=tiny_features)


def test_datasets_name_their_preset(tmp_path):
    from pykeen_vbkgc.dataset_loading import dataset_preset_name
    from pykeen_vbkgc.datasets import WN9, FB15k237Multimodal, TriplesDirectory

    assert (WN9.preset, FB15k237Multimodal.preset, MultimodalDemo.preset, TriplesDirectory.preset) == (
        "wn9",
        "fb15k237",
        None,
        None,
    )
    assert PRESET_METADATA_KEY not in MultimodalDemo().training.metadata
    for name, expected in [("wn9", "wn9"), ("WN9", "wn9"), ("fb15k237multimodal", "fb15k237"), ("nations", "best")]:
        assert dataset_preset_name(name) == expected, name
    assert dataset_preset_name(str(tmp_path)) == "best"
    assert dataset_preset_name("no such dataset") == "best"


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
    CliRunner().invoke(
        main,
        [
            "train",
            "--margin",
            "3",
            "--scoring-fct-norm",
            "1",
            "--term-weights",
            "mm=0.5",
            "--neighbour-weight",
            "0.2",
            "--neighbour-mirror-gate",
        ],
    )
    assert calls[0]["loss_kwargs"] == dict(margin=3.0)
    assert calls[0]["model_kwargs"]["scoring_fct_norm"] == 1
    assert calls[0]["model_kwargs"]["term_weights"] == "mm=0.5"
    assert calls[0]["model_kwargs"]["neighbour_weight"] == 0.2
    assert calls[0]["model_kwargs"]["neighbour_mirror_gate"] is True


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
    """pipeline() with only the model, the sampler and a budget: features from the dataset, VBKGC's loss, Hits@1 > 0.

    PyKEEN's optimiser default (Adam, lr 1e-3) applies; docs/results.md: MRR 0.396, Hits@1 0.203 after 50 epochs.
    """
    result = pipeline(
        dataset="multimodaldemo",
        model="vbkgc",
        negative_sampler="twins",
        training_kwargs=dict(num_epochs=50, batch_size=256, use_tqdm=False),
        evaluation_kwargs=dict(use_tqdm=False),
        random_seed=0,
    )
    model = result.model
    # PyKEEN's pipeline built MarginRankingLoss(margin=1) for loss=None; the model took its own default instead
    assert type(model.loss) is MeanMarginRankingLoss and model.loss.margin == BEST.margin
    features = load_features(MultimodalDemo().features_path).align(result.training.entity_to_id).vectors
    torch.testing.assert_close(model.entity_representations[2].base.base._embeddings.weight.cpu(), features)
    hits_at_1 = result.metric_results.get_metric("both.realistic.hits_at_1")
    assert hits_at_1 > 0.15, hits_at_1


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


def test_preset_loss_is_replaced_by_the_preset_loss_with_the_scaled_margin(tiny_factory, tiny_features):
    # the class default, as hpo_pipeline builds it: the preset's loss and margin
    assert VBKGC.loss_default is PresetLoss and PresetLoss.hpo_default == dict(
        margin_scale=dict(type="categorical", choices=[0.5, 0.75, 1.0, 1.5, 2.0])
    )
    tiny_factory.metadata[PRESET_METADATA_KEY] = "fb15k237"
    for loss, loss_kwargs in [
        (PresetLoss(margin_scale=2.0), None),
        ("preset", dict(margin_scale=2.0)),
        (PresetLoss, dict(margin_scale=2.0)),
    ]:
        model = VBKGC(triples_factory=tiny_factory, features=tiny_features, loss=loss, loss_kwargs=loss_kwargs)
        assert type(model.loss) is NSSALoss and model.loss.margin == 18.0
    tiny_factory.metadata[PRESET_METADATA_KEY] = "wn9"
    model = VBKGC(
        triples_factory=tiny_factory, features=tiny_features, loss="preset", loss_kwargs=dict(margin_scale=0.5)
    )
    assert type(model.loss) is NSSALoss and model.loss.margin == 4.5
    model = VBKGC(triples_factory=tiny_factory, features=tiny_features, loss="preset", preset="paper")
    assert type(model.loss) is MeanMarginRankingLoss and model.loss.margin == 6.0
    for bad in (0, -1.0, float("nan"), float("inf"), 1e39, True, "2", None, [2]):
        with pytest.raises(ValueError) as error:
            PresetLoss(margin_scale=bad)
        assert str(error.value) == (
            f"margin_scale must be a positive number up to 3.403e+38 (float32's range), got {bad!r}."
        )
    # finite, but the preset's margin of 9 times it is not
    with pytest.raises(ValueError) as error:
        VBKGC(triples_factory=tiny_factory, features=tiny_features, loss="preset", loss_kwargs=dict(margin_scale=1e38))
    assert str(error.value) == (
        "margin_scale=1e+38 times the 'wn9' preset's margin 9.0 is beyond float32's range (3.403e+38)."
    )


def test_preset_loss_fails_for_another_model():
    with pytest.raises(
        TypeError,
        match=r"^PresetLoss stands in for the loss of VBKGC's preset and VBKGC replaces it; another model needs a "
        r"loss of its own, e.g. loss='nssa'\.$",
    ):
        pipeline(dataset="nations", model="transe", loss="preset", training_kwargs=dict(num_epochs=1, use_tqdm=False))


def test_hpo_pipeline_tunes_the_preset_loss():
    """hpo_pipeline takes VBKGC's class default loss: the stand-in, which the model turns into its preset's loss."""
    from pykeen.hpo import hpo_pipeline

    losses = []

    class Recording(VBKGC):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            losses.append(self.loss)

    result = hpo_pipeline(
        dataset="nations",
        model=Recording,
        # the preset that FB15k-237 names in its metadata
        model_kwargs=dict(features="random", feature_dim=4, embedding_dim=4, preset="fb15k237"),
        negative_sampler="twins",
        negative_sampler_kwargs=dict(num_negs_per_pos=2),
        training_kwargs=dict(num_epochs=1, use_tqdm=False),
        evaluator_kwargs=dict(batch_size=64),
        n_trials=3,
        sampler_kwargs=dict(seed=0),
    )
    scales = [trial.params["loss.margin_scale"] for trial in result.study.trials]
    assert result.study.user_attrs["loss"] == "preset"
    assert [(type(loss), loss.margin) for loss in losses] == [(NSSALoss, 9.0 * scale) for scale in scales]


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
        "the accepted 50%. Check that the features were encoded for this graph, or lower min_feature_coverage (e.g. "
        "to 0) to accept them anyway."
    )
    with caplog.at_level(logging.WARNING, logger="pykeen_vbkgc.model"):
        VBKGC(triples_factory=tiny_factory, features=path, min_feature_coverage=0, random_seed=0)
    assert caplog.messages == [
        f"the features file {path} covers only 2 of 6 entities (33.3%); the other 4 get random features."
    ]
    with pytest.raises(ValueError, match="min_feature_coverage must be between 0 and 1, got 2"):
        VBKGC(triples_factory=tiny_factory, features=path, min_feature_coverage=2)
