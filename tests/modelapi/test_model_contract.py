"""The behaviour contract every registered model passes (in the spirit of
scikit-learn's ``parametrize_with_checks``), parametrized over ``available_models()``
so that a model added to ``models/`` (or a ``MLCBENCH_MODELS_PATH`` folder) is checked
without writing a test for it.

Data: 48 rows, 6 features, 4 labels, where label 2 is never positive and row 0 has
no label (both happen in real subsets); epoch-trained models train 2 epochs.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import optuna
import pytest
import scipy.sparse as sp

from benchmark.discovery import REPO_ROOT
from benchmark.modelapi.base import (
    EPOCH_FIT_INFO_FIELDS,
    FIT_INFO_FIELDS,
    available_models,
)

MODELS = available_models()
N_EPOCHS = 2


def contract_data(seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(48, 6)).astype(np.float32)
    X[rng.random(X.shape) < 0.4] = 0  # some sparsity, so CSR input is meaningful
    W = rng.normal(size=(6, 4))
    Y = (X @ W + rng.normal(scale=0.5, size=(48, 4)) > 0.3).astype(np.uint8)
    Y[:, 2] = 0  # a label with no positive
    Y[0] = 0  # a row with no label
    Y[1:4, [0, 1, 3]] = 1  # every other label has positives
    return X[:32], Y[:32], X[32:40], Y[32:40], X[40:]


def make(cls, seed: int = 0):
    params = {"epochs": N_EPOCHS} if "epochs" in cls.defaults else {}
    return cls(seed=seed, device="cpu", n_threads=1, **params)


def fit_scores(cls, seed=0, sparse=False, on_epoch=None):
    X, Y, X_val, Y_val, X_test = contract_data()
    if sparse:
        X, X_val, X_test = (sp.csr_matrix(a) for a in (X, X_val, X_test))
    model = make(cls, seed)
    returned = model.fit(X, Y, X_val, Y_val, on_epoch=on_epoch)
    assert returned is model, "fit returns the model itself"
    return model, np.asarray(model.predict_proba(X_test)), X_test


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_scores_shape_and_range(name, sparse):
    model, scores, X_test = fit_scores(MODELS[name], sparse=sparse)
    assert scores.shape == (X_test.shape[0], 4)
    assert np.issubdtype(scores.dtype, np.floating)
    assert np.isfinite(scores).all() and scores.min() >= 0 and scores.max() <= 1
    for field in FIT_INFO_FIELDS:
        assert field in model.fit_info, f"{name}: fit_info lacks {field}"
    assert model.fit_info["fit_seconds"] >= 0


@pytest.mark.parametrize("name", sorted(MODELS))
def test_seed_reproducibility_and_pickle(name):
    cls = MODELS[name]
    model, first, X_test = fit_scores(cls, seed=0)
    _, again, _ = fit_scores(cls, seed=0)
    np.testing.assert_array_equal(first, again, err_msg=f"{name}: same seed, different scores")
    if cls.is_stochastic():
        _, other, _ = fit_scores(cls, seed=1)
        assert not np.array_equal(first, other), f"{name} declares itself stochastic but ignores its seed"
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(np.asarray(restored.predict_proba(X_test)), first)


@pytest.mark.parametrize("name", sorted(n for n, c in MODELS.items() if c.trains_in_epochs))
def test_on_epoch_once_per_epoch_and_pruning_propagates(name):
    cls = MODELS[name]
    calls = []
    model, _, _ = fit_scores(cls, on_epoch=lambda epoch, score: calls.append((epoch, score)))
    assert len(calls) == N_EPOCHS, f"{name}: on_epoch called {len(calls)} times for {N_EPOCHS} epochs"
    epochs = [epoch for epoch, _ in calls]
    assert epochs == sorted(set(epochs)), f"{name}: epochs not increasing: {epochs}"
    assert all(np.isfinite(score) for _, score in calls)
    for field in EPOCH_FIT_INFO_FIELDS:
        assert field in model.fit_info, f"{name}: fit_info lacks {field}"
    assert model.fit_info["n_epochs"] == N_EPOCHS and len(model.fit_info["epoch_seconds"]) == N_EPOCHS

    def prune(epoch, score):
        raise optuna.TrialPruned(f"pruned at {epoch}")

    with pytest.raises(optuna.TrialPruned):
        fit_scores(cls, on_epoch=prune)


@pytest.mark.parametrize("name", sorted(n for n, c in MODELS.items() if c.grows_in_steps))
def test_a_model_that_grows_in_steps_reports_each_and_lets_pruning_propagate(name):
    """Forests and ensembles report a finite validation score per step, in increasing steps,
    and a pruner's TrialPruned stops them (the same contract as epochs)."""
    cls = MODELS[name]
    calls = []
    fit_scores(cls, on_epoch=lambda step, score: calls.append((step, score)))
    steps = [step for step, _ in calls]
    assert steps and steps == sorted(set(steps)), f"{name}: steps not increasing: {steps}"
    assert all(np.isfinite(score) for _, score in calls)

    def prune(step, score):
        raise optuna.TrialPruned(f"pruned at {step}")

    with pytest.raises(optuna.TrialPruned):
        fit_scores(cls, on_epoch=prune)


BROKEN = "import nosuchpackage_for_the_contract_test\n"
WORKING = '''
import numpy as np
from benchmark.modelapi.base import Model


class Constant(Model):
    """Predicts the training label frequencies."""

    name = "contract_constant"
    defaults = {}

    def fit(self, X, Y, X_val=None, Y_val=None, on_epoch=None):
        self.p_ = np.asarray(Y, dtype=float).mean(axis=0)
        self.fit_info = {"fit_seconds": 0.0}
        return self

    def predict_proba(self, X):
        return np.tile(self.p_, (X.shape[0], 1))
'''


@pytest.mark.slow
def test_a_broken_model_file_is_unavailable_and_the_others_run(tmp_path):
    """The broken file is listed with its reason; the working one passes the contract
    in a process that sees both (a subprocess: this one's registry stays clean)."""
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "broken.py").write_text(BROKEN)
    (folder / "working.py").write_text(textwrap.dedent(WORKING))
    env = {**os.environ, "MLCBENCH_MODELS_PATH": str(folder), "MLCBENCH_CACHE_DIR": str(tmp_path / "cache")}
    listing = subprocess.run([sys.executable, "-m", "benchmark", "models", "list"], cwd=REPO_ROOT, env=env,
                             capture_output=True, text=True, timeout=300)
    assert listing.returncode == 0, listing.stderr
    assert (f"unavailable: {folder / 'broken.py'} (ModuleNotFoundError: No module named "
            "'nosuchpackage_for_the_contract_test')") in listing.stdout
    names = [line.split()[0] for line in listing.stdout.splitlines() if line and not line.startswith((" ", "-"))]
    assert {"contract_constant", "prior", "br", "mlknn"} <= set(names)
    contract = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__, "-k", "contract_constant"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert contract.returncode == 0, contract.stdout[-3000:]
    assert "3 passed" in contract.stdout  # dense, csr, seed/pickle
