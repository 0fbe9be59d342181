"""Tests of the NSCaching negative sampler."""

import logging
import math

import numpy as np
import pytest
import torch
from pykeen.models import TransE
from pykeen.pipeline import pipeline
from pykeen.sampling import negative_sampler_resolver
from pykeen.triples import TriplesFactory

from pykeen_vbkgc.nscaching import NSCachingNegativeSampler, importance_probabilities, sample_by_importance


@pytest.fixture
def transe(tiny_factory):
    return TransE(triples_factory=tiny_factory, embedding_dim=4, random_seed=0)


def _sampler(factory, model, **kwargs) -> NSCachingNegativeSampler:
    torch.manual_seed(0)
    return NSCachingNegativeSampler(
        mapped_triples=factory.mapped_triples,
        model=model,
        **dict(num_entities=factory.num_entities, num_relations=factory.num_relations) | kwargs,
    )


def _pair_rows(sampler, triples):
    """The cache rows of the (r, t) and (h, r) pairs of ``triples``, looked up by hand."""
    head_keys, tail_keys = sampler.head_keys.tolist(), sampler.tail_keys.tolist()
    num_relations = sampler.num_relations
    head_rows = [head_keys.index(t * num_relations + r) for _, r, t in triples.tolist()]
    tail_rows = [tail_keys.index(h * num_relations + r) for h, r, _ in triples.tolist()]
    return head_rows, tail_rows


def test_registered_by_name():
    assert negative_sampler_resolver.lookup("nscaching") is NSCachingNegativeSampler


def test_importance_probabilities_follow_the_formula():
    # p(e) = exp(f(e) / tau) / sum exp(f(e') / tau); with f / tau = log 1, log 2, log 3: 1/6, 2/6, 3/6
    tau = 2.0
    scores = tau * torch.tensor([[math.log(1), math.log(2), math.log(3)], [0.0, 0.0, 0.0]])
    expected = torch.tensor([[1 / 6, 2 / 6, 3 / 6], [1 / 3, 1 / 3, 1 / 3]])
    assert torch.allclose(importance_probabilities(scores, tau), expected)


def test_sample_by_importance_draws_without_replacement_with_those_probabilities():
    torch.manual_seed(0)
    scores = torch.tensor([math.log(1), math.log(2), math.log(3), math.log(4)]).repeat(20_000, 1)
    first = sample_by_importance(scores, temperature=1.0, num_samples=1).squeeze(1)
    frequencies = torch.bincount(first, minlength=4) / len(first)
    assert torch.allclose(frequencies, torch.tensor([0.1, 0.2, 0.3, 0.4]), atol=0.01)
    drawn = sample_by_importance(scores[:100], temperature=1.0, num_samples=4)
    assert (drawn.sort(dim=1).values == torch.arange(4)).all()  # each row: every candidate exactly once
    # probabilities that underflow to zero are no problem
    assert sample_by_importance(torch.tensor([[1e4, 0.0, -1e4]]), 1e-3, num_samples=2).tolist() == [[0, 1]]
    # nor is a temperature so small that the scaled scores overflow: the masked candidate (-inf) is never drawn
    torch.manual_seed(0)
    scores = torch.tensor([[-5.0, -3.0, float("-inf"), -4.0]]).repeat(1000, 1)
    drawn = sample_by_importance(scores, temperature=1e-40, num_samples=3)
    assert not (drawn == 2).any()


def test_negatives_come_from_the_caches_of_their_pairs(tiny_factory, transe):
    sampler = _sampler(tiny_factory, transe, cache_size=2, num_negs_per_pos=3)
    sampler.head_cache[:] = torch.arange(len(sampler.head_keys)).unsqueeze(1) % 6  # row i holds entity i % 6
    sampler.tail_cache[:] = torch.tensor([[4, 5]])
    head_cache, tail_cache = sampler.head_cache.clone(), sampler.tail_cache.clone()
    positives = tiny_factory.mapped_triples[:4]
    negatives = sampler.corrupt_batch(positives)
    assert negatives.shape == (4, 3, 3)
    head_rows, tail_rows = _pair_rows(sampler, positives)
    for i, (positive, row) in enumerate(zip(positives.tolist(), negatives.tolist(), strict=True)):
        for j, negative in enumerate(row):
            assert negative[1] == positive[1] and negative != positive
            # the first half of the 12 negatives replaces heads, the second half tails
            if 3 * i + j < 6:
                cached = head_cache[head_rows[i]].tolist()
                assert negative[2] == positive[2]
                # a cache that holds only the positive's own head gives another entity
                assert negative[0] in cached or set(cached) == {positive[0]}
            else:
                assert negative[0] == positive[0] and negative[2] in tail_cache[tail_rows[i]].tolist()


@pytest.mark.parametrize("update", ["top", "importance"])
def test_refresh_keeps_the_best_scored_candidates(tiny_factory, transe, monkeypatch, update):
    # a tiny temperature makes importance sampling keep the best-scored candidates, too
    sampler = _sampler(tiny_factory, transe, cache_size=2, num_candidates=3, update=update, temperature=1e-6)
    sampler.tail_cache[:] = torch.tensor([[0, 1]])
    sampler.head_cache[:] = torch.tensor([[2, 3]])
    monkeypatch.setattr(sampler, "_random_entities", lambda n, m: torch.tensor([[3, 4, 5]]).expand(n, m))
    positive = tiny_factory.mapped_triples[:1]
    h, r, t = positive[0].tolist()
    sampler.refresh(positive)
    head_rows, tail_rows = _pair_rows(sampler, positive)
    with torch.no_grad():
        tail_scores = {e: transe.score_hrt(torch.tensor([[h, r, e]])).item() for e in (0, 1, 3, 4, 5)}
        head_scores = {e: transe.score_hrt(torch.tensor([[e, r, t]])).item() for e in (2, 3, 4, 5)}
    best_tails = sorted(tail_scores, key=tail_scores.get, reverse=True)[:2]
    assert sorted(sampler.tail_cache[tail_rows[0]].tolist()) == sorted(best_tails)
    # the head candidates are 2, 3 (cached) and 3, 4, 5 (drawn): 3 may be kept twice
    best_heads = sorted([2, 3, 3, 4, 5], key=head_scores.get, reverse=True)[:2]
    assert sorted(sampler.head_cache[head_rows[0]].tolist()) == sorted(best_heads)
    # the caches of the other pairs are untouched
    others = [row for row in range(len(sampler.tail_keys)) if row != tail_rows[0]]
    assert (sampler.tail_cache[others] == torch.tensor([0, 1])).all()


def test_importance_and_top_sampling_from_the_cache(tiny_factory, transe):
    positive = tiny_factory.mapped_triples[:1]
    h, r, t = positive[0].tolist()
    with torch.no_grad():
        scores = {e: transe.score_hrt(torch.tensor([[h, r, e]])).item() for e in range(6)}
    best = max((0, 3, 5), key=scores.get)
    for sampling, temperature in (("top", 2.0), ("importance", 1e-6)):
        sampler = _sampler(tiny_factory, transe, cache_size=3, sampling=sampling, temperature=temperature)
        sampler.tail_cache[:] = torch.tensor([[0, 3, 5]])
        # a batch of two copies: the first negative replaces the head, the second the tail
        negatives = sampler.corrupt_batch(positive.repeat(2, 1))
        assert negatives[1, 0].tolist() == [h, r, best]


@pytest.mark.parametrize("sampling", ["uniform", "importance", "top"])
def test_a_negative_never_keeps_the_entity_of_its_positive(tiny_factory, transe, sampling):
    """As PyKEEN's basic sampler: the cached copies of the positive's own entity are left out of the draw."""
    sampler = _sampler(tiny_factory, transe, cache_size=3, sampling=sampling, num_negs_per_pos=50)
    positives = tiny_factory.mapped_triples
    heads, tails = positives[:, 0], positives[:, 2]
    # the pairs of this tiny graph are unique: each cache belongs to one positive, and holds its own entity twice
    head_rows, tail_rows = _pair_rows(sampler, positives)
    sampler.head_cache[head_rows] = torch.stack([heads, heads, (heads + 1) % 6], dim=1)
    sampler.tail_cache[tail_rows] = torch.stack([tails, tails, (tails + 1) % 6], dim=1)
    negatives = sampler.corrupt_batch(positives)
    head_replaced = negatives[..., 0] != heads.unsqueeze(1)
    assert torch.equal(head_replaced, negatives[..., 2] == tails.unsqueeze(1))  # one side replaced, never none
    # the cache's other entity is the only negative
    assert (negatives[..., 0][head_replaced] == ((heads + 1) % 6).unsqueeze(1).expand(-1, 50)[head_replaced]).all()
    assert (negatives[..., 2][~head_replaced] == ((tails + 1) % 6).unsqueeze(1).expand(-1, 50)[~head_replaced]).all()
    # caches that hold only the positive's own entity: another entity, drawn uniformly
    sampler.head_cache[head_rows] = heads.unsqueeze(1).expand(-1, 3)
    sampler.tail_cache[tail_rows] = tails.unsqueeze(1).expand(-1, 3)
    negatives = sampler.corrupt_batch(positives)
    assert not (negatives == positives.unsqueeze(1)).all(dim=-1).any()
    assert set(negatives[..., 0][negatives[..., 0] != heads.unsqueeze(1)].tolist()) == set(range(6))


def test_filter_removes_known_triples(tiny_factory):
    import numpy as np
    from pykeen.triples import TriplesFactory

    # ("a", "r2", "c") and ("a", "r2", "f") are training triples: for the positive (a, r2, c), a cache of (a, r2)
    # holding only f gives only known triples
    factory = TriplesFactory.from_labeled_triples(
        np.concatenate([tiny_factory.triples, [("a", "r2", "f")]]),
        entity_to_id=tiny_factory.entity_to_id,
        relation_to_id=tiny_factory.relation_to_id,
    )
    model = TransE(triples_factory=factory, embedding_dim=4, random_seed=0)
    sampler = _sampler(factory, model, cache_size=2, filtered=True)
    a, b, c, f = (factory.entity_to_id[label] for label in "abcf")
    r2 = factory.relation_to_id["r2"]
    _, (row,) = _pair_rows(sampler, torch.tensor([[a, r2, c]]))
    sampler.tail_cache[row] = f
    positive = torch.tensor([[a, r2, c], [a, r2, c]])
    negatives, mask = sampler.sample(positive)
    assert negatives[1, 0].tolist() == [a, r2, f]
    assert mask[1, 0].item() is False
    sampler.tail_cache[row] = b
    negatives, mask = sampler.sample(positive)
    assert negatives[1, 0].tolist() == [a, r2, b] and mask[1, 0].item() is True


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(cache_size=0), "cache_size must be a positive integer, got 0."),
        (dict(num_candidates=2.5), "num_candidates must be a positive integer, got 2.5."),
        (dict(sampling="bern"), "sampling must be one of uniform, importance, top; got 'bern'."),
        (dict(update="IS"), "update must be one of importance, top; got 'IS'."),
        (dict(temperature=0), "temperature must be a positive number up to 3.403e+38 (float32's range), got 0."),
        # importance sampling would be uniform
        (
            dict(temperature=float("inf")),
            "temperature must be a positive number up to 3.403e+38 (float32's range), got inf.",
        ),
        (
            dict(corruption_scheme=("tail",)),
            "The 'nscaching' negative sampler corrupts heads and tails, from a cache for each; it takes no "
            "corruption_scheme.",
        ),
        # keys e * num_relations + r would collide: pairs would share caches
        (
            dict(num_relations=1),
            "the training triples hold relation ids from 0 to 1, outside 0 to 0 (the sampler's number of relation "
            "ids).",
        ),
        (
            dict(num_entities=3),
            "the training triples hold entity ids from 0 to 5, outside 0 to 2 (the sampler's number of entity ids).",
        ),
        (dict(num_negs_per_pos=0), "num_negs_per_pos must be a positive integer, got 0."),
    ],
)
def test_bad_settings_are_refused(tiny_factory, kwargs, message):
    with pytest.raises(ValueError) as error:
        _sampler(tiny_factory, None, **kwargs)
    assert str(error.value) == message


def test_a_model_that_cannot_score_the_negatives_is_refused(tiny_factory):
    with pytest.raises(TypeError) as error:
        _sampler(tiny_factory, "transe")
    assert str(error.value) == "model must be a PyKEEN model, got 'transe'."
    graph = TriplesFactory.from_labeled_triples(np.asarray([("a", "r1", "b"), ("b", "r1", "c")], dtype=str))
    smaller = TransE(triples_factory=graph, embedding_dim=4)
    with pytest.raises(ValueError) as error:
        _sampler(tiny_factory, smaller)
    assert str(error.value) == (
        "the model has 3 entities and 1 relations, fewer than the sampler's 6 and 2: it cannot score the sampler's "
        "negatives."
    )


def test_workers_are_refused_before_they_start():
    """PyKEEN's loop would start the worker, whose error the DataLoader wraps in a traceback of many lines."""
    with pytest.raises(ValueError) as error:
        _train("TransE", training_kwargs=dict(num_epochs=1, batch_size=256, num_workers=1))
    assert str(error.value) == (
        "The 'nscaching' negative sampler keeps its caches in the main process and cannot run in DataLoader worker "
        "processes; train with num_workers=0."
    )
    # the loop that draws batches on the device has no worker processes: num_workers is not used there
    result = _train(
        "TransE", training_loop="deviceslcwa", training_kwargs=dict(num_epochs=1, batch_size=256, num_workers=1)
    )
    assert len(result.losses) == 1


def test_sampling_without_a_model_or_in_a_worker_is_refused(tiny_factory, transe, monkeypatch):
    with pytest.raises(RuntimeError, match=r"^The 'nscaching' negative sampler has no model to score its cache "):
        _sampler(tiny_factory, None).sample(tiny_factory.mapped_triples[:2])
    monkeypatch.setattr(torch.utils.data, "get_worker_info", lambda: object())
    with pytest.raises(RuntimeError) as error:
        _sampler(tiny_factory, transe).sample(tiny_factory.mapped_triples[:2])
    assert str(error.value) == (
        "The 'nscaching' negative sampler keeps its caches in the main process and cannot run in DataLoader worker "
        "processes; train with num_workers=0."
    )


def test_a_positive_that_is_no_training_triple_is_refused(tiny_factory, transe):
    with pytest.raises(ValueError, match="NSCaching has caches only for the pairs of its training triples"):
        _sampler(tiny_factory, transe).sample(torch.tensor([[2, 0, 3]]))  # (c, r1, d): no (c, r1) in training


def _train(model: str, **kwargs):
    model_kwargs = dict(embedding_dim=16)
    if model == "vbkgc":
        model_kwargs.update(features="random", feature_dim=8)
    return pipeline(
        dataset="nations",
        model=model,
        model_kwargs=model_kwargs,
        negative_sampler="nscaching",
        negative_sampler_kwargs=dict(num_negs_per_pos=2, cache_size=10, num_candidates=10),
        loss="meanmarginranking",
        loss_kwargs=dict(margin=2.0),
        random_seed=0,
        **{"training_kwargs": dict(num_epochs=2, batch_size=256), **kwargs},
    )


@pytest.mark.parametrize("model", ["TransE", "vbkgc"])
def test_pipeline_trains_any_model_reproducibly(model):
    first, second = _train(model), _train(model)
    mrr = first.metric_results.get_metric("both.realistic.inverse_harmonic_mean_rank")
    assert 0 < mrr <= 1
    second_mrr = second.metric_results.get_metric("both.realistic.inverse_harmonic_mean_rank")
    if first.model.device.type == "cpu":
        assert mrr == second_mrr
        assert first.losses == second.losses
    else:
        # CUDA's scattered additions (index_add_, embedding backward) are not bit-deterministic
        assert mrr == pytest.approx(second_mrr, rel=1e-3)
        assert first.losses == pytest.approx(second.losses, rel=1e-3)


def test_sub_batches_and_filter(caplog):
    plain = _train("TransE")
    sub_batched = _train("TransE", training_kwargs=dict(num_epochs=2, batch_size=256, sub_batch_size=64))
    # the batch is sampled (and its caches refreshed) once, then scored in sub-batches: the same losses
    assert sub_batched.losses == pytest.approx(plain.losses, rel=1e-5)
    filtered = pipeline(
        dataset="nations",
        model="TransE",
        negative_sampler="nscaching",
        negative_sampler_kwargs=dict(filtered=True, cache_size=5),
        training_kwargs=dict(num_epochs=1, batch_size=512),
        random_seed=0,
    )
    assert len(filtered.losses) == 1


def test_resuming_from_a_checkpoint_says_that_the_caches_restart(tmp_path, caplog):
    kwargs = dict(checkpoint_directory=tmp_path, checkpoint_name="run.pt", checkpoint_frequency=0, batch_size=256)
    _train("TransE", training_kwargs=dict(num_epochs=1, **kwargs))
    with caplog.at_level(logging.WARNING, logger="pykeen_vbkgc.nscaching"):
        _train("TransE", training_kwargs=dict(num_epochs=2, **kwargs))
    assert (
        "NSCaching's caches are not part of PyKEEN's checkpoints: training resumed after epoch 1 starts with fresh "
        "random caches." in caplog.messages
    )


def test_hpo_pipeline():
    from pykeen.hpo import hpo_pipeline

    result = hpo_pipeline(
        dataset="nations",
        model="TransE",
        model_kwargs=dict(embedding_dim=8),
        negative_sampler="nscaching",
        training_kwargs=dict(num_epochs=1, batch_size=512),
        n_trials=1,
        sampler_kwargs=dict(seed=0),
    )
    params = result.study.best_params
    assert {"negative_sampler.cache_size", "negative_sampler.num_candidates"} <= set(params)


def test_continued_training_keeps_the_caches(tiny_factory, transe, caplog):
    from pykeen.training import SLCWATrainingLoop

    loop = SLCWATrainingLoop(
        model=transe,
        triples_factory=tiny_factory,
        negative_sampler="nscaching",
        negative_sampler_kwargs=dict(cache_size=3, num_candidates=2),
    )
    loop.train(triples_factory=tiny_factory, num_epochs=1, batch_size=4, use_tqdm=False)
    caches = loop._nscaching_caches
    before = caches.tail_cache.clone()
    with caplog.at_level(logging.WARNING, logger="pykeen_vbkgc.nscaching"):
        loop.train(triples_factory=tiny_factory, num_epochs=2, batch_size=4, use_tqdm=False, continue_training=True)
    assert loop._nscaching_caches is caches and not caplog.messages
    assert not torch.equal(caches.tail_cache, before)  # the second train() refreshed the same caches
