"""Tests of the features file format."""

import json

import pytest
import torch
from safetensors.torch import save_file

import pykeen_vbkgc.features as features_module
from pykeen_vbkgc.features import EntityFeatures, FeaturesFileError, load_features, save_features


def _features(n=4, dim=3, **kwargs):
    return EntityFeatures(
        labels=[f"e{i}" for i in range(n)], vectors=torch.arange(n * dim, dtype=torch.float32).view(n, dim), **kwargs
    )


def test_roundtrip_with_metadata_and_num_images(tmp_path):
    path = tmp_path / "f.safetensors"
    original = _features(metadata={"encoder": "visualbert", "checkpoint": "x"}, num_images=torch.tensor([0, 1, 3, 0]))
    assert save_features(path, original) == path
    loaded = load_features(path)
    assert loaded.labels == original.labels
    assert torch.equal(loaded.vectors, original.vectors)
    assert loaded.num_images.tolist() == [0, 1, 3, 0]
    assert loaded.metadata["encoder"] == "visualbert" and loaded.metadata["checkpoint"] == "x"
    assert {"created", "package_version"} <= set(loaded.metadata)
    assert not {"labels", "dim", "format"} & set(loaded.metadata)
    # without num_images (files written by other tools)
    save_features(path, ["a", "b"], torch.ones(2, 5))
    assert load_features(path).num_images is None and load_features(path).dim == 5


def test_align_and_select():
    features = _features()
    aligned = features.align({"e2": 0, "x": 1, "e0": 2})
    assert aligned.mask.tolist() == [True, False, True]
    assert aligned.num_ignored == 2 and aligned.num_covered == 2
    assert torch.equal(aligned.vectors[0], features.vectors[2]) and torch.equal(aligned.vectors[1], torch.zeros(3))
    selected = _features(num_images=torch.tensor([5, 6, 7, 8])).select(["e3", "e1"])
    assert selected.labels == ("e3", "e1") and selected.num_images.tolist() == [8, 6]
    assert torch.equal(selected.vectors, features.vectors[[3, 1]])
    with pytest.raises(FeaturesFileError, match=r"1 labels are not in the features, e.g. \['zz'\]"):
        features.select(["zz"])


def test_atomic_write_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "f.safetensors"
    save_features(path, _features())

    def broken_save(tensors, filename, metadata=None):
        with open(filename, "wb") as file:
            file.write(b"half")
        raise KeyboardInterrupt

    import safetensors.torch

    monkeypatch.setattr(safetensors.torch, "save_file", broken_save)
    with pytest.raises(KeyboardInterrupt):
        save_features(path, _features(n=2))
    monkeypatch.undo()
    assert load_features(path).labels == ("e0", "e1", "e2", "e3")
    assert [p.name for p in tmp_path.iterdir()] == ["f.safetensors"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(labels=["a", "a"], vectors=torch.zeros(2, 2)), "Duplicate entity labels"),
        (dict(labels=["a"], vectors=torch.zeros(2, 2)), "1 labels but 2 feature rows"),
        (
            dict(labels=["a"], vectors=torch.tensor([[float("nan")]])),
            "NaN or infinite values, or values beyond float32's range, in 1 rows",
        ),
        (dict(labels=["a"], vectors=torch.zeros(1, 2), metadata={"dim": "2"}), r"\['dim'\] are reserved"),
        (dict(labels=["a"], vectors=torch.zeros(1, 2), num_images=torch.tensor([0.5])), "1-D integer tensor"),
        (dict(labels=["a"], vectors=torch.zeros(1, 2), num_images=torch.tensor([-1])), "must not be negative"),
        (dict(labels=["a"], vectors=torch.zeros(1, 2), num_images=torch.tensor([1, 2])), "2 num_images entries"),
    ],
)
def test_invalid_features(kwargs, message):
    with pytest.raises(FeaturesFileError, match=message):
        EntityFeatures(**kwargs)


def test_load_errors(tmp_path):
    with pytest.raises(FeaturesFileError, match="Features file not found"):
        load_features(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 20)
    with pytest.raises(FeaturesFileError, match="not a readable safetensors file"):
        load_features(junk)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"features": torch.zeros(1, 2)}, foreign)
    with pytest.raises(FeaturesFileError, match="is not a pykeen-vbkgc-features file"):
        load_features(foreign)
    newer = tmp_path / "newer.safetensors"
    save_file(
        {"features": torch.zeros(1, 2)},
        newer,
        metadata={"format": features_module.FORMAT_NAME, "format_version": "99", "labels": json.dumps(["a"])},
    )
    with pytest.raises(FeaturesFileError, match="version '99'"):
        load_features(newer)
    no_labels = tmp_path / "nolabels.safetensors"
    save_file(
        {"features": torch.zeros(1, 2)},
        no_labels,
        metadata={"format": features_module.FORMAT_NAME, "format_version": features_module.FORMAT_VERSION},
    )
    with pytest.raises(FeaturesFileError, match="no valid 'labels' metadata"):
        load_features(no_labels)


@pytest.mark.parametrize("labels", ["5", '"ab"', "[[0], [1]]", '["a", 1]', '{"a": 0, "b": 1}'])
def test_labels_metadata_that_is_json_but_not_a_list_of_strings_is_refused(tmp_path, labels):
    # a JSON string would otherwise be read as one label per character
    path = tmp_path / "f.safetensors"
    metadata = {"format": features_module.FORMAT_NAME, "format_version": features_module.FORMAT_VERSION}
    save_file({"features": torch.zeros(2, 2)}, path, metadata={**metadata, "labels": labels})
    with pytest.raises(FeaturesFileError) as error:
        load_features(path)
    assert str(error.value) == f"{path} has no valid 'labels' metadata: it must be a JSON list of strings."


@pytest.mark.parametrize("labels", ["ab", ["a", 1]])
def test_labels_in_memory_must_be_strings(labels):
    with pytest.raises(FeaturesFileError) as error:
        EntityFeatures(labels=labels, vectors=torch.zeros(2, 2))
    assert str(error.value) == "labels must be a sequence of strings, one per row."
    # any iterable of strings, a generator too
    assert EntityFeatures(labels=(label for label in "ab"), vectors=torch.zeros(2, 2)).labels == ("a", "b")


def test_num_images_of_a_file_must_be_integers(tmp_path):
    # read as stored, then checked as in memory (a float count is not truncated)
    path = tmp_path / "f.safetensors"
    metadata = {"format": features_module.FORMAT_NAME, "format_version": features_module.FORMAT_VERSION}
    tensors = {"features": torch.zeros(2, 2), "num_images": torch.tensor([0.5, 2.0])}
    save_file(tensors, path, metadata={**metadata, "labels": json.dumps(["a", "b"])})
    with pytest.raises(FeaturesFileError) as error:
        load_features(path)
    assert str(error.value) == f"Features file {path}: num_images must be a 1-D integer tensor."


def test_values_beyond_float32_are_refused_before_anything_is_written(tmp_path):
    """Features are stored and used as float32: 1e300 (finite as float64) would become infinite."""
    vectors = torch.tensor([[0.0, 1.0], [1e300, 0.0]], dtype=torch.float64)
    with pytest.raises(FeaturesFileError) as error:
        save_features(tmp_path / "f.safetensors", ["a", "b"], vectors)
    assert str(error.value) == (
        "vectors contains NaN or infinite values, or values beyond float32's range, in 1 rows (first rows: [1])."
    )
    assert list(tmp_path.iterdir()) == []
    # float64 within float32's range is fine
    save_features(tmp_path / "f.safetensors", ["a", "b"], vectors.clamp(max=1e30))


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_written_files_have_the_mode_that_the_umask_gives(tmp_path, umask):
    """Not mkstemp's private 0600: others may read a features file if the user's umask lets them."""
    import os
    import stat

    previous = os.umask(umask)
    try:
        path = save_features(tmp_path / "f.safetensors", _features())
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_align_and_select_refuse_arguments_that_would_misplace_rows():
    features = EntityFeatures(labels=("a", "b", "c"), vectors=torch.arange(12.0).view(3, 4))
    # -1 would fill the last row, 5 is out of range, a repeated id would overwrite a row
    for mapping in ({"a": -1, "b": 0}, {"a": 5}, {"a": 0, "b": 0}):
        with pytest.raises(FeaturesFileError) as error:
            features.align(mapping)
        assert str(error.value) == f"entity_to_id must map its {len(mapping)} labels to the ids 0..{len(mapping) - 1}."
    assert features.align({"c": 0, "x": 1}).mask.tolist() == [True, False]
    with pytest.raises(FeaturesFileError) as error:
        features.select("ab")
    assert str(error.value) == "labels must be a sequence of labels, not the string 'ab'."


def test_save_features_checks_where_it_writes_and_what_int32_holds(tmp_path):
    (tmp_path / "a-file").write_text("")
    vectors = torch.zeros(1, 2)
    for path, message in [
        (tmp_path, f"{tmp_path} is a directory; give the name of a file to write."),
        (
            tmp_path / "a-file" / "f.safetensors",
            f"Cannot write {tmp_path / 'a-file' / 'f.safetensors'}: {tmp_path / 'a-file'} is a file, not a directory.",
        ),
    ]:
        with pytest.raises(FeaturesFileError) as error:
            save_features(path, ["a"], vectors)
        assert str(error.value) == message
    with pytest.raises(FeaturesFileError) as error:
        save_features(tmp_path / "f.safetensors", ["a"], vectors, num_images=torch.tensor([2**31]))
    assert str(error.value) == "num_images must be at most 2147483647 (files store int32)."
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a-file"]
