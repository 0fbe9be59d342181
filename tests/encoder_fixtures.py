"""Fixtures for the encoder tests: tiny random checkpoints saved with ``save_pretrained``, PIL images, texts.

Import the fixtures in a test module with ``from encoder_fixtures import *`` (names start with ``enc_``).
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never download in tests

import pytest
import torch
from PIL import Image

__all__ = [
    "ENC_ENTITIES",
    "ENC_IMAGE_COUNTS",
    "ENC_TEXTS",
    "ENC_TRIPLES",
    "ENC_VOCAB",
    "enc_bert_dir",
    "enc_images",
    "enc_resnet_dir",
    "enc_texts_file",
    "enc_visualbert_dir",
    "enc_vit_dir",
    "make_image",
]

ENC_VOCAB = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
    "a", "the", "of", "in", "is", "and", "with", "small", "big", "animal", "city", "river", "cat", "dog",
    "paris", "france", "seine", "tree", "house", "red", "blue", "green", "capital", "pet", "flows",
]  # fmt: skip

#: entity label -> description; labels are Freebase-like to exercise the directory naming
ENC_TEXTS = {
    "/m/cat": "the cat is a small pet animal",
    "/m/dog": "the dog is a big pet animal",
    "/m/paris": "paris is the capital of france",
    "/m/france": "france",
    "/m/seine": "the seine river flows in paris",
    "/m/tree": "a green tree",
    "/m/house": "a red house with a blue tree",
    "/m/pet": "pet animal",
}
ENC_ENTITIES = tuple(ENC_TEXTS)
#: how many images each entity gets (0, 1 and 3 included)
ENC_IMAGE_COUNTS = {"/m/cat": 3, "/m/dog": 1, "/m/paris": 2, "/m/seine": 1, "/m/house": 3}
ENC_TRIPLES = [
    ("/m/cat", "is_a", "/m/pet"),
    ("/m/dog", "is_a", "/m/pet"),
    ("/m/paris", "capital_of", "/m/france"),
    ("/m/seine", "flows_in", "/m/paris"),
    ("/m/seine", "flows_in", "/m/france"),
    ("/m/house", "in", "/m/paris"),
    ("/m/tree", "in", "/m/paris"),
    ("/m/cat", "in", "/m/house"),
    ("/m/dog", "in", "/m/house"),
    ("/m/tree", "near", "/m/house"),
]


def make_image(path, seed: int, size=(40, 30)) -> None:
    """Write a deterministic random RGB image."""
    generator = torch.Generator().manual_seed(seed)
    pixels = torch.randint(0, 256, (size[1], size[0], 3), generator=generator, dtype=torch.uint8)
    Image.fromarray(pixels.numpy(), mode="RGB").save(path)


def _write_vocab(directory) -> None:
    (directory / "vocab.txt").write_text("\n".join(ENC_VOCAB) + "\n", encoding="utf-8")


@pytest.fixture(scope="session")
def enc_visualbert_dir(tmp_path_factory):
    """A tiny random VisualBERT (hidden 32, 2 layers, visual dim 16) and a tiny vocabulary, in one directory."""
    from transformers import VisualBertConfig, VisualBertModel

    directory = tmp_path_factory.mktemp("visualbert")
    torch.manual_seed(0)
    config = VisualBertConfig(
        vocab_size=len(ENC_VOCAB),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        visual_embedding_dim=16,
        max_position_embeddings=32,
    )
    VisualBertModel(config).save_pretrained(directory)
    _write_vocab(directory)
    return directory


@pytest.fixture(scope="session")
def enc_resnet_dir(tmp_path_factory):
    """A tiny random ResNet with 16-d pooled output (matches the tiny VisualBERT) and its image processor."""
    from transformers import ConvNextImageProcessor, ResNetConfig, ResNetModel

    directory = tmp_path_factory.mktemp("resnet")
    torch.manual_seed(1)
    ResNetModel(ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], num_channels=3)).save_pretrained(
        directory
    )
    ConvNextImageProcessor(size={"shortest_edge": 32}, crop_pct=1.0).save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def enc_vit_dir(tmp_path_factory):
    """A tiny random ViT with 24-d output (does not match the tiny VisualBERT) and its image processor."""
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    directory = tmp_path_factory.mktemp("vit")
    torch.manual_seed(2)
    config = ViTConfig(
        hidden_size=24, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, image_size=32, patch_size=16
    )
    ViTModel(config).save_pretrained(directory)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def enc_bert_dir(tmp_path_factory):
    """A tiny random BERT text model with the tiny vocabulary."""
    from transformers import BertConfig, BertModel

    directory = tmp_path_factory.mktemp("bert")
    torch.manual_seed(3)
    config = BertConfig(
        vocab_size=len(ENC_VOCAB),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
    )
    BertModel(config).save_pretrained(directory)
    _write_vocab(directory)
    return directory


@pytest.fixture()
def enc_images(tmp_path):
    """A directory per entity (named like the FB15k image collections, ``m.cat``), with 0-3 PNG images each."""
    root = tmp_path / "images"
    for index, (label, count) in enumerate(ENC_IMAGE_COUNTS.items()):
        entity_dir = root / label.lstrip("/").replace("/", ".", 1)
        entity_dir.mkdir(parents=True)
        for k in range(count):
            make_image(entity_dir / f"img{k}.png", seed=10 * index + k, size=(40 + 4 * k, 30))
    return root


@pytest.fixture()
def enc_texts_file(tmp_path):
    """The texts as a TSV file."""
    path = tmp_path / "texts.tsv"
    path.write_text("".join(f"{label}\t{text}\n" for label, text in ENC_TEXTS.items()), encoding="utf-8")
    return path
