"""The parsed-dataset cache (fast, keyed by the sources, corruption detected) and the
``python -m benchmark datasets`` commands."""

from __future__ import annotations

import json
import shutil
import time

import numpy as np
import pytest

from benchmark.cli import main
from benchmark.data.catalog import catalog
from benchmark.data.download import is_available
from benchmark.data.loading import load_dataset
from benchmark.data.settings import cache_dir


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("MLCBENCH_CACHE_DIR", str(cache))
    return cache


def test_cached_load_is_fast_and_identical(private_cache, mirror_dir):
    name = "bibtex"
    if not is_available(catalog()[name], mirror_dir):
        pytest.skip("bibtex not in this mirror")
    first = load_dataset(name, data_dir=mirror_dir)
    files = sorted(p.name for p in (private_cache / "parsed").iterdir())
    assert len(files) == 2 and files[0].endswith(".json") and files[1].endswith(".npz")
    start = time.perf_counter()
    second = load_dataset(name, data_dir=mirror_dir)
    elapsed = time.perf_counter() - start
    assert (first.X != second.X).nnz == 0
    np.testing.assert_array_equal(first.Y, second.Y)
    assert first.feature_names == second.feature_names and first.label_names == second.label_names
    for part in first.split:
        np.testing.assert_array_equal(first.split[part], second.split[part])
    assert elapsed < 2.0  # target < 0.5 s (benchmarks/bench_loading.py); loose for busy CI


def test_corrupt_cache_is_rebuilt_not_trusted(private_cache, mirror_dir, capsys):
    first = load_dataset("emotions", data_dir=mirror_dir)
    npz = next((private_cache / "parsed").glob("*.npz"))
    data = bytearray(npz.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 8] = b"\xff" * 8  # flip bytes inside an array
    npz.write_bytes(bytes(data))
    again = load_dataset("emotions", data_dir=mirror_dir)
    assert "unusable parsed-dataset cache entry" in capsys.readouterr().err
    np.testing.assert_array_equal(first.X, again.X)
    np.testing.assert_array_equal(first.Y, again.Y)
    npz.write_bytes(b"")  # truncated to nothing
    np.testing.assert_array_equal(load_dataset("emotions", data_dir=mirror_dir).X, first.X)
    assert "unusable parsed-dataset cache entry" in capsys.readouterr().err
    load_dataset("emotions", data_dir=mirror_dir)  # the rebuilt cache is trusted again
    assert capsys.readouterr().err == ""


def test_cache_key_follows_the_source_files(private_cache, tmp_path, mirror_dir):
    """Same name, different sources: a user-declared dataset must not reuse a stale parse."""
    folder = tmp_path / "emo"
    shutil.copytree(mirror_dir / "mulan" / "emotions", folder)
    spec = {"name": "emo", "format": "mulan", "train": str(folder / "emotions-train.arff"),
            "test": str(folder / "emotions-test.arff"), "xml": str(folder / "emotions.xml")}
    before = load_dataset(spec)
    path = folder / "emotions-test.arff"
    path.write_bytes(path.read_bytes().replace(b"0.036299", b"0.5", 1))
    after = load_dataset(spec)
    assert after.X[before.split["test"][0], 0] == np.float32(0.5) != before.X[before.split["test"][0], 0]


def test_data_dir_is_never_written(private_cache, tmp_path, mirror_dir):
    data_dir = tmp_path / "data"
    shutil.copytree(mirror_dir / "mulan" / "medical", data_dir / "mulan" / "medical")
    before = sorted(p.name for p in data_dir.rglob("*"))
    load_dataset("medical", data_dir=data_dir)
    assert sorted(p.name for p in data_dir.rglob("*")) == before
    assert cache_dir() == private_cache and any((private_cache / "parsed").iterdir())


# ---------------------------------------------------------------------------- CLI


def test_cli_list_shows_every_catalog_dataset(capsys, mirror_dir):
    assert main(["datasets", "list", "--data-dir", str(mirror_dir), "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    expected = {"emotions", "yeast", "scene", "medical", "enron", "bibtex", "delicious", "corel5k", "birds",
                "genbase", "cal500", "flags", "foodtruck", "tmc2007-500", "mirflickr", "nus-wide", "fish",
                "eBird", "sider", "synthetic"} | {f"rcv1subset{i}" for i in range(1, 6)}
    assert expected <= set(rows)
    assert rows["emotions"]["files"] == "data-dir" and rows["delicious"]["labels"] == 983
    assert rows["birds"]["files"].startswith("download 3 file(s)")
    assert rows["mirflickr"]["files"] == "missing mirflickr_data.npy (no public URL)"
    assert rows["cal500"]["split"] == "none" and rows["mirflickr"]["split"].startswith("train/val/test")
    assert main(["datasets", "list"]) == 0
    assert "emotions" in capsys.readouterr().out


def test_cli_info_json_is_one_object(capsys, mirror_dir):
    assert main(["datasets", "info", "yeast", "--json", "--data-dir", str(mirror_dir)]) == 0
    record = json.loads(capsys.readouterr().out)
    for key in ("name", "n_instances", "n_features", "n_labels", "cardinality", "density",
                "n_distinct_labelsets", "n_zero_label_rows", "n_train", "n_test", "split"):
        assert key in record
    assert (record["n_instances"], record["n_train"], record["n_test"]) == (2417, 1500, 917)
    assert record["split"] == {"train": 1500, "test": 917} and "n_val" not in record
    assert round(record["cardinality"], 2) == 4.24
    assert main(["datasets", "info", "yeast", "--data-dir", str(mirror_dir)]) == 0
    text = capsys.readouterr().out
    assert "distinct label sets" in text and "train 1500, test 917" in text


def test_cli_errors_are_one_line_with_nonzero_exit(capsys, tmp_path):
    assert main(["datasets", "info", "yaest"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("error: unknown dataset 'yaest'; did you mean yeast? "
                   "(`python -m benchmark datasets list` shows all)")
    assert main(["datasets", "fetch", "flags", "--data-dir", str(tmp_path)]) == 2  # offline in tests
    err = capsys.readouterr().err
    assert "MLCBENCH_OFFLINE=1 forbids downloading" in err and not list(tmp_path.rglob("*.arff"))


def test_cli_verify_reports_mismatch(capsys, tmp_path, mirror_dir):
    data_dir = tmp_path / "data"
    shutil.copytree(mirror_dir / "mulan" / "scene", data_dir / "mulan" / "scene")
    assert main(["datasets", "verify", "scene", "--data-dir", str(data_dir)]) == 0
    assert "3 ok, 0 mismatch, 0 missing" in capsys.readouterr().out
    (data_dir / "mulan" / "scene" / "scene.xml").write_text("<labels/>")
    assert main(["datasets", "verify", "scene", "--data-dir", str(data_dir)]) == 1
    captured = capsys.readouterr()
    assert "mismatch" in captured.out and "1 file(s) do not match" in captured.err
    (data_dir / "mulan" / "scene" / "scene.xml").unlink()
    monkey_out = main(["datasets", "verify", "scene", "--data-dir", str(data_dir)])
    assert monkey_out == 0  # falls back to the bundled copy, which is intact
    assert "bundled" in capsys.readouterr().out
