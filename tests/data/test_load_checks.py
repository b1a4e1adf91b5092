"""Checks every dataset passes at load (issue 12, item 3): bad data stops with one line
naming the file, before any cell runs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_datasets_npy_synthetic import npy_spec, write_npy_dataset

from benchmark.cli import main
from benchmark.data.catalog import DatasetSpec
from benchmark.data.loading import load_dataset
from benchmark.errors import DatasetError


def info(capsys, *args):
    code = main(["datasets", "info", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_non_finite_npy_features_name_file_row_and_column(tmp_path, capsys):
    _, _, features, _ = write_npy_dataset(tmp_path, "bad")
    data = np.load(tmp_path / "bad_data.npy")
    data[7, 2 + 3 + 4] = np.nan  # row 7, feature column 4
    data[9, 2 + 3 + 1] = np.inf
    np.save(tmp_path / "bad_data.npy", data)
    code, out, err = info(capsys, str(tmp_path / "bad_data.npy"), "--label-dim", "3", "--feature-dim", "5",
                          "--meta-offset", "2")
    assert code == 2 and out == ""
    assert err.strip() == (f"error: {tmp_path / 'bad_data.npy'}: data row 8, feature column 4 (f4) is nan: "
                           "2 non-finite feature value(s) (NaN/inf); fix or remove them")


def test_overlapping_index_files_are_an_error(tmp_path):
    _, _, _, parts = write_npy_dataset(tmp_path, "toy")
    np.save(tmp_path / "toy_test_idx.npy", np.concatenate([parts["test"], parts["train"][:3]]))
    spec = DatasetSpec.from_dict(npy_spec(tmp_path, "toy", label_dim=3, feature_dim=5, meta_offset=2), tmp_path)
    with pytest.raises(DatasetError, match=r"toy_train_idx\.npy and .*toy_test_idx\.npy share 3 row index"):
        load_dataset(spec)


def test_relative_npy_path_is_resolved_once(tmp_path, capsys, monkeypatch):
    write_npy_dataset(tmp_path / "npy_ok", "x")
    monkeypatch.chdir(tmp_path)
    code, out, err = info(capsys, "npy_ok/x_data.npy", "--label-dim", "3", "--feature-dim", "5",
                          "--meta-offset", "2", "--json")
    assert code == 0, err
    record = json.loads(out)
    assert (record["n_instances"], record["n_features"], record["n_labels"]) == (40, 5, 3)
    code, _, err = info(capsys, "npy_ok/nosuch_data.npy")
    assert code == 2 and f"{tmp_path / 'npy_ok' / 'nosuch_data.npy'}: file not found" in err


def genbase_like(tmp_path, n=30, n_yes_no=6, n_labels=4, seed=0):
    """genbase's structure: a nominal ID declared with one value per row, {YES,NO}
    feature attributes and {0,1} labels (genbase: 662 IDs, 1185 YES/NO, 27 labels)."""
    rng = np.random.default_rng(seed)
    ids = [f"P{i:04d}" for i in range(n)]
    yes = rng.random((n, n_yes_no)) < 0.3
    Y = (rng.random((n, n_labels)) < 0.4).astype(int)
    Y[:, -1] = 0  # one label never positive
    lines = ["@relation genbase_like", f"@attribute protein {{{','.join(ids)}}}"]
    lines += [f"@attribute PS{j:05d} {{YES,NO}}" for j in range(n_yes_no)]
    lines += [f"@attribute L{k} {{0,1}}" for k in range(n_labels)]
    lines.append("@data")
    for i in range(n):
        lines.append(",".join([ids[i], *("YES" if v else "NO" for v in yes[i]), *map(str, Y[i])]))
    (tmp_path / "gb.arff").write_text("\n".join(lines) + "\n")
    labels = "".join(f'<label name="L{k}"></label>' for k in range(n_labels))
    (tmp_path / "gb.xml").write_text(f'<?xml version="1.0"?><labels xmlns="http://mulan.sourceforge.net/labels">'
                                     f"{labels}</labels>")
    return yes, Y


def test_genbase_structure_id_dropped_and_yes_no_one_column(tmp_path):
    yes, Y = genbase_like(tmp_path)
    dataset = load_dataset(DatasetSpec.from_dict(
        {"name": "gb", "format": "mulan", "xml": "gb.xml", "arff": "gb.arff"}, tmp_path))
    # genbase: 1185 features = its 1185 {YES,NO} attributes, not 3032 = 662 + 2 * 1185
    assert dataset.n_features == 6
    assert dataset.feature_names == [f"PS{j:05d}=YES" for j in range(6)]
    np.testing.assert_array_equal(dataset.X, yes.astype(np.float32))
    np.testing.assert_array_equal(dataset.Y, Y)
    assert ("dropped 1 ID-like attribute(s) (identifiers, not features): protein (30 declared values for 30 rows)"
            in dataset.notices)
    assert any(n.startswith("6 two-valued nominal attribute(s) encoded as one 0/1 column each") for n in dataset.notices)
    assert any(n.startswith("warning: 1 label(s) never positive") and n.endswith(": L3") for n in dataset.notices)


def test_no_positive_label_at_all_is_an_error(tmp_path, capsys):
    write_npy_dataset(tmp_path, "zero")
    data = np.load(tmp_path / "zero_data.npy")
    data[:, 2:5] = 0
    np.save(tmp_path / "zero_data.npy", data)
    code, out, err = info(capsys, str(tmp_path / "zero_data.npy"), "--label-dim", "3", "--feature-dim", "5",
                          "--meta-offset", "2")
    assert code == 2
    assert err.strip() == ("error: zero: no label is ever positive (all 3 label columns are 0): "
                           "check which columns are labels")
