"""Every dataset in the mirror loads with the statistics its publishers state.

Published numbers are read from the mirror's README.md (not from our catalog), and
train/test sizes are counted in the ARFF files themselves with a deliberately naive
line count, so neither side of an assertion comes from the loader under test.
"""

from __future__ import annotations

import gzip
import re

import numpy as np
import pytest
import scipy.sparse as sp

from benchmark.data.arff import read_arff
from benchmark.data.catalog import BUNDLED_DIR, catalog
from benchmark.data.download import LocalFile, is_available, sha256_of
from benchmark.data.loading import load_dataset

MULAN_IN_MIRROR = ["emotions", "yeast", "scene", "medical", "enron", "bibtex", "delicious", "corel5k"]
SPARSE = {"medical", "enron", "bibtex", "delicious", "corel5k"}
RCV1 = [f"rcv1subset{i}" for i in range(1, 6)]


def published_stats(mirror_dir) -> dict[str, dict]:
    """Parse 'name n/f/l/card' statements and the rcv1 sentence from the mirror README."""
    text = (mirror_dir / "README.md").read_text()
    stats = {}
    for name, n, f, l, card in re.findall(r"([A-Za-z0-9-]+) (\d+)/(\d+)/(\d+)/(\d+(?:\.\d+)?)", text):
        stats[name.lower()] = {"instances": int(n), "features": int(f), "labels": int(l), "cardinality": card}
    rcv1 = re.search(r"\((\d+) instances, (\d+) labels each\)\s+reduced to (\d+) features", text, re.S)
    for name in RCV1:
        stats[name] = {"instances": int(rcv1[1]), "labels": int(rcv1[2]), "features": int(rcv1[3])}
    return stats


def count_data_rows(path) -> int:
    """Rows after @data that are neither blank nor comments (independent of our parser)."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
        lines = fh.read().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().lower().startswith("@data"))
    return sum(1 for line in lines[start + 1 :] if line.strip() and not line.startswith("%"))


@pytest.fixture(scope="session")
def mirror_datasets(mirror_dir):
    names = [n for n in MULAN_IN_MIRROR + RCV1 if is_available(catalog()[n], mirror_dir)]
    return {name: load_dataset(name, data_dir=mirror_dir) for name in names}


@pytest.fixture(scope="session")
def published(mirror_dir):
    return published_stats(mirror_dir)


@pytest.mark.parametrize("name", MULAN_IN_MIRROR + RCV1)
def test_statistics_equal_published(name, mirror_datasets, published):
    if name not in mirror_datasets:
        pytest.skip(f"{name} not in this mirror")
    dataset, expected = mirror_datasets[name], published[name]
    assert dataset.n_instances == expected["instances"]
    assert dataset.n_features == expected["features"]
    assert dataset.n_labels == expected["labels"]
    if "cardinality" in expected:  # compared to the precision the README states it with
        decimals = len(expected["cardinality"].split(".")[1]) if "." in expected["cardinality"] else 0
        assert round(dataset.stats()["cardinality"], decimals) == float(expected["cardinality"])
    assert dataset.X.dtype == np.float32 and dataset.Y.dtype == np.uint8
    assert set(np.unique(dataset.Y)) <= {0, 1}


@pytest.mark.parametrize("name", MULAN_IN_MIRROR)
def test_published_split_sizes_from_the_files(name, mirror_datasets, mirror_dir):
    if name not in mirror_datasets:
        pytest.skip(f"{name} not in this mirror")
    spec = catalog()[name]
    n_train = count_data_rows(mirror_dir / spec.files["train"].rel)
    n_test = count_data_rows(mirror_dir / spec.files["test"].rel)
    split = mirror_datasets[name].split
    np.testing.assert_array_equal(split["train"], np.arange(n_train))
    np.testing.assert_array_equal(split["test"], np.arange(n_train, n_train + n_test))


@pytest.mark.parametrize("name", RCV1)
def test_single_file_datasets_have_no_split(name, mirror_datasets):
    if name not in mirror_datasets:
        pytest.skip(f"{name} not in this mirror")
    assert mirror_datasets[name].split == {}


def test_sparse_sources_load_as_csr_and_dense_ones_as_arrays(mirror_datasets):
    for name, dataset in mirror_datasets.items():
        expected_sparse = name in SPARSE or name.startswith("rcv1")
        assert sp.isspmatrix_csr(dataset.X) == expected_sparse, name
        if not expected_sparse:
            assert isinstance(dataset.X, np.ndarray)


def test_delicious_file_truth(mirror_datasets):
    """README: 500 features, 983 labels; the files agree (1483 attributes). MODELS.md's
    author scripts say 501/982, which is not what these files contain."""
    if "delicious" not in mirror_datasets:
        pytest.skip("delicious not in this mirror")
    dataset = mirror_datasets["delicious"]
    assert (dataset.n_features, dataset.n_labels) == (500, 983)
    assert dataset.stats()["n_zero_label_rows"] == 14  # rows without any tag are kept
    assert dataset.stats()["n_zero_label_rows"] == int((dataset.Y.sum(axis=1) == 0).sum())


def test_corel5k_dense_and_sparse_test_files_agree(mirror_dir):
    dense_path = mirror_dir / "mulan/corel5k/Corel5k-test.arff"
    sparse_path = mirror_dir / "mulan/corel5k/Corel5k-test-sparse.arff"
    if not (dense_path.exists() and sparse_path.exists()):
        pytest.skip("corel5k test files not in this mirror")
    dense, sparse = read_arff(dense_path), read_arff(sparse_path)
    assert not dense.is_sparse and sparse.is_sparse
    assert [a.name for a in dense.attributes] == [a.name for a in sparse.attributes]
    np.testing.assert_array_equal(dense.codes, sparse.codes.toarray())
    # And through the loader: the catalog's sparse test rows equal the dense file.
    loaded = load_dataset("corel5k", data_dir=mirror_dir)
    test_rows = loaded.split["test"]
    n_features = loaded.n_features
    np.testing.assert_array_equal(loaded.X[test_rows].toarray(), dense.codes[:, :n_features])


@pytest.mark.parametrize("name", ["emotions", "yeast", "scene"])
def test_bundled_copies_match_catalog_and_load_offline(name, monkeypatch, tmp_path, mirror_datasets):
    monkeypatch.delenv("MLCBENCH_DATA_DIR", raising=False)
    spec = catalog()[name]
    for ref in spec.files.values():
        bundled = BUNDLED_DIR / (ref.rel + ".gz")
        assert sha256_of(LocalFile(bundled, "bundled", gz_copy=True)) == ref.sha256
    dataset = load_dataset(name)  # no data dir, offline: must come from the bundle
    if name in mirror_datasets:
        reference = mirror_datasets[name]
        np.testing.assert_array_equal(dataset.X, reference.X)
        np.testing.assert_array_equal(dataset.Y, reference.Y)
