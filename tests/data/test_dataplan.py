"""Which indices a seed changes under each ``resample`` mode, and the reference protocol."""

from __future__ import annotations

import numpy as np

from benchmark.data.dataplan import DataPlan, dataset_fingerprint
from benchmark.data.refs import DatasetRef
from benchmark.execution.plan import build_plan
from benchmark.execution.resources import make_plan
from benchmark.execution.suite import load_suite


def plan_for(resample: str, name: str = "emotions", prefix: bool = False, cache=None, declaration=None) -> DataPlan:
    entry = DatasetRef(name, declaration)
    return DataPlan(entry, dataset_fingerprint(entry, None), None, 0, 0.15, resample, prefix, cache)


def test_model_mode_fixes_split_and_subsets(mirror_dir):
    plan = plan_for("model")
    a, b = plan.parts(0.25, 0), plan.parts(0.25, 1)
    for part in ("train", "val", "test"):
        assert np.array_equal(getattr(a, part), getattr(b, part))


def test_subset_mode_redraws_only_the_training_subset(mirror_dir):
    plan = plan_for("subset")
    a, b = plan.parts(0.25, 0), plan.parts(0.25, 1)
    assert np.array_equal(a.val, b.val) and np.array_equal(a.test, b.test)
    assert not np.array_equal(a.train, b.train) and len(a.train) == len(b.train)
    assert np.isin(a.train, plan.parts(0.5, 0).train).all(), "subsets of one seed stay nested"
    assert np.array_equal(plan.parts(1.0, 0).train, plan.parts(1.0, 1).train), "fraction 1 is the whole pool"


def test_split_mode_redraws_validation_but_keeps_a_published_test_set(mirror_dir):
    plan = plan_for("split")
    a, b = plan.parts(1.0, 0), plan.parts(1.0, 1)
    assert np.array_equal(a.test, b.test), "emotions has a published test file"
    assert not np.array_equal(a.val, b.val)
    assert np.array_equal(np.sort(np.r_[a.train, a.val]), np.sort(np.r_[b.train, b.val]))


def test_split_mode_redraws_the_test_set_of_an_unsplit_dataset(mirror_dir):
    plan = plan_for("split", name="unsplit", declaration={"name": "unsplit", "format": "synthetic", "test_size": 0.0})
    a, b = plan.parts(1.0, 0), plan.parts(1.0, 1)
    assert not np.array_equal(a.test, b.test)


def test_reference_protocol_prefix_fractions_nine_point_grid_no_standardisation(tmp_path, mirror_dir):
    suite_file = tmp_path / "ref.toml"
    suite_file.write_text('name = "ref"\ndatasets = ["emotions"]\nmodels = ["mlp", "br"]\nfractions = [0.3, 1.0]\n'
                          'protocol = "reference"\ntrials = 0\n')
    suite = load_suite(str(suite_file))
    nine_points = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    assert suite.resolved_oracle_grid() == nine_points
    plan = build_plan(suite, make_plan("cpu", 1))
    group = next(g for g in plan.groups if g.model.name == "mlp" and g.fraction == 0.3)
    pool = group.data.parts(1.0, 0).train
    assert np.array_equal(group.data.parts(0.3, 0).train, pool[: int(len(pool) * 0.3)]), "a prefix of the pool"
    job = plan.job(group, "cell", 0, dict(group.model.params))
    assert list(job.oracle_grid) == nine_points
    assert list(job.selection_grid) == nine_points, "checkpoints chosen on the nine-point grid"
    from benchmark.modelapi.base import get_model

    assert "standardize" in get_model("mlp").defaults and group.model.params["standardize"] is False
    assert group.model.params["epoch_selection"] == "reference"
    suite_file.write_text(suite_file.read_text().replace('protocol = "reference"', 'protocol = "harness"'))
    harness = build_plan(load_suite(str(suite_file)), make_plan("cpu", 1))
    group = next(g for g in harness.groups if g.model.name == "mlp")
    job = harness.job(group, "cell", 0, dict(group.model.params))
    assert list(job.selection_grid) == harness.suite.resolved_val_grid(), "one grid for selection and tuning"
    assert group.model.params.get("standardize", True) is not False


def test_splits_are_cached_on_disk_keyed_by_the_dataset(tmp_path, mirror_dir):
    first = plan_for("subset", cache=tmp_path)
    parts = first.parts(0.5, 1)
    assert len(list(tmp_path.glob("emotions-*.npz"))) == 1
    again = plan_for("subset", cache=tmp_path)
    cached = again.parts(0.5, 1)
    assert again._dataset is None, "the second plan read the cache without loading the dataset"
    assert np.array_equal(parts.train, cached.train) and np.array_equal(parts.test, cached.test)
