"""The mlp deep baseline on real data: better than the trivial predictor, in binary
relevance's range, deterministic per seed, fine with CSR input and label-less labels."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import published_split

from benchmark.data.loading import load_dataset
from benchmark.data.splits import make_split, nested_fractions
from benchmark.evaluation.thresholds import evaluate_protocols
from benchmark.modelapi.base import get_model

MLP = get_model("mlp")
SHOWN = ("ebF1", "miF1", "maF1", "P@1")


def val_protocol_scores(model_or_scores, data):
    """Test metrics under the `val` protocol, for a fitted model or a (val, test) score pair."""
    X, Y, split = data
    if isinstance(model_or_scores, tuple):
        s_val, s_test = model_or_scores
    else:
        s_val, s_test = model_or_scores.predict_proba(X[split.val]), model_or_scores.predict_proba(X[split.test])
    return evaluate_protocols(Y[split.val], s_val, Y[split.test], s_test)["val"]["metrics"]


def trivial_scores(data):
    """Training label frequencies as every row's scores."""
    X, Y, split = data
    freq = Y[split.train].mean(axis=0)
    return np.tile(freq, (len(split.val), 1)), np.tile(freq, (len(split.test), 1))


def fit(model, data):
    X, Y, split = data
    return model.fit(X[split.train], Y[split.train], X[split.val], Y[split.val])


@pytest.mark.parametrize("name", ["yeast", "scene"])
def test_mlp_beats_trivial_and_lands_near_binary_relevance(mirror_dir, name):
    data = published_split(name)
    mlp = val_protocol_scores(fit(MLP(seed=0, n_threads=1, epochs=30), data), data)
    trivial = val_protocol_scores(trivial_scores(data), data)
    br = val_protocol_scores(fit(get_model("br")(seed=0), data), data)
    for label, scores in (("trivial", trivial), ("br", br), ("mlp", mlp)):
        print(f"{name} {label:8s} " + " ".join(f"{m} {scores[m]:.4f}" for m in SHOWN))
    assert mlp["miF1"] > trivial["miF1"] + 0.03
    assert mlp["P@1"] > trivial["P@1"]
    assert abs(mlp["miF1"] - br["miF1"]) < 0.1


def test_same_seed_same_scores_different_seed_different(mirror_dir):
    X, Y, split = data = published_split("yeast")
    runs = [fit(MLP(seed=s, n_threads=1, epochs=2), data).predict_proba(X[split.test]) for s in (0, 0, 1)]
    np.testing.assert_array_equal(runs[0], runs[1])
    assert np.abs(runs[0] - runs[2]).max() > 1e-3


def test_sparse_input_with_labels_without_positives(mirror_dir):
    dataset = load_dataset("bibtex")
    split = make_split(dataset, seed=0)
    subset = split.train[nested_fractions(dataset.Y[split.train], [0.1], seed=0)[0.1]]
    X, Y = dataset.X, dataset.Y
    Y_sub = Y[subset].copy()
    Y_sub[:, [0, 7]] = 0  # labels with no positive example in this small subset
    Y_sub[:5] = 0         # and rows with no label
    model = MLP(seed=0, n_threads=1, epochs=2).fit(X[subset], Y_sub, X[split.val], Y[split.val])
    scores = model.predict_proba(X[split.test])
    assert scores.shape == (len(split.test), Y.shape[1]) and np.isfinite(scores).all()
    assert model.fit_info["n_epochs"] == 2 and len(model.fit_info["val_scores"]) == 2
