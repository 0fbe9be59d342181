"""The mean-margin ranking loss (Eq. 15) on hand-made scores."""

import pytest
import torch
from pykeen.losses import NoSampleWeightSupportError, UnsupportedLabelSmoothingError, loss_resolver
from pykeen.pipeline import pipeline

from pykeen_vbkgc import MeanMarginRankingLoss

POSITIVE = torch.as_tensor([[2.0], [-1.0], [0.5]])
NEGATIVE = torch.as_tensor([[1.0, 3.0, -2.0, 0.0], [-4.0, -2.0, -3.0, -3.0], [5.0, 0.0, 0.0, 1.0]])


def hinge(x: float) -> float:
    return max(x, 0.0)


def test_registered_by_name():
    assert loss_resolver.lookup("meanmarginranking") is MeanMarginRankingLoss
    assert MeanMarginRankingLoss.hpo_default["margin"]["choices"] == [8.0, 10.0, 12.0, 16.0, 24.0]


def test_mean_of_negatives_inside_the_hinge():
    loss = MeanMarginRankingLoss(margin=1.0)
    # row means: 0.5, -3.0, 1.5 -> hinge(1 - 2 + 0.5) = 0, hinge(1 + 1 - 3) = 0, hinge(1 - 0.5 + 1.5) = 2
    expected = [hinge(1.0 - 2.0 + 0.5), hinge(1.0 + 1.0 - 3.0), hinge(1.0 - 0.5 + 1.5)]
    value = loss.process_slcwa_scores(positive_scores=POSITIVE, negative_scores=NEGATIVE)
    assert value.item() == pytest.approx(sum(expected) / 3)
    # not the per-pair margin ranking loss: that one would be positive for the first row
    per_pair = torch.relu(1.0 - POSITIVE + NEGATIVE).mean()
    assert per_pair.item() != pytest.approx(value.item())
    summed = MeanMarginRankingLoss(margin=1.0, reduction="sum")
    assert summed.process_slcwa_scores(POSITIVE, NEGATIVE).item() == pytest.approx(sum(expected))


def test_filtered_negatives_average_over_the_kept_ones():
    loss = MeanMarginRankingLoss(margin=1.0)
    mask = torch.as_tensor([[True, False, True, False], [False, False, False, False], [False, True, True, True]])
    # the sLCWA loop hands over only the kept negatives, flattened in row-major order
    kept = NEGATIVE[mask]
    # row 1 keeps (1, -2): mean -0.5; row 2 keeps nothing and is dropped; row 3 keeps (0, 0, 1): mean 1/3
    expected = [hinge(1.0 - 2.0 - 0.5), hinge(1.0 - 0.5 + 1.0 / 3.0)]
    value = loss.process_slcwa_scores(positive_scores=POSITIVE, negative_scores=kept, batch_filter=mask)
    assert value.item() == pytest.approx(sum(expected) / 2)


def test_a_batch_whose_negatives_were_all_filtered_gives_zero_not_nan():
    positive = POSITIVE.clone().requires_grad_()
    nothing = torch.zeros(3, 4, dtype=torch.bool)
    value = MeanMarginRankingLoss(margin=1.0).process_slcwa_scores(
        positive_scores=positive, negative_scores=torch.empty(0), batch_filter=nothing
    )
    assert value.item() == 0.0
    value.backward()  # still part of the graph: a training step with such a batch changes nothing
    assert positive.grad.abs().sum() == 0
    # the same for LCWA: rows without negatives
    predictions = torch.ones(2, 3, requires_grad=True)
    assert MeanMarginRankingLoss().process_lcwa_scores(predictions, torch.ones(2, 3)).item() == 0.0


@pytest.mark.parametrize("margin", [-1.0, float("nan"), float("inf"), 1e300, "1", True])
def test_a_margin_outside_float32_is_refused(margin):
    # 1e300 is a finite Python float, but it makes the float32 loss infinite
    with pytest.raises(ValueError) as error:
        MeanMarginRankingLoss(margin=margin)
    assert str(error.value) == f"margin must be a number from 0 to 3.403e+38 (float32's range), got {margin!r}."


def test_zero_margin_is_allowed():
    assert MeanMarginRankingLoss(margin=0.0).margin == 0.0


def test_gradient_flows_to_scores():
    positive = POSITIVE.clone().requires_grad_()
    negative = NEGATIVE.clone().requires_grad_()
    MeanMarginRankingLoss(margin=1.0).process_slcwa_scores(positive, negative).backward()
    # only the third row is inside the margin: d/dpos = -1/3, d/dneg = 1/(3*4)
    torch.testing.assert_close(positive.grad.view(-1), torch.as_tensor([0.0, 0.0, -1 / 3]))
    torch.testing.assert_close(negative.grad[2], torch.full((4,), 1 / 12))
    assert negative.grad[:2].abs().sum() == 0


def test_lcwa_scores_contrast_positives_with_the_row_mean_of_negatives():
    predictions = torch.as_tensor([[3.0, 1.0, 0.0, 2.0], [0.0, 4.0, 1.0, 1.0]])
    labels = torch.as_tensor([[1.0, 0.0, 0.0, 1.0], [0.0, 0.0, 1.0, 0.0]])
    loss = MeanMarginRankingLoss(margin=2.0)
    # row 1: negatives mean 0.5, positives 3 and 2; row 2: negatives mean 5/3, positive 1
    expected = [hinge(2.0 - 3.0 + 0.5), hinge(2.0 - 2.0 + 0.5), hinge(2.0 - 1.0 + 5.0 / 3.0)]
    assert loss.process_lcwa_scores(predictions, labels).item() == pytest.approx(sum(expected) / 3)


def test_unsupported_options_raise():
    loss = MeanMarginRankingLoss()
    with pytest.raises(UnsupportedLabelSmoothingError):
        loss.process_slcwa_scores(POSITIVE, NEGATIVE, label_smoothing=0.1)
    with pytest.raises(NoSampleWeightSupportError):
        loss.process_slcwa_scores(POSITIVE, NEGATIVE, pos_weights=torch.ones(3, 1))
    with pytest.raises(ValueError, match="reduction must be 'mean' or 'sum'"):
        MeanMarginRankingLoss(reduction="max")


def test_usable_with_a_builtin_model():
    result = pipeline(
        model="TransE",
        dataset="nations",
        loss="meanmarginranking",
        loss_kwargs=dict(margin=2.0),
        negative_sampler_kwargs=dict(num_negs_per_pos=4),
        # enough steps that the loss falls on every device (3 epochs at lr 1e-3 did not on CUDA)
        optimizer_kwargs=dict(lr=1e-2),
        training_kwargs=dict(num_epochs=5, batch_size=256, use_tqdm=False),
        evaluator_kwargs=dict(batch_size=64),
        random_seed=0,
    )
    assert isinstance(result.model.loss, MeanMarginRankingLoss)
    assert result.model.loss.margin == 2.0
    assert result.losses[-1] < result.losses[0]
