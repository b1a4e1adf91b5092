"""The run plan: built once from a suite, frozen, and the only place settings are derived."""

from __future__ import annotations

import dataclasses

import pytest

from benchmark.execution.group import CellOutcome, Group, JobRequest
from benchmark.execution.plan import PlanError, build_plan
from benchmark.execution.resources import make_plan
from benchmark.execution.suite import load_suite
from benchmark.modelapi.base import get_model


def _suite(tmp_path, body: str):
    path = tmp_path / "s.toml"
    path.write_text('name = "s"\ndatasets = ["emotions"]\nfractions = [0.5, 1.0]\nseeds = [0, 1]\n' + body)
    return load_suite(str(path))


def test_a_plan_is_frozen_and_carries_every_setting_a_job_needs(tmp_path):
    plan = build_plan(_suite(tmp_path, 'models = ["mlp", "br"]\ntrials = 3\n[model.mlp]\ntune = ["lr", "epochs"]\n'),
                      make_plan("cpu", 2, cpu_count=2))
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.trial_seed = 1
    mlp = next(g for g in plan.groups if g.model.name == "mlp")
    epochs = get_model("mlp").search_space["epochs"]
    assert mlp.model.epochs == round((epochs.low + epochs.high) / 2) and mlp.model.max_epochs == epochs.high
    assert mlp.model.pruning.max_epochs == epochs.high and mlp.model.trials == 3
    assert len(plan.cells()) == 2 * 2 * 2
    job = plan.job(mlp, "trial", plan.trial_seed, {"lr": 0.01})
    assert job.pruning == mlp.model.pruning and job.val_grid == plan.val_grid
    assert plan.job(mlp, "cell", 1, {}).pruning is None


def test_a_group_asks_its_plan_for_jobs_and_returns_outcomes_not_calls(tmp_path):
    """Without tuning, a group's steps are one cell job per seed; a result comes back as an
    outcome to record (the group holds no runner, store or executor)."""
    plan = build_plan(_suite(tmp_path, 'models = ["br"]\ntrials = 0\n'), make_plan("cpu", 1))
    group = Group(plan.groups[0])

    class Claims:
        def claim(self, key):
            return True

        def release(self, key):
            pass

    group.start(Claims(), done=set(), open_study=lambda g: pytest.fail("no study without tuning"))
    first, second = group.next_step(plan), group.next_step(plan)
    assert isinstance(first, JobRequest) and (first.kind, first.ident, second.ident) == ("cell", 0, 1)
    assert group.next_step(plan) is None
    from benchmark.execution.worker import JobResult

    [outcome] = group.on_result("cell", 0, JobResult("failed", error="boom"))
    assert isinstance(outcome, CellOutcome) and outcome.seed == 0 and outcome.n_trials == 0
    assert not {"runner", "store", "executor"} & {f.name for f in dataclasses.fields(Group)}


def test_the_planner_refuses_a_fit_it_predicts_will_not_fit_in_memory(tmp_path, monkeypatch):
    """A model that predicts its peak memory is checked at the most its tuned space can ask for."""
    import benchmark.execution.plan as plan_module

    rf = get_model("rf")
    monkeypatch.setattr(rf, "peak_bytes", classmethod(lambda cls, n, f, labels, p: p["n_estimators"] * 2**30))
    monkeypatch.setattr(plan_module, "machine_memory_bytes", lambda: 400 * 2**30)
    suite = _suite(tmp_path, 'models = ["rf"]\ntrials = 2\n[model.rf]\ntune = ["n_estimators"]\n')
    with pytest.raises(PlanError, match=r"rf on emotions: a fit needs about 500\.0 GiB \(n_estimators = 500\)"):
        build_plan(suite, make_plan("cpu", 1))
    fixed = _suite(tmp_path, 'models = ["rf"]\ntrials = 0\n[model.rf]\ntrials = 0\nparams = { n_estimators = 100 }\n')
    assert build_plan(fixed, make_plan("cpu", 1)).groups, "100 GiB of 320 allowed: accepted"
    with pytest.raises(PlanError, match="one of 4 job"):
        build_plan(fixed, make_plan("cpu", 4))


def test_the_thread_count_of_a_fit_is_part_of_its_cells_identity(tmp_path):
    """Two threads sum in another order than one (test metrics moved by ~1e-4): their cells
    are different cells. One thread adds nothing, so older one-thread cells keep theirs."""
    suite = _suite(tmp_path, 'models = ["br"]\ntrials = 0\n')
    one = build_plan(suite, make_plan("cpu", 2, cpu_count=2)).groups[0].model
    two = build_plan(suite, make_plan("cpu", 1, cpu_count=2)).groups[0].model
    assert "threads" not in one.settings and two.settings["threads"] == 2
    assert one.config != two.config and one.study != two.study


def test_a_models_revision_is_part_of_its_cells_identity(tmp_path, monkeypatch):
    """A model whose results changed for the same settings (mlknn's exact leave-one-out) bumps
    its revision: its old cells are not reused. Revision 1 adds nothing to the settings."""
    suite = _suite(tmp_path, 'models = ["mlknn", "br"]\ntrials = 0\n')
    plan = build_plan(suite, make_plan("cpu", 2, cpu_count=2))
    by_name = {g.model.name: g.model for g in plan.groups}
    assert by_name["mlknn"].settings["model"]["revision"] == 2 and "revision" not in by_name["br"].settings["model"]
    monkeypatch.setattr(get_model("mlknn"), "revision", 1)
    again = {g.model.name: g.model for g in build_plan(suite, make_plan("cpu", 2, cpu_count=2)).groups}
    assert again["mlknn"].config != by_name["mlknn"].config and again["br"].config == by_name["br"].config


def test_a_model_growing_in_steps_gets_its_steps_as_the_pruners_horizon(tmp_path):
    """rf's 100..500 trees in steps of 25: 12 steps expected (300 trees), at most 20, the
    horizon Hyperband needs (it assumed 100 before); ecc's chains are its steps."""
    plan = build_plan(_suite(tmp_path, 'models = ["rf", "ecc"]\ntrials = 4\n'), make_plan("cpu", 2, cpu_count=2))
    by_name = {g.model.name: g.model for g in plan.groups}
    assert (by_name["rf"].epochs, by_name["rf"].max_epochs, by_name["rf"].pruning.max_epochs) == (12, 20, 20)
    assert by_name["ecc"].epochs == by_name["ecc"].max_epochs == get_model("ecc").defaults["n_chains"]
