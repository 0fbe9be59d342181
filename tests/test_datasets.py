"""Tests for the multimodal datasets (FB15k-237, WN9, the shipped demo)."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from dataset_fixtures import TINY_NAMES, shared_directory, write_checksums, write_tiny_fb
from pykeen.datasets import dataset_resolver
from pykeen.triples.utils import load_triples

from pykeen_vbkgc import datasets as datasets_module
from pykeen_vbkgc.datasets import (
    FB15K237_DIRECTORY_ENV,
    FB15K237_IMAGES_ENV,
    WN9,
    WN9_DIRECTORY_ENV,
    ChecksumError,
    DatasetFilesError,
    FB15k237Multimodal,
    MultimodalDemo,
    RemoteFile,
    TriplesDirectory,
    read_triples,
)


@pytest.fixture(autouse=True)
def _no_dataset_env(monkeypatch):
    # the developer's own settings must not leak into the tests
    for name in (FB15K237_DIRECTORY_ENV, FB15K237_IMAGES_ENV, WN9_DIRECTORY_ENV, datasets_module.WN9_IMAGES_ENV):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def fb15k237() -> FB15k237Multimodal:
    dataset = FB15k237Multimodal(directory=shared_directory("fb15k237"))
    dataset.training  # noqa: B018 - load once for all tests of the module
    return dataset


# -- names -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "cls"),
    [("wn9", WN9), ("fb15k237multimodal", FB15k237Multimodal), ("multimodaldemo", MultimodalDemo)],
)
def test_resolver_names(name, cls):
    assert dataset_resolver.normalize_cls(cls) == name
    assert dataset_resolver.lookup(name) is cls
    # the class name spelled as in Python resolves too
    assert dataset_resolver.lookup(cls.__name__) is cls


def test_entry_point_loads_in_fresh_interpreter():
    # PyKEEN imports our module while pykeen.models is half-initialised; that must not fail
    code = (
        "import logging; logging.basicConfig(level=logging.DEBUG)\n"
        "import pykeen.models\n"
        "from pykeen.datasets import dataset_resolver\n"
        "print(dataset_resolver.lookup('wn9').__name__, dataset_resolver.lookup('multimodaldemo').__name__)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["WN9", "MultimodalDemo"]
    assert "failed to load" not in result.stderr.lower()


# -- FB15k-237 from the local directory ------------------------------------------------------------------------------


def test_fb15k237_counts(fb15k237):
    assert fb15k237.training.num_triples == 272_115
    assert fb15k237.validation.num_triples == 17_535
    assert fb15k237.testing.num_triples == 20_466
    assert fb15k237.num_entities == 14_541
    assert fb15k237.num_relations == 237
    # all splits share one index
    assert fb15k237.testing.entity_to_id is fb15k237.training.entity_to_id or (
        fb15k237.testing.entity_to_id == fb15k237.training.entity_to_id
    )


def test_fb15k237_text_coverage(fb15k237):
    texts = fb15k237.entity_texts
    assert len(texts) == 14_541
    assert list(texts) == list(fb15k237.entity_to_id)
    # name from entity2text.txt, then the Wikidata description where there is one (13,666 entities)
    assert texts["/m/010016"] == "Denton, city in Texas, United States"
    wikidata = json.loads((fb15k237.directory / "entity2wikidata.json").read_text())
    with_description = [label for label in texts if (wikidata.get(label) or {}).get("description")]
    assert len(with_description) == 13_666
    assert all(texts[label].endswith(wikidata[label]["description"].strip()) for label in with_description)
    assert fb15k237.coverage() == {"entities": 14_541, "text": 14_541, "image": 0}
    assert len(fb15k237.relation_texts) == 237


def test_fb15k237_environment_variable(monkeypatch):
    directory = shared_directory("fb15k237")
    monkeypatch.setenv(FB15K237_DIRECTORY_ENV, str(directory))
    dataset = FB15k237Multimodal()
    assert dataset.directory == directory
    assert dataset.source == "directory"


def test_wn9_counts_and_texts():
    dataset = WN9(directory=shared_directory("wn9"))
    assert (dataset.training.num_triples, dataset.validation.num_triples, dataset.testing.num_triples) == (
        11_741,
        1_337,
        1_319,
    )
    assert dataset.num_entities == 6_555
    assert dataset.num_relations == 9
    assert dataset.coverage() == {"entities": 6_555, "text": 6_555, "image": 0}
    assert dataset.entity_texts["n00453935"] == "sportfishing, the act of someone who fishes as a diversion"
    # VBKGC takes WN9's preset from here (see pykeen_vbkgc.defaults.preset_for)
    assert dataset.training.metadata["vbkgc_preset"] == "wn9"
    assert "vbkgc_preset" not in dataset.testing.metadata


# -- local directory errors -----------------------------------------------------------------------------------------


def test_tiny_directory_indexes_all_splits(tmp_path):
    dataset = FB15k237Multimodal(directory=write_tiny_fb(tmp_path / "fb"))
    # /m/05 occurs only in test; it is indexed, so no test triple is dropped
    assert dataset.num_entities == 5
    assert dataset.training.metadata["vbkgc_preset"] == "fb15k237"
    assert dataset.testing.num_triples == 1
    assert dataset.entity_texts == {
        "/m/01": "Alpha, the first letter",
        "/m/02": "Beta",
        "/m/03": "Gamma",
        "/m/04": "Delta",
        "/m/05": "Epsilon, the fifth letter",
    }
    assert "/m/99" in TINY_NAMES and "/m/99" not in dataset.entity_texts


def test_missing_files_listed_in_one_error(tmp_path):
    directory = tmp_path / "partial"
    directory.mkdir()
    (directory / "train.txt").write_text("a\tr\tb\n")
    with pytest.raises(DatasetFilesError, match=r"lacks 3 required file\(s\): valid\.txt, test\.txt, entity2text\.txt"):
        FB15k237Multimodal(directory=directory)
    with pytest.raises(DatasetFilesError, match=WN9_DIRECTORY_ENV):
        WN9(directory=directory)


def test_missing_directory(tmp_path):
    with pytest.raises(DatasetFilesError, match=r"data directory does not exist: .*nowhere"):
        FB15k237Multimodal(directory=tmp_path / "nowhere")


def test_missing_directory_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(WN9_DIRECTORY_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(DatasetFilesError, match="does not exist"):
        WN9()


def test_checksum_mismatch_names_the_file(tmp_path):
    directory = write_tiny_fb(tmp_path / "fb")
    with (directory / "valid.txt").open("a") as file:
        file.write("/m/04\t/r/a\t/m/02\n")
    with pytest.raises(ChecksumError, match=r"Checksum mismatch in .*: valid\.txt \(expected sha256 [0-9a-f]{64}"):
        FB15k237Multimodal(directory=directory)
    # verification can be switched off deliberately
    assert FB15k237Multimodal(directory=directory, verify=False).validation.num_triples == 2


def test_malformed_checksums_file(tmp_path):
    directory = write_tiny_fb(tmp_path / "fb")
    (directory / "SHA256SUMS").write_text("not-a-digest  train.txt\n")
    with pytest.raises(DatasetFilesError, match=r"SHA256SUMS, line 1: expected"):
        FB15k237Multimodal(directory=directory)


def test_malformed_triples(tmp_path):
    directory = write_tiny_fb(tmp_path / "fb", checksums=False)
    (directory / "test.txt").write_text("/m/01\t/r/a\t/m/02\n/m/01\t/r/a\n")
    with pytest.raises(DatasetFilesError, match=r"test\.txt, line 2: expected three non-empty tab-separated fields"):
        FB15k237Multimodal(directory=directory).training  # noqa: B018


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a\tr\tb\nc\tr\n", r"x\.txt, line 2: expected three non-empty .* got 'c\\tr'\.$"),
        ("a\tr\tb\tc\n", r"x\.txt, line 1: expected three non-empty"),
        ("a\tr\tb\n\n\tr\tb\n", r"x\.txt, line 3: expected three non-empty"),
        ("a\t \tb\n", r"x\.txt, line 1: expected three non-empty"),
        ("a r b\n", r"x\.txt, line 1: expected three non-empty"),
        ("head\trelation\ttail\na\tr\tb\n", r"x\.txt, line 1: 'head\\trelation\\ttail' looks like a header"),
        ("\n\n", r"x\.txt must contain at least one line"),
    ],
)
def test_triples_are_read_strictly(tmp_path, text, message):
    path = tmp_path / "x.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DatasetFilesError, match=message):
        read_triples(path)


def test_triples_labels_are_taken_literally(tmp_path):
    path = tmp_path / "x.txt"
    # pandas would merge the quoted lines into one label; a CRLF file and a missing final newline are fine
    path.write_bytes(b'"quoted\tr\tb\r\nc\tr\t"x y"\r\nd\tr\te')
    assert read_triples(path).tolist() == [['"quoted', "r", "b"], ["c", "r", '"x y"'], ["d", "r", "e"]]
    path.write_bytes(b"a\tr\t\xff\n")
    with pytest.raises(DatasetFilesError, match=r"x\.txt is not UTF-8 text"):
        read_triples(path)


def test_a_byte_order_mark_and_spaces_around_labels_make_no_new_entities(tmp_path, caplog):
    """Windows editors start UTF-8 files with a BOM; a sloppy file pads labels: neither is part of a label."""
    directory = tmp_path / "graph"
    directory.mkdir()
    bom = "\ufeff".encode()
    (directory / "train.txt").write_bytes(bom + b"n00004475\t_hyponym\tn00007846\nn00007846\t_part_of\tn00004475\n")
    (directory / "valid.txt").write_text("n00004475 \t_hyponym\tn00007846\n", encoding="utf-8")
    (directory / "test.txt").write_text(" n00007846\t _part_of\tn00004475\nn00004475\t_hyponym \tn00007846\n")
    (directory / "entity2text.txt").write_bytes(bom + b"n00004475 \tthe first\nn00007846\tthe second\n")
    with caplog.at_level(logging.WARNING, logger="pykeen_vbkgc.datasets"):
        dataset = TriplesDirectory(directory)
        assert sorted(dataset.entity_to_id) == ["n00004475", "n00007846"]
    assert sorted(dataset.relation_to_id) == ["_hyponym", "_part_of"]
    assert dataset.entity_texts == {"n00004475": "the first", "n00007846": "the second"}
    warnings = [message for message in caplog.messages if "whitespace" in message]
    assert warnings == [
        f"{directory / 'valid.txt'}: 1 line(s) have labels with leading or trailing whitespace (first: line 1); it "
        "was removed, so that ' a' and 'a' are one label.",
        f"{directory / 'test.txt'}: 2 line(s) have labels with leading or trailing whitespace (first: line 1); it "
        "was removed, so that ' a' and 'a' are one label.",
    ]
    (directory / "entity2text.txt").write_bytes(b"n00004475\t\xff\n")
    with pytest.raises(DatasetFilesError) as error:
        TriplesDirectory(directory).entity_texts  # noqa: B018
    assert str(error.value).startswith(f"{directory / 'entity2text.txt'} is not UTF-8 text: 'utf-8' codec can't")


def test_strict_reading_agrees_with_pykeen_on_the_real_files():
    path = shared_directory("wn9") / "train.txt"
    np.testing.assert_array_equal(read_triples(path), load_triples(path))


def test_without_wikidata_texts_are_names(tmp_path):
    directory = write_tiny_fb(tmp_path / "fb", checksums=False)
    (directory / "entity2wikidata.json").unlink()
    dataset = FB15k237Multimodal(directory=directory)
    assert dataset.entity_texts["/m/01"] == "Alpha"
    # /m/05 has neither a name nor a Wikidata entry now
    assert dataset.coverage() == {"entities": 5, "text": 4, "image": 0}


# -- images ----------------------------------------------------------------------------------------------------------


def test_images_mmkg_layout(tmp_path, monkeypatch):
    directory = write_tiny_fb(tmp_path / "fb")
    images = tmp_path / "images"
    for folder, files in {"m.01": ["b.jpg", "a.PNG", "notes.txt"], "m.03": ["x.jpeg"], "m.77": ["y.jpg"]}.items():
        (images / folder).mkdir(parents=True)
        for name in files:
            (images / folder / name).write_bytes(b"")
    dataset = FB15k237Multimodal(directory=directory, images_directory=images)
    assert dataset.entity_images == {
        "/m/01": [images / "m.01" / "a.PNG", images / "m.01" / "b.jpg"],
        "/m/03": [images / "m.03" / "x.jpeg"],
    }
    assert dataset.coverage()["image"] == 2
    monkeypatch.setenv(FB15K237_IMAGES_ENV, str(images))
    assert FB15k237Multimodal(directory=directory).images_directory == images


def test_images_errors(tmp_path):
    directory = write_tiny_fb(tmp_path / "fb")
    with pytest.raises(DatasetFilesError) as error:
        FB15k237Multimodal(directory=directory, images_directory=tmp_path / "nowhere")
    assert str(error.value) == f"Images directory {tmp_path / 'nowhere'} (from images_directory=) does not exist."
    (tmp_path / "a-file").write_text("")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(FB15K237_IMAGES_ENV, str(tmp_path / "a-file"))
        with pytest.raises(DatasetFilesError) as error:
            FB15k237Multimodal(directory=directory)
    assert str(error.value) == (
        f"Images directory {tmp_path / 'a-file'} (from ${FB15K237_IMAGES_ENV}) is a file, not a directory."
    )
    empty = tmp_path / "empty"
    (empty / "01").mkdir(parents=True)  # the label, not the MMKG folder name m.01
    (empty / "01" / "a.jpg").write_bytes(b"")
    dataset = FB15k237Multimodal(directory=directory, images_directory=empty)
    with pytest.raises(DatasetFilesError, match=r"No entity of FB15k237Multimodal has images .* e\.g\. .*m\.01/"):
        dataset.entity_images  # noqa: B018


# -- downloads (simulated: tests never touch the network) -----------------------------------------------------------


def _fake_remote(monkeypatch, source: Path) -> list[str]:
    """Serve the remote files of FB15k237Multimodal from a local directory; return the list of requested URLs."""
    remote_files = {
        path.name: RemoteFile(url=f"https://example.org/{path.name}", sha256=datasets_module.sha256sum(path))
        for path in source.iterdir()
        if path.name != "SHA256SUMS"
    }
    requested = []

    def fake_download(url, path, **kwargs):
        requested.append(url)
        shutil.copyfile(source / url.rsplit("/", 1)[1], path)

    monkeypatch.setattr(FB15k237Multimodal, "remote_files", remote_files)
    monkeypatch.setattr(datasets_module, "download", fake_download)
    return requested


def test_download_into_cache(tmp_path, monkeypatch):
    requested = _fake_remote(monkeypatch, write_tiny_fb(tmp_path / "source", checksums=False))
    dataset = FB15k237Multimodal(cache_root=tmp_path / "cache")
    cache = tmp_path / "cache" / "fb15k237multimodal"
    assert dataset.source == "cache"
    assert dataset.directory == cache
    assert dataset.num_entities == 5
    assert len(requested) == 6
    assert (cache / "SHA256SUMS").is_file()
    assert dataset.features_path == cache / "features.safetensors"
    # a second instance uses the cache
    FB15k237Multimodal(cache_root=tmp_path / "cache")
    assert len(requested) == 6


def test_download_checksum_mismatch_leaves_nothing(tmp_path, monkeypatch):
    _fake_remote(monkeypatch, write_tiny_fb(tmp_path / "source", checksums=False))
    remote = dict(FB15k237Multimodal.remote_files)
    remote["test.txt"] = RemoteFile(url=remote["test.txt"].url, sha256="0" * 64)
    monkeypatch.setattr(FB15k237Multimodal, "remote_files", remote)
    with pytest.raises(ChecksumError, match=r"Checksum mismatch for test\.txt downloaded from https://example\.org"):
        FB15k237Multimodal(cache_root=tmp_path / "cache")
    cache = tmp_path / "cache" / "fb15k237multimodal"
    assert not (cache / "test.txt").exists()
    assert not list(cache.glob(".*.part"))


def test_a_failed_download_is_one_message_and_leaves_nothing(tmp_path, monkeypatch):
    import urllib.error

    from pystow.utils import DownloadError

    _fake_remote(monkeypatch, write_tiny_fb(tmp_path / "source", checksums=False))

    def offline(url, path, **kwargs):
        Path(path).write_text("the first bytes")
        raise DownloadError(
            "urllib", url, path, urllib.error.URLError("[Errno -3] Temporary failure in name resolution")
        )

    monkeypatch.setattr(datasets_module, "download", offline)
    with pytest.raises(DatasetFilesError) as error:
        FB15k237Multimodal(cache_root=tmp_path / "cache")
    first = next(iter(FB15k237Multimodal.remote_files))
    assert str(error.value) == (
        f"FB15k237Multimodal: cannot download {first} from https://example.org/{first}: <urlopen error [Errno -3] "
        "Temporary failure in name resolution>. Without internet access, copy the files to a directory and set "
        "PYKEEN_VBKGC_FB15K237_DIR or pass directory= (see docs/datasets.md)."
    )
    assert list((tmp_path / "cache" / "fb15k237multimodal").iterdir()) == []


def test_wn9_has_no_download(tmp_path):
    with pytest.raises(DatasetFilesError, match=r"lacks 4 required file\(s\).*RAR archive"):
        WN9(cache_root=tmp_path / "cache")


def test_known_checksums_match_shared_data():
    # the checksums used for downloads are those of the verified offline copies
    directory = shared_directory("fb15k237")
    sums = datasets_module.read_checksums(directory / "SHA256SUMS")
    # the shared copy also holds our own precomputed features file, which is not part of the download
    sums = {name: value for name, value in sums.items() if not name.startswith("features.")}
    assert {name: remote.sha256 for name, remote in FB15k237Multimodal.remote_files.items()} == sums


# -- PyKEEN's by-name dataset cache -------------------------------------------------------------------------------


def test_by_name_cache_rebuilds_from_source(tmp_path, monkeypatch):
    from pykeen.datasets import get_dataset, utils

    monkeypatch.setattr(utils, "PYKEEN_DATASETS", tmp_path / "pykeen")
    first = write_tiny_fb(tmp_path / "first")
    second = write_tiny_fb(tmp_path / "second")
    (second / "test.txt").write_text("/m/01\t/r/a\t/m/03\n")
    write_checksums(second)
    monkeypatch.setenv(FB15K237_DIRECTORY_ENV, str(first))
    dataset = get_dataset(dataset="fb15k237multimodal")
    assert isinstance(dataset, FB15k237Multimodal)
    assert dataset.num_entities == 5
    # the second request hits PyKEEN's cache, which must follow the changed environment variable
    monkeypatch.setenv(FB15K237_DIRECTORY_ENV, str(second))
    dataset = get_dataset(dataset="fb15k237multimodal")
    assert isinstance(dataset, FB15k237Multimodal)
    assert dataset.directory == second
    assert dataset.num_entities == 4
    assert list((tmp_path / "pykeen" / "fb15k237multimodal" / "cache").iterdir())
    demo = get_dataset(dataset="multimodaldemo")
    demo = get_dataset(dataset="multimodaldemo")
    assert isinstance(demo, MultimodalDemo) and demo.has_features


# -- features --------------------------------------------------------------------------------------------------------


def test_features_path_and_missing_features(tmp_path):
    directory = write_tiny_fb(tmp_path / "fb")
    dataset = FB15k237Multimodal(directory=directory, features_path=tmp_path / "f.safetensors")
    assert dataset.features_path == tmp_path / "f.safetensors"
    assert not dataset.has_features
    with pytest.raises(FileNotFoundError, match=r"No features file for FB15k237Multimodal at .*f\.safetensors"):
        dataset.features()
    # the model is told about a features_path given explicitly, even a missing one: an error, not random features
    from pykeen_vbkgc import VBKGC
    from pykeen_vbkgc.features import FeaturesFileError

    with pytest.raises(FeaturesFileError) as error:
        VBKGC(triples_factory=dataset.training, embedding_dim=4)
    assert str(error.value) == f"Features file not found: {tmp_path / 'f.safetensors'}"
    with pytest.raises(FeaturesFileError) as error:
        VBKGC(triples_factory=FB15k237Multimodal(directory=directory, features_path=tmp_path).training)
    assert str(error.value) == f"{tmp_path} is a directory, not a features file."
    # without an explicit path, the default lives in the (writable) cache, not in the data directory, in a file keyed
    # by the data directory: features encoded for one copy are never picked up for another
    dataset = FB15k237Multimodal(directory=directory, cache_root=tmp_path / "cache")
    key = hashlib.sha256(str(directory.resolve()).encode()).hexdigest()[:12]
    assert dataset.features_path == tmp_path / "cache" / "fb15k237multimodal" / f"features-{key}.safetensors"
    dataset.features_path.write_bytes(b"")
    other = FB15k237Multimodal(directory=shutil.copytree(directory, tmp_path / "copy"), cache_root=tmp_path / "cache")
    assert dataset.has_features and not other.has_features


def test_own_graph_directory(tmp_path):
    directory = tmp_path / "graph"
    directory.mkdir()
    for name, triples in dict(train=[("a", "likes", "b"), ("b", "likes", "c")], valid=[("c", "likes", "d")]).items():
        (directory / f"{name}.txt").write_text("".join("\t".join(t) + "\n" for t in triples))
    (directory / "test.txt").write_text("d\tknows\ta\n")
    dataset = TriplesDirectory(directory)
    # indexed over all splits: d and 'knows' appear only in validation / test
    assert dataset.num_entities == 4 and dataset.num_relations == 2
    assert dataset.entity_texts == {}  # entity2text.txt is optional
    assert dataset.features_path == directory / "features.safetensors" and not dataset.has_features
    (directory / "entity2text.txt").write_text("a\tthe letter a\n")
    (directory / "features.safetensors").write_bytes(b"")
    dataset = TriplesDirectory(directory)
    assert dataset.entity_texts == {"a": "the letter a"}
    assert dataset.training.metadata["vbkgc_features"] == str((directory / "features.safetensors").resolve())
    (directory / "valid.txt").unlink()
    with pytest.raises(DatasetFilesError, match=r"TriplesDirectory: .*graph lacks 1 required file\(s\): valid\.txt"):
        TriplesDirectory(directory)


# -- the shipped demo ------------------------------------------------------------------------------------------------


def test_demo_dataset_contents():
    dataset = MultimodalDemo()
    assert dataset.package_directory.is_dir()
    assert dataset.num_entities == 500
    assert dataset.num_relations == 9
    assert (dataset.training.num_triples, dataset.validation.num_triples, dataset.testing.num_triples) == (
        1217,
        150,
        150,
    )
    # every evaluation entity occurs in training
    train_entities = set(dataset.training.mapped_triples[:, [0, 2]].unique().tolist())
    for factory in (dataset.validation, dataset.testing):
        assert set(factory.mapped_triples[:, [0, 2]].unique().tolist()) <= train_entities
    assert dataset.coverage() == {"entities": 500, "text": 500, "image": 0}
    assert dataset.features_path == dataset.package_directory / "features.safetensors"
    features = dataset.features()
    assert features.dim == 384
    assert features.metadata["model"] == "sentence-transformers/all-MiniLM-L6-v2"
    aligned = features.align(dataset.entity_to_id)
    assert aligned.num_covered == 500 and aligned.num_ignored == 0
    # real sentence embeddings: unit norm, and not all alike
    norms = aligned.vectors.norm(dim=1)
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-3)
    assert aligned.vectors.std(dim=0).mean() > 0.01
    total = sum(path.stat().st_size for path in dataset.package_directory.iterdir())
    assert total < 2 * 1024 * 1024
    with pytest.raises(TypeError, match="takes no directory"):
        MultimodalDemo(directory=".")


def test_demo_trains_end_to_end(tmp_path, monkeypatch):
    pytest.importorskip("pykeen_vbkgc.model", reason="the VBKGC model module is not available")
    from pykeen.datasets import utils
    from pykeen.pipeline import pipeline

    # by name, PyKEEN caches the dataset; keep that cache out of the home directory
    monkeypatch.setattr(utils, "PYKEEN_DATASETS", tmp_path)

    dataset = MultimodalDemo()
    start = time.perf_counter()
    result = pipeline(
        model="vbkgc",
        dataset="multimodaldemo",
        model_kwargs=dict(features=dataset.features_path),
        negative_sampler="twins",
        loss="meanmarginranking",
        loss_kwargs=dict(margin=4.0),
        optimizer_kwargs=dict(lr=1e-2),
        training_kwargs=dict(num_epochs=20, batch_size=256, use_tqdm=False),
        evaluation_kwargs=dict(use_tqdm=False, batch_size=256),
        random_seed=0,
        device="cpu",
    )
    elapsed = time.perf_counter() - start
    mrr = result.get_metric("mrr")
    # random ranking among 500 entities gives an MRR of about 0.014
    assert mrr > 0.1, f"MRR {mrr:.3f} after {elapsed:.0f} s"
    assert result.get_metric("hits@10") > 0.3


def test_dataset_files_of_the_wrong_kind_are_one_message(tmp_path):
    directory = write_tiny_fb(tmp_path / "fb")
    # a SHA256SUMS that is not text
    (directory / "SHA256SUMS").write_bytes(b"\xff\xfe")
    with pytest.raises(DatasetFilesError) as error:
        FB15k237Multimodal(directory=directory)
    assert str(error.value).startswith(f"{directory / 'SHA256SUMS'} is not UTF-8 text: ")
    # entity2wikidata.json: valid JSON of another shape
    for text in ("[1, 2]", '{"/m/a": "a string"}'):
        (directory / "entity2wikidata.json").write_text(text)
        with pytest.raises(DatasetFilesError) as error:
            FB15k237Multimodal(directory=directory, verify=False).entity_texts  # noqa: B018
        assert str(error.value) == (
            f"{directory / 'entity2wikidata.json'} must hold a JSON object mapping each entity to an object with "
            "'label' and 'description'."
        )
    # a file where the directory should be, and no directory at all
    with pytest.raises(DatasetFilesError) as error:
        TriplesDirectory(directory / "train.txt")
    assert str(error.value) == (
        f"TriplesDirectory: {directory / 'train.txt'} is a file; give the data directory that contains train.txt, "
        "valid.txt, test.txt."
    )
    with pytest.raises(TypeError, match=r"^TriplesDirectory needs the directory of your graph"):
        TriplesDirectory(None)
