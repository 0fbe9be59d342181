"""The sLCWA training loop that draws batches and negatives on the model's device (here: the CPU)."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from pykeen.models import TransE, model_resolver
from pykeen.pipeline import pipeline
from pykeen.training import SLCWATrainingLoop, training_loop_resolver
from pykeen.triples.instances import BatchedSLCWAInstances
from pykeen.triples.weights import RelationLossWeighter

from pykeen_vbkgc import VBKGC, DeviceSLCWATrainingLoop
from pykeen_vbkgc import kernels as kernels_module
from pykeen_vbkgc.device_sampling import DeviceSLCWAInstances, scores_rows_independently
from pykeen_vbkgc.representation import decode_twins


def test_registered():
    assert training_loop_resolver.lookup("deviceslcwa") is DeviceSLCWATrainingLoop


@pytest.mark.parametrize("drop_last", [False, True])
def test_each_epoch_is_a_permutation_in_batches(tiny_factory, drop_last):
    instances = DeviceSLCWAInstances(
        mapped_triples=tiny_factory.mapped_triples,
        device=torch.device("cpu"),
        batch_size=3,
        drop_last=drop_last,
        num_entities=tiny_factory.num_entities,
        num_relations=tiny_factory.num_relations,
        negative_sampler="basic",
        negative_sampler_kwargs=dict(num_negs_per_pos=2),
    )
    batches = list(instances)
    assert len(batches) == len(instances) == (2 if drop_last else 3)
    assert [batch["positives"].shape[0] for batch in batches] == [3, 3] + ([] if drop_last else [2])
    seen = torch.cat([batch["positives"] for batch in batches])
    expected = tiny_factory.mapped_triples
    if not drop_last:
        assert sorted(map(tuple, seen.tolist())) == sorted(map(tuple, expected.tolist()))
    assert set(map(tuple, seen.tolist())) <= set(map(tuple, expected.tolist()))
    for batch in batches:
        assert batch["negatives"].shape == (batch["positives"].shape[0], 2, 3)


def _negative_counts(instances, epochs: int, num_entities: int, twins: bool) -> Counter:
    """Count (positive, corrupted column, replacement) over the negatives of some epochs."""
    counts = Counter()
    for _ in range(epochs):
        for batch in instances:
            positives, negatives = batch["positives"], batch["negatives"]
            mask = batch.get("masks")
            for column in (0, 2):
                ids = negatives[..., column]
                replacement = decode_twins(ids, num_entities, "replacement") if twins else ids
                if twins:
                    # a twins id remembers the replaced entity: the positive's
                    original = decode_twins(ids, num_entities, "original")
                    assert (original == positives[:, column, None]).all()
                changed = replacement != positives[:, column, None]
                if mask is not None:
                    changed &= mask
                for row, k in changed.nonzero().tolist():
                    counts[(tuple(positives[row].tolist()), column, int(replacement[row, k]))] += 1
    return counts


@pytest.mark.parametrize("sampler", ["basic", "twins"])
@pytest.mark.parametrize("filtered", [False, True], ids=["unfiltered", "filtered"])
def test_negatives_have_the_distribution_of_pykeens_loop(tiny_factory, sampler, filtered):
    """The same sampler on the device draws the same distribution of negatives as PyKEEN's host-side batches."""
    kwargs = dict(
        mapped_triples=tiny_factory.mapped_triples,
        batch_size=3,
        drop_last=False,
        num_entities=tiny_factory.num_entities,
        num_relations=tiny_factory.num_relations,
        negative_sampler=sampler,
        negative_sampler_kwargs=dict(
            num_negs_per_pos=4, filtered=filtered, filterer="python-set" if filtered else None
        ),
    )
    torch.manual_seed(0)
    twins = sampler == "twins"
    epochs = 600
    device = _negative_counts(
        DeviceSLCWAInstances(device=torch.device("cpu"), **kwargs), epochs, tiny_factory.num_entities, twins
    )
    host = _negative_counts(BatchedSLCWAInstances(**kwargs), epochs, tiny_factory.num_entities, twins)
    known = set(map(tuple, tiny_factory.mapped_triples.tolist()))
    for (positive, column, replacement), _ in device.items():
        # never the positive's own entity; filtered: never a known triple
        assert replacement != positive[column]
        if filtered:
            negative = list(positive)
            negative[column] = replacement
            assert tuple(negative) not in known
    # the same support, and frequencies within a few standard errors (multinomial, about 10^4 draws each)
    assert set(device) == set(host)
    total_device, total_host = sum(device.values()), sum(host.values())
    assert total_device == pytest.approx(total_host, rel=0.02)
    for key in host:
        p_device, p_host = device[key] / total_device, host[key] / total_host
        standard_error = (p_host * (1 - p_host) / total_host) ** 0.5
        assert abs(p_device - p_host) < 6 * standard_error + 1e-4, key
    # each (positive, side) draws its replacements uniformly: chi-square against the uniform distribution
    groups = Counter()
    for (positive, column, _), count in device.items():
        groups[(positive, column)] += count
    statistic = sum(
        (count - groups[(positive, column)] / _num_candidates(positive, column, known, filtered, tiny_factory)) ** 2
        / (groups[(positive, column)] / _num_candidates(positive, column, known, filtered, tiny_factory))
        for (positive, column, _), count in device.items()
    )
    degrees = sum(_num_candidates(p, c, known, filtered, tiny_factory) - 1 for p, c in groups)
    # mean = degrees, sd = sqrt(2 degrees): a bound of mean + 6 sd fails with negligible probability
    assert statistic < degrees + 6 * (2 * degrees) ** 0.5


def _num_candidates(positive, column, known, filtered, factory) -> int:
    """The number of entities that can replace ``positive[column]``."""
    count = 0
    for entity in range(factory.num_entities):
        if entity == positive[column]:
            continue
        negative = list(positive)
        negative[column] = entity
        if filtered and tuple(negative) in known:
            continue
        count += 1
    return count


def _train(training_loop: str, model: str = "TransE", **kwargs):
    return pipeline(
        dataset="nations",
        model=model,
        model_kwargs=dict(embedding_dim=8) if model == "TransE" else dict(embedding_dim=8, feature_dim=6),
        training_loop=training_loop,
        negative_sampler=kwargs.pop("negative_sampler", "basic"),
        negative_sampler_kwargs=dict(num_negs_per_pos=4, **kwargs.pop("negative_sampler_kwargs", {})),
        optimizer_kwargs=dict(lr=1e-2),
        training_kwargs=dict(num_epochs=3, batch_size=256, use_tqdm=False),
        evaluation_kwargs=dict(use_tqdm=False),
        random_seed=0,
        **kwargs,
    )


@pytest.mark.parametrize(
    ("model", "sampler", "filtered"),
    [("TransE", "basic", False), ("TransE", "basic", True), ("VBKGC", "twins", False), ("VBKGC", "twins", True)],
)
def test_pipeline_trains_with_the_device_loop(model, sampler, filtered):
    result = _train(
        "deviceslcwa", model=model, negative_sampler=sampler, negative_sampler_kwargs=dict(filtered=filtered)
    )
    assert isinstance(result.training_loop, DeviceSLCWATrainingLoop)
    assert len(result.losses) == 3 and all(torch.isfinite(torch.tensor(result.losses)))
    assert result.losses[-1] < result.losses[0]
    assert 0 < result.metric_results.get_metric("both.realistic.inverse_harmonic_mean_rank") <= 1
    # the same seed, the same run
    again = _train(
        "deviceslcwa", model=model, negative_sampler=sampler, negative_sampler_kwargs=dict(filtered=filtered)
    )
    assert again.losses == pytest.approx(result.losses, rel=1e-4)


def test_losses_match_pykeens_loop_in_distribution():
    """Over a few seeds, the device loop's first-epoch loss is the host loop's, up to sampling noise."""
    device_losses, host_losses = [], []
    for seed in range(4):
        for loop, losses in (("deviceslcwa", device_losses), ("slcwa", host_losses)):
            result = pipeline(
                dataset="nations",
                model="TransE",
                model_kwargs=dict(embedding_dim=8),
                training_loop=loop,
                negative_sampler_kwargs=dict(num_negs_per_pos=8),
                training_kwargs=dict(num_epochs=1, batch_size=128, use_tqdm=False),
                evaluator_kwargs=dict(),
                evaluation_kwargs=dict(use_tqdm=False),
                random_seed=seed,
            )
            losses.append(result.losses[0])
    mean_device, mean_host = sum(device_losses) / 4, sum(host_losses) / 4
    assert mean_device == pytest.approx(mean_host, rel=0.05)


def test_rejects_the_subgraph_sampler(tiny_factory):
    model = TransE(triples_factory=tiny_factory, embedding_dim=4)
    loop = DeviceSLCWATrainingLoop(model=model, triples_factory=tiny_factory)
    with pytest.raises(ValueError, match="does not support sampler='schlichtkrull'"):
        loop.train(triples_factory=tiny_factory, num_epochs=1, batch_size=4, sampler="schlichtkrull", use_tqdm=False)


@pytest.mark.parametrize("sampler", ["basic", "bernoulli"])
def test_refuses_zero_negatives_before_training(tiny_factory, sampler):
    """PyKEEN's samplers take 0; the loss over no negatives would be NaN in the first batch."""
    model = TransE(triples_factory=tiny_factory, embedding_dim=4)
    loop = DeviceSLCWATrainingLoop(
        model=model,
        triples_factory=tiny_factory,
        negative_sampler=sampler,
        negative_sampler_kwargs=dict(num_negs_per_pos=0),
    )
    with pytest.raises(ValueError) as error:
        loop.train(triples_factory=tiny_factory, num_epochs=1, batch_size=4, use_tqdm=False)
    assert str(error.value) == "num_negs_per_pos must be a positive integer, got 0."


def _first_batch(loop, triples_factory):
    """Return the first batch of 8 positives (and their negatives) that ``loop`` draws."""
    loader = loop._create_training_data_loader(
        triples_factory, sampler=None, batch_size=8, drop_last=False, shuffle=True
    )
    return next(iter(loader))


def _score_calls(model, monkeypatch) -> list[int]:
    """Return a list to which each later call of ``model.score_hrt`` appends its number of rows."""
    calls = []
    score_hrt = model.score_hrt
    monkeypatch.setattr(
        model, "score_hrt", lambda hrt_batch, **kwargs: calls.append(len(hrt_batch)) or score_hrt(hrt_batch, **kwargs)
    )
    return calls


def _loss_and_gradients(loop, batch) -> tuple[torch.Tensor, list[torch.Tensor]]:
    loop.model.zero_grad()
    loss = loop._process_batch(batch=batch, start=0, stop=batch["positives"].shape[0])
    loss.backward()
    gradients = [parameter.grad.clone() for parameter in loop.model.parameters() if parameter.grad is not None]
    loop.model.post_parameter_update()
    return loss.detach(), gradients


@pytest.mark.parametrize(
    ("model_name", "path"), [("TransE", "cpu"), ("VBKGC", "cpu"), ("VBKGC", "dense")], ids=["transe", "vbkgc", "dense"]
)
# the model's default loss, filtered negatives, sample weights (PyKEEN's own loop fails on filtered and weighted
# negatives: the loss gets the weights of all negatives; the margin losses take no weights), two losses that weigh
# each positive's negatives together
@pytest.mark.parametrize(
    ("case", "loss"),
    [("plain", None), ("filtered", None), ("weighted", "softplus"), ("nssa", "nssa"), ("mean", "meanmarginranking")],
    ids=["plain", "filtered", "weighted", "nssa", "meanmargin"],
)
def test_one_call_scores_as_pykeens_two(tiny_factory, tiny_features, monkeypatch, model_name, path, case, loss):
    """Given one batch, the device loop's single ``score_hrt`` call gives PyKEEN's loss and gradients of two calls."""
    monkeypatch.setattr(kernels_module, "_DENSE_ON_CPU", path == "dense")
    filtered, weighted = case == "filtered", case == "weighted"
    if model_name == "TransE":
        model = TransE(triples_factory=tiny_factory, embedding_dim=4, loss=loss, random_seed=0)
        sampler = "basic"
    else:
        model = VBKGC(triples_factory=tiny_factory, features=tiny_features, embedding_dim=4, loss=loss, random_seed=0)
        sampler = "twins"
    options = dict(
        negative_sampler=sampler,
        negative_sampler_kwargs=dict(num_negs_per_pos=3, filtered=filtered),
        loss_weighter=RelationLossWeighter(torch.linspace(0.5, 2.0, tiny_factory.num_relations)) if weighted else None,
    )
    host = SLCWATrainingLoop(model=model, triples_factory=tiny_factory, **options)
    device = DeviceSLCWATrainingLoop(model=model, triples_factory=tiny_factory, **options)
    batch = _first_batch(device, tiny_factory)
    assert ("masks" in batch) == filtered and ("pos_weights" in batch) == weighted
    calls = _score_calls(model, monkeypatch)
    host_loss, host_gradients = _loss_and_gradients(host, batch)
    num_negatives = sum(calls[1:])
    assert calls == [8, num_negatives]
    device_loss, device_gradients = _loss_and_gradients(device, batch)
    assert calls[2:] == [8 + num_negatives]
    torch.testing.assert_close(device_loss, host_loss)
    for device_gradient, host_gradient in zip(device_gradients, host_gradients, strict=True):
        torch.testing.assert_close(device_gradient, host_gradient)


@pytest.mark.parametrize(
    ("model_name", "kwargs"),
    [
        ("TransE", dict(regularizer="lp")),
        ("VBKGC", dict(regularizer="lp")),
        ("ConvE", dict(embedding_dim=8, output_channels=2, kernel_height=2, kernel_width=2)),
    ],
    ids=["transe-regularizer", "vbkgc-regularizer", "conve-batchnorm"],
)
def test_models_whose_calls_interact_keep_two_calls(tiny_factory, tiny_features, monkeypatch, model_name, kwargs):
    """With a regularizer (one term per call) or batch normalisation, the device loop scores as PyKEEN's loop."""
    if model_name == "VBKGC":
        kwargs = dict(kwargs, features=tiny_features, embedding_dim=4)
    model = model_resolver.make(model_name, triples_factory=tiny_factory, random_seed=0, **kwargs)
    assert not scores_rows_independently(model)
    assert scores_rows_independently(TransE(triples_factory=tiny_factory, embedding_dim=4))
    host = SLCWATrainingLoop(model=model, triples_factory=tiny_factory)
    device = DeviceSLCWATrainingLoop(model=model, triples_factory=tiny_factory)
    batch = _first_batch(device, tiny_factory)
    calls = _score_calls(model, monkeypatch)
    model.eval()  # batch normalisation: the same statistics in both runs
    host_loss, _ = _loss_and_gradients(host, batch)
    device_loss, _ = _loss_and_gradients(device, batch)
    assert calls == [8, 8, 8, 8]
    torch.testing.assert_close(device_loss, host_loss)


def test_the_loss_weighter_moves_with_the_batches(tiny_factory):
    """A loss weighter's tensors are looked up with device indices, so a copy of them lives on the device."""
    weighter = RelationLossWeighter(torch.rand(tiny_factory.num_relations))
    instances = DeviceSLCWAInstances(
        mapped_triples=tiny_factory.mapped_triples,
        device="meta",  # no accelerator needed: a tensor left on the CPU would stay there
        batch_size=4,
        num_entities=tiny_factory.num_entities,
        num_relations=tiny_factory.num_relations,
        loss_weighter=weighter,
    )
    batch = next(iter(instances))
    assert {key: value.device.type for key, value in batch.items()} == dict.fromkeys(
        ["positives", "negatives", "pos_weights", "neg_weights"], "meta"
    )
    assert weighter.weights.device.type == "cpu"  # the user's weighter is left as it was


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize(
    ("model", "sampler", "options"),
    [
        ("VBKGC", "twins", dict(negative_sampler_kwargs=dict(filtered=True))),
        # nscaching keeps its caches on the host and draws there
        ("TransE", "nscaching", dict(negative_sampler_kwargs=dict(filtered=True))),
        ("VBKGC", "twins", dict(loss="softplus", weighted=True)),
    ],
    ids=["twins-filtered", "nscaching-filtered", "twins-weighted"],
)
def test_the_device_loop_trains_on_cuda(model, sampler, options):
    """Filters, host-side samplers and loss weighters work with batches on a GPU."""
    options = dict(options)
    if options.pop("weighted", False):
        # the relation ids of a nations triple: 55 relations
        options["training_loop_kwargs"] = dict(loss_weighter=RelationLossWeighter(torch.linspace(0.5, 2.0, 55)))
    result = _train("deviceslcwa", model=model, negative_sampler=sampler, device="cuda", **options)
    assert result.model.device.type == "cuda"
    assert len(result.losses) == 3 and all(torch.isfinite(torch.tensor(result.losses)))


@pytest.mark.parametrize(("batch_size", "message"), [(True, "got True."), (2.0, "got 2.0.")])
def test_refuses_a_batch_size_that_is_no_integer(tiny_factory, batch_size, message):
    """range(0, n, True) would make batches of one triple (PyKEEN's own loop refuses it, too)."""
    model = TransE(triples_factory=tiny_factory, embedding_dim=4)
    loop = DeviceSLCWATrainingLoop(model=model, triples_factory=tiny_factory)
    with pytest.raises(ValueError) as error:
        loop.train(triples_factory=tiny_factory, num_epochs=1, batch_size=batch_size, use_tqdm=False)
    assert str(error.value) == f"batch_size must be a positive integer, {message}"


def test_numpy_integers_are_integers(tiny_factory):
    import numpy as np

    model = TransE(triples_factory=tiny_factory, embedding_dim=4)
    loop = DeviceSLCWATrainingLoop(
        model=model,
        triples_factory=tiny_factory,
        negative_sampler="basic",
        negative_sampler_kwargs=dict(num_negs_per_pos=np.int64(2)),
    )
    losses = loop.train(triples_factory=tiny_factory, num_epochs=1, batch_size=np.int64(4), use_tqdm=False)
    assert len(losses) == 1
