"""The typed records that cross the engine: the worker's fit record and the stored cell row."""

from __future__ import annotations

import dataclasses
import math

import pytest

from benchmark.execution.worker import FitRecord
from benchmark.store.tables import RUN_COLUMNS, CellRow, runs_table


def test_a_cell_row_has_exactly_the_runs_table_columns():
    fields = dataclasses.fields(CellRow)
    assert [f.name for f in fields] != [] and {f.name for f in fields} == set(RUN_COLUMNS)
    required = {f.name for f in fields if f.default is dataclasses.MISSING}
    not_null = {c.name for c in runs_table.columns if not c.nullable and c.server_default is None and c.name != "id"}
    assert required == not_null, "a field is required exactly when its column is NOT NULL"


def test_an_unknown_or_missing_field_is_an_error_never_dropped():
    with pytest.raises(ValueError, match=r"unknown fields \['fit_secs'\]"):
        CellRow.of({"dataset": "d", "model": "m", "fraction": 1.0, "seed": 0, "status": "done", "fit_secs": 1.0})
    with pytest.raises(ValueError, match=r"missing fields \['status'\]"):
        CellRow.of({"dataset": "d", "model": "m", "fraction": 1.0, "seed": 0})
    row = CellRow.of({"dataset": "d", "model": "m", "fraction": 0.1 + 0.2, "seed": 0, "status": "done",
                      "val_score": float("nan")})
    assert row.values()["fraction"] == 0.3 and row.values()["val_score"] is None


def test_a_fit_record_survives_the_study_round_trip_and_refuses_strangers():
    record = FitRecord(params={"C": 1.0}, metrics={"val": {"maF1": 0.5}}, thresholds={"val": {"maF1": 0.3}},
                       val_score=math.nan, best_epoch=None, n_epochs=None, fit_seconds=1.0, predict_seconds=0.1,
                       seconds_per_epoch=None, device="cpu", versions={"numpy": "2"}, n_train=10, n_val=2,
                       n_test=3, started_at="2026-12-02T00:00:00+00:00")
    plain = record.to_dict()
    assert plain["val_score"] is None, "NaN is stored as null, as a study's user attribute must be"
    assert FitRecord.from_dict(plain) == dataclasses.replace(record, val_score=None)
    with pytest.raises(ValueError, match="unknown fields"):
        FitRecord.from_dict({**plain, "extra": 1})
    with pytest.raises(TypeError):
        FitRecord.from_dict({k: v for k, v in plain.items() if k != "metrics"})
