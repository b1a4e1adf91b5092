"""The CSV (named label columns) and LIBSVM / XC-repository formats, each one file in
``datasets/``: loaded from small files written here, visible in ``datasets list`` and
``datasets info``, and usable from a suite's ``[[dataset]]`` table."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from benchmark.cli import main
from benchmark.data.catalog import DatasetSpec, formats
from benchmark.data.loading import load_dataset
from benchmark.errors import DatasetError, ParseError
from benchmark.execution.suite import load_suite

CSV_TRAIN = """\
id,height,colour,smoker,sport,music
a,1.5,red,yes,1,0
b,2.0,green,no,0,1
c,0.5,blue,no,1,1
"""
CSV_TEST = """\
id,height,colour,smoker,sport,music
d,3.0,red,yes,0,0
"""

XC_TEXT = """\
4 6 3
0,2 0:1.5 5:2
1 1:0.5
 2:1.0
2 0:3 3:4
"""


def test_csv_labels_by_name_and_encoded_columns(tmp_path):
    (tmp_path / "tr.csv").write_text(CSV_TRAIN)
    (tmp_path / "te.csv").write_text(CSV_TEST)
    spec = DatasetSpec.from_dict({"name": "toy", "format": "csv", "train": "tr.csv", "test": "te.csv",
                                  "labels": ["sport", "music"]}, tmp_path)
    dataset = load_dataset(spec)
    assert dataset.label_names == ["sport", "music"]
    np.testing.assert_array_equal(dataset.Y, [[1, 0], [0, 1], [1, 1], [0, 0]])
    # id: 4 distinct values in 4 rows but below the ID row minimum, so one-hot; colour one-hot;
    # smoker two-valued -> one column (yes = 1)
    assert dataset.feature_names == ["id=a", "id=b", "id=c", "id=d", "height", "colour=blue", "colour=green",
                                     "colour=red", "smoker=yes"]
    np.testing.assert_array_equal(dataset.X[:, dataset.feature_names.index("smoker=yes")], [1, 0, 0, 1])
    np.testing.assert_array_equal(dataset.X[:, dataset.feature_names.index("colour=red")], [1, 0, 0, 1])
    np.testing.assert_array_equal(dataset.split["test"], [3])


def test_csv_id_column_dropped_and_bad_cells(tmp_path):
    rows = ["name,x,l1,l2"] + [f"row{i},{i / 10},{i % 2},{(i // 2) % 2}" for i in range(25)]
    (tmp_path / "d.csv").write_text("\n".join(rows) + "\n")
    dataset = load_dataset(DatasetSpec.from_dict({"name": "d", "format": "csv", "csv": "d.csv", "labels": "l1,l2"},
                                                 tmp_path))
    assert dataset.feature_names == ["x"]
    assert "dropped 1 ID-like column(s) (a different value in every row): name" in dataset.notices
    (tmp_path / "bad.csv").write_text("x,l1\n1,0\n2,2\n")
    with pytest.raises(ParseError, match=r"bad\.csv:3: label 'l1' is '2', expected 0 or 1"):
        load_dataset(DatasetSpec.from_dict({"name": "b", "format": "csv", "csv": "bad.csv", "labels": "l1"}, tmp_path))
    (tmp_path / "inf.csv").write_text("x,y,l1\n1,2,0\n2,inf,1\n")
    with pytest.raises(DatasetError, match=r"inf\.csv: data row 2, feature column 1 \(y\) is inf"):
        load_dataset(DatasetSpec.from_dict({"name": "i", "format": "csv", "csv": "inf.csv", "labels": "l1"}, tmp_path))
    with pytest.raises(DatasetError, match="give its label columns"):
        DatasetSpec.from_dict({"name": "n", "format": "csv", "csv": "d.csv"}, tmp_path)
    with pytest.raises(DatasetError, match="label column.* nope not in the header"):
        load_dataset(DatasetSpec.from_dict({"name": "n", "format": "csv", "csv": "d.csv", "labels": "nope"}, tmp_path))


def test_xc_header_zero_based_and_unlabelled_row(tmp_path):
    (tmp_path / "xc.txt").write_text(XC_TEXT)
    dataset = load_dataset(DatasetSpec.from_dict({"name": "xc", "format": "libsvm", "data": "xc.txt"}, tmp_path))
    assert sp.issparse(dataset.X) and dataset.X.shape == (4, 6) and dataset.n_labels == 3
    np.testing.assert_array_equal(dataset.X.toarray(), [[1.5, 0, 0, 0, 0, 2], [0, .5, 0, 0, 0, 0],
                                                        [0, 0, 1, 0, 0, 0], [3, 0, 0, 4, 0, 0]])
    np.testing.assert_array_equal(dataset.Y, [[1, 0, 1], [0, 1, 0], [0, 0, 0], [0, 0, 1]])


def test_libsvm_without_header_is_one_based_with_train_test(tmp_path):
    (tmp_path / "a.svm").write_text("0 1:1 3:2\n1,2 2:5\n")
    (tmp_path / "b.svm").write_text("2 3:7\n")
    dataset = load_dataset(DatasetSpec.from_dict(
        {"name": "s", "format": "libsvm", "train": "a.svm", "test": "b.svm"}, tmp_path))
    np.testing.assert_array_equal(dataset.X.toarray(), [[1, 0, 2], [0, 5, 0], [0, 0, 7]])
    np.testing.assert_array_equal(dataset.Y, [[1, 0, 0], [0, 1, 1], [0, 0, 1]])
    np.testing.assert_array_equal(dataset.split["train"], [0, 1])
    (tmp_path / "c.svm").write_text("3 2 2\n0 0:1 5:1\n1 1:1\n3 1:1\n")
    with pytest.raises(ParseError, match=r"c\.svm:2: feature index 5 out of range \(2 features, 0-based\)"):
        load_dataset(DatasetSpec.from_dict({"name": "c", "format": "libsvm", "data": "c.svm"}, tmp_path))
    (tmp_path / "c.svm").write_text("5 2 2\n0 0:1\n")
    with pytest.raises(ParseError, match=r"c\.svm:1: header says 5 rows, the file has 1"):
        load_dataset(DatasetSpec.from_dict({"name": "c", "format": "libsvm", "data": "c.svm"}, tmp_path))


def test_new_formats_in_list_info_and_suites(tmp_path, capsys):
    assert {"csv", "libsvm"} <= set(formats())
    assert main(["datasets", "list"]) == 0
    assert "formats: csv, libsvm, mulan, npy, synthetic" in capsys.readouterr().out
    (tmp_path / "tr.csv").write_text(CSV_TRAIN)
    assert main(["datasets", "info", str(tmp_path / "tr.csv"), "--labels", "sport,music", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert (record["format"], record["n_instances"], record["n_labels"]) == ("csv", 3, 2)
    (tmp_path / "xc.txt").write_text(XC_TEXT)
    assert main(["datasets", "info", str(tmp_path / "xc.txt")]) == 0
    out = capsys.readouterr().out
    assert "(libsvm, sparse features)" in out and "zero-label rows      1" in out
    (tmp_path / "s.toml").write_text(textwrap.dedent("""
        name = "formats"
        models = ["prior"]
        [[dataset]]
        name = "toy_csv"
        format = "csv"
        csv = "tr.csv"
        labels = ["sport", "music"]
        [[dataset]]
        name = "toy_xc"
        format = "libsvm"
        data = "xc.txt"
    """))
    suite = load_suite(str(tmp_path / "s.toml"))
    # as a worker rebuilds a declared dataset: from the declaration, paths made absolute by the suite
    loaded = {entry.name: load_dataset(DatasetSpec.from_dict(dict(entry.declaration), Path("/")))
              for entry in suite.datasets}
    assert loaded["toy_csv"].n_labels == 2 and loaded["toy_xc"].X.shape == (4, 6)
