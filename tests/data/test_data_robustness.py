"""Issue #23: caches that cannot be read are absent (item 3), data read as published with
notices (item 5), and warnings that travel with a cell's numbers (item 6).

Every cache (parsed datasets, splits, model registry) gets three bad entries: truncated,
garbage, and valid-looking but implausible. Each must warn once, be recomputed and be
overwritten, never crash the command.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from helpers import REPO_ROOT

from benchmark.data.dataplan import DataPlan, Parts, dataset_fingerprint, split_warnings
from benchmark.data.download import is_available
from benchmark.data.loading import load_dataset
from benchmark.data.parse_cache import _array_digest, parser_code_version
from benchmark.data.refs import DatasetRef


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("MLCBENCH_CACHE_DIR", str(cache))
    return cache


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def garbage(path: Path) -> None:
    path.write_bytes(np.random.default_rng(0).bytes(max(64, path.stat().st_size)))


# ---------------------------------------------------------------------------- parse cache


def _only(cache: Path, pattern: str) -> Path:
    found = sorted(cache.glob(pattern))
    assert len(found) == 1, found
    return found[0]


def _implausible_parse(npz: Path) -> None:
    """A consistent entry (content hash recomputed) whose test indices point past the rows."""
    json_path = npz.with_suffix(".json")
    info = json.loads(json_path.read_text())
    with np.load(npz) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["split_test"] = arrays["split_test"] + 10_000
    info["content_sha256"] = _array_digest(arrays)
    np.savez(npz.with_suffix(""), **arrays)  # np.savez appends .npz
    json_path.write_text(json.dumps(info))


@pytest.mark.parametrize("damage", [truncate, garbage, _implausible_parse])
def test_parse_cache_bad_entry_is_absent_warned_once_and_overwritten(private_cache, mirror_dir, capsys, damage):
    first = load_dataset("emotions", data_dir=mirror_dir)
    npz = _only(private_cache / "parsed", "*.npz")
    damage(npz)
    bad_bytes = npz.read_bytes()
    again = load_dataset("emotions", data_dir=mirror_dir)
    err = capsys.readouterr().err
    assert err.count("warning: ignoring unusable parsed-dataset cache entry") == 1, err
    assert "Traceback" not in err
    np.testing.assert_array_equal(first.X, again.X)
    for part in first.split:
        np.testing.assert_array_equal(first.split[part], again.split[part])
    assert npz.read_bytes() != bad_bytes, "the entry was overwritten"
    load_dataset("emotions", data_dir=mirror_dir)
    assert capsys.readouterr().err == "", "the rebuilt entry is trusted"


def test_parse_cache_garbage_json_is_absent(private_cache, mirror_dir, capsys):
    load_dataset("emotions", data_dir=mirror_dir)
    json_path = _only(private_cache / "parsed", "*.json")
    json_path.write_text("[1, 2, 3]")  # valid JSON, not an entry
    load_dataset("emotions", data_dir=mirror_dir)
    assert "unusable parsed-dataset cache entry" in capsys.readouterr().err
    assert json.loads(json_path.read_text())["name"] == "emotions"


def test_a_changed_parser_never_serves_an_old_parse(private_cache, mirror_dir, monkeypatch):
    """The parse-cache key holds the sha256 of the parser's code, not only ``cache_version``."""
    from benchmark.data import catalog, parse_cache

    load_dataset("emotions", data_dir=mirror_dir)
    old = {p.name for p in (private_cache / "parsed").iterdir()}
    monkeypatch.setattr(parse_cache, "parser_code_version", lambda cls: "another parser")
    load_dataset("emotions", data_dir=mirror_dir)
    new = {p.name for p in (private_cache / "parsed").iterdir()} - old
    assert len(new) == 2, "a second entry, under a new key"
    mulan = catalog.get_format("mulan")
    assert len(parser_code_version(mulan)) == 16


# ---------------------------------------------------------------------------- split cache


def _plan(cache: Path) -> DataPlan:
    entry = DatasetRef("emotions")
    return DataPlan(entry, dataset_fingerprint(entry, None), None, 0, 0.15, "subset", False, cache)


def _implausible_split(path: Path) -> None:
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["val"] = arrays["train"][:5]  # valid npz, parts overlapping
    np.savez(path.with_suffix(""), **arrays)


@pytest.mark.parametrize("damage", [truncate, garbage, _implausible_split])
def test_split_cache_bad_entry_is_absent_warned_once_and_overwritten(tmp_path, mirror_dir, capsys, damage):
    splits = tmp_path / "splits"
    parts = _plan(splits).parts(0.5, 1)
    path = _only(splits, "emotions-*.npz")
    damage(path)
    if damage is truncate:  # what the issue saw: a 15-frame zipfile.BadZipFile traceback
        with pytest.raises((zipfile.BadZipFile, EOFError, OSError, ValueError)):
            np.load(path)["train"]
    plan = _plan(splits)
    again = plan.parts(0.5, 1)
    assert plan.parts(0.5, 1) is again
    err = capsys.readouterr().err
    assert err.count("warning: ignoring unusable split cache entry") == 1, err
    for name in ("train", "val", "test"):
        np.testing.assert_array_equal(getattr(parts, name), getattr(again, name))
    fresh = _plan(splits)
    fresh.parts(0.5, 1)
    assert fresh._dataset is None and capsys.readouterr().err == "", "overwritten with a good entry"


def test_dry_run_survives_a_truncated_split_cache(tmp_path, mirror_dir, monkeypatch, capsys):
    """``run --dry-run`` (and ``run``) with a truncated split cache: a warning, not a traceback."""
    from benchmark.cli import main

    monkeypatch.setenv("MLCBENCH_CACHE_DIR", str(tmp_path / "cache"))
    args = ["run", "--suite", "smoke", "--datasets", "emotions", "--models", "prior", "--fractions", "0.5",
            "--seeds", "0", "--results", str(tmp_path / "res")]
    assert main([*args, "--dry-run"]) == 0
    capsys.readouterr()
    for path in (tmp_path / "cache" / "splits").glob("*.npz"):
        truncate(path)
    assert main([*args, "--dry-run"]) == 0
    err = capsys.readouterr().err
    assert "unusable split cache entry" in err and "BadZipFile" in err


# ---------------------------------------------------------------------------- registry cache


@pytest.fixture
def registry_cache(private_cache):
    from benchmark.modelapi.base import _cache_path, model_declarations

    model_declarations()
    path = _cache_path()
    assert path.exists()
    return path


def _implausible_registry(path: Path) -> None:
    cached = json.loads(path.read_text())
    stem = next(iter(cached["files"]))
    cached["files"][stem] = [{"name": "ghost"}]  # same key, a declaration missing its fields
    path.write_text(json.dumps(cached))


@pytest.mark.parametrize("damage", [truncate, garbage, _implausible_registry])
def test_registry_cache_bad_entry_is_absent_warned_once_and_overwritten(registry_cache, capsys, damage):
    from benchmark.modelapi.base import get_model, model_declarations

    capsys.readouterr()
    damage(registry_cache)
    bad = registry_cache.read_bytes()
    declarations, _ = model_declarations()
    assert "br" in declarations and "ghost" not in declarations
    err = capsys.readouterr().err
    assert err.count("warning: ignoring unusable model registry cache entry") == 1, err
    assert registry_cache.read_bytes() != bad
    assert get_model("br").name == "br"
    model_declarations()
    assert capsys.readouterr().err == ""


def test_registry_cache_is_one_file_per_checkout(private_cache, monkeypatch):
    from benchmark.modelapi import base

    here = base._cache_path()
    monkeypatch.setattr(base, "ENGINE_DIR", Path("/elsewhere/checkout/benchmark"))
    assert base._cache_path() != here and base._cache_path().parent == here.parent


# ---------------------------------------------------------------------------- MULAN reading (item 5)

HEADER = "@relation tiny\n"


def write_mulan(tmp_path: Path, attributes: list[str], rows: list[str], labels: list[str],
                test_rows: list[str] | None = None) -> dict:
    body = HEADER + "".join(f"@attribute {a}\n" for a in attributes) + "@data\n"
    xml = ('<?xml version="1.0" encoding="utf-8"?>\n<labels xmlns="http://mulan.sourceforge.net/labels">\n'
           + "".join(f'<label name="{name}"></label>\n' for name in labels) + "</labels>\n")
    (tmp_path / "tiny.xml").write_text(xml)
    if test_rows is None:
        (tmp_path / "tiny.arff").write_text(body + "\n".join(rows) + "\n")
        return {"name": "tiny", "format": "mulan", "xml": str(tmp_path / "tiny.xml"),
                "arff": str(tmp_path / "tiny.arff")}
    (tmp_path / "tiny-train.arff").write_text(body + "\n".join(rows) + "\n")
    (tmp_path / "tiny-test.arff").write_text(body + "\n".join(test_rows) + "\n")
    return {"name": "tiny", "format": "mulan", "xml": str(tmp_path / "tiny.xml"),
            "train": str(tmp_path / "tiny-train.arff"), "test": str(tmp_path / "tiny-test.arff")}


def test_an_id_with_one_repeated_value_is_dropped_and_nominals_are_named(tmp_path, private_cache):
    """genbase's case in small: 25 rows, an ID nominal whose value repeats once across train and
    test (the old rule needed every row distinct and one-hot encoded it), a real categorical."""
    ids = [f"P{i:02d}" for i in range(24)]
    attributes = [f"protein {{{','.join(ids)}}}", "colour {red,green,blue}", "x numeric", "a {0,1}", "b {0,1}"]
    colours = ["red", "green", "blue"]
    rows = [f"{ids[i]},{colours[i % 3]},{i},{i % 2},{(i + 1) % 2}" for i in range(20)]
    test = [f"{ids[i]},{colours[i % 3]},{i},{i % 2},{(i + 1) % 2}" for i in (20, 21, 22, 23, 3)]  # P03 again
    dataset = load_dataset(write_mulan(tmp_path, attributes, rows, ["a", "b"], test))
    assert dataset.feature_names == ["colour=red", "colour=green", "colour=blue", "x"]
    notices = " | ".join(dataset.notices)
    assert "dropped 1 ID-like attribute(s)" in notices
    assert "protein (23 of 25 rows hold a value no other row holds)" in notices
    assert "one-hot encoded 1 nominal attribute(s) into 3 columns: colour (3 values)" in notices


def test_an_id_declaring_as_many_values_as_rows_is_dropped(tmp_path, private_cache):
    ids = [f"r{i}" for i in range(30)]
    attributes = [f"id {{{','.join(ids)}}}", "x numeric", "a {0,1}"]
    rows = [f"{ids[i // 2]},{i},{i % 2}" for i in range(30)]  # each value twice: only the declaration tells
    dataset = load_dataset(write_mulan(tmp_path, attributes, rows, ["a"]))
    assert dataset.feature_names == ["x"]
    assert any("id (30 declared values for 30 rows)" in n for n in dataset.notices)


@pytest.mark.parametrize("declared", ["{YES,NO}", "{NO,YES}", "{true,false}", "{1,0}", "{0,1}"])
def test_labels_are_read_by_value_not_by_declared_index(tmp_path, private_cache, declared):
    values = declared.strip("{}").split(",")
    positive = next(v for v in values if v.lower() in ("yes", "true", "1"))
    negative = next(v for v in values if v != positive)
    attributes = ["x numeric", f"a {declared}", "b {0,1}"]
    rows = [f"{i},{positive if i % 3 == 0 else negative},{i % 2}" for i in range(12)]
    dataset = load_dataset(write_mulan(tmp_path, attributes, rows, ["a", "b"]))
    assert dataset.Y[:, 0].tolist() == [1 if i % 3 == 0 else 0 for i in range(12)]


def test_a_label_of_unknown_meaning_is_an_error(tmp_path, private_cache):
    from benchmark.errors import DatasetError

    attributes = ["x numeric", "a {cat,dog}", "b {0,1}"]
    rows = [f"{i},{'cat' if i % 2 else 'dog'},{i % 2}" for i in range(6)]
    with pytest.raises(DatasetError, match="neither a yes-like"):
        load_dataset(write_mulan(tmp_path, attributes, rows, ["a", "b"]))


def test_genbase_reads_as_published(mirror_dir, capsys):
    """With the catalog's copy (sha256-checked): 1,185 features, a notice naming protein."""
    from benchmark.cli import main
    from benchmark.data.catalog import get_spec

    if not is_available(get_spec("genbase"), mirror_dir):
        pytest.skip("genbase is not in this mirror (put the catalog's files in the data dir or cache)")
    assert main(["datasets", "info", "genbase", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["n_features"] == 1185 and record["n_instances"] == 662 and record["n_labels"] == 27
    assert any("protein" in n and "dropped" in n for n in record["notices"])


# ---------------------------------------------------------------------------- missing values (item 6b)


def test_missing_values_are_imputed_with_the_training_mean_not_zero(tmp_path, private_cache):
    attributes = ["mfcc numeric", "y numeric", "a {0,1}", "b {0,1}"]
    train = [f"{-70 - i % 3},{i},{i % 2},{(i + 1) % 2}" for i in range(9)] + ["?,9,1,0"]
    test = ["?,1,0,1", "-60,2,1,0"]
    dataset = load_dataset(write_mulan(tmp_path, attributes, train, ["a", "b"], test))
    mean = np.mean([-70 - i % 3 for i in range(9)])
    assert dataset.X[9, 0] == pytest.approx(mean, abs=1e-4) and dataset.X[10, 0] == pytest.approx(mean, abs=1e-4)
    assert dataset.imputed.tolist() == [[9, 0], [10, 0]]
    notice = next(n for n in dataset.notices if "missing" in n)
    assert "2 missing feature value(s)" in notice and "mean over the published training file" in notice
    assert "mfcc" in notice
    again = load_dataset(write_mulan(tmp_path, attributes, train, ["a", "b"], test))  # from the parse cache
    assert again.imputed.tolist() == [[9, 0], [10, 0]]


def test_sparse_missing_values_are_imputed_too(tmp_path, private_cache):
    attributes = ["f0 numeric", "f1 numeric", "a {0,1}", "b {0,1}"]
    rows = ["{0 4,2 1}", "{1 2,3 1}", "{0 ?,2 1}", "{0 2,1 6,3 1}"]  # f0 over all rows: (4 + 0 + 2) / 3
    dataset = load_dataset(write_mulan(tmp_path, attributes, rows, ["a", "b"]))
    assert dataset.X[2, 0] == pytest.approx(2.0)
    assert "over all rows" in " ".join(dataset.notices)


# ---------------------------------------------------------------------------- cell warnings (item 6a)


def test_split_warnings_name_small_tests_unseen_labels_and_imputed_values(tmp_path, private_cache):
    attributes = ["x numeric", "a {0,1}", "b {0,1}", "c {0,1}"]
    train = [f"{'?' if i == 0 else i},{i % 2},{(i + 1) % 2},0" for i in range(40)]
    test = [f"{'?' if i == 0 else i},{i % 2},{(i + 1) % 2},{1 if i == 3 else 0}" for i in range(10)]
    dataset = load_dataset(write_mulan(tmp_path, attributes, train, ["a", "b", "c"], test))
    parts = Parts(np.arange(0, 34), np.arange(34, 40), np.arange(40, 50))
    warnings = split_warnings(dataset, parts)
    assert len(warnings) == 3, warnings
    assert "test set has only 10 rows" in warnings[0]
    assert "1 label(s) positive in the test set but never in the 34 training rows: c" in warnings[1]
    assert "2 feature value(s) of this split were missing and imputed (train 1, validation 0, test 1)" in warnings[2]


def test_data_plan_warnings_for_a_cell(tmp_path, mirror_dir, private_cache):
    """``DataPlan.warnings(fraction, seed)``: what the runner stores and prints with a cell."""
    assert _plan(tmp_path / "splits").warnings(1.0, 0) == []  # emotions: 202 test rows, every label trained
    attributes = ["x numeric", "a {0,1}", "b {0,1}", "c {0,1}"]
    train = [f"{'?' if i == 0 else i},{i % 2},{(i + 1) % 2},0" for i in range(40)]
    test = [f"{i},{i % 2},{(i + 1) % 2},{1 if i == 3 else 0}" for i in range(10)]
    entry = DatasetRef("tiny", write_mulan(tmp_path, attributes, train, ["a", "b", "c"], test))
    plan = DataPlan(entry, dataset_fingerprint(entry, None), None, 0, 0.15, "subset", False, tmp_path / "splits")
    warnings = plan.warnings(0.5, 1)
    parts = plan.parts(0.5, 1)
    assert len(parts.train) == 17 and len(warnings) == 3, warnings
    assert warnings[0].startswith("the test set has only 10 rows")
    assert "1 label(s) positive in the test set but never in the 17 training rows (fraction 0.5): c" in warnings[1]
    in_train = int(0 in parts.train)
    assert f"1 feature value(s) of this split were missing and imputed (train {in_train}, " \
           f"validation {1 - in_train}, test 0)" in warnings[2]


def test_readme_states_the_unsplit_shares_as_they_are():
    """README: a dataset without a published split is 76.5/13.5/10 with val_size 0.15."""
    from benchmark.data.dataset import MultiLabelDataset
    from benchmark.data.splits import make_split

    rng = np.random.default_rng(0)
    Y = (rng.random((1000, 4)) < 0.3).astype(np.uint8)
    split = make_split(MultiLabelDataset("u", np.zeros((1000, 1), np.float32), Y, ["f"], list("abcd")),
                       seed=0, val_size=0.15)
    assert (len(split.train), len(split.val), len(split.test)) == (765, 135, 100)
    readme = (REPO_ROOT / "README.md").read_text()
    assert "76.5/13.5/10" in readme and "80/10/10" not in readme


# ---------------------------------------------------------------------------- datasets list notices (item 5)


def test_datasets_list_shows_the_notices_of_parsed_datasets(private_cache, mirror_dir, capsys, monkeypatch):
    from benchmark.cli import main

    assert main(["datasets", "list", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["emotions"]["notices"] is None, "not parsed yet: unknown, not empty"
    load_dataset("emotions", data_dir=mirror_dir)
    assert main(["datasets", "list", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["emotions"]["notices"] == load_dataset("emotions", data_dir=mirror_dir).notices
    import benchmark.commands.datasets as datasets_command

    monkeypatch.setattr(datasets_command, "cached_notices", lambda spec: ["dropped 1 ID-like attribute(s): protein"]
                        if spec.name == "genbase" else None)
    assert main(["datasets", "list"]) == 0
    assert "  genbase: dropped 1 ID-like attribute(s): protein" in capsys.readouterr().out


# ---------------------------------------------------------------------------- report's default output (item 8)


def test_report_writes_into_an_ignored_folder_by_default(tmp_path, monkeypatch):
    import subprocess

    import benchmark.report
    from benchmark.cli import main

    seen = {}

    class Stop(Exception):
        pass

    def fake_build_report(results, out, **kwargs):
        seen["out"] = out
        raise Stop

    monkeypatch.setattr(benchmark.report, "build_report", fake_build_report)
    monkeypatch.chdir(tmp_path)
    for protocol, expected in (("val", "results/report"), ("oracle", "results/report/oracle")):
        with pytest.raises(Stop):
            main(["report", "--protocol", protocol])
        assert seen["out"] == expected
    repo = REPO_ROOT
    ignored = subprocess.run(["git", "check-ignore", "-q", "results/report/index.md"], cwd=repo)
    assert ignored.returncode == 0, "the default report folder is ignored by git"
