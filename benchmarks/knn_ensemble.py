"""Is the text's link signal (``feature_probe.py``) one that a trained VBKGC already has? (issue 18, item 2)

``feature_probe.py`` finds that the MiniLM features alone, through the tails of each entity's nearest neighbours by
text, rank FB15k-237's test answers about as well as the converged structural term, while random features do not;
yet VBKGC with random features scores as well as with MiniLM's. This script adds the neighbours' scores to a trained
model's, each standardised per query, $s = z(s_{\\text{model}}) + \\lambda \\, z(s_{\\text{neighbours}})$, picks
$\\lambda$ on (part of) the validation split and reports the filtered test metrics for $\\lambda = 0$ and the chosen
one. A gain means the model misses what the neighbours know::

    python benchmarks/knn_ensemble.py --dataset fb15k237multimodal --data ../shared/data/fb15k237 \\
        --weights results/ckpt/fb-conv-twins-w0.03-unit-k128-s0-best-weights.pt \\
        --model-kwargs '{"term_weights": "mm=0.03,sm=0.03,ms=0.03,all=0.03", "normalize_relations": true}'

``--weights`` is a state dict of the model, e.g. the best weights that PyKEEN's early stopper writes; the model is
rebuilt from ``--model`` and ``--model-kwargs`` (the run's own).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from feature_probe import evaluate, print_and_append
from pykeen.datasets import get_dataset
from pykeen.models import model_resolver
from pykeen.typing import FloatTensor

from pykeen_vbkgc import VBKGC
from pykeen_vbkgc.features import load_features
from pykeen_vbkgc.neighbours import NeighbourVote, standardised


def main() -> None:
    """Evaluate the model alone and with the neighbours' scores added; print and append JSON lines."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--model", default="vbkgc")
    parser.add_argument("--model-kwargs", default="{}", help="JSON")
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--neighbours", type=int, default=50)
    parser.add_argument("--lambdas", type=float, nargs="+", default=[0.0, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0])
    parser.add_argument("--num-validation", type=int, default=3000, help="validation triples that choose lambda")
    parser.add_argument("--num-test", type=int, default=None, help="test triples (default: all; fewer for a check)")
    parser.add_argument("--label", default=None)
    parser.add_argument("--output", type=Path, default=Path("results/knn_ensemble.jsonl"))
    args = parser.parse_args()

    dataset = get_dataset(dataset=args.dataset, dataset_kwargs=dict(directory=args.data))
    training = dataset.training
    model_kwargs = json.loads(args.model_kwargs)
    if issubclass(model_resolver.lookup(args.model), VBKGC):
        # the vote is added here, for every weight: the model's own (FB15k-237's preset has one) stays out
        model_kwargs["neighbour_weight"] = 0.0
    model = model_resolver.make(args.model, triples_factory=training, **model_kwargs)
    model.load_state_dict(torch.load(args.weights, map_location="cpu", weights_only=True))
    model.eval()
    train = training.mapped_triples
    known = torch.cat([train, dataset.validation.mapped_triples, dataset.testing.mapped_triples])
    text = load_features(args.data / "features.minilm.safetensors").align(training.entity_to_id).vectors
    # the vote of VBKGC's neighbour_weight, here with the text features whatever the model's
    vote = NeighbourVote(train, training.num_entities, training.num_relations, args.neighbours)

    # the standardised scores of each batch of queries, (model, neighbours), computed once for all weights
    cache: dict[tuple[str, bytes], tuple[FloatTensor, FloatTensor]] = {}
    caching = True

    @torch.inference_mode()
    def parts(side: str, anchor, relation) -> tuple[FloatTensor, FloatTensor]:
        key = (side, torch.stack([anchor, relation]).numpy().tobytes())
        if key in cache:
            return cache[key]
        if side == "tail":
            model_scores = model.score_t(torch.stack([anchor, relation], dim=1))
            neighbour_scores = vote(text, anchor, relation, side="tail")
        else:
            model_scores = model.score_h(torch.stack([relation, anchor], dim=1))
            neighbour_scores = vote(text, anchor, relation, side="head")
        result = standardised(model_scores), standardised(neighbour_scores)
        if caching:
            cache[key] = result
        return result

    def scorer(weight: float):
        def combined(side: str, anchor, relation) -> FloatTensor:
            model_scores, neighbour_scores = parts(side, anchor, relation)
            return model_scores + weight * neighbour_scores

        return (lambda h, r: combined("tail", h, r)), (lambda t, r: combined("head", t, r))

    generator = torch.Generator().manual_seed(0)
    validation = dataset.validation.mapped_triples
    validation = validation[torch.randperm(len(validation), generator=generator)[: args.num_validation]]
    validation_mrr = {weight: round(evaluate(*scorer(weight), validation, known)["mrr"], 4) for weight in args.lambdas}
    chosen = max(args.lambdas, key=validation_mrr.get)
    # the test's scores are used twice only: not worth their memory (about 2.3 GB a side on FB15k-237)
    cache.clear()
    caching = False
    args.output.parent.mkdir(parents=True, exist_ok=True)
    test = dataset.testing.mapped_triples[: args.num_test]
    for weight in sorted({0.0, chosen}):
        metrics = evaluate(*scorer(weight), test, known)
        row = dict(
            label=args.label,
            dataset=args.dataset,
            weights=str(args.weights),
            neighbours=args.neighbours,
            weight=weight,
            validation_mrr=validation_mrr,
            num_validation=len(validation),
            num_test=len(test),
            **{name: round(value, 4) for name, value in metrics.items()},
        )
        print_and_append(row, args.output)


if __name__ == "__main__":
    main()
