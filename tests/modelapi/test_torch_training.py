"""The shared PyTorch machinery: devices, threads, on-device data, the epoch loop."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
import scipy.sparse as sp
import torch
from torch import nn

from benchmark.errors import BenchmarkError
from benchmark.modelapi.epoch_selection import (
    select_epoch,
    validation_loss,
    validation_score,
)
from benchmark.modelapi.torch_device import (
    DeviceFeatures,
    Standardizer,
    resolve_device,
    set_threads,
)
from benchmark.modelapi.torch_training import TORCH_DEFAULTS, TorchModel


class TinyLogistic(TorchModel):
    """A one-layer network: enough to exercise the loop in milliseconds."""

    name = "tiny_logistic_test_only"
    defaults = {**TORCH_DEFAULTS, "epochs": 6, "batch_size": 32, "lr": 0.05}

    def build_network(self, n_features, n_labels):
        return nn.Linear(n_features, n_labels)

    def training_loss(self, net, x, y):
        return nn.functional.binary_cross_entropy_with_logits(net(x), y)


def _toy_problem(n=300, f=12, n_labels=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, f)).astype(np.float32) * 3 + 1
    W = rng.normal(size=(f, n_labels))
    Y = ((X - 1) @ W + rng.normal(scale=2.0, size=(n, n_labels)) > 1.0).astype(np.uint8)
    return X[:200], Y[:200], X[200:], Y[200:]


def test_resolve_device():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device(None) in ("cpu", "cuda")
    with pytest.raises(BenchmarkError, match="unknown device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(BenchmarkError, match="CUDA is not available"):
            resolve_device("cuda:0")
    else:
        with pytest.raises(BenchmarkError, match="CUDA device"):
            resolve_device(f"cuda:{torch.cuda.device_count()}")


def test_set_threads_caps_and_none_leaves_default():
    before = torch.get_num_threads()
    try:
        set_threads(1)
        assert torch.get_num_threads() == 1
        set_threads(None)
        assert torch.get_num_threads() == 1
        with pytest.raises(BenchmarkError):
            set_threads(0)
    finally:
        torch.set_num_threads(before)


def test_sparse_device_features_match_dense():
    rng = np.random.default_rng(1)
    dense = rng.normal(size=(50, 30)).astype(np.float32) * (rng.random((50, 30)) < 0.2)
    dense[7] = 0.0  # an all-zero row
    csr = sp.csr_matrix(dense)
    std_dense, std_sparse = Standardizer.fit(dense), Standardizer.fit(csr)
    np.testing.assert_allclose(std_dense.mean, std_sparse.mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(std_dense.std, std_sparse.std, rtol=1e-4)
    on_device_dense = DeviceFeatures(csr, "cpu", std_sparse)  # fits the budget -> densified
    kept_sparse = DeviceFeatures(csr, "cpu", std_sparse, dense_budget_bytes=0)
    assert on_device_dense.is_dense and not kept_sparse.is_dense
    idx = torch.tensor([7, 3, 49, 0, 3])
    expected = (dense[idx.numpy()] - std_dense.mean) / std_dense.std
    np.testing.assert_allclose(kept_sparse.rows(idx).numpy(), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(on_device_dense.rows(idx).numpy(), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(kept_sparse.slice(10, 20).numpy(), on_device_dense.slice(10, 20).numpy(),
                               rtol=1e-5, atol=1e-5)


def test_epoch_loop_calls_back_and_restores_best_epoch():
    X, Y, Xv, Yv = _toy_problem()
    seen = []
    model = TinyLogistic(seed=0, n_threads=1, epochs=6, epoch_selection="reference").fit(
        X, Y, Xv, Yv, on_epoch=lambda e, s: seen.append((e, s)))
    info = model.fit_info
    assert [e for e, _ in seen] == [1, 2, 3, 4, 5, 6]
    assert [s for _, s in seen] == info["val_scores"]
    assert info["n_epochs"] == 6 and len(info["epoch_seconds"]) == 6 == len(info["train_seconds_per_epoch"])
    assert info["best_epoch"] == int(np.argmax(info["val_scores"])) + 1
    # the restored weights are the best epoch's: re-scoring validation reproduces its score
    assert validation_score(Yv, model.predict_proba(Xv)) == pytest.approx(max(info["val_scores"]), abs=1e-12)
    assert all(t <= e for t, e in zip(info["train_seconds_per_epoch"], info["epoch_seconds"]))
    assert info["fit_seconds"] >= sum(info["epoch_seconds"])
    assert max(info["val_scores"]) > 0.5  # it learns the toy problem


def test_pruning_stops_training():
    X, Y, Xv, Yv = _toy_problem()
    calls = []

    def prune_at_two(epoch, score):
        calls.append(epoch)
        if epoch == 2:
            raise optuna.TrialPruned()

    model = TinyLogistic(seed=0, n_threads=1, epochs=6)
    with pytest.raises(optuna.TrialPruned):
        model.fit(X, Y, Xv, Yv, on_epoch=prune_at_two)
    assert calls == [1, 2] and model.fit_info["n_epochs"] == 2


def test_without_validation_keeps_last_epoch_and_is_deterministic():
    X, Y, Xv, _ = _toy_problem()
    a = TinyLogistic(seed=3, n_threads=1, epochs=3).fit(X, Y)
    b = TinyLogistic(seed=3, n_threads=1, epochs=3).fit(sp.csr_matrix(X), Y)
    c = TinyLogistic(seed=4, n_threads=1, epochs=3).fit(X, Y)
    assert a.fit_info["best_epoch"] == 3 and a.fit_info["val_scores"] == []
    pa, pb, pc = a.predict_proba(Xv), b.predict_proba(sp.csr_matrix(Xv)), c.predict_proba(Xv)
    assert pa.shape == (len(Xv), Y.shape[1]) and np.all((pa >= 0) & (pa <= 1))
    np.testing.assert_allclose(pa, pb, atol=1e-6)  # CSR input trains the same model
    assert not np.allclose(pa, pc)


def test_bad_input_is_a_clear_error():
    X, Y, Xv, Yv = _toy_problem()
    with pytest.raises(BenchmarkError, match="rows"):
        TinyLogistic().fit(X[:10], Y)
    with pytest.raises(BenchmarkError, match="both"):
        TinyLogistic().fit(X, Y, Xv, None)
    with pytest.raises(BenchmarkError, match="fitted"):
        TinyLogistic().predict_proba(X)
    X_bad = X.copy()
    X_bad[3, 2] = np.nan
    with pytest.raises(BenchmarkError, match="NaN"):
        TinyLogistic().fit(X_bad, Y)


def test_divergence_is_a_clear_error():
    from benchmark.modelapi.torch_loop import TrainingDiverged

    X, Y, Xv, Yv = _toy_problem()
    with pytest.raises(TrainingDiverged, match="not finite at epoch 1"):
        TinyLogistic(n_threads=1, epochs=3, lr=1e38).fit(X, Y, Xv, Yv)  # Adam steps of ~lr overflow float32


# --------------------------------------------------------------------------- epoch selection, standardisation

# A noisy small-validation curve: a lucky spike at epoch 1, a steady plateau at epochs 6-9.
NOISY = [0.60, 0.40, 0.45, 0.50, 0.52, 0.55, 0.56, 0.57, 0.56, 0.50, 0.45]
LOSSES = [0.9, 0.8, 0.7, 0.6, 0.5, 0.45, 0.42, 0.41, 0.43, 0.47, 0.50]


def test_select_epoch_rules_on_a_noisy_curve():
    assert select_epoch(NOISY, LOSSES, "reference") == 1  # the reference rule keeps the spike
    assert select_epoch(NOISY, LOSSES, "reference", min_epochs=3) == 8
    # trailing means of 3: epochs 7..9 -> (0.55+0.56+0.57)/3 at 8, (0.56+0.57+0.56)/3 at 9 (best)
    assert select_epoch(NOISY, LOSSES, "smoothed", window=3) == 9
    assert select_epoch(NOISY, LOSSES, "smoothed", window=1) == select_epoch(NOISY, LOSSES, "reference")
    assert select_epoch(NOISY, LOSSES, "val_loss") == 8
    assert select_epoch(NOISY, LOSSES, "last") == len(NOISY)
    # a window (or minimum) longer than the run is capped at the run: some epoch is always kept
    assert select_epoch(NOISY[:4], LOSSES[:4], "smoothed", window=10) == 4
    assert select_epoch(NOISY[:4], LOSSES[:4], "reference", min_epochs=10) == 4
    # ties go to the earliest epoch
    assert select_epoch([0.5, 0.7, 0.7], [1, 1, 1], "reference") == 2
    with pytest.raises(BenchmarkError, match="unknown epoch_selection"):
        select_epoch(NOISY, LOSSES, "best")
    with pytest.raises(BenchmarkError, match=">= 1"):
        select_epoch(NOISY, LOSSES, "smoothed", window=0)


def test_validation_loss_is_the_mean_binary_cross_entropy():
    Y = np.array([[1, 0], [0, 1]])
    S = np.array([[0.8, 0.1], [0.3, 1.0]])  # 1.0 is clipped to 1 - 1e-7
    expected = -np.mean([np.log(0.8), np.log(0.9), np.log(0.7), np.log(1 - 1e-7)])
    assert validation_loss(Y, S) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("rule, window, min_epochs", [("smoothed", 3, 1), ("val_loss", 1, 1), ("reference", 1, 4),
                                                      ("last", 1, 1)])
def test_online_selection_equals_offline_and_restores_that_epoch(rule, window, min_epochs):
    X, Y, Xv, Yv = _toy_problem()
    model = TinyLogistic(seed=1, n_threads=1, epochs=8, epoch_selection=rule, selection_window=window,
                         min_epochs=min_epochs).fit(X, Y, Xv, Yv)
    info = model.fit_info
    assert len(info["val_losses"]) == 8 and info["epoch_selection"] == rule
    assert info["best_epoch"] == select_epoch(info["val_scores"], info["val_losses"], rule, window, min_epochs)
    assert info["best_epoch"] >= min_epochs
    restored = model.predict_proba(Xv)
    assert validation_score(Yv, restored) == pytest.approx(info["val_scores"][info["best_epoch"] - 1], abs=1e-12)
    assert validation_loss(Yv, restored) == pytest.approx(info["val_losses"][info["best_epoch"] - 1], rel=1e-5)


def test_selection_and_standardisation_are_declared_hyperparameters():
    for key in ("standardize", "epoch_selection", "selection_window", "min_epochs"):
        assert key in TORCH_DEFAULTS and key in TinyLogistic().params  # recorded with every run
    with pytest.raises(BenchmarkError, match="unknown epoch_selection"):
        TinyLogistic(epoch_selection="best").fit(*_toy_problem())  # fails before any training
    with pytest.raises(BenchmarkError, match="standardize must be true or false"):
        TinyLogistic(standardize="no").fit(*_toy_problem())


def test_standardize_false_feeds_raw_features():
    X, Y, Xv, Yv = _toy_problem()  # features have mean ~1 and std ~3
    raw = TinyLogistic(seed=0, n_threads=1, epochs=2, standardize=False).fit(X, Y)
    scaled = TinyLogistic(seed=0, n_threads=1, epochs=2).fit(X, Y)
    assert raw.params["standardize"] is False and scaled.params["standardize"] is True
    np.testing.assert_array_equal(raw.standardizer_.mean, 0.0)
    np.testing.assert_array_equal(raw.standardizer_.std, 1.0)
    np.testing.assert_allclose(scaled.standardizer_.mean, X.mean(axis=0), rtol=1e-5)
    assert not np.allclose(raw.predict_proba(Xv), scaled.predict_proba(Xv), atol=1e-3)
