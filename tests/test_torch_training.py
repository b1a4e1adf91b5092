"""The shared PyTorch machinery: devices, threads, on-device data, the epoch loop."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
import scipy.sparse as sp
import torch
from torch import nn

from benchmark.errors import BenchmarkError
from benchmark.torch_training import (
    TORCH_DEFAULTS,
    DeviceFeatures,
    Standardizer,
    TorchModel,
    resolve_device,
    set_threads,
    validation_score,
)


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
    model = TinyLogistic(seed=0, n_threads=1, epochs=6).fit(X, Y, Xv, Yv, on_epoch=lambda e, s: seen.append((e, s)))
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
    from benchmark.torch_training import TrainingDiverged

    X, Y, Xv, Yv = _toy_problem()
    with pytest.raises(TrainingDiverged, match="not finite at epoch 1"):
        TinyLogistic(n_threads=1, epochs=3, lr=1e38).fit(X, Y, Xv, Yv)  # Adam steps of ~lr overflow float32
