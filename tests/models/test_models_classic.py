"""Classic baselines (prior, br, cc, ecc, mlknn) on real data from the mirror.

What must hold:
- on yeast and scene (published split, val = stratified share of train) every
  baseline beats the label-frequency prior on micro-F1 and P@1 under the `val`
  threshold protocol (the scores are printed: run with -s to see them);
- a 10% training fraction of medical has labels without positives: every model
  fits, scores are finite and in [0, 1], and such labels score exactly 0;
- same seed -> identical scores; different seeds -> different chain orders/scores;
- MLkNN never modifies the caller's label matrix and agrees with the library.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from helpers import published_parts

from benchmark.data.loading import load_dataset
from benchmark.data.splits import labels_without_positives, make_split, nested_fractions
from benchmark.evaluation.thresholds import VAL_GRID, best_over_grid, evaluate_protocols
from benchmark.modelapi.base import get_model
from benchmark.modelapi.sklearn_utils import LabelPartition, ModelInputError

BASELINES = ("br", "cc", "ecc", "mlknn")
ALL_CLASSIC = ("prior",) + BASELINES
REPORTED = ("ebF1", "miF1", "maF1", "P@1")


def val_protocol_metrics(model_name: str, parts, seed: int = 0, **params) -> dict[str, float]:
    model = get_model(model_name)(seed=seed, **params)
    model.fit(*parts["train"])
    X_val, Y_val = parts["val"]
    X_test, Y_test = parts["test"]
    result = evaluate_protocols(Y_val, model.predict_proba(X_val), Y_test, model.predict_proba(X_test))
    metrics = dict(result["val"]["metrics"])
    metrics["fit_seconds"] = model.fit_info["fit_seconds"]
    return metrics


def choose_C_on_validation(parts, grid=(0.01, 0.1, 1.0)) -> float:
    """The C of the grid with the best validation micro-F1 for BR (validation data only)."""
    X_val, Y_val = parts["val"]

    def val_micro_f1(C: float) -> float:
        scores = get_model("br")(C=C).fit(*parts["train"]).predict_proba(X_val)
        return best_over_grid(Y_val, scores, "miF1", VAL_GRID)[0]

    return max(grid, key=val_micro_f1)


def print_table(title: str, results: dict[str, dict[str, float]]) -> None:
    print(f"\n{title}")
    for name, metrics in results.items():
        print(f"  {name:6s} " + " ".join(f"{m}={metrics[m]:.4f}" for m in REPORTED)
              + f"  fit={metrics['fit_seconds']:.2f}s")


@pytest.mark.parametrize("dataset", ["yeast", "scene"])
def test_every_baseline_beats_the_prior(dataset, mirror_dir):
    """Micro-F1 at default hyperparameters; P@1 with C chosen on validation.

    Why P@1 is not asserted at the defaults: on yeast the prior's P@1 is 0.750 (its
    top label, present in ~75% of samples, is always ranked first) and the logistic
    baselines at the default C=0.1 score 0.74-0.75, within one standard error
    (~0.014 on 917 test rows). With the regularisation chosen on the validation
    set, as the benchmark's tuner would, they beat it. Both tables are printed.
    """
    parts = published_parts(dataset)
    defaults = {name: val_protocol_metrics(name, parts) for name in ALL_CLASSIC}  # ecc: 10 chains
    print_table(f"{dataset}: test metrics, val protocol, default hyperparameters", defaults)
    prior = defaults["prior"]
    for name in BASELINES:
        assert defaults[name]["miF1"] > prior["miF1"], (name, defaults[name]["miF1"], prior["miF1"])

    C = choose_C_on_validation(parts)
    tuned = {name: val_protocol_metrics(name, parts, C=C) for name in ("br", "cc", "ecc")}
    tuned["mlknn"] = defaults["mlknn"]
    print_table(f"{dataset}: C={C} chosen on validation (mlknn at defaults)", tuned)
    for name in BASELINES:
        for metric in ("miF1", "P@1"):
            assert tuned[name][metric] > prior[metric], (
                f"{dataset}: {name} {metric}={tuned[name][metric]:.4f} "
                f"does not beat the prior's {prior[metric]:.4f}"
            )


@pytest.fixture(scope="module")
def medical_small():
    """Train rows of a 10% fraction of medical's training pool, plus test rows."""
    dataset = load_dataset("medical")
    split = make_split(dataset, seed=0)
    pool = split.train
    subset = pool[nested_fractions(dataset.Y[pool], [0.1], seed=0)[0.1]]
    return dataset.X[subset], dataset.Y[subset], dataset.X[split.test]


@pytest.mark.parametrize("name", ALL_CLASSIC)
def test_labels_without_positives_get_constant_zero(name, medical_small, mirror_dir):
    X, Y, X_test = medical_small
    empty = labels_without_positives(Y)
    assert sp.issparse(X) and empty.size > 0, "the 10% fraction of medical should have empty labels"
    params = {"n_chains": 3} if name == "ecc" else {}
    model = get_model(name)(seed=0, **params).fit(X, Y)
    scores = model.predict_proba(X_test)
    print(f"\n{name}: {X.shape[0]} training rows, {empty.size}/{Y.shape[1]} labels without positives, "
          f"scores in [{scores.min():.4f}, {scores.max():.4f}]")
    assert scores.shape == (X_test.shape[0], Y.shape[1])
    assert np.isfinite(scores).all() and scores.min() >= 0.0 and scores.max() <= 1.0
    assert (scores[:, empty] == 0.0).all()
    if name != "prior":
        assert model.fit_info["constant_labels"] == empty.tolist()
        assert scores[:, LabelPartition.of(Y).varying].std() > 0  # learnt labels are not constant


def test_sparse_features_stay_sparse(medical_small):
    X, Y, _ = medical_small
    model = get_model("br")().fit(X, Y)
    assert model.scaler_.with_mean is False  # centring would densify CSR
    assert sp.issparse(model.scaler_.transform(X))


def test_labels_with_only_positives_get_constant_one():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 5)).astype(np.float32)
    Y = (rng.random((60, 4)) < 0.5).astype(np.uint8)
    Y[:, 1] = 1
    for name in ALL_CLASSIC:
        params = {"n_chains": 2} if name == "ecc" else {}
        scores = get_model(name)(**params).fit(X, Y).predict_proba(X)
        assert (scores[:, 1] == 1.0).all(), name
        assert 0.0 < scores[:, 0].mean() < 1.0, name


@pytest.fixture(scope="module")
def yeast_small():
    dataset = load_dataset("yeast")
    train, test = dataset.split["train"], dataset.split["test"]
    return dataset.X[train[:400]], dataset.Y[train[:400]], dataset.X[test[:200]]


@pytest.mark.parametrize("name", ALL_CLASSIC)
def test_same_seed_same_scores(name, yeast_small):
    X, Y, X_test = yeast_small
    params = {"n_chains": 3} if name == "ecc" else {}
    first = get_model(name)(seed=3, **params).fit(X, Y).predict_proba(X_test)
    second = get_model(name)(seed=3, **params).fit(X, Y).predict_proba(X_test)
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("name", ["cc", "ecc"])
def test_different_seeds_give_different_orders_and_scores(name, yeast_small):
    X, Y, X_test = yeast_small
    params = {"n_chains": 3} if name == "ecc" else {}
    models = [get_model(name)(seed=seed, **params).fit(X, Y) for seed in (0, 1)]
    orders = [[order.tolist() for order in model.orders_] for model in models]
    print(f"\n{name} orders, seed 0: {orders[0][0]}\n{name} orders, seed 1: {orders[1][0]}")
    assert orders[0] != orders[1]
    assert all(sorted(order) == list(range(Y.shape[1])) for model in orders for order in model)
    assert models[0].fit_info["orders"] == orders[0]
    if name == "ecc":
        assert len({tuple(order) for order in orders[0]}) == 3  # chains of one ensemble differ too
    difference = np.abs(models[0].predict_proba(X_test) - models[1].predict_proba(X_test)).max()
    print(f"{name}: max |score(seed 0) - score(seed 1)| = {difference:.4f}")
    assert difference > 1e-3


def test_dense_and_sparse_input_agree_for_mlknn(yeast_small):
    X, Y, X_test = yeast_small
    dense = get_model("mlknn")().fit(X, Y).predict_proba(X_test)
    sparse = get_model("mlknn")().fit(sp.csr_matrix(X), Y).predict_proba(sp.csr_matrix(X_test))
    # neighbour distances are computed differently for CSR; only exact ties may reorder
    assert np.mean(np.isclose(dense, sparse)) > 0.99


def test_mlknn_leaves_the_callers_labels_alone(yeast_small):
    """The library keeps (and could modify) the label matrix it is given: it must be a copy.

    Given a LIL matrix, skmultilearn stores that very object as its label cache; our
    wrapper must hand it a private copy instead, for dense and sparse labels alike.
    """
    X, Y, X_test = yeast_small
    for Y_caller in (Y.copy(), sp.lil_matrix(Y)):
        model = get_model("mlknn")().fit(X, Y_caller)
        model.predict_proba(X_test)
        label_cache = model.estimator_._label_cache
        assert label_cache is not Y_caller
        label_cache[0, 0] = 1 - label_cache[0, 0]  # what an in-place bug would do
        np.testing.assert_array_equal(Y_caller.toarray() if sp.issparse(Y_caller) else Y_caller, Y)


def test_mlknn_matches_the_library_without_leave_one_out(yeast_small):
    from skmultilearn.adapt import MLkNN as LibraryMLkNN

    X, Y, X_test = yeast_small
    ours = get_model("mlknn")(k=7, s=0.5, exclude_self=False).fit(X, Y).predict_proba(X_test)
    library = LibraryMLkNN(k=7, s=0.5).fit(X, Y.copy()).predict_proba(X_test).toarray()
    np.testing.assert_allclose(ours, library)


def test_mlknn_caps_k_on_tiny_training_sets():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(6, 3)).astype(np.float32)
    Y = np.array([[1, 0], [0, 1], [1, 1], [0, 0], [1, 0], [0, 1]], dtype=np.uint8)
    model = get_model("mlknn")(k=10).fit(X, Y)
    assert model.fit_info["k_used"] == 5
    assert np.isfinite(model.predict_proba(X)).all()


def test_bad_input_is_a_clear_error():
    model = get_model("br")()
    X = np.ones((4, 3), dtype=np.float32)
    with pytest.raises(ModelInputError, match="only 0 and 1"):
        model.fit(X, np.full((4, 2), 2))
    with pytest.raises(ModelInputError, match="X has 4 rows but Y has 3"):
        model.fit(X, np.zeros((3, 2)))
    X_nan = X.copy()
    X_nan[0, 0] = np.nan
    with pytest.raises(ModelInputError, match="NaN"):
        model.fit(X_nan, np.zeros((4, 2)))
    model.fit(np.eye(4, 3, dtype=np.float32), np.array([[0, 1], [1, 0], [1, 1], [0, 0]]))
    with pytest.raises(ModelInputError, match="trained on 3"):
        model.predict_proba(np.ones((2, 5), dtype=np.float32))
    with pytest.raises(ValueError, match="no hyperparameter"):
        get_model("cc")(gamma=1)


@pytest.mark.parametrize("chain_method", ["predict_proba", "predict"])
def test_fast_chain_prediction_equals_scikit_learn(chain_method, medical_small, yeast_small):
    from mlcbench_models.classic import predict_chain

    for X, Y, X_test in (medical_small, yeast_small):  # CSR and dense
        model = get_model("cc")(chain_method=chain_method).fit(X, Y)
        X_scaled = model.scaler_.transform(X_test)
        np.testing.assert_allclose(predict_chain(model.chain_, X_scaled),
                                   model.chain_.predict_proba(X_scaled), rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", ["br", "ecc"])
def test_parallel_fit_gives_the_same_scores(name, yeast_small):
    """n_threads > 1 fits in joblib worker processes (which must be able to unpickle the work)."""
    X, Y, X_test = yeast_small
    params = {"n_chains": 2} if name == "ecc" else {}
    serial = get_model(name)(n_threads=1, **params).fit(X[:150], Y[:150]).predict_proba(X_test)
    parallel = get_model(name)(n_threads=2, **params).fit(X[:150], Y[:150]).predict_proba(X_test)
    np.testing.assert_array_equal(serial, parallel)


@pytest.mark.parametrize("exclude_self", [True, False])
def test_fast_mlknn_prediction_equals_the_library(exclude_self, medical_small, yeast_small):
    for X, Y, X_test in (medical_small, yeast_small):  # CSR and dense
        model = get_model("mlknn")(exclude_self=exclude_self).fit(X, Y)
        varying = model.partition_.varying
        library = model.estimator_.predict_proba(X_test).toarray()
        np.testing.assert_array_equal(model.predict_proba(X_test)[:, varying], library)
