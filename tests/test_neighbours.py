"""The neighbours' vote against hand-computed values, and how VBKGC adds it to its ranking scores."""

import math

import numpy as np
import pytest
import torch
from pykeen.pipeline import pipeline
from pykeen.triples import TriplesFactory

from pykeen_vbkgc import VBKGC
from pykeen_vbkgc.defaults import FB15K237_PRESET, PRESET_METADATA_KEY, WN9_PRESET
from pykeen_vbkgc.neighbours import NeighbourVote, mirror_answered, mirror_relations, standardised

#: e0..e3 get ids 0..3, r0 and r1 ids 0 and 1 (labels are sorted)
TRIPLES = [("e1", "r0", "e2"), ("e3", "r0", "e0"), ("e3", "r0", "e1"), ("e1", "r1", "e3")]
#: the entities' features: unit vectors at these angles (degrees), so that every cosine is known
ANGLES = [0, 30, 100, 210]


@pytest.fixture
def factory() -> TriplesFactory:
    return TriplesFactory.from_labeled_triples(np.asarray(TRIPLES, dtype=str))


@pytest.fixture
def features() -> torch.Tensor:
    # scaled rows: the vote uses cosines, not lengths
    radians = torch.tensor(ANGLES, dtype=torch.float64) * math.pi / 180
    return (torch.stack([radians.cos(), radians.sin()], dim=1) * torch.tensor([[1.0], [2.0], [0.5], [3.0]])).float()


def cos(degrees: float) -> float:
    return math.cos(math.radians(degrees))


def test_vote_by_hand(factory, features):
    vote = NeighbourVote(factory.mapped_triples, num_entities=4, num_relations=2, num_neighbours=2)
    # (e0, r0, ?): e0's two nearest are e1 (30 degrees) and e2 (100 degrees, a negative cosine: weight 0); e1's tail
    # under r0 is e2. The tie-breaker: r0's tails e2, e0 and e1, once each
    expected = torch.tensor([0.001, 0.001, cos(30) + 0.001, 0.0])
    torch.testing.assert_close(vote(features, torch.tensor([0]), torch.tensor([0]), side="tail")[0], expected)
    # (e0, r1, ?): e1's tail under r1 is e3, r1's only tail
    expected = torch.tensor([0.0, 0.0, 0.0, cos(30) + 0.001])
    torch.testing.assert_close(vote(features, torch.tensor([0]), torch.tensor([1]), side="tail")[0], expected)
    # (?, r0, e2): e2's two nearest are e1 (70 degrees) and e0 (100 degrees: weight 0); e1's head under r0 is e3.
    # r0's heads: e1 once, e3 twice
    expected = torch.tensor([0.0, 0.0005, 0.0, cos(70) + 0.001])
    torch.testing.assert_close(vote(features, torch.tensor([2]), torch.tensor([0]), side="head")[0], expected)
    # a batch gives each query's row
    both = vote(features, torch.tensor([0, 0]), torch.tensor([0, 1]), side="tail")
    torch.testing.assert_close(both[1], torch.tensor([0.0, 0.0, 0.0, cos(30) + 0.001]))
    # an entity is not its own neighbour: with three neighbours e0 adds e3 (a negative cosine, weight 0) instead
    vote = NeighbourVote(factory.mapped_triples, num_entities=4, num_relations=2, num_neighbours=3)
    torch.testing.assert_close(
        vote(features, torch.tensor([1]), torch.tensor([0]), side="tail")[0],
        # e1's nearest: e0 (30 degrees; no r0 tail), e2 (70 degrees; none), e3 (180 degrees: weight 0)
        torch.tensor([0.001, 0.001, 0.001, 0.0]),
    )


#: entities a..e get ids 0..4, relations down, same, up, x ids 0..3. up's triples appear reversed under down 2 of 3
#: times, down's under up always, same's under same 2 of 3 times (and under x once), x's under same 1 of 2 times
MIRRORED = [
    ("a", "up", "b"),
    ("a", "up", "c"),
    ("d", "up", "b"),
    ("b", "down", "a"),
    ("c", "down", "a"),
    ("a", "same", "e"),
    ("e", "same", "a"),
    ("c", "same", "d"),
    ("e", "x", "c"),
    ("d", "x", "c"),
]


@pytest.fixture
def mirrored() -> TriplesFactory:
    return TriplesFactory.from_labeled_triples(np.asarray(MIRRORED, dtype=str))


def test_mirror_relations_by_hand(mirrored):
    # down -> up, same -> itself, up -> down; x has no mirror: half of its triples is not more than half
    assert mirror_relations(mirrored.mapped_triples, 5, 4).tolist() == [2, 1, 0, -1]
    # no triples, no mirrors
    assert mirror_relations(torch.empty(0, 3, dtype=torch.long), 5, 4).tolist() == [-1, -1, -1, -1]


def test_mirror_answered_by_hand(mirrored):
    answered = mirror_answered(mirrored.mapped_triples, num_entities=5, num_relations=4)
    # (d, up, b) answers (b, down, ?) with d and (?, down, d) with b; (c, same, d) answers (d, same, ?) with c and
    # (?, same, c) with d. Every other mirrored triple is a training triple already, e.g. (b, down, a) for (a, up, b)
    expected_tail = torch.zeros(4, 5, dtype=torch.bool)
    expected_tail[0, 1] = expected_tail[1, 3] = True
    expected_head = torch.zeros(4, 5, dtype=torch.bool)
    expected_head[0, 3] = expected_head[1, 2] = True
    assert torch.equal(answered["tail"], expected_tail)
    assert torch.equal(answered["head"], expected_head)


def test_mirror_gate_leaves_out_the_vote_of_answered_queries(mirrored):
    features = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    plain = NeighbourVote(mirrored.mapped_triples, num_entities=5, num_relations=4, num_neighbours=2)
    gated = NeighbourVote(mirrored.mapped_triples, num_entities=5, num_relations=4, num_neighbours=2, mirror_gate=True)
    # tail queries (b, down, ?), answered, and (a, down, ?), (b, up, ?), not
    anchors, relations = torch.tensor([1, 0, 1]), torch.tensor([0, 0, 2])
    expected = plain(features, anchors, relations, side="tail")
    expected[0] = 0.0
    assert expected[1:].abs().sum() > 0
    torch.testing.assert_close(gated(features, anchors, relations, side="tail"), expected)
    # head queries (?, same, c), answered, and (?, same, d), not
    anchors, relations = torch.tensor([2, 3]), torch.tensor([1, 1])
    expected = plain(features, anchors, relations, side="head")
    expected[0] = 0.0
    torch.testing.assert_close(gated(features, anchors, relations, side="head"), expected)


def test_model_ranks_answered_queries_by_the_learned_scores_alone(mirrored):
    features = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    model = VBKGC(
        triples_factory=mirrored,
        features=features,
        embedding_dim=4,
        neighbour_weight=0.5,
        num_neighbours=2,
        neighbour_mirror_gate=True,
        random_seed=0,
    )
    assert model.neighbour_vote.mirror_gate
    model.eval()
    # (b, down, ?) is answered by (d, up, b): z(s) + 0.5 z(0) = z(s); (a, down, ?) is not
    hr = torch.tensor([[1, 0], [0, 0]])
    combined = model.score_t(hr)
    model.neighbour_weight = 0.0
    learned = model.score_t(hr)
    torch.testing.assert_close(combined[0], standardised(learned)[0])
    assert not torch.allclose(combined[1], standardised(learned)[1])


@pytest.mark.parametrize("gate", ["yes", 1, None])
def test_model_refuses_a_mirror_gate_that_is_not_a_bool(factory, features, gate):
    if gate is None:
        # None is "the preset's"
        assert not VBKGC(triples_factory=factory, features=features, neighbour_mirror_gate=None).neighbour_vote
        return
    with pytest.raises(ValueError, match=rf"^neighbour_mirror_gate must be True or False, got {gate!r}\.$"):
        VBKGC(triples_factory=factory, features=features, neighbour_mirror_gate=gate)


def test_vote_refuses_bad_arguments(factory, features):
    with pytest.raises(ValueError, match=r"^num_neighbours must be a positive integer, got 0\.$"):
        NeighbourVote(factory.mapped_triples, num_entities=4, num_relations=2, num_neighbours=0)
    with pytest.raises(
        ValueError,
        match=r"^num_neighbours must be below the number of entities \(4\): an entity has at most 3 neighbours, "
        r"got 4\.$",
    ):
        NeighbourVote(factory.mapped_triples, num_entities=4, num_relations=2, num_neighbours=4)
    vote = NeighbourVote(factory.mapped_triples, num_entities=4, num_relations=2, num_neighbours=2)
    with pytest.raises(ValueError, match=r"^Invalid side: 'relation'\. Use 'head' or 'tail'\.$"):
        vote(features, torch.tensor([0]), torch.tensor([0]), side="relation")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        # "no" is truthy: it would switch the gate on
        (dict(mirror_gate="no"), "mirror_gate must be True or False, got 'no'."),
        (dict(num_entities=3), "the triples hold entity ids from 0 to 3, outside 0 to 2 (num_entities=3)."),
        (dict(num_relations=1), "the triples hold relation ids from 0 to 1, outside 0 to 0 (num_relations=1)."),
        (dict(num_entities=4.0), "num_entities must be a positive integer, got 4.0."),
    ],
)
def test_vote_refuses_settings_that_do_not_fit_the_triples(factory, kwargs, message):
    settings = dict(num_entities=4, num_relations=2, num_neighbours=2) | kwargs
    with pytest.raises(ValueError) as error:
        NeighbourVote(factory.mapped_triples, **settings)
    assert str(error.value) == message


@pytest.mark.parametrize(
    ("rows", "anchors", "relations", "error", "message"),
    [
        # negative ids would wrap around to the last entity's votes; too large ones crashed the sparse product
        (4, [0, -1], [0, 0], IndexError, "entity ids must be from 0 to 3, got -1."),
        (4, [4], [0], IndexError, "entity ids must be from 0 to 3, got 4."),
        (4, [0], [2], IndexError, "relation ids must be from 0 to 1, got 2."),
        (4, [0], [-1], IndexError, "relation ids must be from 0 to 1, got -1."),
        # fewer rows would silently leave entities out of the neighbours, more crashed the sparse product
        (3, [0], [0], ValueError, "features must have one row per entity, shape (4, d); got (3, 2)."),
        (40, [0], [0], ValueError, "features must have one row per entity, shape (4, d); got (40, 2)."),
    ],
)
def test_vote_refuses_ids_and_features_that_do_not_fit(factory, rows, anchors, relations, error, message):
    vote = NeighbourVote(factory.mapped_triples, num_entities=4, num_relations=2, num_neighbours=2)
    features = torch.randn(rows, 2)
    with pytest.raises(error) as raised:
        vote(features, torch.tensor(anchors), torch.tensor(relations), side="tail")
    assert str(raised.value) == message


def test_standardised():
    scores = torch.tensor([[1.0, 2.0, 3.0], [5.0, 5.0, 8.0]])
    # mean 2 and (unbiased) standard deviation 1; mean 6 and sqrt(3)
    expected = torch.tensor([[-1.0, 0.0, 1.0], [-1 / math.sqrt(3), -1 / math.sqrt(3), 2 / math.sqrt(3)]])
    torch.testing.assert_close(standardised(scores), expected)


def test_model_ranks_with_the_vote_in_evaluation_mode_only(factory, features):
    model = VBKGC(triples_factory=factory, features=features, embedding_dim=4, neighbour_weight=0.5, random_seed=0)
    model.eval()
    hr = torch.tensor([[0, 0], [2, 1]])
    rt = torch.tensor([[0, 2], [1, 3]])
    votes_t = model.neighbour_vote(features, hr[:, 0], hr[:, 1], side="tail")
    votes_h = model.neighbour_vote(features, rt[:, 1], rt[:, 0], side="head")
    model.neighbour_weight = 0.0
    learned_t, learned_h = model.score_t(hr), model.score_h(rt)
    learned_hrt = model.score_hrt(factory.mapped_triples)
    model.neighbour_weight = 0.5
    # z(s) + 0.5 z(v), by hand
    expected_t = (learned_t - learned_t.mean(1, keepdim=True)) / learned_t.std(1, keepdim=True) + 0.5 * (
        votes_t - votes_t.mean(1, keepdim=True)
    ) / votes_t.std(1, keepdim=True)
    expected_h = (learned_h - learned_h.mean(1, keepdim=True)) / learned_h.std(1, keepdim=True) + 0.5 * (
        votes_h - votes_h.mean(1, keepdim=True)
    ) / votes_h.std(1, keepdim=True)
    torch.testing.assert_close(model.score_t(hr), expected_t)
    torch.testing.assert_close(model.score_h(rt), expected_h)
    # PyKEEN's predict_* (its evaluators call them) and slicing give the same; candidates are picked after combining
    torch.testing.assert_close(model.predict_t(hr), expected_t)
    torch.testing.assert_close(model.predict_h(rt, slice_size=3), expected_h)
    torch.testing.assert_close(model.score_t(hr, tails=torch.tensor([3, 1])), expected_t[:, [3, 1]])
    torch.testing.assert_close(
        model.score_h(rt, heads=torch.tensor([[2, 0], [1, 1]])), expected_h[[[0], [1]], [[2, 0], [1, 1]]]
    )
    # single triples and training use the learned score alone
    torch.testing.assert_close(model.score_hrt(factory.mapped_triples), learned_hrt)
    model.train()
    torch.testing.assert_close(model.score_t(hr), learned_t)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_vote_on_cuda_matches_the_cpu(factory, features):
    model = VBKGC(triples_factory=factory, features=features, embedding_dim=4, neighbour_weight=0.5, random_seed=0)
    model.eval()
    hr, rt = torch.tensor([[0, 0], [2, 1]]), torch.tensor([[0, 2], [1, 3]])
    on_cpu = model.score_t(hr), model.score_h(rt)
    # the vote's tables are buffers: they move with the model
    model.to("cuda")
    on_cuda = model.score_t(hr.cuda()), model.score_h(rt.cuda())
    for cuda, cpu in zip(on_cuda, on_cpu, strict=True):
        assert cuda.device.type == "cuda"
        torch.testing.assert_close(cuda.cpu(), cpu, atol=1e-4, rtol=1e-4)


def test_neighbour_settings(factory, features):
    state = VBKGC(triples_factory=factory, features=features, embedding_dim=4).state_dict()
    model = VBKGC(triples_factory=factory, features=features, embedding_dim=4, neighbour_weight=0.1, num_neighbours=2)
    assert model.neighbour_vote.num_neighbours == 2
    # the vote's tables are not weights: saved weights load either way
    assert model.state_dict().keys() == state.keys()
    # and they are dense, as DistributedDataParallel broadcasts buffers
    assert not any(buffer.is_sparse for buffer in model.buffers())
    # no vote unless asked for (the best-known preset)
    assert VBKGC(triples_factory=factory, features=features, embedding_dim=4).neighbour_vote is None
    # FB15k-237's preset votes with weight 0.05 and 50 neighbours, or every other entity of a smaller graph
    factory.metadata[PRESET_METADATA_KEY] = "fb15k237"
    model = VBKGC(triples_factory=factory, features=features, embedding_dim=4)
    assert (model.neighbour_weight, model.neighbour_vote.num_neighbours) == (0.05, 3)
    assert (FB15K237_PRESET.neighbour_weight, FB15K237_PRESET.num_neighbours) == (0.05, 50)
    # the same with the preset's keyword arguments, as pipeline(**FB15K237_PRESET.pipeline_kwargs()) passes them
    model = VBKGC(triples_factory=factory, features=features, **{**FB15K237_PRESET.model_kwargs(), "embedding_dim": 4})
    assert (model.neighbour_weight, model.neighbour_vote.num_neighbours) == (0.05, 3)
    assert VBKGC(triples_factory=factory, features=features, embedding_dim=4, neighbour_weight=0).neighbour_vote is None
    assert not model.neighbour_vote.mirror_gate
    # WN9's votes only for the queries that no mirrored training triple answers
    factory.metadata[PRESET_METADATA_KEY] = "wn9"
    model = VBKGC(triples_factory=factory, features=features, embedding_dim=4)
    assert (model.neighbour_weight, model.neighbour_vote.mirror_gate) == (WN9_PRESET.neighbour_weight, True)
    assert WN9_PRESET.neighbour_mirror_gate and WN9_PRESET.neighbour_weight > 0


@pytest.mark.parametrize("weight", [-0.1, float("nan"), float("inf"), 1e300, "0.1", True])
def test_model_refuses_a_bad_neighbour_weight(factory, features, weight):
    # 1e300 is finite, but the scores it multiplies are float32: they would all become infinite
    with pytest.raises(ValueError) as error:
        VBKGC(triples_factory=factory, features=features, neighbour_weight=weight)
    assert (
        str(error.value) == f"neighbour_weight must be a number from 0 to 3.403e+38 (float32's range), got {weight!r}."
    )


def test_model_refuses_too_many_neighbours(factory, features):
    with pytest.raises(ValueError, match=r"^num_neighbours must be below the number of entities \(4\)"):
        VBKGC(triples_factory=factory, features=features, neighbour_weight=0.1, num_neighbours=4)
    with pytest.raises(ValueError, match=r"^num_neighbours must be a positive integer, got 0\.$"):
        VBKGC(triples_factory=factory, features=features, num_neighbours=0)


def test_pipeline_evaluates_with_the_vote():
    result = pipeline(
        dataset="nations",
        model="vbkgc",
        model_kwargs=dict(features="random", feature_dim=4, embedding_dim=4, neighbour_weight=0.2, num_neighbours=5),
        negative_sampler="twins",
        training_kwargs=dict(num_epochs=1, batch_size=256, use_tqdm=False),
        evaluator_kwargs=dict(batch_size=64),
        random_seed=0,
    )
    assert result.model.neighbour_vote is not None
    assert 0 < result.get_metric("both.realistic.inverse_harmonic_mean_rank") <= 1


def test_the_vote_follows_a_model_converted_to_float64(factory, features):
    import copy

    model = VBKGC(triples_factory=factory, features=features, embedding_dim=4, neighbour_weight=0.5, num_neighbours=2)
    model.eval()
    queries = factory.mapped_triples[:3, :2]
    with torch.no_grad():
        expected = model.score_t(queries)
        converted = copy.deepcopy(model).double()
        scores = converted.score_t(queries)
    assert scores.dtype == torch.float64
    torch.testing.assert_close(scores.float(), expected, atol=1e-5, rtol=1e-5)


def test_the_vote_reads_plain_relation_ids_with_inverse_triples(factory, features):
    """PyKEEN gives the model 2r for r and 2r + 1 for its inverse; the vote counts the triples of r.

    Read as relation ids, 2r and 2r + 1 were other relations' votes (or none): evaluation and predictions with
    ``create_inverse_triples=True`` were silently wrong.
    """
    inverse_factory = TriplesFactory.from_labeled_triples(np.asarray(TRIPLES, dtype=str), create_inverse_triples=True)
    settings = dict(features=features, embedding_dim=4, neighbour_weight=1.0, num_neighbours=2, random_seed=0)
    plain = VBKGC(triples_factory=factory, **settings)
    inverse = VBKGC(triples_factory=inverse_factory, **settings)
    assert inverse.use_inverse_triples and inverse.num_relations == 4
    anchors, relations = torch.tensor([1, 3, 0, 3]), torch.tensor([0, 0, 1, 1])
    for side, other in (("tail", "head"), ("head", "tail")):
        expected = plain._votes_of(anchors, relations, side=side)
        torch.testing.assert_close(inverse._votes_of(anchors, 2 * relations, side=side), expected)
        # the inverse relation's tails are the relation's heads
        torch.testing.assert_close(
            inverse._votes_of(anchors, 2 * relations + 1, side=side), plain._votes_of(anchors, relations, side=other)
        )
    # both kinds of rows in one call, as PyKEEN's evaluation sends them
    mixed = inverse._votes_of(anchors, torch.tensor([0, 1, 2, 3]), side="tail")
    torch.testing.assert_close(mixed[0::2], plain._votes_of(anchors[0::2], relations[0::2], side="tail"))
    torch.testing.assert_close(mixed[1::2], plain._votes_of(anchors[1::2], relations[1::2], side="head"))


def test_a_weight_set_later_needs_a_vote(factory, features):
    """A model built without the vote ignored a weight set afterwards, silently."""
    import pickle

    model = VBKGC(triples_factory=factory, features=features, embedding_dim=4, neighbour_weight=0.0, random_seed=0)
    with pytest.raises(ValueError) as error:
        model.neighbour_weight = 5.0
    assert str(error.value) == (
        "this model was built without the neighbours' vote (neighbour_weight=0): pass neighbour_weight to VBKGC(...) "
        "(or model_kwargs) to build it."
    )
    model.neighbour_weight = 0.0  # no vote: fine
    with pytest.raises(ValueError, match=r"^neighbour_weight must be a number from 0 to "):
        model.neighbour_weight = float("nan")
    voting = VBKGC(triples_factory=factory, features=features, embedding_dim=4, neighbour_weight=1.0, num_neighbours=2)
    voting.neighbour_weight = 0.25
    assert pickle.loads(pickle.dumps(voting)).neighbour_weight == 0.25
    # a pickle of an earlier version holds the weight as a plain attribute
    state = voting.__getstate__()
    state["neighbour_weight"] = state.pop("_neighbour_weight")
    earlier = VBKGC.__new__(VBKGC)
    earlier.__setstate__(state)
    assert earlier.neighbour_weight == 0.25
