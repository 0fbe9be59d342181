r"""Can the neighbours' vote join a trained model's scores without a cost where the model is right? (issue 18, item 2)

On WN9 most test triples $(h, r, t)$ have their reverse pair linked in training (some $(t, r', h)$, e.g. a hyponym
for a hypernym): there VBKGC is nearly always right, and on the others it nearly never is, while the vote of the text
neighbours (:class:`~pykeen_vbkgc.neighbours.NeighbourVote`) ranks those far better (docs/results.md). VBKGC's sum
$z(s) + \lambda \, z(v)$ of the standardised scores and votes trades the one part against the other. This probe ranks
a split, all of it and each part (``evaluate_weights.py``'s :func:`reverse_known`), with four ways of combining a
query's model scores $s$ and votes $v$ over all candidates:

- ``sum``: $z(s) + \lambda \, z(v)$, VBKGC's ``neighbour_weight``;
- ``mixture``: $\log\big((1 - \alpha) \operatorname{softmax}(s / \tau) + \alpha \, v / \textstyle\sum v\big)$, the
  model's and the vote's distributions over the candidates mixed, so that a confident model (a peaked softmax) keeps
  its answer;
- ``gate``: $z(s) + \lambda \, z(v)$ only for the queries whose best $z(s)$ is below $g$, where the model is unsure;
- ``mirror``: $z(s) + \lambda \, z(v)$ only for the queries that no mirrored training triple answers (VBKGC's
  ``neighbour_mirror_gate``; :mod:`pykeen_vbkgc.neighbours`), which knows nothing of the test triples.

The vote uses the model's own features (random ones for a random-features model), as VBKGC's does. Filtered ranks
from PyKEEN's :class:`~pykeen.evaluation.RankBasedEvaluator` (the other known triples of all splits filtered)::

    python benchmarks/vote_combinations.py --dataset wn9 --data ../shared/data/wn9 \
        --weights results/wn9w/vbkgc-defaults-seed0.pt --split validation --label vbkgc-defaults --seed 0
    python benchmarks/accuracy_report.py results/vote_combinations.jsonl    # mean and sd over the seeds
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections.abc import Callable
from pathlib import Path

import torch
from evaluate_weights import reverse_known
from feature_probe import BATCH, evaluate, print_and_append
from pykeen.datasets import get_dataset
from pykeen.models import model_resolver
from pykeen.typing import FloatTensor, LongTensor

from pykeen_vbkgc import VBKGC
from pykeen_vbkgc.neighbours import NeighbourVote, mirror_answered, standardised

#: (name, parameters) of each combination tried; the parameters are those of the module's description
COMBINATIONS: list[tuple[str, dict[str, float]]] = (
    [("sum", dict(weight=weight)) for weight in (0.0, 0.02, 0.05, 0.2)]
    + [
        ("mixture", dict(temperature=temperature, share=share))
        for temperature, share in itertools.product((0.5, 1.0, 2.0), (0.01, 0.05, 0.2))
    ]
    + [
        ("gate", dict(threshold=threshold, weight=weight))
        for threshold, weight in itertools.product((5, 6, 7), (0.05, 0.2))
    ]
    + [("mirror", dict(weight=weight)) for weight in (0.05, 0.1, 0.2, 0.5, 1.0)]
)


def combine(name: str, scores: FloatTensor, votes: FloatTensor, gated: FloatTensor, **parameters: float) -> FloatTensor:
    """Return the combined ranking scores of one combination of the module's description, shape of ``scores``.

    :param gated: the votes with the mirror gate (all zero for the queries that a mirrored training triple answers)
    """
    if name == "mirror":
        # VBKGC's sum, with the gated votes
        name, votes = "sum", gated
    scores, votes = scores.double(), votes.double()
    if name == "sum":
        return standardised(scores) + parameters["weight"] * standardised(votes)
    if name == "mixture":
        model = torch.softmax(scores / parameters["temperature"], dim=1)
        share = parameters["share"]
        return torch.log((1 - share) * model + share * votes / votes.sum(dim=1, keepdim=True))
    if name == "gate":
        z = standardised(scores)
        unsure = z.amax(dim=1, keepdim=True) < parameters["threshold"]
        return z + unsure * parameters["weight"] * standardised(votes)
    raise ValueError(f"unknown combination {name!r}")


def main() -> None:
    """Score the split once, then rank it with every combination; print and append one JSON line per part."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--model-kwargs", default="{}", help="JSON, the run's own")
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--neighbours", type=int, default=50)
    parser.add_argument("--split", choices=("validation", "testing"), default="validation")
    parser.add_argument("--num-triples", type=int, help="a random sample of the split (default: all of it)")
    parser.add_argument("--label", required=True, help="the model's; each line adds the combination")
    # the training run's, recorded so that accuracy_report.py tabulates the lines over seeds
    parser.add_argument("--seed", type=int, default=None, help="the seed of the run that trained the weights")
    parser.add_argument("--epochs", type=int, default=None, help="its epochs")
    parser.add_argument("--output", type=Path, default=Path("results/vote_combinations.jsonl"))
    args = parser.parse_args()

    dataset = get_dataset(dataset=args.dataset, dataset_kwargs=dict(directory=args.data))
    training = dataset.training
    # the vote is combined here: the model's own (FB15k-237's preset has one) stays out
    model_kwargs = {**json.loads(args.model_kwargs), "neighbour_weight": 0.0}
    model: VBKGC = model_resolver.make("vbkgc", triples_factory=training, **model_kwargs)
    model.load_state_dict(torch.load(args.weights, map_location="cpu", weights_only=True))
    model.eval()
    vote = NeighbourVote(training.mapped_triples, training.num_entities, training.num_relations, args.neighbours)
    # the mirror gate's queries, to zero their votes as NeighbourVote(mirror_gate=True) does, without voting twice
    answered = mirror_answered(training.mapped_triples, training.num_entities, training.num_relations)
    known = torch.cat([training.mapped_triples, dataset.validation.mapped_triples, dataset.testing.mapped_triples])
    ranked = getattr(dataset, args.split).mapped_triples
    if args.num_triples is not None:
        ranked = ranked[torch.randperm(len(ranked), generator=torch.Generator().manual_seed(0))[: args.num_triples]]
    parts = {"all": ranked}
    mirrored = reverse_known(ranked, training.mapped_triples)
    parts.update({"reverse-known": ranked[mirrored], "reverse-unknown": ranked[~mirrored]})
    # a part without triples has no metrics (FB15k-237 has hardly any mirrored test triples)
    parts = {part: triples for part, triples in parts.items() if len(triples)}

    # each query's scores and votes over all candidates, once: (anchor, relation) -> row
    rows: dict[str, dict[tuple[int, int], int]] = {}
    tables: dict[str, tuple[FloatTensor, FloatTensor, FloatTensor]] = {}
    features = model._features()
    with torch.inference_mode():
        for side, anchor in (("tail", 0), ("head", 2)):
            queries = torch.unique(ranked[:, [anchor, 1]], dim=0)
            rows[side] = {pair: row for row, pair in enumerate(map(tuple, queries.tolist()))}
            scores, plain, gated = [], [], []
            for batch in queries.split(BATCH):
                anchors, relations = batch.T
                pairs = torch.stack([anchors, relations] if side == "tail" else [relations, anchors], dim=1)
                scores.append((model.score_t if side == "tail" else model.score_h)(pairs))
                plain.append(vote(features, anchors, relations, side=side))
                gated.append(plain[-1].masked_fill(answered[side][relations, anchors].unsqueeze(1), 0.0))
            tables[side] = torch.cat(scores), torch.cat(plain), torch.cat(gated)

    def scorer(side: str, combined: FloatTensor) -> Callable[[LongTensor, LongTensor], FloatTensor]:
        def score(anchors: LongTensor, relations: LongTensor) -> FloatTensor:
            return combined[[rows[side][pair] for pair in zip(anchors.tolist(), relations.tolist())]]

        return score

    args.output.parent.mkdir(parents=True, exist_ok=True)
    for name, parameters in COMBINATIONS:
        tail, head = (scorer(side, combine(name, *tables[side], **parameters)) for side in ("tail", "head"))
        for part, triples in parts.items():
            metrics = evaluate(tail, head, triples, known)
            row = dict(
                # one row of accuracy_report.py per combination and part, its seeds side by side
                label=f"{args.label}-{name}" + "".join(f"-{key}{value:g}" for key, value in parameters.items()),
                subset=None if part == "all" else part,
                dataset=args.dataset,
                weights=str(args.weights),
                seed=args.seed,
                epochs=args.epochs,
                split=args.split,
                num_triples=len(triples),
                combination=name,
                **parameters,
                **{metric: round(value, 4) for metric, value in metrics.items()},
            )
            print_and_append(row, args.output)


if __name__ == "__main__":
    main()
