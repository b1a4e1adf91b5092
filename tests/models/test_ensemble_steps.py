"""ECC and RAkEL-o grow in steps of members and report each step (issue 21, item 3).

On yeast (published split, val = the split's validation share) what must hold:
- a fit that reports (validation data and a callback) ends with the same members as one
  that does not, and both predict exactly what the members fitted by hand predict;
- a callback raising ``optuna.TrialPruned`` at step k stops the fit after k steps: the
  member fits are counted;
- each reported score is the validation score (``epoch_selection.validation_score``,
  on the thresholds the worker sets) of the ensemble of the members so far, recomputed
  here from a model cut to those members;
- ``fit_info`` holds the steps' costs (``n_steps``, ``step_members``, ``step_seconds``...);
- with the engine's median pruner and three better finished trials, a trial is pruned
  at the model's ``pruner_warmup`` step, not before.
"""

from __future__ import annotations

import copy
import sys

import numpy as np
import optuna
import pytest
from sklearn.multioutput import ClassifierChain
from threadpoolctl import threadpool_limits

from benchmark.data.loading import load_dataset
from benchmark.data.splits import make_split
from benchmark.evaluation.thresholds import VAL_GRID
from benchmark.execution.tuning import EpochPruner
from benchmark.execution.worker import Pruning
from benchmark.modelapi.base import get_model
from benchmark.modelapi.epoch_selection import validation_score

GROWING = ("ecc", "rakelo")
STEP_FIELDS = ("n_steps", "step_members", "step_seconds", "step_cpu_seconds", "val_scores", "validation_seconds",
               "validation_cpu_seconds")


@pytest.fixture(scope="module")
def yeast(mirror_dir):
    dataset = load_dataset("yeast")
    split = make_split(dataset, seed=0)
    return {part: (dataset.X[idx], dataset.Y[idx]) for part, idx in
            (("train", split.train), ("val", split.val), ("test", split.test))}


def module_of(name: str):
    return sys.modules[get_model(name).__module__]


def fit(name, parts, on_epoch=None, with_val=True, **params):
    model = get_model(name)(seed=3, n_threads=1, **params)
    model.selection_grid = tuple(VAL_GRID)  # as the worker sets it
    val = parts["val"] if with_val else (None, None)
    return model.fit(*parts["train"], *val, on_epoch=on_epoch)


def truncated(model, n_members: int):
    """The fitted model cut to its first ``n_members`` members."""
    cut = copy.copy(model)
    if hasattr(model, "chains_"):
        cut.chains_ = model.chains_[:n_members]
    else:
        cut.members_ = model.members_[:n_members]
        cut.labelsets_ = model.labelsets_[:n_members]
        cut.combinations_ = model.combinations_[:n_members]
    return cut


@pytest.mark.parametrize("name", GROWING)
def test_reporting_changes_no_member(name, yeast):
    calls = []
    reported = fit(name, yeast, on_epoch=lambda step, score: calls.append(step))
    silent = fit(name, yeast, with_val=False)
    X_test = yeast["test"][0]
    assert calls == list(range(1, reported.fit_info["n_steps"] + 1)) and len(calls) > 1
    assert silent.fit_info["val_scores"] == [] and silent.fit_info["n_steps"] == reported.fit_info["n_steps"]
    np.testing.assert_array_equal(reported.predict_proba(X_test), silent.predict_proba(X_test))
    if name == "ecc":  # the chains are today's: seeded orders, all drawn before the first fit
        rng = np.random.default_rng(3)
        n_varying = reported.partition_.varying.size
        orders = [rng.permutation(n_varying) for _ in range(reported.params["n_chains"])]
        assert [list(o) for o in reported.fit_info["orders"]] == [list(reported.partition_.varying[o]) for o in orders]
        X, Y = yeast["train"]
        Xs, Xt = reported.scaler_.transform(X), reported.scaler_.transform(X_test)
        with threadpool_limits(1):  # as the model fits (two BLAS threads on two shared cores: 10x slower)
            by_hand = np.mean([ClassifierChain(reported._logistic(), order=o, chain_method="predict_proba")
                               .fit(Xs, Y[:, reported.partition_.varying]).predict_proba(Xt) for o in orders],
                              axis=0)
        np.testing.assert_allclose(reported.predict_proba(X_test)[:, reported.partition_.varying], by_hand,
                                   rtol=0, atol=1e-9)
    else:  # the labelsets are today's: a covering partition, then distinct random subsets
        rakel = module_of(name)
        rng = np.random.default_rng(3)
        n_varying = reported.partition_.varying.size
        expected = rakel.overlapping_labelsets(n_varying, 3, round(2.0 * n_varying), rng)
        assert [list(s) for s in reported.labelsets_] == [list(s) for s in expected]


@pytest.mark.parametrize("name, stop_at", [("ecc", 3), ("rakelo", 2)])
def test_pruning_at_step_k_fits_k_steps(name, stop_at, yeast, monkeypatch):
    module = module_of(name)
    fitter = "fit_chain" if name == "ecc" else "fit_estimator"
    original, fits = getattr(module, fitter), []
    monkeypatch.setattr(module, fitter, lambda *args: fits.append(1) or original(*args))
    steps = []

    def prune(step, score):
        steps.append(step)
        if step == stop_at:
            raise optuna.TrialPruned(f"pruned at {step}")

    model = get_model(name)(seed=3, n_threads=1)
    with pytest.raises(optuna.TrialPruned):
        model.fit(*yeast["train"], *yeast["val"], on_epoch=prune)
    assert steps == list(range(1, stop_at + 1))
    assert model.fit_info["n_steps"] == stop_at and len(model.fit_info["step_seconds"]) == stop_at
    per_step = 1 if name == "ecc" else -(-yeast["train"][1].shape[1] // 3)  # ceil(L / k): yeast 5
    assert len(fits) == sum(model.fit_info["step_members"]) == stop_at * per_step


@pytest.mark.parametrize("name", GROWING)
def test_step_scores_are_the_ensemble_so_far(name, yeast):
    calls = []
    model = fit(name, yeast, on_epoch=lambda step, score: calls.append(score))
    info = model.fit_info
    assert calls == info["val_scores"] and len(calls) == info["n_steps"]
    X_val, Y_val = yeast["val"]
    members = np.cumsum(info["step_members"])
    for step in (1, 2, info["n_steps"]):
        by_hand = validation_score(Y_val, truncated(model, int(members[step - 1])).predict_proba(X_val), VAL_GRID)
        assert calls[step - 1] == pytest.approx(by_hand, abs=1e-12), f"{name}: step {step}"
    assert len(set(np.round(calls, 6))) > 1, "the scores change as members are added"
    # the default grid is the nine-point one, as for epoch-trained models
    default = get_model(name)(seed=3).fit(*yeast["train"], *yeast["val"])
    whole = validation_score(Y_val, default.predict_proba(X_val))
    assert default.fit_info["val_scores"][-1] == pytest.approx(whole, abs=1e-12)


@pytest.mark.parametrize("name", GROWING)
def test_fit_info_records_each_steps_cost(name, yeast):
    info = fit(name, yeast).fit_info
    for field in STEP_FIELDS:
        assert field in info, f"{name}: fit_info lacks {field}"
    n = info["n_steps"]
    assert len(info["step_members"]) == len(info["step_seconds"]) == len(info["step_cpu_seconds"]) == n
    assert all(s > 0 for s in info["step_seconds"]) and sum(info["step_seconds"]) <= info["fit_seconds"]
    assert 0 < info["validation_seconds"] < 0.2 * info["fit_seconds"]
    assert 0 < info["validation_cpu_seconds"] < sum(info["step_cpu_seconds"])
    if name == "ecc":
        assert info["step_members"] == [1] * 10
    else:  # yeast: 14 labels, k = 3 -> 5 members a step, 28 members
        assert info["step_members"] == [5, 5, 5, 5, 5, 3]


@pytest.mark.parametrize("name", GROWING)
def test_the_median_pruner_stops_a_poor_trial_at_the_warmup(name, yeast):
    cls = get_model(name)
    assert cls.grows_in_steps == "members" and cls.reports_steps() and cls.pruner_warmup >= 1
    better = {"state": "COMPLETE", "params": {}, "distributions": {}, "value": 1.0,
              "intermediate": {str(step): 1.0 for step in range(1, 20)}}
    pruner = EpochPruner(Pruning("median", startup=3, warmup=cls.pruner_warmup), [better] * 3)
    model = cls(seed=3, n_threads=1)
    with pytest.raises(optuna.TrialPruned):
        model.fit(*yeast["train"], *yeast["val"], on_epoch=pruner)
    assert model.fit_info["n_steps"] == cls.pruner_warmup == max(pruner.intermediate)


def test_parallel_chains_are_the_same_chains(yeast):
    """n_threads = 2 fits chains two at a time and reports them one by one."""
    one = fit("ecc", yeast, n_chains=3)
    model = get_model("ecc")(seed=3, n_threads=2, n_chains=3)
    model.selection_grid = tuple(VAL_GRID)
    two = model.fit(*yeast["train"], *yeast["val"])
    assert two.fit_info["n_steps"] == 3 and two.fit_info["val_scores"] == one.fit_info["val_scores"]
    # the same chains; predicting with two BLAS threads rounds differently (as before steps)
    np.testing.assert_allclose(two.predict_proba(yeast["test"][0]), one.predict_proba(yeast["test"][0]),
                               rtol=0, atol=1e-12)
