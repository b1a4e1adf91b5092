"""ARFF / label-XML parsing and the MULAN loader on small hand-written files, and every
bad-input error with its message (file and line named)."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest
import scipy.sparse as sp

from benchmark.data.arff import read_arff, read_label_xml
from benchmark.data.catalog import DatasetSpec, get_spec
from benchmark.data.loading import load_dataset
from benchmark.errors import ChecksumError, DatasetError, ParseError, UnknownNameError

XML = """<?xml version="1.0" encoding="utf-8"?>
<labels xmlns="http://mulan.sourceforge.net/labels">
<label name="first label"></label>
<label name="B"></label>
</labels>
"""

# Labels sit first and in the middle; a quoted name with a space; a {0,1} feature, a
# three-valued nominal, a string ID, a comment and a blank line.
DENSE = """% a comment
@relation 'tiny data'
@attribute 'first label' {0,1}
@attribute id string
@attribute x1 numeric
@attribute B {1,0}
@attribute colour {red,green,blue}
@attribute flag {0,1}
@attribute x2 REAL

@data
1,p1,0.5,0,red,1,2.0
0,'p 2',-1.5,1,blue,0,?
% comment between rows
0,p3,3,0,green,1,4
"""

SPARSE = """@relation sparse
@attribute f0 {0,1}
@attribute f1 numeric
@attribute 'first label' {0,1}
@attribute B {0,1}
@data
{0 1,2 1}
{1 2.5,3 1}
{}
"""


def write(path, text, compress=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    if compress:
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    return path


def spec_for(tmp_path, arff_text, xml_text=XML, compress=False, name="tiny"):
    suffix = ".gz" if compress else ""
    arff = write(tmp_path / f"{name}.arff{suffix}", arff_text, compress)
    xml = write(tmp_path / f"{name}.xml{suffix}", xml_text, compress)
    return {"name": name, "format": "mulan", "arff": str(arff), "xml": str(xml)}


def test_dense_mulan_encoding(tmp_path):
    dataset = load_dataset(spec_for(tmp_path, DENSE))
    assert dataset.label_names == ["first label", "B"]
    np.testing.assert_array_equal(dataset.Y, [[1, 0], [0, 1], [0, 0]])
    assert dataset.Y.dtype == np.uint8 and dataset.X.dtype == np.float32
    # x1, colour one-hot (3), flag (0/1 column), x2; the string ID is dropped.
    assert dataset.feature_names == ["x1", "colour=red", "colour=green", "colour=blue", "flag", "x2"]
    np.testing.assert_array_equal(
        dataset.X, [[0.5, 1, 0, 0, 1, 2.0], [-1.5, 0, 0, 1, 0, 3.0], [3, 0, 1, 0, 1, 4]]
    )  # the missing x2 is the mean of x2 over the rows (no published split), not 0
    assert any("id" in notice and "dropped" in notice for notice in dataset.notices)
    assert any("missing" in notice and "x2" in notice and "mean" in notice for notice in dataset.notices)
    assert dataset.stats()["n_zero_label_rows"] == 1 and dataset.split == {}


def test_sparse_gzip_mulan(tmp_path):
    dataset = load_dataset(spec_for(tmp_path, SPARSE, compress=True))
    assert sp.isspmatrix_csr(dataset.X)
    np.testing.assert_array_equal(dataset.X.toarray(), [[1, 0], [0, 2.5], [0, 0]])
    np.testing.assert_array_equal(dataset.Y, [[1, 0], [0, 1], [0, 0]])


def test_train_test_files_give_split(tmp_path):
    train = write(tmp_path / "t-train.arff", SPARSE)
    test = write(tmp_path / "t-test.arff", SPARSE.replace("{}", "{0 1,3 1}"))
    xml = write(tmp_path / "t.xml", XML)
    spec = DatasetSpec.from_dict({"name": "t", "format": "mulan", "train": "t-train.arff",
                                  "test": "t-test.arff", "xml": "t.xml"}, base_dir=tmp_path)
    dataset = load_dataset(spec)
    assert dataset.n_instances == 6
    np.testing.assert_array_equal(dataset.split["train"], [0, 1, 2])
    np.testing.assert_array_equal(dataset.split["test"], [3, 4, 5])
    assert train.exists() and test.exists() and xml.exists()


def test_label_xml_plain_gzip_and_nested(tmp_path):
    nested = XML.replace('<label name="B"></label>', '<label name="B"><label name="C"></label></label>')
    assert read_label_xml(write(tmp_path / "a.xml", nested)) == ["first label", "B", "C"]
    assert read_label_xml(write(tmp_path / "b.xml.gz", XML, compress=True)) == ["first label", "B"]


# ---------------------------------------------------------------------------- errors


def test_wrong_number_of_values_names_file_and_line(tmp_path):
    bad = DENSE.replace("0,p3,3,0,green,1,4", "0,p3,3,0,green,1")
    path = write(tmp_path / "bad.arff", bad)
    with pytest.raises(ParseError, match=r"bad\.arff:15: row has 6 values, expected 7"):
        read_arff(path)


def test_sparse_index_out_of_range_names_line(tmp_path):
    path = write(tmp_path / "bad.arff", SPARSE.replace("{1 2.5,3 1}", "{1 2.5,9 1}"))
    with pytest.raises(ParseError, match=r"bad\.arff:8: sparse index 9 out of range"):
        read_arff(path)


def test_non_numeric_value_names_line(tmp_path):
    path = write(tmp_path / "bad.arff", DENSE.replace("-1.5", "abc"))
    with pytest.raises(ParseError, match=r"bad\.arff:13: attribute 'x1': 'abc' is not a number"):
        read_arff(path)


def test_undeclared_nominal_value(tmp_path):
    path = write(tmp_path / "bad.arff", DENSE.replace("blue,0", "pink,0"))
    with pytest.raises(ParseError, match=r"bad\.arff:13: attribute 'colour': value 'pink'"):
        read_arff(path)


def test_empty_files(tmp_path):
    with pytest.raises(ParseError, match=r"empty\.arff: file is empty"):
        read_arff(write(tmp_path / "empty.arff", ""))
    with pytest.raises(ParseError, match=r"empty\.xml: file is empty"):
        read_label_xml(write(tmp_path / "empty.xml", ""))
    with pytest.raises(ParseError, match=r"nodata\.arff:.*no data rows"):
        read_arff(write(tmp_path / "nodata.arff", DENSE.split("@data")[0] + "@data\n"))


def test_truncated_header(tmp_path):
    with pytest.raises(ParseError, match=r"cut\.arff: no @data section"):
        read_arff(write(tmp_path / "cut.arff", DENSE.split("@data")[0]))


def test_missing_label_xml(tmp_path):
    spec = spec_for(tmp_path, DENSE)
    (tmp_path / "tiny.xml").unlink()
    with pytest.raises(DatasetError, match=r"tiny\.xml: file not found"):
        load_dataset(spec)
    with pytest.raises(DatasetError, match="needs its label XML"):
        DatasetSpec.from_dict({"name": "x", "format": "mulan", "arff": "a.arff"}, tmp_path)


def test_labels_in_xml_absent_from_arff(tmp_path):
    xml = XML.replace('<label name="B"></label>', '<label name="B"></label><label name="Zed"></label>')
    with pytest.raises(DatasetError, match=r"tiny\.xml: 1 label\(s\) named in the XML are not attributes of .*tiny\.arff: 'Zed'"):
        load_dataset(spec_for(tmp_path, DENSE, xml_text=xml))


def test_label_value_not_binary_names_line(tmp_path):
    text = SPARSE.replace("@attribute B {0,1}", "@attribute B numeric").replace("{1 2.5,3 1}", "{1 2.5,3 7}")
    with pytest.raises(ParseError, match=r"tiny\.arff:8: label 'B' has value 7"):
        load_dataset(spec_for(tmp_path, text))


def test_unknown_name_suggests_close_names():
    with pytest.raises(UnknownNameError, match="unknown dataset 'emotion'; did you mean emotions"):
        get_spec("emotion")
    assert get_spec("Delicious").name == "delicious"


def test_checksum_mismatch_in_data_dir(tmp_path, mirror_dir):
    """An edited file in a mirror-like data dir is rejected, naming the file."""
    target = tmp_path / "mulan" / "emotions"
    shutil.copytree(mirror_dir / "mulan" / "emotions", target)
    path = target / "emotions-test.arff"
    path.write_bytes(path.read_bytes().replace(b"0.036299", b"0.036298", 1))
    with pytest.raises(ChecksumError, match=r"emotions-test\.arff: sha256 mismatch"):
        load_dataset("emotions", data_dir=tmp_path)


def test_offline_missing_file_says_how_to_get_it(tmp_path):
    with pytest.raises(DatasetError, match=r"mulan/birds/birds\.xml is not available locally and "
                       r"MLCBENCH_OFFLINE=1 forbids downloading: run `python -m benchmark datasets fetch birds`"):
        load_dataset("birds", data_dir=tmp_path)


@pytest.mark.parametrize("relative", ["mulan/enron/enron-test.arff", "mulan/yeast/yeast-test.arff"])
def test_numpy_fast_path_equals_general_path(relative, mirror_dir, monkeypatch):
    """The vectorised fast path (numbers only, no quotes) must agree with the general
    token-by-token path on real dense and sparse files."""
    import benchmark.data.arff as arff

    path = mirror_dir / relative
    if not path.exists():
        pytest.skip(f"{relative} not in this mirror")
    fast = read_arff(path).codes
    monkeypatch.setattr(arff, "_fast_path_ok", lambda texts, attributes: False)
    general = read_arff(path).codes
    if sp.issparse(fast):
        assert sp.issparse(general) and (fast != general).nnz == 0
    else:
        np.testing.assert_array_equal(fast, general)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_round_trip_dense_and_sparse_files(tmp_path, seed):
    """Random data written as dense and as sparse ARFF, labels at random positions
    among the attributes, loads back exactly (and identically from both forms)."""
    rng = np.random.default_rng(seed)
    n, n_features, n_labels = 30, 7, 4
    X = np.round(rng.normal(size=(n, n_features)), 4) * (rng.random((n, n_features)) < 0.4)
    Y = (rng.random((n, n_labels)) < 0.3).astype(np.uint8)
    order = rng.permutation(n_features + n_labels)  # attribute position of each column
    columns = np.hstack([X, Y])[:, np.argsort(order)]
    names = [f"f{i}" for i in range(n_features)] + [f"lab {i}" for i in range(n_labels)]
    names = [names[i] for i in np.argsort(order)]
    header = "@relation r\n" + "".join(
        f"@attribute '{name}' {'{0,1}' if name.startswith('lab') else 'numeric'}\n" for name in names
    ) + "@data\n"
    dense = header + "".join(",".join(f"{v:g}" for v in row) + "\n" for row in columns)
    sparse = header + "".join(
        "{" + ",".join(f"{j} {row[j]:g}" for j in np.flatnonzero(row)) + "}\n" for row in columns
    )
    xml = '<labels xmlns="http://mulan.sourceforge.net/labels">' + "".join(
        f'<label name="lab {i}"/>' for i in range(n_labels)) + "</labels>"
    feature_order = np.argsort(order[:n_features])  # features keep their file order
    loaded = {}
    for kind, text in (("dense", dense), ("sparse", sparse)):
        loaded[kind] = load_dataset(spec_for(tmp_path / kind, text, xml_text=xml, name=kind))
        np.testing.assert_array_equal(loaded[kind].Y, Y)
        features = loaded[kind].X.toarray() if kind == "sparse" else loaded[kind].X
        np.testing.assert_allclose(features, X[:, feature_order].astype(np.float32))
        assert loaded[kind].feature_names == [f"f{i}" for i in feature_order]
    assert sp.issparse(loaded["sparse"].X) and not sp.issparse(loaded["dense"].X)
