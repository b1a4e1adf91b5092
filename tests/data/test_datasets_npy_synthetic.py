"""The MPVAE/C-GMVAE ``.npy`` format (on files written here in the exact layout, and
on the mirror's real mirflickr index files) and the synthetic generator."""

from __future__ import annotations

import os

import numpy as np
import pytest

from benchmark.cli import main
from benchmark.data.catalog import DatasetSpec, catalog
from benchmark.data.loading import load_dataset
from benchmark.errors import DatasetError, ParseError


def write_npy_dataset(directory, name, n=40, meta_offset=2, label_dim=3, feature_dim=5, seed=0):
    """Rows [meta][labels][features] plus train/val/test index files; returns the parts."""
    rng = np.random.default_rng(seed)
    meta = rng.normal(size=(n, meta_offset))
    labels = rng.integers(0, 2, size=(n, label_dim)).astype(float)
    features = rng.normal(size=(n, feature_dim))
    directory.mkdir(parents=True, exist_ok=True)
    np.save(directory / f"{name}_data.npy", np.hstack([meta, labels, features]))
    order = rng.permutation(n)
    parts = {"train": order[: n // 2], "val": order[n // 2 : 3 * n // 4], "test": order[3 * n // 4 :]}
    for part, index in parts.items():
        np.save(directory / f"{name}_{part}_idx.npy", index)
    return meta, labels, features, parts


def npy_spec(directory, name, **dims):
    return {"name": name, "format": "npy", "data": f"{name}_data.npy", "train_idx": f"{name}_train_idx.npy",
            "val_idx": f"{name}_val_idx.npy", "test_idx": f"{name}_test_idx.npy", **dims}


def test_npy_layout_meta_labels_features(tmp_path):
    meta, labels, features, parts = write_npy_dataset(tmp_path, "toy")
    spec = DatasetSpec.from_dict(npy_spec(tmp_path, "toy", label_dim=3, feature_dim=5, meta_offset=2), tmp_path)
    dataset = load_dataset(spec)
    np.testing.assert_allclose(dataset.X, features.astype(np.float32))
    np.testing.assert_array_equal(dataset.Y, labels.astype(np.uint8))
    np.testing.assert_array_equal(dataset.meta, meta)
    assert dataset.X.dtype == np.float32 and dataset.Y.dtype == np.uint8 and dataset.n_features == 5
    assert set(dataset.split) == {"train", "val", "test"}
    for part, index in parts.items():
        np.testing.assert_array_equal(dataset.split[part], index)


def test_npy_wrong_dimensions_are_a_clear_error(tmp_path):
    write_npy_dataset(tmp_path, "toy")
    spec = DatasetSpec.from_dict(npy_spec(tmp_path, "toy", label_dim=3, feature_dim=6, meta_offset=2), tmp_path)
    with pytest.raises(ParseError, match=r"toy_data\.npy: shape \(40, 10\) does not match .* = 11 columns"):
        load_dataset(spec)
    # right width, wrong split of it: meta read as labels
    spec = DatasetSpec.from_dict(npy_spec(tmp_path, "toy", label_dim=3, feature_dim=7, meta_offset=0), tmp_path)
    with pytest.raises(ParseError, match="values other than 0/1"):
        load_dataset(spec)
    with pytest.raises(DatasetError, match="needs .*label_dim"):
        DatasetSpec.from_dict(npy_spec(tmp_path, "toy", feature_dim=5, meta_offset=2), tmp_path)


def test_npy_index_out_of_range(tmp_path):
    write_npy_dataset(tmp_path, "toy")
    np.save(tmp_path / "toy_test_idx.npy", np.array([1, 40]))
    spec = DatasetSpec.from_dict(npy_spec(tmp_path, "toy", label_dim=3, feature_dim=5, meta_offset=2), tmp_path)
    with pytest.raises(ParseError, match=r"toy_test_idx\.npy: row index 40 out of range \(data file has 40 rows\)"):
        load_dataset(spec)


def test_mirflickr_real_index_files(tmp_path, mirror_dir):
    """The catalog's mirflickr entry with the mirror's real index files and a data file
    written here in the exact layout (25000 x (38 + 1000))."""
    spec = catalog()["mirflickr"]
    if not all((mirror_dir / spec.files[r].rel).exists() for r in ("train_idx", "val_idx", "test_idx")):
        pytest.skip("mirflickr index files not in this mirror")
    data_dir = tmp_path / "data"
    folder = data_dir / "c-gmvae" / "mirflickr"
    folder.mkdir(parents=True)
    for role in ("train_idx", "val_idx", "test_idx"):
        os.symlink(mirror_dir / spec.files[role].rel, data_dir / spec.files[role].rel)
    with pytest.raises(DatasetError, match=r"mirflickr_data\.npy is not available locally: .*C-GMVAE"):
        load_dataset("mirflickr", data_dir=data_dir)
    n, label_dim, feature_dim = 25000, spec.params["label_dim"], spec.params["feature_dim"]
    assert (label_dim, feature_dim, spec.params["meta_offset"]) == (38, 1000, 0)
    rng = np.random.default_rng(0)
    data = np.zeros((n, label_dim + feature_dim), dtype=np.uint16)  # small on disk
    data[:, :label_dim] = rng.random((n, label_dim)) < 0.1
    data[:, label_dim] = np.arange(n)  # first feature = row number, to check alignment
    np.save(folder / "mirflickr_data.npy", data)
    dataset = load_dataset("mirflickr", data_dir=data_dir)
    assert {part: len(index) for part, index in dataset.split.items()} == {"train": 9821, "val": 2455, "test": 12305}
    assert dataset.n_features == 1000 and dataset.n_labels == 38 and dataset.meta is None
    np.testing.assert_array_equal(dataset.X[:, 0], np.arange(n))
    np.testing.assert_array_equal(dataset.Y, data[:, :label_dim].astype(np.uint8))
    all_rows = np.concatenate(list(dataset.split.values()))
    assert np.unique(all_rows).size == all_rows.size  # disjoint parts
    # a data file of the wrong width: a clear error naming the expected layout
    np.save(folder / "mirflickr_data.npy", data[:100, :500])
    with pytest.raises(ParseError, match=r"shape \(100, 500\) does not match meta_offset 0 \+ label_dim 38 \+ feature_dim 1000"):
        load_dataset("mirflickr", data_dir=data_dir)


def test_info_on_a_user_npy_file(tmp_path, capsys):
    write_npy_dataset(tmp_path, "mine", meta_offset=0)
    import json

    path = str(tmp_path / "mine_data.npy")
    assert main(["datasets", "info", path, "--label-dim", "3", "--feature-dim", "5", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert (record["n_instances"], record["n_features"], record["n_labels"]) == (40, 5, 3)
    assert (record["n_train"], record["n_val"], record["n_test"]) == (20, 10, 10)


@pytest.mark.slow
def test_synthetic_is_seeded_with_a_default_split():
    a = load_dataset("synthetic")
    b = load_dataset({"name": "synthetic", "format": "synthetic", "n_samples": 1000, "n_features": 50,
                      "n_labels": 10, "seed": 0})
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.Y, b.Y)
    assert (a.n_instances, a.n_features, a.n_labels) == (1000, 50, 10)
    assert len(a.split["train"]) == 750 and len(a.split["test"]) == 250
    assert np.intersect1d(a.split["train"], a.split["test"]).size == 0
    c = load_dataset({"name": "s", "format": "synthetic", "n_samples": 100, "n_features": 4, "n_labels": 3, "seed": 1})
    assert c.X.shape == (100, 4) and c.Y.shape == (100, 3) and c.X.dtype == np.float32
    assert not np.array_equal(c.X, load_dataset({"name": "s", "format": "synthetic", "n_samples": 100,
                                                 "n_features": 4, "n_labels": 3, "seed": 2}).X)
    with pytest.raises(DatasetError, match="unknown synthetic parameter"):
        load_dataset({"name": "s", "format": "synthetic", "n_sample": 10})
