"""Non-sampling training (NS-KGE): the decomposed and the chunked loss against the loss written out by hand."""

import re

import pytest
import torch
from pykeen.hpo import hpo_pipeline
from pykeen.losses import MarginRankingLoss, UnsupportedLabelSmoothingError, loss_resolver
from pykeen.models import RESCAL, ComplEx, DistMult, SimplE, TransE
from pykeen.pipeline import pipeline
from pykeen.regularizers import LpRegularizer
from pykeen.training import LCWATrainingLoop, training_loop_resolver

from pykeen_vbkgc import VBKGC, NoSamplingLoss, NoSamplingTrainingLoop, kernels
from pykeen_vbkgc.nosampling import bilinear_form, supports_bilinear_form

#: c+, c-, y+, y- of the hand-written loss; not the defaults, so that each of them is tested
WEIGHTS = dict(positive_weight=1.5, negative_weight=0.2, positive_target=-0.5, negative_target=-2.0)

#: the decomposed families, with the keyword arguments that make their score a bilinear form
BILINEAR_MODELS = {
    "DistMult": (DistMult, {}),
    "ComplEx": (ComplEx, {}),
    "RESCAL": (RESCAL, {}),
    "SimplE": (SimplE, {}),
    "TransE-L2squared": (TransE, dict(scoring_fct_norm=2, power_norm=True)),
}


@pytest.fixture(autouse=True)
def one_thread():
    """Run single-threaded: the tensors are tiny, and two OpenMP threads on a busy machine wait for each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def hand_written_loss(model, triples, loss: NoSamplingLoss, sides=("head", "tail")) -> torch.Tensor:
    """Score every query of the triples against all entities, densely, and add up the NS-KGE loss term by term."""
    known = {tuple(triple) for triple in triples.tolist()}
    entities = range(model.num_entities)
    per_query = []
    for side in sides:
        if side == "tail":
            queries = sorted({(h, r) for h, r, _ in known})
            scores = model.score_t(torch.as_tensor(queries))
            positives = [{e for e in entities if (h, r, e) in known} for h, r in queries]
        else:
            queries = sorted({(r, t) for _, r, t in known})
            scores = model.score_h(torch.as_tensor(queries))
            positives = [{e for e in entities if (e, r, t) in known} for r, t in queries]
        for row, positive in zip(scores, positives):
            total = 0.0
            for e in entities:
                if e in positive:
                    total = total + loss.positive_weight * (row[e] - loss.positive_target) ** 2
                else:
                    total = total + loss.negative_weight * (row[e] - loss.negative_target) ** 2
            per_query.append(total)
    return torch.stack(per_query).mean()


def one_batch(loop: NoSamplingTrainingLoop, triples_factory):
    """Return all queries of the training triples as one batch of the loop."""
    loader = loop._create_training_data_loader(triples_factory, sampler=None, batch_size=10_000, shuffle=False)
    (batch,) = list(loader)
    return batch


def loop_loss_and_gradients(loop: NoSamplingTrainingLoop, batch, parts: int = 1, **kwargs):
    """Run the loop's forward and backward passes on a batch (in ``parts`` sub-batches); return loss and gradients."""
    loop.model.zero_grad()
    size = batch["pairs"].shape[0]
    bounds = torch.linspace(0, size, parts + 1).round().long().tolist()
    total = sum(
        loop._forward_pass(batch, start, stop, size, label_smoothing=0.0, slice_size=None, **kwargs)
        for start, stop in zip(bounds, bounds[1:])
    )
    return total, gradients(loop.model)


def gradients(model) -> dict[str, torch.Tensor]:
    return {
        name: parameter.grad.clone()
        for name, parameter in model.named_parameters()
        if parameter.requires_grad and parameter.grad is not None
    }


def assert_same_gradients(actual: dict, expected: dict, tolerance: float = 1e-5) -> None:
    assert actual.keys() == expected.keys() and actual
    for name in expected:
        torch.testing.assert_close(actual[name], expected[name], rtol=tolerance, atol=tolerance, msg=name)


def test_registered_by_name():
    assert loss_resolver.lookup("nosampling") is NoSamplingLoss
    assert training_loop_resolver.lookup("nosampling") is NoSamplingTrainingLoop
    assert NoSamplingLoss.hpo_default["negative_weight"] == dict(type=float, low=1e-5, high=1e-1, log=True)


@pytest.mark.parametrize("name", BILINEAR_MODELS)
@pytest.mark.parametrize("side", ["head", "tail"])
def test_bilinear_form_reproduces_the_scores(tiny_factory, name, side):
    cls, kwargs = BILINEAR_MODELS[name]
    model = cls(triples_factory=tiny_factory, embedding_dim=4, random_seed=0, **kwargs).double()
    assert supports_bilinear_form(model)
    pairs = tiny_factory.mapped_triples[:, [0, 1]] if side == "tail" else tiny_factory.mapped_triples[:, [1, 2]]
    queries, candidates = bilinear_form(model, pairs, side=side)
    dense = model.score_t(pairs) if side == "tail" else model.score_h(pairs)
    torch.testing.assert_close(queries @ candidates.T, dense, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", BILINEAR_MODELS)
def test_decomposed_loss_equals_the_full_computation(tiny_factory, name):
    cls, kwargs = BILINEAR_MODELS[name]
    loss = NoSamplingLoss(**WEIGHTS)
    model = cls(triples_factory=tiny_factory, embedding_dim=4, loss=loss, random_seed=0, **kwargs).double()
    loop = NoSamplingTrainingLoop(model=model, triples_factory=tiny_factory)
    assert loop.strategy == "bilinear"
    value, decomposed = loop_loss_and_gradients(loop, one_batch(loop, tiny_factory))

    model.zero_grad()
    # the models' default regularizers see the same representation calls as in score_t and score_h
    expected = hand_written_loss(model, tiny_factory.mapped_triples, loss) + model.collect_regularization_term()
    expected.backward()
    assert value == pytest.approx(expected.item(), rel=1e-5, abs=1e-5)
    assert_same_gradients(decomposed, gradients(model))
    # and the dense form (all entities in one chunk, as in PyKEEN's LCWA loop) agrees, too
    dense = NoSamplingTrainingLoop(model=model, triples_factory=tiny_factory, strategy="chunked")
    dense_value, dense_gradients = loop_loss_and_gradients(dense, one_batch(dense, tiny_factory))
    assert dense_value == pytest.approx(value, rel=1e-5)
    assert_same_gradients(dense_gradients, decomposed)


def test_decomposed_loss_in_float32_on_many_entities():
    # many entities and large |q|^2 terms (TransE): the centred decomposition stays accurate in float32
    generator = torch.Generator().manual_seed(0)
    loss = NoSamplingLoss(negative_weight=1e-3, positive_target=0.0, negative_target=-3.0)
    queries = torch.randn(64, 32, generator=generator)
    candidates = torch.randn(5000, 32, generator=generator) + 3.0
    labels = (torch.rand(64, 5000, generator=generator) < 1e-3).float()
    # the augmented vectors of TransE with the squared L2 distance, see bilinear_form
    q_aug = torch.cat([-queries.square().sum(-1, keepdim=True), torch.ones(64, 1), 2 * queries], dim=-1)
    c_aug = torch.cat([torch.ones(5000, 1), -candidates.square().sum(-1, keepdim=True), candidates], dim=-1)
    value = loss.process_bilinear_scores(q_aug, c_aug, labels)
    expected = loss.process_lcwa_scores(-torch.cdist(queries.double(), candidates.double()).square(), labels.double())
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.parametrize("p", [1, 2])
def test_vbkgc_chunked_equals_unchunked_and_the_hand_written_loss(tiny_factory, monkeypatch, p):
    if p == 1:
        # the fused L1 kernels with their hand-written backward (used above a size threshold)
        monkeypatch.setattr(kernels, "_COMPILE_MIN_WORK", 0)
        monkeypatch.setattr(kernels, "_compiled", {})
    loss = NoSamplingLoss(**WEIGHTS)
    model = VBKGC(
        triples_factory=tiny_factory,
        features="random",
        feature_dim=8,
        embedding_dim=4,
        scoring_fct_norm=p,
        loss=loss,
        random_seed=0,
    ).double()
    assert not supports_bilinear_form(model)
    whole = NoSamplingTrainingLoop(model=model, triples_factory=tiny_factory, chunk_size=tiny_factory.num_entities)
    chunked = NoSamplingTrainingLoop(model=model, triples_factory=tiny_factory, chunk_size=4)
    assert whole.strategy == chunked.strategy == "chunked"
    batch = one_batch(whole, tiny_factory)
    value, expected_gradients = loop_loss_and_gradients(whole, batch)
    chunked_value, chunked_gradients = loop_loss_and_gradients(chunked, batch)
    assert chunked_value == pytest.approx(value, rel=1e-5)
    assert_same_gradients(chunked_gradients, expected_gradients)
    # chunks and sub-batches together: three sub-batches, each in chunks of 4 entities
    sub_value, sub_gradients = loop_loss_and_gradients(chunked, batch, parts=3)
    assert sub_value == pytest.approx(value, rel=1e-5)
    assert_same_gradients(sub_gradients, expected_gradients)

    model.zero_grad()
    expected = hand_written_loss(model, tiny_factory.mapped_triples, loss)
    expected.backward()
    assert value == pytest.approx(expected.item(), rel=1e-5)
    assert_same_gradients(expected_gradients, gradients(model))
    if p == 1:
        assert kernels._compiled["pairwise_l1_grad"] is not False


@pytest.mark.parametrize("regularizer", ["lp", "normlimit"])
def test_chunked_regularizes_as_the_unchunked_form(tiny_factory, regularizer):
    """The regularizer's term does not depend on the chunks: the unchunked form's, once per sub-batch.

    ``normlimit`` sums over the rows it sees (``lp`` averages): a term added per chunk would count the query side once
    per chunk with either.
    """
    loss = NoSamplingLoss(**WEIGHTS)
    model = TransE(
        triples_factory=tiny_factory,
        embedding_dim=4,
        loss=loss,
        regularizer=regularizer,
        regularizer_kwargs=dict(weight=0.5, max_norm=0.1) if regularizer == "normlimit" else dict(weight=0.5),
        random_seed=0,
    ).double()
    whole = NoSamplingTrainingLoop(model=model, triples_factory=tiny_factory, chunk_size=tiny_factory.num_entities)
    chunked = NoSamplingTrainingLoop(model=model, triples_factory=tiny_factory, chunk_size=4)
    batch = one_batch(whole, tiny_factory)
    value, expected_gradients = loop_loss_and_gradients(whole, batch)

    model.zero_grad()
    term = hand_written_loss(model, tiny_factory.mapped_triples, loss)
    # the lookups of the hand-written loss: score_t and score_h, once per side
    regularization = model.collect_regularization_term()
    assert regularization.item() > 0.1 * term.item()  # the term matters
    (term + regularization).backward()
    assert value == pytest.approx((term + regularization).item(), rel=1e-5)
    assert_same_gradients(expected_gradients, gradients(model))

    chunked_value, chunked_gradients = loop_loss_and_gradients(chunked, batch)
    assert chunked_value == pytest.approx(value, rel=1e-5)
    assert_same_gradients(chunked_gradients, expected_gradients)
    # with sub-batches: as PyKEEN's sub-batching of the unchunked form (one term per sub-batch)
    sub_value, sub_gradients = loop_loss_and_gradients(whole, batch, parts=3)
    chunked_sub_value, chunked_sub_gradients = loop_loss_and_gradients(chunked, batch, parts=3)
    assert chunked_sub_value == pytest.approx(sub_value, rel=1e-5)
    assert_same_gradients(chunked_sub_gradients, sub_gradients)
    # a regularizer that no lookup reaches adds a constant 0 (no backward pass through it)
    model.unused = LpRegularizer()
    assert loop_loss_and_gradients(chunked, batch)[0] == pytest.approx(value, rel=1e-5)


def test_chunked_refuses_a_regularized_model_that_is_no_ermodel(tiny_factory):
    from pykeen.models import CooccurrenceFilteredModel

    loss = NoSamplingLoss(**WEIGHTS)
    model = CooccurrenceFilteredModel(
        triples_factory=tiny_factory, base="transe", embedding_dim=4, regularizer="lp", loss=loss, random_seed=0
    )
    with pytest.raises(ValueError) as error:
        NoSamplingTrainingLoop(model=model, triples_factory=tiny_factory)
    assert str(error.value) == (
        "strategy='chunked' regularizes the lookups of ERModel's score_t and score_h, but CooccurrenceFilteredModel "
        "is no ERModel; train it without a regularizer."
    )
    # without a regularizer, it trains in chunks
    model = CooccurrenceFilteredModel(triples_factory=tiny_factory, base="transe", embedding_dim=4, loss=loss)
    assert NoSamplingTrainingLoop(model=model, triples_factory=tiny_factory).strategy == "chunked"


def test_chunk_size_from_slice_size_and_no_backward(tiny_factory):
    loss = NoSamplingLoss(**WEIGHTS)
    model = TransE(triples_factory=tiny_factory, embedding_dim=4, loss=loss, random_seed=0).double()
    loop = NoSamplingTrainingLoop(model=model, triples_factory=tiny_factory, target="tail")
    assert loop.strategy == "chunked"  # the L1 distance of PyKEEN's TransE is no bilinear form
    batch = one_batch(loop, tiny_factory)
    # PyKEEN's slice_size sets the chunk size; without backward (the evaluation-loss callback) no gradient appears
    model.zero_grad()
    size = batch["pairs"].shape[0]
    value = loop._forward_pass(batch, 0, size, size, label_smoothing=0.0, slice_size=2, backward=False)
    assert not gradients(model)
    expected = hand_written_loss(model, tiny_factory.mapped_triples, loss, sides=("tail",))
    assert value == pytest.approx(expected.item(), rel=1e-5)
    # a negative slice_size made every chunk empty: no training, a loss of 0
    for bad in (-3, 2.5):
        with pytest.raises(ValueError) as error:
            loop._forward_pass(batch, 0, size, size, label_smoothing=0.0, slice_size=bad, backward=False)
        assert str(error.value) == f"slice_size must be a positive integer, got {bad}."


def test_pykeen_lcwa_loop_with_the_loss(tiny_factory):
    # PyKEEN's own LCWA loop: the same loss from dense scores (tails only)
    loss = NoSamplingLoss(**WEIGHTS)
    model = TransE(triples_factory=tiny_factory, embedding_dim=4, loss=loss, random_seed=0).double()
    loop = LCWATrainingLoop(model=model, triples_factory=tiny_factory)
    (batch,) = list(loop._create_training_data_loader(tiny_factory, sampler=None, batch_size=100, shuffle=False))
    value = loop._process_batch(batch, 0, batch["pairs"].shape[0])
    expected = hand_written_loss(model, tiny_factory.mapped_triples, loss, sides=("tail",))
    assert value.item() == pytest.approx(expected.item(), rel=1e-10)
    # and by name in the pipeline
    result = pipeline(
        dataset="nations",
        model="DistMult",
        model_kwargs=dict(embedding_dim=16),
        training_loop="lcwa",
        loss="nosampling",
        loss_kwargs=dict(negative_weight=0.1),
        optimizer_kwargs=dict(lr=3e-2),
        training_kwargs=dict(num_epochs=6, batch_size=256, use_tqdm=False),
        evaluation_kwargs=dict(use_tqdm=False),
        random_seed=0,
    )
    assert isinstance(result.model.loss, NoSamplingLoss)
    assert result.losses[-1] < 0.9 * result.losses[0]


@pytest.mark.parametrize(
    ("model", "model_kwargs", "loss_kwargs", "strategy"),
    [
        ("TransE", dict(scoring_fct_norm=2, power_norm=True), dict(negative_target=-3.0), "bilinear"),
        ("TransE", dict(), dict(negative_target=-3.0), "chunked"),
        ("vbkgc", dict(features="random", feature_dim=8), dict(negative_target=-5.0), "chunked"),
    ],
    ids=["TransE-L2squared", "TransE-L1", "VBKGC"],
)
def test_loss_decreases_in_training(model, model_kwargs, loss_kwargs, strategy):
    result = pipeline(
        dataset="nations",
        model=model,
        model_kwargs=dict(embedding_dim=16, **model_kwargs),
        training_loop="nosampling",
        loss="nosampling",
        loss_kwargs=dict(negative_weight=0.1, positive_target=0.0, **loss_kwargs),
        optimizer_kwargs=dict(lr=3e-2),
        training_kwargs=dict(num_epochs=6, batch_size=256, use_tqdm=False),
        evaluation_kwargs=dict(use_tqdm=False),
        random_seed=0,
    )
    assert result.training_loop.strategy == strategy
    losses = result.losses
    assert len(losses) == 6 and all(loss > 0 for loss in losses)
    assert losses[-1] < 0.8 * losses[0]


def test_hpo_pipeline_by_name(tmp_path):
    result = hpo_pipeline(
        dataset="nations",
        model="DistMult",
        model_kwargs=dict(embedding_dim=8),
        training_loop="nosampling",
        loss="nosampling",
        training_kwargs=dict(num_epochs=1, batch_size=512, use_tqdm=False),
        evaluation_kwargs=dict(use_tqdm=False),
        n_trials=2,
    )
    trials = result.study.trials
    assert len(trials) == 2 and all(trial.state.name == "COMPLETE" for trial in trials)
    # the loss's weight comes from its hpo_default range
    for trial in trials:
        assert 1e-5 <= trial.params["loss.negative_weight"] <= 1e-1


LOSS_ERRORS = [
    (dict(positive_weight=-1.0), "positive_weight must be positive, got -1.0."),
    (dict(negative_weight=0.0), "negative_weight must be positive, got 0.0."),
    (dict(negative_weight=float("nan")), "negative_weight must be a finite number, got nan."),
    (dict(positive_weight="1"), "positive_weight must be a finite number, got '1'."),
    (dict(positive_target=float("inf")), "positive_target must be a finite number, got inf."),
    (
        dict(positive_target=0.0, negative_target=0.0),
        "positive_target must be greater than negative_target (PyKEEN ranks higher scores first), got "
        "positive_target=0.0 and negative_target=0.0.",
    ),
    (dict(reduction="max"), "reduction must be 'mean' or 'sum', got 'max'."),
]


@pytest.mark.parametrize(("kwargs", "message"), LOSS_ERRORS, ids=[message[:30] for _, message in LOSS_ERRORS])
def test_loss_argument_errors(kwargs, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        NoSamplingLoss(**kwargs)


def test_loss_refuses_sampled_negatives_and_label_smoothing():
    loss = NoSamplingLoss()
    message = (
        "NoSamplingLoss scores every entity, not sampled negatives: use training_loop='nosampling' (or 'lcwa') "
        "instead of 'slcwa', and no negative_sampler."
    )
    with pytest.raises(NotImplementedError, match=f"^{re.escape(message)}$"):
        loss.process_slcwa_scores(torch.zeros(2, 1), torch.zeros(2, 3))
    with pytest.raises(UnsupportedLabelSmoothingError):
        loss.process_lcwa_scores(torch.zeros(2, 3), torch.zeros(2, 3), label_smoothing=0.1)


def loop_error(tiny_factory, model_cls=DistMult, model_kwargs=None, loss=None, **kwargs) -> str:
    model = model_cls(
        triples_factory=tiny_factory, embedding_dim=4, loss=loss or NoSamplingLoss(), **(model_kwargs or {})
    )
    with pytest.raises(ValueError) as info:
        NoSamplingTrainingLoop(model=model, triples_factory=tiny_factory, **kwargs)
    return str(info.value)


def test_training_loop_argument_errors(tiny_factory):
    assert loop_error(tiny_factory, target="relation") == "target must be 'head', 'tail' or 'both', got 'relation'."
    assert loop_error(tiny_factory, strategy="dense") == (
        "strategy must be 'auto', 'bilinear' or 'chunked', got 'dense'."
    )
    assert loop_error(tiny_factory, chunk_size=0) == "chunk_size must be a positive integer or None, got 0."
    assert loop_error(tiny_factory, loss=MarginRankingLoss()) == (
        "training_loop='nosampling' needs loss='nosampling' (NoSamplingLoss), but the model's loss is "
        "MarginRankingLoss; pass loss='nosampling' to pipeline()."
    )
    assert loop_error(
        tiny_factory,
        model_cls=TransE,
        strategy="bilinear",
        loss=NoSamplingLoss(positive_target=0.0, negative_target=-3.0),
    ) == (
        "strategy='bilinear' needs a model whose score is a supported bilinear form (DistMult, ComplEx, RESCAL, "
        "SimplE, TransE with scoring_fct_norm=2 and power_norm=True), got TransE with TransEInteraction; use "
        "strategy='chunked' or 'auto'."
    )
    assert loop_error(tiny_factory, model_cls=VBKGC, model_kwargs=dict(features="random", feature_dim=8)) == (
        "VBKGCInteraction scores are negative distances (at most 0), so positive_target=1.0 cannot be reached; "
        "pass loss_kwargs with positive_target=0 and a negative negative_target (e.g. positive_target=0.0, "
        "negative_target=-3.0)."
    )


def test_pipeline_error_without_the_loss():
    with pytest.raises(ValueError, match="needs loss='nosampling'"):
        pipeline(dataset="nations", model="DistMult", training_loop="nosampling", training_kwargs=dict(num_epochs=1))
