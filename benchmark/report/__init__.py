"""Reports from the results store: paper tables, learning curves, statistics, index page.

Entry point: :func:`build_report` (``python -m benchmark report``). Every piece works on
pandas DataFrames in the results store's ``runs_frame`` layout, so a report can be built
from a store, a store object, or frames assembled by hand.
"""

from benchmark.report.build import ReportResult, build_report
from benchmark.report.inputs import (
    PROTOCOLS,
    ReportError,
    ReportInputs,
    inputs_from_store,
    metrics_long,
)

__all__ = ["PROTOCOLS", "ReportError", "ReportInputs", "ReportResult", "build_report", "inputs_from_store", "metrics_long"]
