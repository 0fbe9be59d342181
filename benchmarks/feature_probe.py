r"""How much do the entity features alone say about the links? Training-free predictors, ranked by PyKEEN (issue 18).

Item 2 of issue 18 asks whether the text features help VBKGC; on FB15k-237 random features did as well as MiniLM's at
dimension 128. This probe asks the question before any training: how well do the features alone predict the test
links, against random features of the same shape? Three predictors score every candidate $e$ of a query
$(h, r, ?)$ (and of $(?, r, t)$ with the roles swapped), from the training triples only:

- ``frequency``: how often $e$ is a tail of $r$ in training (no features; the relation's type prior).
- ``centroid``: $\cos(\mathbf{f}_e, \mathbf{c}_r)$, with $\mathbf{c}_r$ the mean unit feature of the training tails
  of $r$: the type prior through the features, which generalises to entities never seen with $r$ if the features
  group entities by type.
- ``neighbours``: $\sum_{h'} \cos(\mathbf{f}_h, \mathbf{f}_{h'}) \, [(h', r, e) \in \text{train}]$ over the $K$
  entities $h' \neq h$ with the most similar features (frequency breaks ties): the tails that entities described
  like $h$ have. This is where the content of a text, not only its type, can show.

The features: the text features (MiniLM), random ones of the same shape, each entity's *relation profile* (its
training triples counted per relation and side: what the graph alone says about an entity's kind) and text and
profile together (the mean of the two cosines). If text and profile together predict better than the profile alone,
the text says something about the links that the graph's own statistics do not.

Filtered ranks of the test triples, both sides, as PyKEEN's :class:`~pykeen.evaluation.RankBasedEvaluator` computes
them (the other known triples of train, validation and test filtered)::

    python benchmarks/feature_probe.py --dataset fb15k237multimodal --data ../shared/data/fb15k237
    python benchmarks/feature_probe.py --dataset wn9 --data ../shared/data/wn9
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import torch
from pipeline_run import METRICS
from pykeen.datasets import get_dataset
from pykeen.evaluation import RankBasedEvaluator
from pykeen.typing import LABEL_HEAD, LABEL_TAIL, FloatTensor, LongTensor

import pykeen_vbkgc  # noqa: F401  (registers the datasets)
from pykeen_vbkgc.features import load_features
from pykeen_vbkgc.neighbours import NeighbourVote

#: a query's candidates scored at once: (batch, entities) floats
BATCH = 512


def relation_profiles(triples: LongTensor, num_entities: int, num_relations: int) -> FloatTensor:
    r"""Return each entity's relation profile: $\log(1 + n)$ of its training triples per relation and side.

    Features made from the graph alone: entities with the same kinds of links get similar profiles.
    """
    h, r, t = triples.T
    counts = torch.zeros(num_entities, 2 * num_relations)
    counts.index_put_((h, r), torch.ones(len(h)), accumulate=True)
    counts.index_put_((t, num_relations + r), torch.ones(len(t)), accumulate=True)
    return counts.log1p()


class Predictors:
    """The three training-free predictors of the module's description, for the tail side of ``triples``."""

    def __init__(self, features: FloatTensor, triples: LongTensor, num_relations: int, neighbours: int) -> None:
        self.unit = torch.nn.functional.normalize(features.double(), dim=1).float()
        self.num_entities = num_entities = self.unit.shape[0]
        h, r, t = triples.T
        # frequency[r, e]: how often e is a tail of r
        self.frequency = torch.zeros(num_relations, num_entities)
        self.frequency.index_put_((r, t), torch.ones(len(t)), accumulate=True)
        centroid = torch.zeros(num_relations, self.unit.shape[1])
        centroid.index_add_(0, r, self.unit[t])
        self.centroid = torch.nn.functional.normalize(centroid, dim=1)
        self.features = features
        # the vote that VBKGC adds with neighbour_weight (its tail side: ``triples`` are reversed for heads)
        self.vote = NeighbourVote(triples, num_entities, num_relations, neighbours)
        # the vote's tie-breaker (frequency scaled below any similarity step that matters) breaks the centroid's ties
        self.prior = self.vote.tail_prior

    def score(self, name: str, heads: LongTensor, relations: LongTensor) -> FloatTensor:
        """Return the (batch, entities) scores of predictor ``name`` for the queries $(h, r, ?)$."""
        if name == "frequency":
            return self.frequency[relations]
        if name == "centroid":
            return self.centroid[relations] @ self.unit.T + self.prior[relations]
        if name == "neighbours":
            return self.vote(self.features, heads, relations, side="tail")
        raise ValueError(f"unknown predictor {name!r}")


def evaluate(
    score: Callable[[LongTensor, LongTensor], FloatTensor],
    score_heads: Callable[[LongTensor, LongTensor], FloatTensor],
    test: LongTensor,
    known: LongTensor,
) -> dict[str, float]:
    """Return PyKEEN's filtered rank metrics of ``test``; ``score(h, r)`` scores tails, ``score_heads(t, r)`` heads."""
    evaluator = RankBasedEvaluator()
    for side, column, other, function in ((LABEL_TAIL, 2, 0, score), (LABEL_HEAD, 0, 2, score_heads)):
        # the known answers of each query (anchor, relation), from train, validation and test
        answers: dict[tuple[int, int], list[int]] = {}
        for triple in known.tolist():
            answers.setdefault((triple[other], triple[1]), []).append(triple[column])
        for start in range(0, len(test), BATCH):
            batch = test[start : start + BATCH]
            scores = function(batch[:, other], batch[:, 1]).float()
            targets = batch[:, column]
            true_scores = scores[torch.arange(len(batch)), targets].unsqueeze(1)
            mask = torch.zeros_like(scores, dtype=torch.bool)
            for row, (anchor, relation) in enumerate(batch[:, [other, 1]].tolist()):
                mask[row, answers[(anchor, relation)]] = True
            # as PyKEEN's filtered evaluation: the other known answers out of the ranking, the true one in it
            mask[torch.arange(len(batch)), targets] = False
            scores = scores.masked_fill(mask, float("nan"))
            evaluator.process_scores_(batch, side, scores=scores, true_scores=true_scores)
    result = evaluator.finalize()
    return {name: result.get_metric(key) for name, key in METRICS.items()}


def print_and_append(row: dict, output: Path) -> None:
    """Print ``row`` as one JSON line and append it to ``output``."""
    line = json.dumps(row)
    print(line, flush=True)
    with output.open("a") as file:
        file.write(line + "\n")


def main() -> None:
    """Run the three predictors with the dataset's features and with random ones; print and append JSON lines."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--data", type=Path, required=True, help="the dataset directory")
    parser.add_argument("--features", type=Path, help="default: DATA/features.minilm.safetensors")
    parser.add_argument("--neighbours", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0, help="of the random features")
    parser.add_argument("--output", type=Path, default=Path("results/feature_probe.jsonl"))
    args = parser.parse_args()

    dataset = get_dataset(dataset=args.dataset, dataset_kwargs=dict(directory=args.data))
    training = dataset.training
    num_relations = training.num_relations
    train = training.mapped_triples
    known = torch.cat([train, dataset.validation.mapped_triples, dataset.testing.mapped_triples])
    test = dataset.testing.mapped_triples
    text = load_features(args.features or args.data / "features.minilm.safetensors").align(training.entity_to_id)
    generator = torch.Generator().manual_seed(args.seed)
    feature_sets = {
        "text": text.vectors,
        "random": torch.randn(text.vectors.shape, generator=generator),
        "profile": relation_profiles(train, training.num_entities, num_relations),
    }
    # the cosine of two unit vectors side by side is the mean of their cosines
    text_unit, profile_unit = (torch.nn.functional.normalize(feature_sets[name], dim=1) for name in ("text", "profile"))
    feature_sets["text+profile"] = torch.cat([text_unit, profile_unit], dim=1)
    reversed_train = train[:, [2, 1, 0]]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    for features_name, features in feature_sets.items():
        tails = Predictors(features, train, num_relations, args.neighbours)
        heads = Predictors(features, reversed_train, num_relations, args.neighbours)
        for predictor in ("frequency", "centroid", "neighbours"):
            if predictor == "frequency" and features_name != "text":
                continue  # no features in it
            metrics = evaluate(
                lambda h, r, p=predictor, side=tails: side.score(p, h, r),
                lambda t, r, p=predictor, side=heads: side.score(p, t, r),
                test,
                known,
            )
            row = dict(
                dataset=args.dataset,
                predictor=predictor,
                features="none" if predictor == "frequency" else features_name,
                neighbours=args.neighbours if predictor == "neighbours" else None,
                **{name: round(value, 4) for name, value in metrics.items()},
            )
            print_and_append(row, args.output)


if __name__ == "__main__":
    main()
