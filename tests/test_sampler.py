"""Twins negative sampling: encoding, semantics, filtering and use in PyKEEN's training loop."""

import pytest
import torch
from pykeen.pipeline import pipeline
from pykeen.sampling import negative_sampler_resolver
from pykeen.training import SLCWATrainingLoop

from pykeen_vbkgc import VBKGC, MeanMarginRankingLoss, TwinsNegativeSampler
from pykeen_vbkgc.representation import decode_twins, encode_corrupted_twins_, encode_twins
from pykeen_vbkgc.sampler import TwinsNotSupportedError


def test_encode_decode_round_trip():
    n = 7
    original = torch.arange(n).repeat_interleave(n)
    replacement = torch.arange(n).repeat(n)
    ids = encode_twins(original, replacement, n)
    assert (ids >= n).all() and ids.unique().numel() == n * n
    assert torch.equal(decode_twins(ids, n, "original"), original)
    assert torch.equal(decode_twins(ids, n, "replacement"), replacement)
    plain = torch.arange(n)
    assert torch.equal(decode_twins(plain, n, "original"), plain)
    assert torch.equal(decode_twins(plain, n, "replacement"), plain)
    with pytest.raises(ValueError, match="Invalid twins side"):
        decode_twins(plain, n, "both")


@pytest.mark.parametrize("n", [0, -3, 2.0, True])
def test_encoding_needs_a_positive_number_of_entities(n):
    """0 divided by zero in the decoding; a negative or float number made meaningless ids silently."""
    ids = torch.arange(4)
    for function in (
        lambda: encode_twins(ids, ids, n),
        lambda: encode_corrupted_twins_(ids, ids.clone(), n),
        lambda: decode_twins(ids, n, "original"),
        lambda: decode_twins(ids, n, "replacement"),
    ):
        with pytest.raises(ValueError) as error:
            function()
        assert str(error.value) == f"num_entities must be a positive integer, got {n!r}."


def test_a_view_needs_a_representation():
    from pykeen_vbkgc.representation import TwinsView

    with pytest.raises(TypeError) as error:
        TwinsView(base="embedding", side="original")
    assert str(error.value) == "base must be a PyKEEN Representation, got 'embedding'."


def test_encoding_in_place_keeps_unchanged_ids_plain():
    n = 5
    # two negatives per positive of a (2, 2, 2) batch of head and tail columns, broadcast as in the sampler
    original = torch.tensor([[[0, 3]], [[4, 1]]])
    replacement = torch.tensor([[[2, 3], [0, 1]], [[4, 0], [4, 1]]])
    expected = torch.tensor([[[5 * 1 + 2, 3], [0, 5 * 4 + 1]], [[4, 5 * 2 + 0], [4, 1]]])
    out = replacement.clone()
    assert encode_corrupted_twins_(original, out, n) is out
    assert torch.equal(out, expected)
    assert torch.equal(out, torch.where(replacement != original, encode_twins(original, replacement, n), replacement))
    # a strided view (the entity columns of a batch) is written through
    batch = torch.zeros(2, 2, 3, dtype=torch.long)
    batch[..., 0:3:2] = replacement
    encode_corrupted_twins_(original, batch[..., 0:3:2], n)
    assert torch.equal(batch[..., 0:3:2], expected) and not batch[..., 1].any()


def test_registered_by_name():
    assert negative_sampler_resolver.lookup("twins") is TwinsNegativeSampler


def test_corrupts_head_or_tail_and_encodes_the_pair(tiny_factory):
    torch.manual_seed(0)
    n = tiny_factory.num_entities
    sampler = TwinsNegativeSampler(mapped_triples=tiny_factory.mapped_triples, num_entities=n, num_negs_per_pos=5)
    positives = tiny_factory.mapped_triples
    negatives, mask = sampler.sample(positives)
    assert mask is None
    assert negatives.shape == (positives.shape[0], 5, 3)
    expanded = positives[:, None, :].expand_as(negatives)
    # the relation is never touched
    assert torch.equal(negatives[..., 1], expanded[..., 1])
    head_twins, tail_twins = negatives[..., 0] >= n, negatives[..., 2] >= n
    # exactly one side is a twins id, the other is the positive's entity
    assert torch.equal(head_twins ^ tail_twins, torch.ones_like(head_twins))
    assert torch.equal(negatives[..., 0][tail_twins], expanded[..., 0][tail_twins])
    assert torch.equal(negatives[..., 2][head_twins], expanded[..., 2][head_twins])
    for column, twins in ((0, head_twins), (2, tail_twins)):
        ids = negatives[..., column][twins]
        original = decode_twins(ids, n, "original")
        replacement = decode_twins(ids, n, "replacement")
        assert torch.equal(original, expanded[..., column][twins])
        assert (replacement != original).all() and (replacement < n).all()
    # corrupt_batch returns the same encoding
    assert (sampler.corrupt_batch(positives) >= n).any()


@pytest.mark.parametrize("scheme", [("tail",), ("head", "relation", "tail")])
def test_other_corruption_schemes_encode_only_corrupted_entities(tiny_factory, scheme):
    """Only a replaced head or tail becomes a twins id; a replaced relation stays a plain relation id."""
    torch.manual_seed(0)
    n = tiny_factory.num_entities
    sampler = TwinsNegativeSampler(
        mapped_triples=tiny_factory.mapped_triples, num_entities=n, num_negs_per_pos=6, corruption_scheme=scheme
    )
    positives = tiny_factory.mapped_triples
    negatives = sampler.corrupt_batch(positives)
    expanded = positives[:, None, :].expand_as(negatives)
    twins = negatives >= n
    twins[..., 1] = False  # relation ids are compared below
    changed_relation = negatives[..., 1] != expanded[..., 1]
    # every negative replaced exactly one column: a twins-encoded entity or a plain relation
    assert torch.equal(twins.sum(dim=-1) + changed_relation.long(), torch.ones_like(changed_relation, dtype=torch.long))
    assert set(torch.nonzero(twins)[:, -1].tolist()) == ({2} if scheme == ("tail",) else {0, 2})
    assert changed_relation.any() == ("relation" in scheme)
    assert (negatives[..., 1] < tiny_factory.num_relations).all()
    for column in (0, 2):
        ids = negatives[..., column][twins[..., column]]
        assert torch.equal(decode_twins(ids, n, "original"), expanded[..., column][twins[..., column]])
        plain = ~twins[..., column]
        assert torch.equal(negatives[..., column][plain], expanded[..., column][plain])


def test_a_scheme_without_entities_is_refused(tiny_factory):
    with pytest.raises(ValueError, match=r"corruption_scheme=\('relation',\) replaces neither"):
        TwinsNegativeSampler(
            mapped_triples=tiny_factory.mapped_triples,
            num_entities=tiny_factory.num_entities,
            corruption_scheme=("relation",),
        )


def test_filter_runs_on_plain_triples_and_never_lets_a_positive_through():
    torch.manual_seed(1)
    n = 6
    # a dense graph: most corruptions are known positives, some are not
    mapped = torch.as_tensor([[h, 0, t] for h in range(n) for t in range(n) if (h + t) % 3])
    known = {tuple(triple) for triple in mapped.tolist()}
    sampler = TwinsNegativeSampler(mapped_triples=mapped, num_entities=n, num_negs_per_pos=50, filtered=True)
    negatives, mask = sampler.sample(mapped)
    assert mask.shape == negatives.shape[:2]
    plain = negatives.clone()
    for column in (0, 2):
        plain[..., column] = decode_twins(negatives[..., column], n, "replacement")
    is_positive = torch.as_tensor([[tuple(x) in known for x in row] for row in plain.tolist()])
    assert is_positive.sum() > 100 and (~is_positive).sum() > 100
    assert torch.equal(mask, ~is_positive)


@pytest.mark.parametrize("k", [0, -1])
def test_bad_number_of_negatives_is_refused(tiny_factory, k):
    with pytest.raises(ValueError, match=f"^num_negs_per_pos must be a positive integer, got {k}.$"):
        TwinsNegativeSampler(
            mapped_triples=tiny_factory.mapped_triples,
            num_entities=tiny_factory.num_entities,
            num_relations=tiny_factory.num_relations,
            num_negs_per_pos=k,
        )


def test_twins_with_a_model_without_twins_support_fails_at_once():
    with pytest.raises(TwinsNotSupportedError, match=r"needs a model that consumes twins negatives.*TransE"):
        pipeline(
            model="TransE",
            dataset="nations",
            negative_sampler="twins",
            training_kwargs=dict(num_epochs=1),
            random_seed=0,
        )


@pytest.mark.parametrize(
    "training_kwargs",
    [
        dict(batch_size=64, sub_batch_size=16),
        dict(batch_size=128, num_workers=2),
    ],
    ids=["sub-batching", "dataloader-workers"],
)
def test_training_loop_with_sub_batches_workers_and_filter(tiny_factory, tiny_features, training_kwargs):
    """Negatives travel through sub-batch slicing and worker processes as plain index tensors."""
    from pykeen.datasets import Nations

    dataset = Nations()
    model = VBKGC(triples_factory=dataset.training, features=None, feature_dim=8, embedding_dim=8, random_seed=0)
    loop = SLCWATrainingLoop(
        model=model,
        triples_factory=dataset.training,
        optimizer=torch.optim.Adam(model.parameters(), lr=1e-2),
        negative_sampler="twins",
        negative_sampler_kwargs=dict(num_negs_per_pos=4, filtered=True),
    )
    model.loss = MeanMarginRankingLoss(margin=4.0)
    losses = loop.train(triples_factory=dataset.training, num_epochs=3, use_tqdm=False, **training_kwargs)
    assert len(losses) == 3 and all(torch.isfinite(torch.as_tensor(losses)))
    assert losses[-1] < losses[0]
