"""End to end through PyKEEN's pipeline and hpo_pipeline."""

import torch
from pykeen.evaluation import RankBasedEvaluator
from pykeen.hpo import hpo_pipeline
from pykeen.pipeline import pipeline
from pykeen.sampling import negative_sampler_resolver

from pykeen_vbkgc import VBKGC, MeanMarginRankingLoss, TwinsNegativeSampler
from pykeen_vbkgc.hpo import PAPER_HPO_RANGES

MRR = "both.realistic.inverse_harmonic_mean_rank"
ADJUSTED_MRR = "both.realistic.adjusted_inverse_harmonic_mean_rank"


def train_nations(**kwargs):
    return pipeline(
        dataset="nations",
        model="vbkgc",
        model_kwargs=dict(embedding_dim=32, feature_dim=16),
        negative_sampler="twins",
        negative_sampler_kwargs=dict(num_negs_per_pos=8, filtered=True),
        loss="meanmarginranking",
        loss_kwargs=dict(margin=4.0),
        optimizer_kwargs=dict(lr=1e-2),
        training_kwargs=dict(num_epochs=15, batch_size=256, use_tqdm=False),
        evaluator_kwargs=dict(batch_size=64),
        random_seed=0,
        **kwargs,
    )


def test_pipeline_trains_evaluates_saves_and_reloads(tmp_path):
    result = train_nations()
    assert isinstance(result.model, VBKGC)
    assert negative_sampler_resolver.lookup(result.training_loop.negative_sampler) is TwinsNegativeSampler
    assert isinstance(result.model.loss, MeanMarginRankingLoss)
    assert result.losses[-1] < result.losses[0]
    # adjusted MRR is 0 in expectation for random scores and 1 for perfect ones. Nations' test split is hard for
    # every translational model (TransE: about 0.08 after 50 epochs), so "learned something" is judged on the
    # training triples, which the model has to rank far above random candidates
    fitted = RankBasedEvaluator().evaluate(
        result.model,
        result.training.mapped_triples[:300],
        additional_filter_triples=[result.training.mapped_triples],
        batch_size=64,
        use_tqdm=False,
    )
    assert fitted.get_metric(ADJUSTED_MRR) > 0.1
    for side in ("head", "tail", "both"):
        for metric in ("inverse_harmonic_mean_rank", "hits_at_1", "hits_at_3", "hits_at_10"):
            assert 0 < result.metric_results.get_metric(f"{side}.realistic.{metric}") <= 1

    result.save_to_directory(tmp_path)
    reloaded = torch.load(tmp_path / "trained_model.pkl", weights_only=False)
    hrt = result.training.mapped_triples[:50].to(result.model.device)
    with torch.no_grad():
        torch.testing.assert_close(reloaded.score_hrt(hrt), result.model.score_hrt(hrt), rtol=0, atol=0)
        torch.testing.assert_close(reloaded.score_t(hrt[:, :2]), result.model.score_t(hrt[:, :2]), rtol=0, atol=0)


def test_vbkgc_and_transe_in_one_script():
    transe = pipeline(
        dataset="nations",
        model="TransE",
        training_kwargs=dict(num_epochs=5, batch_size=256, use_tqdm=False),
        evaluator_kwargs=dict(batch_size=64),
        random_seed=0,
    )
    vbkgc = pipeline(
        dataset="nations",
        model="vbkgc",
        model_kwargs=dict(embedding_dim=16, feature_dim=8),
        negative_sampler="basic",
        loss="meanmarginranking",
        training_kwargs=dict(num_epochs=5, batch_size=256, use_tqdm=False),
        evaluator_kwargs=dict(batch_size=64),
        random_seed=0,
    )
    assert type(transe.model).__name__ == "TransE" and isinstance(vbkgc.model, VBKGC)
    for result in (transe, vbkgc):
        assert 0 < result.metric_results.get_metric(MRR) <= 1


def test_hpo_pipeline_with_twins_and_the_paper_grid():
    result = hpo_pipeline(
        dataset="nations",
        model="vbkgc",
        model_kwargs=dict(feature_dim=8),
        negative_sampler="twins",
        negative_sampler_kwargs=dict(num_negs_per_pos=4),
        training_kwargs=dict(num_epochs=2, use_tqdm=False),
        evaluator_kwargs=dict(batch_size=64),
        n_trials=2,
        **PAPER_HPO_RANGES,
    )
    assert len(result.study.trials) == 2
    for trial in result.study.trials:
        assert trial.params["loss.margin"] in (4.0, 6.0, 8.0, 10.0)
        assert trial.params["optimizer.lr"] in (2e-5, 1e-4, 5e-4, 1e-3)
        assert trial.params["model.embedding_dim"] == 128
        assert trial.params["training.batch_size"] in (64, 256)
        assert trial.value is not None and 0 < trial.value <= 1
