"""Scores of the VBKGC model against hand-computed values."""

import io
import itertools
import logging
import math
import sys
import threading

import pytest
import torch
from pykeen.models import ERModel
from pykeen.pipeline import pipeline
from pykeen.regularizers import Regularizer
from pykeen.training import SLCWATrainingLoop
from torch.nn import functional

from pykeen_vbkgc import VBKGC, EntityFeatures, save_features
from pykeen_vbkgc import kernels as kernels_module
from pykeen_vbkgc.features import FeaturesFileError
from pykeen_vbkgc.interaction import SCORE_TERMS
from pykeen_vbkgc.representation import encode_twins


def parameters(model: VBKGC):
    """Return the raw tensors: structural S, features F, projection W, relations R."""
    struct_view, _, modal_view = model.entity_representations
    structural = struct_view.base._embeddings.weight.detach()
    features = modal_view.base.base._embeddings.weight.detach()
    # the effective projection W = s V (see projection_lr_scale)
    transformation = modal_view.base.transformation
    projection = transformation.weight.detach() * transformation.scale
    relations = model.relation_representations[0]._embeddings.weight.detach()
    return structural, features, projection, relations


def expected_score(
    model: VBKGC,
    h,
    r,
    t,
    *,
    p,
    normalize,
    terms=SCORE_TERMS,
    h_struct=None,
    t_struct=None,
    normalize_relations=None,
    weights=None,
):
    """Hand-compute Eq. 9 term by term; ``*_struct`` overrides the structural entity of the cross-modal terms."""
    structural, features, projection, relations = parameters(model)

    def n(x):
        return functional.normalize(x, dim=-1) if normalize else x

    h_s, t_s = structural[h], structural[t]
    h_m, t_m = projection @ features[h], projection @ features[t]
    h_so = structural[h if h_struct is None else h_struct]
    t_so = structural[t if t_struct is None else t_struct]
    if normalize_relations is None:
        normalize_relations = model.interaction.normalize_relations
    rel = functional.normalize(relations[r], dim=-1) if normalize_relations else relations[r]
    arguments = dict(
        ss=(h_s, t_s),
        mm=(h_m, t_m),
        sm=(h_so, t_m),
        ms=(h_m, t_so),
        all=(h_so + h_m, t_so + t_m),
    )
    total = 0.0
    for term in terms:
        head, tail = arguments[term]
        total -= (weights or {}).get(term, 1.0) * torch.linalg.vector_norm(n(head) + rel - n(tail), ord=p).item()
    return total


@pytest.fixture(params=list(itertools.product([1, 2], [True, False])), ids=lambda x: f"p{x[0]}-norm{x[1]}")
def model(request, tiny_factory, tiny_features) -> VBKGC:
    p, normalize = request.param
    return VBKGC(
        triples_factory=tiny_factory,
        features=tiny_features,
        embedding_dim=4,
        scoring_fct_norm=p,
        normalize=normalize,
        random_seed=0,
    )


def test_score_hrt_equals_hand_computed_five_terms(model):
    hrt = torch.as_tensor([[0, 0, 1], [2, 1, 3], [5, 0, 0], [1, 1, 5]])
    scores = model.score_hrt(hrt)
    assert scores.shape == (4, 1)
    p, normalize = model.interaction.p, model.interaction.normalize
    for (h, r, t), score in zip(hrt.tolist(), scores[:, 0].tolist()):
        assert score == pytest.approx(expected_score(model, h, r, t, p=p, normalize=normalize), rel=1e-5)


@pytest.mark.parametrize(
    "terms",
    [("ss",), ("all",), ("ss", "mm"), ("sm", "ms"), ("mm",), ("ms", "all"), SCORE_TERMS],
    ids=lambda terms: "+".join(terms),
)
@pytest.mark.parametrize("p", [1, 2])
def test_score_terms_subsets(tiny_factory, tiny_features, terms, p):
    model = VBKGC(
        triples_factory=tiny_factory,
        features=tiny_features,
        embedding_dim=4,
        scoring_fct_norm=p,
        score_terms=",".join(terms),
        random_seed=1,
    )
    assert model.score_terms == terms
    hrt = torch.as_tensor([[0, 0, 1], [3, 1, 4]])
    for (h, r, t), score in zip(hrt.tolist(), model.score_hrt(hrt)[:, 0].tolist()):
        assert score == pytest.approx(expected_score(model, h, r, t, p=p, normalize=True, terms=terms), rel=1e-5)


@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("normalize_relations", [None, True, False])
def test_normalize_relations(tiny_factory, tiny_features, p, normalize_relations):
    model = VBKGC(
        triples_factory=tiny_factory,
        features=tiny_features,
        embedding_dim=4,
        scoring_fct_norm=p,
        normalize=True,
        normalize_relations=normalize_relations,
        random_seed=2,
    )
    # None: the preset's (best: True)
    assert model.interaction.normalize_relations is (normalize_relations is not False)
    hrt = torch.as_tensor([[0, 0, 1], [2, 1, 3], [5, 0, 0]])
    expected = [
        expected_score(model, h, r, t, p=p, normalize=True, normalize_relations=normalize_relations)
        for h, r, t in hrt.tolist()
    ]
    assert model.score_hrt(hrt)[:, 0].tolist() == pytest.approx(expected, rel=1e-5)
    assert model.score_t(hrt[:, :2])[torch.arange(3), hrt[:, 2]].tolist() == pytest.approx(expected, rel=1e-5)
    assert model.score_h(hrt[:, 1:])[torch.arange(3), hrt[:, 0]].tolist() == pytest.approx(expected, rel=1e-5)
    # the self-candidate (e, r, e): ss, mm and all reduce to the norm of the (normalised) relation vector, whatever e
    unimodal = VBKGC(
        triples_factory=tiny_factory,
        features=tiny_features,
        embedding_dim=4,
        scoring_fct_norm=p,
        normalize_relations=normalize_relations,
        score_terms="ss,mm,all",
        random_seed=2,
    )
    relation = parameters(unimodal)[3][0]
    if unimodal.interaction.normalize_relations:
        relation = functional.normalize(relation, dim=-1)
    norm = torch.linalg.vector_norm(relation, ord=p).item()
    self_scores = unimodal.score_hrt(torch.as_tensor([[e, 0, e] for e in range(unimodal.num_entities)]))[:, 0]
    assert self_scores.tolist() == pytest.approx([-3 * norm] * unimodal.num_entities, rel=1e-5)


@pytest.mark.parametrize("p", [1, 2])
def test_term_weights_scale_each_term(tiny_factory, tiny_features, p):
    weights = dict(ss=2.0, mm=0.0, sm=0.5, all=0.25)
    model = VBKGC(
        triples_factory=tiny_factory,
        features=tiny_features,
        embedding_dim=4,
        scoring_fct_norm=p,
        term_weights="ss=2, mm=0, sm=0.5, all=0.25",
        random_seed=3,
    )
    assert model.interaction.term_weights == (2.0, 0.0, 0.5, 1.0, 0.25)
    hrt = torch.as_tensor([[0, 0, 1], [2, 1, 3], [5, 0, 0]])
    expected = [expected_score(model, h, r, t, p=p, normalize=True, weights=weights) for h, r, t in hrt.tolist()]
    assert model.score_hrt(hrt)[:, 0].tolist() == pytest.approx(expected, rel=1e-5)
    # evaluation (1-to-all) scores agree, including the concatenated-L1 path for p = 1
    assert model.score_t(hrt[:, :2])[torch.arange(3), hrt[:, 2]].tolist() == pytest.approx(expected, rel=1e-5)
    assert model.score_h(hrt[:, 1:])[torch.arange(3), hrt[:, 0]].tolist() == pytest.approx(expected, rel=1e-5)


def test_mean_term_weights_average_the_scored_terms(tiny_factory, tiny_features):
    hrt = torch.as_tensor([[0, 0, 1], [2, 1, 3], [5, 0, 0]])
    for score_terms in (None, "ss,all", "ss"):
        kwargs = dict(triples_factory=tiny_factory, features=tiny_features, embedding_dim=4, score_terms=score_terms)
        summed = VBKGC(**kwargs, term_weights={}, random_seed=3)
        mean = VBKGC(**kwargs, term_weights=" Mean ", random_seed=3)
        n = len(summed.score_terms)
        assert mean.interaction.term_weights == (1 / n,) * n
        torch.testing.assert_close(mean.score_hrt(hrt), summed.score_hrt(hrt) / n)


@pytest.mark.parametrize(
    ("term_weights", "message"),
    [
        (dict(xx=1.0), "term_weights names term(s) ['xx'] that are not scored"),
        ("mm:0.5", "term_weights must look like 'mm=0.5,all=2'"),
        (dict(mm=-1.0), "term_weights must be finite and non-negative"),
        (dict(ss=0, mm=0, sm=0, ms=0, all=0), "term_weights must not all be zero."),
    ],
)
def test_bad_term_weights(tiny_factory, tiny_features, term_weights, message):
    with pytest.raises(ValueError) as info:
        VBKGC(triples_factory=tiny_factory, features=tiny_features, embedding_dim=4, term_weights=term_weights)
    assert str(info.value).startswith(message)


def test_score_t_and_score_h_equal_score_hrt_over_all_candidates(model):
    num_entities = model.num_entities
    hr = torch.as_tensor([[0, 0], [3, 1], [5, 1]])
    scores_t = model.score_t(hr)
    all_t = torch.cat(
        [torch.stack([hr[:, 0].repeat_interleave(num_entities), hr[:, 1].repeat_interleave(num_entities)], 1)], 0
    )
    full = torch.cat([all_t, torch.arange(num_entities).repeat(hr.shape[0])[:, None]], dim=1)
    expected_t = model.score_hrt(full).view(hr.shape[0], num_entities)
    torch.testing.assert_close(scores_t, expected_t, rtol=1e-5, atol=1e-5)

    rt = torch.as_tensor([[0, 1], [1, 4]])
    scores_h = model.score_h(rt)
    heads = torch.arange(num_entities).repeat(rt.shape[0])
    full = torch.stack([heads, rt[:, 0].repeat_interleave(num_entities), rt[:, 1].repeat_interleave(num_entities)], 1)
    torch.testing.assert_close(scores_h, model.score_hrt(full).view(rt.shape[0], num_entities), rtol=1e-5, atol=1e-5)


def test_score_t_and_score_h_with_a_candidate_matrix_equal_the_generic_path(model):
    """Each query's own candidates (as NSCaching scores them) go through score_hrt; the values are PyKEEN's."""
    from pykeen.models import ERModel

    candidates = torch.as_tensor([[0, 2, 2, 5], [1, 3, 4, 0]])
    hr, rt = torch.as_tensor([[0, 0], [3, 1]]), torch.as_tensor([[1, 2], [0, 5]])
    expected_t = ERModel.score_t(model, hr_batch=hr, tails=candidates)
    expected_h = ERModel.score_h(model, rt_batch=rt, heads=candidates)
    assert expected_t.shape == expected_h.shape == (2, 4)
    torch.testing.assert_close(model.score_t(hr, tails=candidates), expected_t, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(model.score_h(rt, heads=candidates), expected_h, rtol=1e-5, atol=1e-5)


def test_compiled_kernels_equal_eager(tiny_factory, tiny_features, monkeypatch):
    """The torch.compile'd fast paths (used above a size threshold) compute the same scores."""
    model = VBKGC(
        triples_factory=tiny_factory, features=tiny_features, embedding_dim=4, scoring_fct_norm=1, random_seed=0
    )
    hrt = torch.as_tensor([[h, r, t] for h in range(6) for r in range(2) for t in range(6)])
    with torch.no_grad():
        eager_hrt, eager_t = model.score_hrt(hrt), model.score_t(hrt[:, :2])
    monkeypatch.setattr(kernels_module, "_COMPILE_MIN_WORK", 0)
    monkeypatch.setattr(kernels_module, "_compiled", {})
    with torch.no_grad():
        compiled_hrt, compiled_t = model.score_hrt(hrt), model.score_t(hrt[:, :2])
    assert kernels_module._compiled["term_distances_forward_p1"] is not False
    assert kernels_module._compiled["pairwise_l1_distance"] is not False
    torch.testing.assert_close(compiled_hrt, eager_hrt, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(compiled_t, eager_t, rtol=1e-5, atol=1e-5)
    # gradients flow through the compiled training path
    model.score_hrt(hrt).sum().backward()
    assert model.entity_representations[0].base._embeddings.weight.grad.abs().sum() > 0


def test_twins_negative_score_swaps_only_the_modality(tiny_factory, tiny_features):
    model = VBKGC(
        triples_factory=tiny_factory, features=tiny_features, embedding_dim=4, scoring_fct_norm=1, random_seed=3
    )
    n = model.num_entities
    h, r, t, t_new, h_new = 0, 1, 2, 4, 5
    tail_twins = encode_twins(torch.as_tensor(t), torch.as_tensor(t_new), n).item()
    head_twins = encode_twins(torch.as_tensor(h), torch.as_tensor(h_new), n).item()
    scores = model.score_hrt(torch.as_tensor([[h, r, tail_twins], [head_twins, r, t]]))[:, 0].tolist()
    # tail: ss, mm with t'; sm uses t'_m; ms and all use the original t_s
    assert scores[0] == pytest.approx(expected_score(model, h, r, t_new, p=1, normalize=True, t_struct=t), rel=1e-5)
    assert scores[1] == pytest.approx(expected_score(model, h_new, r, t, p=1, normalize=True, h_struct=h), rel=1e-5)
    # and it differs from the plain negative, which replaces the structure in the cross-modal terms too
    plain = model.score_hrt(torch.as_tensor([[h, r, t_new]]))[0, 0].item()
    assert plain == pytest.approx(expected_score(model, h, r, t_new, p=1, normalize=True), rel=1e-5)
    assert plain != pytest.approx(scores[0], rel=1e-3)


def test_features_are_frozen_and_projection_learns(tiny_factory, tiny_features):
    model = VBKGC(triples_factory=tiny_factory, features=tiny_features, embedding_dim=4, random_seed=0)
    _, features, projection, _ = parameters(model)
    torch.testing.assert_close(features, tiny_features)
    # re-initialisation (as the pipeline does it) keeps the frozen features
    model.reset_parameters_()
    model.reset_parameters_()
    torch.testing.assert_close(parameters(model)[1], tiny_features)
    model.score_hrt(torch.as_tensor([[0, 0, 1], [2, 1, 3]])).sum().backward()
    modal = model.entity_representations[2].base
    assert not modal.base._embeddings.weight.requires_grad
    assert modal.transformation.weight.grad is not None and modal.transformation.weight.grad.abs().sum() > 0
    assert projection.shape == (4, 6)


def test_features_file_is_aligned_by_label(tiny_factory, tiny_features, tmp_path, caplog):
    labels = list(tiny_factory.entity_to_id)  # sorted labels a..f
    # file order differs from the ids, one entity ("c") is missing and one label is unknown to the graph
    order = ["f", "a", "e", "b", "d", "zzz"]
    vectors = torch.stack(
        [tiny_features[tiny_factory.entity_to_id[x]] if x in labels else torch.ones(6) for x in order]
    )
    path = save_features(tmp_path / "features.safetensors", order, vectors, metadata=dict(encoder="test"))
    with caplog.at_level(logging.INFO, logger="pykeen_vbkgc.model"):
        model = VBKGC(triples_factory=tiny_factory, features=path, embedding_dim=4, random_seed=0)
    # 5 of 6 is below the warning threshold of 90 %, above the error threshold of 50 %
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert warnings == [
        f"the features file {path} covers only 5 of 6 entities (83.3%); the other 1 get random features."
    ]
    assert "1 labels in the features are not in the graph and are ignored" in caplog.text
    _, features, _, _ = parameters(model)
    for label in ["a", "b", "d", "e", "f"]:
        torch.testing.assert_close(
            features[tiny_factory.entity_to_id[label]], tiny_features[tiny_factory.entity_to_id[label]]
        )
    missing = features[tiny_factory.entity_to_id["c"]]
    assert torch.isfinite(missing).all() and missing.abs().sum() > 0
    # an EntityFeatures object works the same way
    same = VBKGC(
        triples_factory=tiny_factory,
        features=EntityFeatures(labels=order, vectors=vectors),
        embedding_dim=4,
        random_seed=0,
    )
    torch.testing.assert_close(parameters(same)[1], features)


def test_random_features_for_the_ablation(tiny_factory):
    model = VBKGC(triples_factory=tiny_factory, features=None, embedding_dim=4, random_seed=0)
    features = parameters(model)[1]
    assert features.shape == (6, 768)
    bound = (6 / 768) ** 0.5  # pykeen.nn.init.xavier_uniform_ bounds by sqrt(6 / dim)
    assert features.abs().max() <= bound and features.std() > bound / 4
    assert VBKGC(triples_factory=tiny_factory, feature_dim=10, embedding_dim=4).entity_representations[
        2
    ].base.base.shape == (10,)


@pytest.mark.parametrize(
    ("features", "kwargs", "message"),
    [
        (torch.randn(5, 6), {}, "features has 5 rows but the triples factory has 6 entities"),
        (torch.randn(6), {}, "must be 2-D"),
        (torch.randn(6, 0), {}, "dimension 0"),
        (torch.randint(0, 3, (6, 4)), {}, "floating point"),
        (torch.full((6, 4), float("nan")), {}, "NaN or infinite values, or values beyond float32's range, in 6 rows"),
        # finite as float64, infinite as the model's float32
        (torch.full((6, 4), 1e300, dtype=torch.float64), {}, "values beyond float32's range, in 6 rows"),
        (torch.randn(6, 4), dict(feature_dim=8), "feature_dim=8 does not match the features' dimension 4"),
        (torch.randn(6, 4), dict(score_terms=["ss", "xx"]), r"Unknown score term\(s\) \['xx'\]"),
        (torch.randn(6, 4), dict(score_terms=[]), "non-empty subset"),
        (torch.randn(6, 4), dict(scoring_fct_norm=0.5), "a number from 1 to 64, or inf"),
    ],
)
def test_bad_input_raises_clear_errors(tiny_factory, features, kwargs, message):
    with pytest.raises(ValueError, match=message):
        VBKGC(triples_factory=tiny_factory, features=features, embedding_dim=4, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(embedding_dim=0), "embedding_dim must be a positive integer, got 0."),
        (dict(embedding_dim=-3), "embedding_dim must be a positive integer, got -3."),
        (dict(embedding_dim=4, feature_dim=0), "feature_dim must be a positive integer, got 0."),
        (dict(embedding_dim=2.5), "embedding_dim must be a positive integer, got 2.5."),
    ],
)
def test_bad_dimensions_are_refused_before_anything_is_built(tiny_factory, caplog, kwargs, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        VBKGC(triples_factory=tiny_factory, features="random", **kwargs)
    # refused before the features are resolved: no "random features" warning for a model that is never built
    assert not caplog.records


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            dict(interaction_kwargs=dict(p=1)),
            "VBKGC builds its own interaction from its arguments scoring_fct_norm, normalize, normalize_relations, "
            "score_terms and term_weights; it takes no interaction_kwargs.",
        ),
        (
            dict(interaction="transe"),
            "VBKGC builds its own interaction from its arguments scoring_fct_norm, normalize, normalize_relations, "
            "score_terms and term_weights; it takes no interaction.",
        ),
        # PyKEEN's ERModel would ignore these two silently (VBKGC passes its own representations)
        (
            dict(entity_representations_kwargs=dict(shape=5)),
            "VBKGC builds its own entity representations from its arguments embedding_dim, features and "
            "entity_initializer; it takes no entity_representations_kwargs.",
        ),
        (
            dict(relation_representations="lowrank"),
            "VBKGC builds its own relation representations from its arguments embedding_dim and "
            "relation_initializer; it takes no relation_representations.",
        ),
    ],
)
def test_the_interaction_and_representations_of_ermodel_are_refused(tiny_factory, caplog, kwargs, message):
    with pytest.raises(TypeError) as error:
        VBKGC(triples_factory=tiny_factory, features="random", embedding_dim=4, **kwargs)
    assert str(error.value) == message
    # refused before anything is built: no "random features" warning
    assert not caplog.records
    # the same message through PyKEEN's pipeline
    with pytest.raises(TypeError) as error:
        pipeline(
            training=tiny_factory,
            testing=tiny_factory,
            model="vbkgc",
            model_kwargs=dict(features="random", embedding_dim=4, **kwargs),
            training_kwargs=dict(num_epochs=1),
            random_seed=0,
        )
    assert str(error.value) == message


def test_features_without_any_matching_label(tiny_factory, tmp_path):
    path = save_features(tmp_path / "other.safetensors", ["x", "y"], torch.randn(2, 3))
    with pytest.raises(FeaturesFileError, match="None of the labels in the features file .*other.safetensors matches"):
        VBKGC(triples_factory=tiny_factory, features=path)
    with pytest.raises(FeaturesFileError, match="not found"):
        VBKGC(triples_factory=tiny_factory, features=tmp_path / "missing.safetensors")
    with pytest.raises(TypeError, match="features must be a tensor"):
        VBKGC(triples_factory=tiny_factory, features=[[1.0, 2.0]])


def _mixed_batch(num_entities: int, num_rows: int = 60) -> torch.Tensor:
    """Plain triples, tail-twins and head-twins negatives of a graph with two relations."""
    generator = torch.Generator().manual_seed(4)
    hrt = torch.randint(0, num_entities, (num_rows, 3), generator=generator)
    hrt[:, 1] %= 2
    replacements = torch.randint(0, num_entities, (num_rows,), generator=generator)
    hrt[::3, 2] = encode_twins(hrt[::3, 2], replacements[::3], num_entities)
    hrt[1::3, 0] = encode_twins(hrt[1::3, 0], replacements[1::3], num_entities)
    return hrt


def test_unit_rows_are_normalize_with_a_shorter_backward():
    """unit_rows: functional.normalize's values, autograd's gradients (zero and clamped rows too), six operators."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Counting(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.ops = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.ops.append(str(func.overloadpacket))
            return func(*args, **(kwargs or {}))

    x = torch.randn(7, 3, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x[0, 0], x[1, 1] = 0.0, 1e-14  # a zero row, and one whose norm is clamped to 1e-12
    grad = torch.randn_like(x)
    ours, theirs = x.clone().requires_grad_(), x.clone().requires_grad_()
    values = kernels_module.unit_rows(ours)
    assert torch.equal(values, functional.normalize(theirs, p=2, dim=-1))
    with Counting() as counting:
        values.backward(grad)
    functional.normalize(theirs, p=2, dim=-1).backward(grad)
    torch.testing.assert_close(ours.grad, theirs.grad, rtol=1e-12, atol=1e-12)
    assert len([op for op in counting.ops if op != "aten.detach"]) == 6


@pytest.mark.parametrize("dense", [False, True], ids=["cpu-path", "dense-path"])
def test_regularizer_of_the_structural_and_relation_embeddings(tiny_factory, tiny_features, monkeypatch, dense):
    """As TransE's: ``regularizer="lp"`` regularises the entity (structural) and relation embeddings it reads."""
    monkeypatch.setattr(kernels_module, "_DENSE_ON_CPU", dense)
    model = VBKGC(
        triples_factory=tiny_factory,
        features=tiny_features,
        embedding_dim=4,
        regularizer="lp",
        regularizer_kwargs=dict(weight=0.5, p=2.0),
        random_seed=0,
    )
    with torch.no_grad():  # reading the tables with gradients would add to the terms
        structural = model.entity_representations[0].base(indices=None)
        relations = model.relation_representations[0](indices=None)
    # LpRegularizer: the weight times the mean L2 norm of the rows read; a step reads every row of both tables
    entity_term = 0.5 * structural.norm(dim=1).mean()
    relation_term = 0.5 * relations.norm(dim=1).mean()
    hrt = _mixed_batch(model.num_entities)
    model.train()
    model.score_hrt(hrt[:30])
    torch.testing.assert_close(model.collect_regularization_term().squeeze(), entity_term + relation_term)
    # the negatives of the same step share the entity tables: only the relations are read again
    model.score_hrt(hrt[30:])
    torch.testing.assert_close(model.collect_regularization_term().squeeze(), relation_term)
    # nothing in evaluation
    model.eval()
    with torch.no_grad():
        model.score_t(tiny_factory.mapped_triples[:5, :2])  # plain ids: twins ids are for score_hrt only
    assert model.collect_regularization_term() == 0


@pytest.mark.parametrize("dense", [False, True], ids=["cpu-path", "dense-path"])
def test_sub_batches_train_as_whole_batches(tiny_factory, tiny_features, monkeypatch, dense):
    r"""Sub-batches call backward before the optimizer step: no cached entity table may outlive its graph.

    On the accelerators' path each call builds its own piece table (with the twins sums) from the cached
    $\mathbf{e}_s$ and $\mathbf{e}_m$, so a backward through that table must drop them as well.
    """
    monkeypatch.setattr(kernels_module, "_DENSE_ON_CPU", dense)
    losses, positives = {}, []
    for sub_batch_size in (None, 3):
        model = VBKGC(triples_factory=tiny_factory, features=tiny_features, embedding_dim=4, random_seed=0)
        score_hrt = model.score_hrt
        monkeypatch.setattr(
            model, "score_hrt", lambda hrt, score_hrt=score_hrt, **kwargs: positives.append(len(hrt)) or score_hrt(hrt)
        )
        # PyKEEN's memory search would replace the sub-batch size by the whole batch
        loop = SLCWATrainingLoop(
            model=model, triples_factory=tiny_factory, negative_sampler="twins", automatic_memory_optimization=False
        )
        losses[sub_batch_size] = loop.train(
            triples_factory=tiny_factory, num_epochs=3, batch_size=6, sub_batch_size=sub_batch_size, use_tqdm=False
        )
    # positives and negatives (16 each) per call; 8 triples: batches of 6 and 2, then sub-batches of 3, 3 and 2
    assert positives[0::2] == [6, 2] * 3 + [3, 3, 2] * 3
    assert losses[3] == pytest.approx(losses[None], rel=1e-5)


def test_pipeline_regularizer_adds_its_term_to_the_loss():
    """``pipeline(regularizer=...)`` reaches VBKGC as it reaches TransE, and the training loss includes the term."""
    kwargs = dict(
        dataset="nations",
        model="vbkgc",
        negative_sampler="twins",
        model_kwargs=dict(embedding_dim=8, feature_dim=8),
        training_kwargs=dict(num_epochs=1, batch_size=512, use_tqdm=False),
        evaluator_kwargs=dict(batch_size=256),
        evaluation_kwargs=dict(use_tqdm=False),
        random_seed=0,
    )
    plain = pipeline(**kwargs)
    regularised = pipeline(regularizer="lp", regularizer_kwargs=dict(weight=10.0), **kwargs)
    # the pipeline makes one regularizer, shared by both tables (as for TransE)
    (regularizer,) = [module for module in regularised.model.modules() if isinstance(module, Regularizer)]
    assert type(regularizer).__name__ == "LpRegularizer" and regularizer.weight == 10.0
    assert regularised.model.entity_representations[0].base.regularizer is regularizer
    assert regularised.model.relation_representations[0].regularizer is regularizer
    # the first epoch's batches are the same; the term (about 10 x the mean norms of unit-scale rows) adds to them
    assert regularised.losses[0] > plain.losses[0] + 5


@pytest.mark.parametrize("path", ["eager", "compiled", "fused", "fused-compiled", "dense"])
@pytest.mark.parametrize("p", [1, 2, 3])
@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("term_weights", [None, "mm=0.25,all=3,sm=0"], ids=["unweighted", "weighted"])
def test_training_path_scores_and_gradients_equal_autograd(
    tiny_factory, tiny_features, monkeypatch, path, p, normalize, term_weights
):
    """The piece-table training path (hand-written backward) equals autograd through the generic interaction.

    ``dense`` is the accelerators' path (no chunks, no host-side twins mask), run here on the CPU. ``fused`` adds
    the gradients into the table inside the backward kernel, all rows at once (the CPU path for small d); the
    other CPU paths add them chunk by chunk with ``index_add_``.
    """
    compiled = path.endswith("compiled")
    fused = path.startswith("fused")
    monkeypatch.setattr(kernels_module, "_COMPILE_MIN_WORK", 0 if compiled else 10**15)
    monkeypatch.setattr(kernels_module, "_compiled", {})
    monkeypatch.setattr(kernels_module, "_DENSE_ON_CPU", path == "dense")
    monkeypatch.setattr(kernels_module, "_FUSED_SCATTER_MAX_DIM", 16 if fused else 0)
    monkeypatch.setattr(kernels_module, "_FUSED_SCATTER_MAX_THREADS", 10**6)
    # 7 rows per backward chunk (d = 4): the 60 rows run through several chunks
    monkeypatch.setattr(kernels_module, "_BACKWARD_CHUNK_ELEMENTS", 7 * 4)
    model = VBKGC(
        triples_factory=tiny_factory,
        features=tiny_features,
        embedding_dim=4,
        scoring_fct_norm=p,
        normalize=normalize,
        normalize_relations=False,
        term_weights=term_weights,
        random_seed=5,
    )
    hrt = _mixed_batch(model.num_entities)

    _assert_training_path_equals_autograd(model, hrt)
    if compiled and p in (1, 2):
        name = "term_distances_backward_scatter" if fused else "term_distances_backward"
        assert kernels_module._compiled[f"{name}_p{p}"] is not False


@pytest.mark.parametrize("path", ["cpu", "dense"])
@pytest.mark.parametrize("p", [1, 2, 3])
@pytest.mark.parametrize("term_weights", [None, "mm=0.25,all=3,sm=0"], ids=["unweighted", "weighted"])
def test_normalised_relations_equal_autograd(tiny_factory, tiny_features, monkeypatch, path, p, term_weights):
    """Normalised relations (all presets) equal autograd; the accelerators' path reads them from the piece table.

    There the relation rows are normalised with the entities' pieces, and the term kernel gathers them by index and
    adds their gradient into the table's (for p = 3, the generic path gathers them first).
    """
    monkeypatch.setattr(kernels_module, "_COMPILE_MIN_WORK", 10**15)
    monkeypatch.setattr(kernels_module, "_DENSE_ON_CPU", path == "dense")
    model = VBKGC(
        triples_factory=tiny_factory,
        features=tiny_features,
        embedding_dim=4,
        scoring_fct_norm=p,
        normalize=True,
        normalize_relations=True,
        term_weights=term_weights,
        random_seed=5,
    )
    tables = []
    piece_table = model.interaction.piece_table
    monkeypatch.setattr(
        model.interaction,
        "piece_table",
        lambda *args, **kwargs: tables.append(kwargs.get("relations") is not None) or piece_table(*args, **kwargs),
    )
    hrt = _mixed_batch(model.num_entities)

    _assert_training_path_equals_autograd(model, hrt)
    assert tables[0] == (path == "dense")


@pytest.mark.parametrize("p", [1, 2])
def test_dense_path_backward_twice(tiny_factory, tiny_features, monkeypatch, p):
    """The dense term kernel keeps its differences for the backward; a second backward (retain_graph) may use them."""
    monkeypatch.setattr(kernels_module, "_DENSE_ON_CPU", True)
    model = VBKGC(
        triples_factory=tiny_factory, features=tiny_features, embedding_dim=4, scoring_fct_norm=p, random_seed=5
    )
    scores = model.score_hrt(_mixed_batch(model.num_entities))
    scores.sum().backward(retain_graph=True)
    once = [parameter.grad.clone() for parameter in model.parameters() if parameter.grad is not None]
    scores.sum().backward()
    twice = [parameter.grad for parameter in model.parameters() if parameter.grad is not None]
    for first, second in zip(once, twice, strict=True):
        torch.testing.assert_close(second, 2 * first)


@pytest.mark.parametrize("path", ["eager", "compiled", "fused", "fused-compiled"])
@pytest.mark.parametrize("p", [1, 2])
def test_rows_without_twins_ids_equal_autograd(tiny_factory, tiny_features, monkeypatch, path, p):
    """Plain rows (the positives: no extra rows, zero rows stand in for them) equal autograd, too."""
    monkeypatch.setattr(kernels_module, "_COMPILE_MIN_WORK", 0 if path.endswith("compiled") else 10**15)
    monkeypatch.setattr(kernels_module, "_compiled", {})
    monkeypatch.setattr(kernels_module, "_FUSED_SCATTER_MAX_DIM", 16 if path.startswith("fused") else 0)
    monkeypatch.setattr(kernels_module, "_FUSED_SCATTER_MAX_THREADS", 10**6)
    monkeypatch.setattr(kernels_module, "_BACKWARD_CHUNK_ELEMENTS", 7 * 4)
    model = VBKGC(
        triples_factory=tiny_factory, features=tiny_features, embedding_dim=4, scoring_fct_norm=p, random_seed=5
    )
    hrt = torch.randint(0, model.num_entities, (40, 3), generator=torch.Generator().manual_seed(2))
    hrt[:, 1] %= 2

    _assert_training_path_equals_autograd(model, hrt)


def test_positives_and_negatives_share_the_compiled_kernels(tiny_factory, tiny_features, monkeypatch):
    """One graph per kernel serves rows with and without twins ids, and small calls once it is compiled.

    A cold compilation costs seconds per graph, so the sLCWA step must not compile a second graph for the
    positives (no extra rows), and positives below the size threshold run the kernels compiled for the negatives.
    """
    compiled_frames, calls = [], []

    def counting_backend(graph_module, example_inputs):
        compiled_frames.append(graph_module)

        def run(*args):
            calls.append(len(compiled_frames))
            return graph_module.forward(*args)

        return run

    real_compile = torch.compile
    # Inductor's options (the single-threaded backward) mean nothing to the counting backend
    monkeypatch.setattr(
        torch,
        "compile",
        lambda function, options=None, **kwargs: real_compile(function, backend=counting_backend, **kwargs),
    )
    monkeypatch.setattr(kernels_module, "_compiled", {})
    model = VBKGC(triples_factory=tiny_factory, features=tiny_features, embedding_dim=4, random_seed=0)
    negatives = _mixed_batch(model.num_entities, num_rows=60)
    positives = negatives[2::3][:8]  # plain triples: the third row of each group of three has no twins id
    assert (positives < model.num_entities).all()
    # only the 60 negatives are large enough to compile: 60 rows * 4 dims * 5 terms * 8
    monkeypatch.setattr(kernels_module, "_COMPILE_MIN_WORK", 60 * 4 * 5 * 8)
    torch._dynamo.reset()
    model.score_hrt(negatives).sum().backward()
    frames = len(compiled_frames)
    assert frames > 0
    calls.clear()
    model.score_hrt(positives).sum().backward()
    model.score_hrt(negatives).sum().backward()
    # positives and negatives ran compiled graphs, and nothing was compiled again
    assert len(compiled_frames) == frames
    assert len(calls) >= 4


@pytest.mark.parametrize("backward", ["_backward_chunk_kernel", "_backward_scatter_kernel"])
def test_float_settings_compile_without_restarting_the_trace(tiny_factory, tiny_features, monkeypatch, backward):
    """Term weights and p are Python floats: each kernel compiles in one trace, not a symbolic one and a restart."""
    monkeypatch.setattr(kernels_module, "_COMPILE_MIN_WORK", 0)
    monkeypatch.setattr(kernels_module, "_FUSED_SCATTER_MAX_DIM", 16 if "scatter" in backward else 0)
    monkeypatch.setattr(kernels_module, "_FUSED_SCATTER_MAX_THREADS", 10**6)
    monkeypatch.setattr(kernels_module, "_compiled", {})
    torch._dynamo.reset()
    torch._dynamo.utils.clear_compilation_metrics()
    model = VBKGC(
        triples_factory=tiny_factory,
        features=tiny_features,
        embedding_dim=4,
        term_weights="mm=0.03,all=0.5",
        random_seed=0,
    )
    model.score_hrt(_mixed_batch(model.num_entities)).sum().backward()
    restarts = {m.co_name: m.restart_reasons for m in torch._dynamo.utils.get_compilation_metrics()}
    assert set(restarts) == {"_piece_table", "_sum_rows", "_forward_norms_kernel", backward}
    assert not any(restarts.values())
    # the setting is the kernels' own: Dynamo's default is back for every other compilation
    assert torch._dynamo.config.specialize_float is False


def test_the_fused_scatter_backward_is_compiled_for_one_thread(tiny_factory, tiny_features, monkeypatch):
    """Its scattered additions into the table need no atomic operations then; the other kernels use every thread."""
    options = {}
    real_compile = torch.compile

    def recording_compile(function, **kwargs):
        options[function.__name__] = kwargs.get("options")
        return real_compile(function, **kwargs)

    monkeypatch.setattr(torch, "compile", recording_compile)
    monkeypatch.setattr(kernels_module, "_COMPILE_MIN_WORK", 0)
    monkeypatch.setattr(kernels_module, "_compiled", {})
    monkeypatch.setattr(kernels_module, "_FUSED_SCATTER_MAX_DIM", 16)
    monkeypatch.setattr(kernels_module, "_FUSED_SCATTER_MAX_THREADS", 10**6)
    model = VBKGC(triples_factory=tiny_factory, features=tiny_features, embedding_dim=4, random_seed=0)
    model.score_hrt(_mixed_batch(model.num_entities)).sum().backward()
    assert options == {
        "_piece_table": None,
        "_sum_rows": None,
        "_forward_norms_kernel": None,
        "_backward_scatter_kernel": {"cpp.threads": 1},
    }


class _FakeInstructionSet:
    """Stands in for one of Inductor's vector instruction sets: records in which thread it was checked."""

    def __init__(self, name: str, barrier) -> None:
        self.name, self.barrier, self.threads = name, barrier, []

    def __str__(self) -> str:
        return self.name

    def __bool__(self) -> bool:
        self.threads.append(threading.get_ident())
        if self.barrier is not None:
            self.barrier.wait(timeout=10)  # every listed set is checked at the same time, or this times out
        return True


def test_vector_instruction_checks_run_in_parallel_once(monkeypatch):
    """Inductor's checks of the instruction sets that the CPU lists run at once in threads, once per process."""
    from torch._inductor import config, cpu_vec_isa

    barrier = threading.Barrier(2)
    listed = [_FakeInstructionSet("avx512", barrier), _FakeInstructionSet("avx2", barrier)]
    unlisted = _FakeInstructionSet("amx_tile", None)
    monkeypatch.setattr(cpu_vec_isa, "supported_vec_isa_list", [unlisted, *listed])
    monkeypatch.setattr(cpu_vec_isa, "x86_isa_checker", lambda: ["avx2", "avx512"])
    monkeypatch.setattr(kernels_module.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(config.cpp, "vec_isa_ok", None)
    monkeypatch.setattr(kernels_module, "_vector_instructions_probed", False)
    kernels_module._probe_vector_instructions()
    kernels_module._probe_vector_instructions()
    assert [len(isa.threads) for isa in listed] == [1, 1]
    assert listed[0].threads != listed[1].threads
    assert unlisted.threads == []


@pytest.mark.skipif(sys.platform != "linux", reason="Inductor checks x86 instruction sets this way on Linux")
def test_vector_instruction_checks_are_the_ones_inductor_runs(monkeypatch):
    """With this torch's own instruction sets, the probe checks exactly those that Inductor's own list checks.

    The probe reads Inductor internals and silently does nothing if they change: this fails instead.
    """
    from torch._inductor import config, cpu_vec_isa

    checked = []

    def check(isa) -> bool:
        checked.append(str(isa))
        return True

    for isa in cpu_vec_isa.supported_vec_isa_list:
        monkeypatch.setattr(type(isa), "__bool__", check)
    monkeypatch.setattr(cpu_vec_isa, "x86_isa_checker", lambda: ["avx2", "avx512", "avx512_vnni"])
    monkeypatch.setattr(kernels_module.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(config.cpp, "vec_isa_ok", None)
    monkeypatch.setattr(kernels_module, "_vector_instructions_probed", False)
    kernels_module._probe_vector_instructions()
    probed = sorted(checked)
    checked.clear()
    # Inductor's list, uncached
    valid = cpu_vec_isa.valid_vec_isa_list.__wrapped__()
    assert probed == sorted(checked) == ["avx2", "avx512", "avx512 avx512_vnni"]
    assert [str(isa) for isa in valid] == ["avx512 avx512_vnni", "avx512", "avx2"]


@pytest.mark.parametrize("setting", ["vec_isa_ok", "machine", "error"])
def test_vector_instruction_checks_are_left_to_inductor(monkeypatch, setting):
    """Nothing is checked where Inductor checks nothing (vec_isa_ok set) or differently; errors are not raised."""
    from torch._inductor import config, cpu_vec_isa

    listed = [_FakeInstructionSet("avx512", None), _FakeInstructionSet("avx2", None)]
    monkeypatch.setattr(cpu_vec_isa, "supported_vec_isa_list", listed)
    monkeypatch.setattr(cpu_vec_isa, "x86_isa_checker", lambda: ["avx2", "avx512"])
    monkeypatch.setattr(kernels_module.platform, "machine", lambda: "aarch64" if setting == "machine" else "x86_64")
    monkeypatch.setattr(config.cpp, "vec_isa_ok", True if setting == "vec_isa_ok" else None)
    if setting == "error":
        monkeypatch.delattr(cpu_vec_isa, "x86_isa_checker")
    monkeypatch.setattr(kernels_module, "_vector_instructions_probed", False)
    kernels_module._probe_vector_instructions()
    assert [isa.threads for isa in listed] == [[], []]


def test_entity_tables_are_shared_within_a_step(tiny_factory, tiny_features):
    """Positives and negatives of one step share the projected table; backward and updates invalidate it."""
    model = VBKGC(triples_factory=tiny_factory, features=tiny_features, embedding_dim=4, random_seed=0)
    optimizer = torch.optim.Adam(model.get_grad_params(), lr=0.1)
    hrt = _mixed_batch(model.num_entities)
    first = model._entity_tables()
    assert model._entity_tables() is first
    # two sub-batches before one optimizer step: each backward consumes its own graph
    for part in hrt.split(30):
        model.score_hrt(part[:10]).sum().backward()
        assert model._tables is None
        model.score_hrt(part[10:]).sum().backward()
    before = model._entity_tables()[2].detach().clone()
    optimizer.step()
    model.post_parameter_update()
    assert model._tables is None
    after = model._entity_tables()[2]
    assert not torch.allclose(before, after.detach())
    # the cache is not pickled (it may hold a graph); the reloaded model scores the same
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    reloaded = torch.load(buffer, weights_only=False)
    assert reloaded._tables is None
    torch.testing.assert_close(reloaded.score_hrt(hrt), model.score_hrt(hrt))


def test_scoring_all_candidates_projects_the_features_once_per_parameter_state(tiny_factory, tiny_features):
    """Without gradients, score_t/score_h read the cached tables: ERModel's scores, one projection for all batches."""
    model = VBKGC(triples_factory=tiny_factory, features=tiny_features, embedding_dim=4, random_seed=0)
    projections = []
    model.entity_representations[2].base.transformation.register_forward_hook(
        lambda module, inputs, output: projections.append(len(inputs[0]))
    )
    hr, rt = torch.as_tensor([[0, 0], [2, 1], [4, 0]]), torch.as_tensor([[0, 1], [1, 3], [0, 5]])
    # with gradients: ERModel's own path, which projects the queries' entities and all candidates per call
    expected = {
        "t": model.score_t(hr).detach(),
        "h": model.score_h(rt).detach(),
        "t, the same candidates for all": model.score_t(hr, tails=torch.as_tensor([5, 1, 2])).detach(),
        "twins ids": model.score_t(torch.as_tensor([[model.num_entities * 3 + 1, 0]])).detach(),
    }
    projections.clear()
    with torch.no_grad():
        # twins ids, which only training negatives carry, in training mode
        actual = {"twins ids": model.score_t(torch.as_tensor([[model.num_entities * 3 + 1, 0]]))}
        model.eval()
        actual.update(
            {
                "t": model.score_t(hr),
                "h": model.predict_h(rt, slice_size=2),
                "t, the same candidates for all": model.score_t(hr, tails=torch.as_tensor([5, 1, 2])),
            }
        )
        assert projections == [model.num_entities]
        # a changed parameter is seen: the projection is computed again
        model.entity_representations[2].base.transformation.weight.mul_(2.0)
        changed = model.score_t(hr)
    for key, scores in expected.items():
        torch.testing.assert_close(actual[key], scores, msg=key)
    assert projections == [model.num_entities] * 2
    assert not torch.allclose(changed, actual["t"])


def test_projection_lr_scale_slows_only_the_projection_under_adam(tiny_factory, tiny_features):
    """W = s V: same initial scores; one Adam step moves W by s times as much, the embeddings equally."""
    hrt = torch.as_tensor([[0, 0, 1], [2, 1, 3], [4, 0, 5]])
    steps = {}
    for scale in (1.0, 0.1):
        model = VBKGC(
            triples_factory=tiny_factory,
            features=tiny_features,
            embedding_dim=4,
            projection_lr_scale=scale,
            random_seed=0,
        )
        modal = model.entity_representations[2].base.transformation
        weight_before = (modal.weight * modal.scale).detach().clone()
        structural_before = parameters(model)[0].clone()
        initial = model.score_hrt(hrt).detach()
        optimizer = torch.optim.Adam(model.get_grad_params(), lr=0.01)
        model.score_hrt(hrt).sum().backward()
        optimizer.step()
        steps[scale] = (
            initial,
            (modal.weight * modal.scale).detach() - weight_before,
            parameters(model)[0] - structural_before,
        )
    torch.testing.assert_close(steps[0.1][0], steps[1.0][0])
    # Adam's first step is lr * sign(gradient) per coordinate: W moves by 0.01 resp. 0.001
    torch.testing.assert_close(steps[1.0][1].abs(), torch.full_like(steps[1.0][1], 0.01), rtol=1e-3, atol=1e-6)
    torch.testing.assert_close(steps[0.1][1], 0.1 * steps[1.0][1], rtol=1e-3, atol=1e-7)
    torch.testing.assert_close(steps[0.1][2], steps[1.0][2])
    # W is stored divided by the scale: 1e-45 (a float32 subnormal) would make it infinite
    for scale in (0.0, 1e-45, float("inf")):
        with pytest.raises(
            ValueError,
            match=r"^projection_lr_scale must be a number from 1\.175e-38 to 3\.403e\+38 \(float32's range\), got ",
        ):
            VBKGC(triples_factory=tiny_factory, features=tiny_features, embedding_dim=4, projection_lr_scale=scale)


def test_pairwise_l1_falls_back_to_cdist_when_compilation_fails(monkeypatch):
    """Without a compiler the evaluation kernel must not fall back to the memory-hungry broadcast."""
    monkeypatch.setattr(kernels_module, "_COMPILE_MIN_WORK", 0)
    monkeypatch.setattr(kernels_module, "_compiled", {})

    def broken_compile(function, **kwargs):
        def fail(*args):
            raise RuntimeError("no C++ compiler")

        return fail

    monkeypatch.setattr(torch, "compile", broken_compile)
    monkeypatch.setattr(kernels_module, "_fused_l1", lambda x, y: pytest.fail("eager broadcast used"))
    monkeypatch.setattr(kernels_module, "_fused_l1_grad", lambda *args: pytest.fail("eager broadcast used"))
    x, y = torch.randn(5, 7, requires_grad=True), torch.randn(9, 7, requires_grad=True)
    weights = torch.randn(5, 9)
    distances = kernels_module.pairwise_l1_distance(x, y)
    (distances * weights).sum().backward()
    x_reference, y_reference = x.detach().requires_grad_(), y.detach().requires_grad_()
    reference = torch.cdist(x_reference, y_reference, p=1)
    (reference * weights).sum().backward()
    torch.testing.assert_close(distances, reference)
    torch.testing.assert_close(x.grad, x_reference.grad)
    torch.testing.assert_close(y.grad, y_reference.grad)
    assert kernels_module._compiled["pairwise_l1_distance"] is False
    assert kernels_module._compiled["pairwise_l1_grad"] is False


def test_pairwise_l1_gradients_are_the_signs_weighted_by_the_upstream_gradient(monkeypatch):
    """The fused backward: d/dx_i = sum_j g_ij sign(x_i - y_j), d/dy_j = -sum_i g_ij sign(x_i - y_j)."""
    monkeypatch.setattr(kernels_module, "_COMPILE_MIN_WORK", 0)
    monkeypatch.setattr(kernels_module, "_compiled", {})
    x = torch.tensor([[0.0, 2.0], [1.0, -1.0]], requires_grad=True)
    y = torch.tensor([[1.0, 1.0], [-1.0, 0.0], [3.0, -2.0]], requires_grad=True)
    weights = torch.tensor([[1.0, 2.0, 3.0], [-1.0, 0.5, 4.0]])
    distances = kernels_module.pairwise_l1_distance(x, y)
    (distances * weights).sum().backward()
    # |0-1|+|2-1| = 2, |0+1|+|2-0| = 3, |0-3|+|2+2| = 7; |1-1|+|-1-1| = 2, |1+1|+|-1-0| = 3, |1-3|+|-1+2| = 3
    torch.testing.assert_close(distances, torch.tensor([[2.0, 3.0, 7.0], [2.0, 3.0, 3.0]]))
    # x_0: signs (-1, +1), (+1, +1), (-1, +1) -> (-1 + 2 - 3, 1 + 2 + 3); x_1: (0, -1), (+1, -1), (-1, +1)
    torch.testing.assert_close(x.grad, torch.tensor([[-2.0, 6.0], [0.5 - 4.0, 1.0 - 0.5 + 4.0]]))
    # y_j: minus the column sums of the same signs times weights
    torch.testing.assert_close(y.grad, torch.tensor([[1.0, -2.0], [-2.5, -1.5], [7.0, -7.0]]))
    assert kernels_module._compiled["pairwise_l1_grad"] is not False
    # larger random inputs: the same as torch.cdist's backward
    x, y = torch.randn(33, 17, requires_grad=True), torch.randn(29, 17, requires_grad=True)
    weights = torch.randn(33, 29)
    (kernels_module.pairwise_l1_distance(x, y) * weights).sum().backward()
    x_reference, y_reference = x.detach().requires_grad_(), y.detach().requires_grad_()
    (torch.cdist(x_reference, y_reference, p=1) * weights).sum().backward()
    torch.testing.assert_close(x.grad, x_reference.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(y.grad, y_reference.grad, rtol=1e-5, atol=1e-5)


def _assert_training_path_equals_autograd(model: VBKGC, hrt: torch.Tensor) -> None:
    """Check VBKGC's training path (score_hrt) against ERModel.score_hrt, which lets autograd differentiate.

    The gradients are those of a random weighted sum of the scores, the same weights for both.
    """
    weights = torch.randn(hrt.shape[0], 1, generator=torch.Generator().manual_seed(1))

    def scores_and_gradients(score):
        model.zero_grad()
        scores = score(hrt)
        (scores * weights).sum().backward()
        return scores.detach(), [param.grad.clone() for param in model.parameters() if param.requires_grad]

    fast, fast_gradients = scores_and_gradients(model.score_hrt)
    # ERModel.score_hrt looks the pieces up through the TwinsViews and lets autograd differentiate the interaction
    reference, reference_gradients = scores_and_gradients(lambda x: ERModel.score_hrt(model, x))
    torch.testing.assert_close(fast, reference, rtol=1e-5, atol=1e-5)
    for fast_gradient, reference_gradient in zip(fast_gradients, reference_gradients, strict=True):
        torch.testing.assert_close(fast_gradient, reference_gradient, rtol=1e-4, atol=1e-5)


def test_evaluation_refuses_entity_ids_outside_the_graph(tiny_factory, tiny_features):
    """Ids from num_entities on are twins ids of negatives; as queries or candidates they would score other entities."""
    model = VBKGC(triples_factory=tiny_factory, features=tiny_features, embedding_dim=4, random_seed=0).eval()
    n = model.num_entities
    message = (
        f"entity ids must be from 0 to {n - 1}, got {{}} (ids from {n} on are twins ids, which only score_hrt takes)."
    )
    calls = {
        "score_t": lambda bad: model.score_t(torch.as_tensor([[bad, 0]])),
        "score_h": lambda bad: model.score_h(torch.as_tensor([[0, bad]])),
        "score_t with candidates": lambda bad: model.score_t(
            torch.as_tensor([[0, 0]]), tails=torch.as_tensor([1, bad])
        ),
        "predict_t": lambda bad: model.predict_t(torch.as_tensor([[bad, 0]])),
    }
    for name, call in calls.items():
        for bad in (n, n + 3, -1):
            for gradients in (False, True):
                with torch.set_grad_enabled(gradients), pytest.raises(IndexError) as error:
                    call(bad)
                assert str(error.value) == message.format(bad), name


def test_score_hrt_scores_twins_negatives_in_evaluation_mode_too(tiny_factory, tiny_features):
    """A loss on held-out triples (PyKEEN's evaluation-loss callback, Lightning's validation) scores twins negatives
    with the model in evaluation mode: the same scores as in training mode; ids outside the twins range are refused."""
    model = VBKGC(triples_factory=tiny_factory, features=tiny_features, embedding_dim=4, random_seed=0)
    n = model.num_entities
    batch = torch.as_tensor([[0, 0, 1], [n + 3, 0, 1], [2, 1, n * (n + 1) - 1]])
    with torch.no_grad():
        trained = model.train().score_hrt(batch)
        evaluated = model.eval().score_hrt(batch)
    torch.testing.assert_close(evaluated, trained)
    for bad in (-1, n * (n + 1)):
        with pytest.raises(IndexError) as error:
            model.score_hrt(torch.as_tensor([[0, 0, 1], [0, 0, bad]]))
        ids = f"from {min(0, bad)} to {max(1, bad)}"
        assert (
            str(error.value) == f"entity ids must be from 0 to {n * (n + 1) - 1} (twins ids included), got ids {ids}."
        )


def test_a_loss_on_validation_triples_is_computed_with_twins_negatives():
    """PyKEEN's evaluation-loss callback scores twins negatives with the model in evaluation mode."""
    from pykeen.datasets import Nations

    dataset = Nations()
    result = pipeline(
        dataset=dataset,
        model="vbkgc",
        model_kwargs=dict(embedding_dim=4, features="random", feature_dim=8),
        negative_sampler="twins",
        training_kwargs=dict(
            num_epochs=2,
            batch_size=512,
            callbacks="evaluation-loss",
            callbacks_kwargs=dict(triples_factory=dataset.validation, prefix="validation"),
        ),
        random_seed=0,
    )
    assert len(result.losses) == 2 and all(math.isfinite(loss) for loss in result.losses)


def test_interaction_settings_that_would_score_wrongly_are_refused():
    from pykeen_vbkgc.interaction import VBKGCInteraction

    norm_message = "The norm order p must be a number from 1 to 64, or inf; got {!r}."
    # NaN failed in cdist, 200 overflowed to NaN scores, 1e10 to -inf; a bool or a string is no order
    for p in (float("nan"), 200.0, 1e10, True, "2", 0.5):
        with pytest.raises(ValueError) as error:
            VBKGCInteraction(p=p)
        assert str(error.value) == norm_message.format(p)
    assert VBKGCInteraction(p=float("inf")).p == float("inf")
    for name, value in (("normalize", "no"), ("normalize_relations", "false")):
        with pytest.raises(ValueError) as error:
            VBKGCInteraction(**{name: value})
        assert str(error.value) == f"{name} must be True or False, got {value!r}."
    for weights in ({"mm": 1e39}, {"mm": True}, {"mm": None}):
        with pytest.raises(ValueError, match=r"^term_weights must be finite and non-negative, got "):
            VBKGCInteraction(term_weights=weights)
    with pytest.raises(ValueError) as error:
        VBKGCInteraction(term_weights=5)
    assert str(error.value) == "term_weights must be a mapping, a string such as 'mm=0.5,all=2', or 'mean'; got 5."


@pytest.mark.parametrize(
    ("value", "enabled"), [(" 0 ", False), ("OFF", False), (" 1", True), ("", True), ("auto", True)]
)
def test_the_compile_variable_is_read_strictly(monkeypatch, value, enabled):
    monkeypatch.setenv("PYKEEN_VBKGC_COMPILE", value)
    assert kernels_module._compile_enabled(torch.device("cpu")) is enabled


def test_an_unknown_compile_setting_is_an_error(monkeypatch):
    monkeypatch.setenv("PYKEEN_VBKGC_COMPILE", "maybe")
    with pytest.raises(ValueError) as error:
        kernels_module._compile_enabled(torch.device("cpu"))
    assert str(error.value) == (
        "PYKEEN_VBKGC_COMPILE must be 0/false/no/off, 1/true/yes/on/all, or auto (the default), got 'maybe'."
    )
