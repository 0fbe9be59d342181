"""Tests of ``pykeen-vbkgc encode`` and ``pykeen-vbkgc merge-features``."""
# ruff: noqa: E402  (encoder_fixtures must be registered for assertion rewriting before it is imported)

import os
import stat

import pytest

pytest.register_assert_rewrite("encoder_fixtures")

import torch
from click.testing import CliRunner
from encoder_fixtures import ENC_ENTITIES, ENC_IMAGE_COUNTS, ENC_TEXTS

from pykeen_vbkgc.encoders.cli import encode, merge_features
from pykeen_vbkgc.features import load_features

pytest_plugins = ("encoder_fixtures",)


def _run(command, args):
    result = CliRunner().invoke(command, [str(arg) for arg in args], catch_exceptions=False)
    return result.exit_code, result.output


@pytest.fixture()
def base_args(enc_texts_file, enc_visualbert_dir):
    return ["--texts", enc_texts_file, "--checkpoint", enc_visualbert_dir, "--quiet"]


def test_encode_visualbert_with_images(base_args, enc_images, enc_resnet_dir, enc_visualbert_dir, tmp_path):
    output = tmp_path / "out.safetensors"
    image_args = ["--images", enc_images, "--image-dir-names", "freebase", "--backbone", "resnet"]
    code, text = _run(encode, [*base_args, *image_args, "--backbone-checkpoint", enc_resnet_dir, "-o", output])
    assert code == 0, text
    assert f"Wrote 8 entities x 32 ({len(ENC_IMAGE_COUNTS)} with images, 0 texts truncated)" in text
    features = load_features(output)
    assert features.labels == ENC_ENTITIES and features.vectors.shape == (8, 32)
    assert features.num_images.tolist() == [ENC_IMAGE_COUNTS.get(label, 0) for label in ENC_ENTITIES]
    assert features.metadata["encoder"] == "visualbert"
    assert features.metadata["checkpoint"] == str(enc_visualbert_dir)
    assert features.metadata["backbone_checkpoint"] == str(enc_resnet_dir)
    # existing output: one clear error, file untouched
    code, text = _run(encode, [*base_args, "-o", output])
    assert code == 2 and "exists; pass --overwrite" in text
    assert torch.equal(load_features(output).vectors, features.vectors)


def test_encode_text_encoder_and_entities_file(enc_texts_file, enc_bert_dir, tmp_path):
    entities = tmp_path / "entities.txt"
    entities.write_text("/m/paris\n/m/cat\n")
    output = tmp_path / "text.safetensors"
    args = ["--texts", enc_texts_file, "--encoder", "text", "--checkpoint", enc_bert_dir, "--pooling", "cls"]
    code, text = _run(encode, [*args, "--entities", entities, "--quiet", "-o", output])
    assert code == 0, text
    features = load_features(output)
    assert features.labels == ("/m/paris", "/m/cat") and features.dim == 16
    assert features.metadata["pooling"] == "cls" and features.metadata["encoder"] == "text"


def test_shards_and_merge_cli(base_args, tmp_path):
    shards = []
    for i in range(2):
        shards.append(tmp_path / f"s{i}.safetensors")
        code, text = _run(encode, [*base_args, "--shard", f"{i}/2", "-o", shards[-1]])
        assert code == 0, text
    merged = tmp_path / "merged.safetensors"
    code, text = _run(merge_features, [*shards, "-o", merged])
    assert code == 0, text
    assert "Merged 2 files: 8 entities x 32" in text
    # the mode of any new file (as the umask allows), not mkstemp's private 0600
    umask = os.umask(0o022)
    os.umask(umask)
    assert {stat.S_IMODE(path.stat().st_mode) for path in [*shards, merged]} == {0o666 & ~umask}
    assert load_features(merged).labels == ENC_ENTITIES
    code, text = _run(merge_features, [shards[0], "-o", tmp_path / "gap.safetensors"])
    assert code == 1 and "Shards are missing (gap): 1/2" in text
    assert not (tmp_path / "gap.safetensors").exists()
    code, text = _run(merge_features, [*shards, "-o", merged])
    assert code == 2 and "exists; pass --overwrite" in text


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--shard", "2/2"], "Invalid shard 2/2: the index is 0-based"),
        (["--shard", "x"], "A shard is given as 'i/n'"),
        (["--encoder", "text", "--backbone", "resnet"], "--backbone only apply to --encoder visualbert"),
        (["--pooling", "mean"], "--pooling only applies to --encoder text"),
        (["--projection", "random"], "--projection need --images"),
        (["--dataset", "nations"], "Give exactly one of --texts and --dataset"),
        (["--max-images", "0"], "0 is not in the range 1<=x<=2147483647"),
        (["--visual-tokens", "grid"], "--visual-tokens grid needs a transformers backbone"),
        (
            ["--device", "banana"],
            "Invalid value for '--device': 'banana' is not a device; use e.g. cpu, cuda or cuda:1.",
        ),
    ],
)
def test_usage_errors(base_args, tmp_path, extra, message):
    output = tmp_path / "out.safetensors"
    code, text = _run(encode, [*base_args, *extra, "-o", output])
    assert code == 2 and message in text
    assert not output.exists() and not output.with_name(output.name + ".partial").exists()


def test_a_device_that_the_machine_lacks_is_refused_before_the_encoder_loads(base_args, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    output = tmp_path / "out.safetensors"
    code, text = _run(encode, [*base_args, "--device", "cuda", "-o", output])
    assert code == 2
    assert text.splitlines()[-1] == (
        "Error: Invalid value for '--device': 'cuda': CUDA is not available on this machine; leave out --device, or "
        "use --device cpu."
    )
    assert not output.exists() and not output.with_name(output.name + ".partial").exists()


def test_bad_input_errors(base_args, enc_texts_file, enc_images, tmp_path):
    output = tmp_path / "out" / "f.safetensors"
    code, text = _run(encode, [*base_args, "--images", enc_images, "--backbone", "resnet", "-o", output])
    assert code == 1 and "Error: Images are given for 5 entity labels that are not among the 8" in text
    code, text = _run(
        encode, ["--texts", enc_texts_file, "--checkpoint", "uclanlp/visualbert-vqa-coco-pre", "-o", output]
    )
    assert code == 1 and "Cannot load the VisualBERT checkpoint 'uclanlp/visualbert-vqa-coco-pre'" in text
    assert "HF_HUB_OFFLINE=1" in text
    empty = tmp_path / "empty.tsv"
    empty.write_text("/m/a\t \n")
    code, text = _run(encode, [*base_args[2:], "--texts", empty, "-o", output])
    assert code == 1 and "1 entities have an empty text: '/m/a'" in text
    assert not output.exists() and not output.with_name("f.safetensors.partial").exists()


def test_paths_that_cannot_be_read_or_written_are_one_line_errors(base_args, enc_texts_file, tmp_path, monkeypatch):
    # an output "directory" that is a file: found before any model is loaded, not by an OSError after encoding
    blocked = tmp_path / "blocked.txt"
    blocked.write_text("a file")
    for command, arguments in [(encode, base_args), (merge_features, [tmp_path / "in.safetensors"])]:
        if command is merge_features:
            (tmp_path / "in.safetensors").write_bytes(b"")
        code, text = _run(command, [*arguments, "-o", blocked / "sub" / "f.safetensors"])
        assert code == 2, text
        assert text.splitlines()[-1] == (
            f"Error: Cannot write {blocked / 'sub' / 'f.safetensors'}: {blocked} is a file, not a directory."
        )
    # a directory for --texts
    code, text = _run(encode, ["--encoder", "text", "--texts", tmp_path, "-o", tmp_path / "f.safetensors"])
    assert code == 1
    assert text.splitlines()[-1] == (
        f"Error: {tmp_path} is a directory, not a texts file (label<TAB>text lines, or a JSON object)."
    )
    # a checkpoint that cannot be loaded: transformers' two-line message folded into the one line
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    output = tmp_path / "f.safetensors"
    code, text = _run(
        encode, ["--encoder", "text", "--texts", enc_texts_file, "--checkpoint", "no-such-model", "-o", output]
    )
    assert code == 1 and len(text.strip().splitlines()) == 1, text
    assert text.startswith(
        "Error: Cannot load the text encoder checkpoint 'no-such-model'. Hugging Face offline mode is on"
    )
    assert not list(tmp_path.glob("f.safetensors*"))


def test_texts_json_and_missing_image_tsv(enc_visualbert_dir, enc_images, tmp_path):
    import json

    texts = tmp_path / "texts.json"
    texts.write_text(json.dumps(ENC_TEXTS))
    images = tmp_path / "images.tsv"
    images.write_text(f"/m/cat\t{enc_images / 'm.cat' / 'img0.png'}\n/m/dog\tnope.jpg\n")
    output = tmp_path / "f.safetensors"
    args = ["--texts", texts, "--checkpoint", enc_visualbert_dir, "--images", images, "--backbone", "resnet"]
    code, text = _run(encode, [*args, "-o", output])
    assert code == 1 and "1 image files listed in" in text and "nope.jpg (line 2, entity '/m/dog')" in text
    assert not output.exists()


def test_encode_dataset_texts(enc_bert_dir, tmp_path):
    from pykeen_vbkgc.datasets import MultimodalDemo

    output = tmp_path / "demo.safetensors"
    args = ["--dataset", "multimodaldemo", "--encoder", "text", "--checkpoint", enc_bert_dir, "--quiet"]
    code, text = _run(encode, [*args, "--batch-size", "128", "-o", output])
    assert code == 0, text
    dataset = MultimodalDemo()
    features = load_features(output)
    assert features.labels == tuple(dataset.entity_texts) and features.dim == 16
    assert features.align(dataset.entity_to_id).num_covered == dataset.num_entities


def test_encode_your_own_graph_directory(enc_bert_dir, tmp_path):
    """``--dataset <directory>``: texts from its entity2text.txt, features written next to the triples."""
    from pykeen_vbkgc.datasets import TriplesDirectory

    graph = tmp_path / "graph"
    graph.mkdir()
    (graph / "train.txt").write_text("a\tr\tb\nb\tr\tc\n")
    (graph / "valid.txt").write_text("a\tr\tc\n")
    (graph / "test.txt").write_text("c\tr\ta\n")
    (graph / "entity2text.txt").write_text("a\tthe cat\nb\ta dog\nc\tParis, France\n")
    code, text = _run(encode, ["--dataset", graph, "--encoder", "text", "--checkpoint", enc_bert_dir, "--quiet"])
    assert code == 0, text
    assert f"Wrote 3 entities x 16 (0 with images, 0 texts truncated) to {graph / 'features.safetensors'}" in text
    dataset = TriplesDirectory(graph)
    assert dataset.has_features and load_features(dataset.features_path).labels == ("a", "b", "c")


def test_sigterm_keeps_the_finished_entities_and_the_next_run_resumes(base_args, monkeypatch, tmp_path):
    """SIGTERM (timeout, kill, batch schedulers) is handled like Ctrl-C: one line, exit 143, then resume."""
    import os
    import signal

    from pykeen_vbkgc.encoders.run import partial_path
    from pykeen_vbkgc.encoders.visualbert import VisualBertEncoder

    original = VisualBertEncoder.encode
    calls = []

    def terminated_at_the_third_batch(self, batch):
        calls.append(len(batch))
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return original(self, batch)

    monkeypatch.setattr(VisualBertEncoder, "encode", terminated_at_the_third_batch)
    output = tmp_path / "out.safetensors"
    args = [*base_args, "--batch-size", "2", "-o", output]
    previous_handler = signal.getsignal(signal.SIGTERM)
    code, text = _run(encode, args)
    assert code == 143
    assert text.strip() == (
        f"Interrupted: the finished entities are in {partial_path(output)}; run the same command again to resume."
    )
    assert signal.getsignal(signal.SIGTERM) is previous_handler  # the handler is only installed while encoding
    assert not output.exists() and len(load_features(partial_path(output)).labels) == 4
    monkeypatch.setattr(VisualBertEncoder, "encode", original)
    code, text = _run(encode, args)
    assert code == 0 and "Wrote 8 entities" in text
    assert "Loading weights" not in text  # --quiet silences transformers' bars, too
    assert not partial_path(output).exists()


def test_threads_option_sets_torch_threads(base_args, tmp_path):
    before = torch.get_num_threads()
    try:
        code, text = _run(encode, [*base_args, "--threads", "1", "-o", tmp_path / "out.safetensors"])
        assert code == 0, text
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    code, text = _run(encode, [*base_args, "--threads", "0", "-o", tmp_path / "other.safetensors"])
    assert code == 2 and "Invalid value for '--threads': 0 is not in the range 1<=x<=2147483647." in text


def test_files_that_are_not_utf8_are_named(tmp_path):
    """The error names the file (the texts are read before any encoder is loaded)."""
    output = tmp_path / "f.safetensors"
    texts, entities = tmp_path / "texts.tsv", tmp_path / "entities.txt"
    texts.write_bytes(b"/m/a\tcaf\xe9\n")
    code, text = _run(encode, ["--texts", texts, "--encoder", "text", "-o", output])
    assert code == 1
    assert text.splitlines()[-1] == (
        f"Error: {texts} is not UTF-8 text: 'utf-8' codec can't decode byte 0xe9 in position 8: invalid "
        "continuation byte"
    )
    texts.write_text("/m/a\tcafe\n")
    entities.write_bytes(b"/m/\xff\n")
    code, text = _run(encode, ["--texts", texts, "--encoder", "text", "--entities", entities, "-o", output])
    assert code == 1
    assert text.splitlines()[-1] == (
        f"Error: {entities} is not UTF-8 text: 'utf-8' codec can't decode byte 0xff in position 3: invalid start byte"
    )
    assert not output.exists()


def test_a_corrupt_partial_file_suggests_restart(enc_bert_dir, enc_texts_file, tmp_path):
    output = tmp_path / "f.safetensors"
    partial = tmp_path / "f.safetensors.partial"
    partial.write_bytes(b"truncated by a full disk")
    args = ["--texts", enc_texts_file, "--encoder", "text", "--checkpoint", enc_bert_dir, "--quiet", "-o", output]
    code, text = _run(encode, args)
    assert code == 1
    assert text.splitlines()[-1].startswith(f"Error: The partial file {partial} is unreadable ({partial} is not a ")
    assert text.splitlines()[-1].endswith(
        "It only holds the finished entities of an interrupted encode: delete it, or pass resume=False (--restart) to "
        "encode everything again."
    )
    code, text = _run(encode, [*args, "--restart"])
    assert code == 0, text
    assert output.is_file() and not partial.exists()


def test_encode_opens_datasets_with_the_loader_of_train_without_importing_it():
    """One dataset loader (pykeen_vbkgc.dataset_loading) for both commands: encode's module does not import train's."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(
        """
        import sys
        from click.testing import CliRunner
        from pykeen_vbkgc.encoders.cli import encode
        result = CliRunner().invoke(encode, ["--dataset", "./nope", "--encoder", "text", "-o", "x.safetensors"])
        print(result.output.splitlines()[-1])
        print("pykeen_vbkgc.cli" in sys.modules)
        """
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert completed.stdout.splitlines() == ["Error: Invalid value for --dataset: directory not found: ./nope", "False"]
    from pykeen_vbkgc import cli, dataset_loading

    assert cli.open_dataset is dataset_loading.open_dataset
    assert cli.load_dataset_and_features is dataset_loading.load_dataset_and_features
