"""The vectorised ML-kNN (models/mlknn.py) against scikit-multilearn's MLkNN.

What must hold:
- with ``loo="library"`` (the library's ``ignore_first_neighbours=1``) and with
  ``exclude_self=False`` (its default), the priors, conditional tables and test
  probabilities are bit-equal (``np.array_equal``) to skmultilearn's on yeast and a
  bibtex subset (CSR) at several k / s, also when the neighbour search works in chunks;
- on duplicated rows the library counts a row among its own neighbours and the default
  ``loo="exact"`` does not (a four-row example whose tables are checked by hand), and
  exact leave-one-out never returns a row itself even with more duplicates than k + 1;
- the model still learns: on yeast both leave-one-out modes beat the label-frequency
  prior on micro-F1 (val threshold protocol) and give scores in [0, 1].
"""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.data.loading import load_dataset
from benchmark.data.splits import make_split
from benchmark.evaluation.thresholds import evaluate_protocols
from benchmark.modelapi.base import get_model


def library_model(X, Y, k: int, s: float, ignore_first: int):
    """skmultilearn's MLkNN fitted as the harness's wrapper used to: then set to predict with k."""
    from skmultilearn.adapt import MLkNN as SkmlMLkNN

    library = SkmlMLkNN(k=k, s=s, ignore_first_neighbours=ignore_first)
    library.fit(X, np.array(Y, dtype=np.int64))
    library.ignore_first_neighbours = 0  # test rows are not training rows
    return library


def assert_bit_equal_to_library(model, library, X_test) -> None:
    prior_true, prior_false, cond_true, cond_false = model._tables
    assert np.array_equal(prior_true, np.asarray(library._prior_prob_true))
    assert np.array_equal(prior_false, np.asarray(library._prior_prob_false))
    assert np.array_equal(cond_true, library._cond_prob_true.toarray())
    assert np.array_equal(cond_false, library._cond_prob_false.toarray())
    ours = model.predict_proba(X_test)[:, model.partition_.varying]
    theirs = library.predict_proba(X_test).toarray()
    assert np.array_equal(ours, theirs), f"max |difference| {np.abs(ours - theirs).max()}"


@pytest.fixture(scope="module")
def yeast_parts():
    dataset = load_dataset("yeast")
    train, test = dataset.split["train"], dataset.split["test"]
    return dataset.X[train], dataset.Y[train], dataset.X[test[:300]]


@pytest.fixture(scope="module")
def bibtex_subset():
    """1,200 training rows and 150 test rows of bibtex (CSR, 159 labels, some constant)."""
    dataset = load_dataset("bibtex")
    train, test = dataset.split["train"], dataset.split["test"]
    return dataset.X[train[:1200]], dataset.Y[train[:1200]], dataset.X[test[:150]]


CASES = [(10, 1.0, "library"), (5, 0.3, "library"), (17, 2.5, "library"), (7, 0.5, "none")]


@pytest.mark.slow
@pytest.mark.parametrize("k, s, loo", CASES)
@pytest.mark.parametrize("data", ["yeast_parts", "bibtex_subset"])
def test_library_modes_are_bit_equal_to_skmultilearn(data, k, s, loo, request):
    X, Y, X_test = request.getfixturevalue(data)
    params = {"exclude_self": False} if loo == "none" else {"loo": loo}
    model = get_model("mlknn")(k=k, s=s, **params).fit(X, Y)
    varying = model.partition_.varying
    library = library_model(X, Y[:, varying], k, s, ignore_first=int(loo == "library"))
    assert_bit_equal_to_library(model, library, X_test)
    assert model.fit_info["loo"] == loo
    if loo == "none":
        assert model.fit_info["rows_counting_themselves"] == X.shape[0]


def test_chunked_neighbour_search_stays_bit_equal(bibtex_subset, monkeypatch):
    """The model searches CSR neighbours in small distance chunks; the library in one."""
    import mlcbench_models.mlknn as mlknn

    X, Y, X_test = bibtex_subset
    monkeypatch.setattr(mlknn, "SEARCH_WORKING_MEMORY_MIB", 1)  # ~100 rows a chunk here
    model = get_model("mlknn")(k=10, s=1.0, loo="library").fit(X, Y)
    library = library_model(X, Y[:, model.partition_.varying], 10, 1.0, ignore_first=1)
    assert_bit_equal_to_library(model, library, X_test)


def test_exact_mode_predicts_with_its_own_tables_like_the_library(yeast_parts):
    """The library's predict_proba over the exact tables (``estimator_``) equals ours."""
    X, Y, X_test = yeast_parts
    model = get_model("mlknn")(k=8, s=0.7).fit(X, Y)
    assert model.fit_info["loo"] == "exact" and model.fit_info["rows_counting_themselves"] == 0
    assert np.array_equal(model.predict_proba(X_test), model.estimator_.predict_proba(X_test).toarray())


# Two duplicated pairs with opposite labels, k = 1, s = 1 (one label):
#   row 0: x = 0,  y = 1      row 1: x = 0,  y = 0   (same features)
#   row 2: x = 10, y = 0      row 3: x = 10, y = 1   (same features)
# Exact leave-one-out: each row's neighbour is its twin, so positives (rows 0, 3) see a
# count of 0 and negatives (rows 1, 2) a count of 1:
#   c = [2, 0], cn = [0, 2]  ->  P(j | 1) = (1 + c) / (1 * 2 + 2) = [3/4, 1/4],
#                                P(j | 0) = [1/4, 3/4].
# The library asks for 2 neighbours and drops the first: both twins are at distance 0,
# so for one row of each pair the first neighbour is the twin and the row keeps itself.
# Whichever twin that is, in each pair both rows then see the same count (the label of
# the self-counted row), one as a positive and one as a negative, so c == cn and
# P(j | 1) == P(j | 0): the library's table carries no evidence, its posterior is the prior.
DUP_X = np.array([[0.0], [0.0], [10.0], [10.0]], dtype=np.float32)
DUP_Y = np.array([[1], [0], [0], [1]], dtype=np.uint8)


def test_duplicated_rows_count_themselves_in_the_library_but_not_by_default():
    from mlcbench_models.mlknn import training_neighbours

    library = library_model(DUP_X, DUP_Y, k=1, s=1.0, ignore_first=1)
    library_neighbours = library.knn_.kneighbors(DUP_X, 2, return_distance=False)[:, 1:]
    counts_itself = (library_neighbours[:, 0] == np.arange(4))
    print(f"\nlibrary neighbours (k + 1 = 2, first dropped): {library_neighbours.ravel().tolist()}, "
          f"rows counting themselves: {np.flatnonzero(counts_itself).tolist()}")
    assert counts_itself[:2].sum() == 1 and counts_itself[2:].sum() == 1  # one row of each pair

    exact = get_model("mlknn")(k=1, s=1.0).fit(DUP_X, DUP_Y)
    assert exact.fit_info["rows_counting_themselves"] == 0
    assert training_neighbours(exact.index_, DUP_X, 1, "exact").ravel().tolist() == [1, 0, 3, 2]
    _, _, cond_true, cond_false = exact._tables
    np.testing.assert_array_equal(cond_true, [[0.75, 0.25]])
    np.testing.assert_array_equal(cond_false, [[0.25, 0.75]])

    compatible = get_model("mlknn")(k=1, s=1.0, loo="library").fit(DUP_X, DUP_Y)
    assert compatible.fit_info["rows_counting_themselves"] == 2
    assert_bit_equal_to_library(compatible, library, DUP_X)
    _, _, library_true, library_false = compatible._tables
    np.testing.assert_array_equal(library_true, library_false)  # no evidence (see above)
    np.testing.assert_array_equal(compatible.predict_proba(DUP_X), np.full((4, 1), 0.5))  # prior (1+2)/(2+4)

    # a test point at a duplicated position: exact LOO learnt "a twin has the other label"
    exact_scores = exact.predict_proba(np.array([[0.0]], dtype=np.float32))
    assert exact_scores.shape == (1, 1) and 0.0 < exact_scores[0, 0] < 1.0


def test_exact_leave_one_out_never_returns_the_row_itself_with_many_duplicates():
    """Five copies of a row with k = 2: more duplicates than k + 1 neighbours."""
    from mlcbench_models.mlknn import training_neighbours
    from sklearn.neighbors import NearestNeighbors

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3)).astype(np.float32)
    X[[3, 7, 11, 20, 33]] = X[3]
    X[[5, 6]] = X[5]
    index = NearestNeighbors(n_neighbors=2).fit(X)
    exact = training_neighbours(index, X, 2, "exact")
    library = training_neighbours(index, X, 2, "library")
    rows = np.arange(X.shape[0])[:, None]
    assert not (exact == rows).any()
    assert (library == rows).any()  # some duplicated row keeps itself
    # exact neighbours are true nearest neighbours among the other rows
    distances = np.linalg.norm(X[:, None, :] - X[None, :, :], axis=2)
    np.fill_diagonal(distances, np.inf)
    kth = np.sort(distances, axis=1)[:, 1]
    assert (np.take_along_axis(distances, exact, axis=1) <= kth[:, None] + 1e-5).all()
    for twin in (3, 7, 11, 20, 33):
        assert set(exact[twin]) <= {3, 7, 11, 20, 33} - {twin}


def test_loo_is_a_default_not_a_searched_hyperparameter():
    cls = get_model("mlknn")
    assert cls.defaults["loo"] == "exact" and cls.defaults["exclude_self"] is True
    assert "loo" not in cls.search_space and "exclude_self" not in cls.search_space
    with pytest.raises(Exception, match="loo must be one of"):
        cls(loo="approximate").fit(DUP_X, DUP_Y)


@pytest.mark.parametrize("loo", ["exact", "library"])
def test_mlknn_still_beats_the_prior_on_yeast(loo, mirror_dir):
    dataset = load_dataset("yeast")
    split = make_split(dataset, seed=0)
    X, Y = dataset.X, dataset.Y
    results = {}
    for name, params in (("prior", {}), ("mlknn", {"loo": loo})):
        model = get_model(name)(seed=0, **params).fit(X[split.train], Y[split.train])
        s_val, s_test = model.predict_proba(X[split.val]), model.predict_proba(X[split.test])
        assert np.isfinite(s_test).all() and s_test.min() >= 0.0 and s_test.max() <= 1.0
        results[name] = evaluate_protocols(Y[split.val], s_val, Y[split.test], s_test)["val"]["metrics"]
    print(f"\nyeast, loo={loo}: mlknn miF1={results['mlknn']['miF1']:.4f} maF1={results['mlknn']['maF1']:.4f}, "
          f"prior miF1={results['prior']['miF1']:.4f}")
    assert results["mlknn"]["miF1"] > results["prior"]["miF1"] + 0.02
