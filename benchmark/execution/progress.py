"""Progress display for ``benchmark run``: a live bar plus one line per finished cell.

The live part (rich) shows cells done/total, the jobs running now, elapsed time
and an estimate of the time left; above it, one line per finished cell. ``quiet``
prints only the final summary; ``verbose`` adds a line per tuning trial. When the
output is not a terminal, rich prints plain lines without the live bar.
"""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from benchmark.store.tables import CellRow


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class RunProgress:
    def __init__(self, quiet: bool = False, verbose: bool = False, console: Console | None = None):
        self.quiet = quiet
        self.verbose = verbose
        self.console = console or Console(highlight=False, soft_wrap=True)
        self._progress: Progress | None = None
        self._task = None
        self._running: list[str] = []
        self._started = time.monotonic()
        self._estimate_left: float | None = None  # cost-model seconds of work not yet finished
        self._slots = 1
        self._estimated_done = 0.0
        self._measured_done = 0.0

    # ------------------------------------------------------------------ lifecycle
    def start(self, total: int, already_done: int, planned: int, notices: list[str],
              estimate_seconds: float | None = None, slots: int = 1) -> None:
        self._started = time.monotonic()
        self._estimate_left, self._slots = estimate_seconds, max(1, slots)
        for notice in notices:
            self.notice(notice)
        if self.quiet:
            return
        expected = f"; estimated {_clock(estimate_seconds / self._slots)} wall" if estimate_seconds else ""
        self.console.print(f"{planned} cells planned, {already_done} already done, {total} to run{expected}")
        if total and self.console.is_terminal:
            self._progress = Progress(
                TextColumn("[bold]cells"), BarColumn(), MofNCompleteColumn(), TextColumn("elapsed"),
                TimeElapsedColumn(), TextColumn("left {task.fields[left]}"),
                TextColumn("{task.fields[running]}"), console=self.console, transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task("cells", total=total, running="", left=self.eta_text())

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    # ------------------------------------------------------------------ events
    def notice(self, text: str) -> None:
        self.console.print(f"[yellow]notice:[/] {text}")

    def job_started(self, label: str) -> None:
        self._running.append(label)
        self._update_running()

    def job_finished(self, label: str, estimated: float | None = None, measured: float | None = None) -> None:
        if label in self._running:
            self._running.remove(label)
        if estimated is not None and self._estimate_left is not None:
            self._estimate_left = max(0.0, self._estimate_left - estimated)
            self._estimated_done += estimated
            self._measured_done += measured or 0.0
        self._update_running()

    def eta_seconds(self) -> float | None:
        """Cost-model work left, scaled by measured/estimated time of the finished jobs, per slot."""
        if self._estimate_left is None:
            return None
        ratio = self._measured_done / self._estimated_done if self._estimated_done > 0 else 1.0
        return self._estimate_left * min(max(ratio, 0.2), 5.0) / self._slots

    def eta_text(self) -> str:
        eta = self.eta_seconds()
        return "-:--:--" if eta is None else _clock(eta)

    def _update_running(self) -> None:
        if self._progress is not None:
            shown = ", ".join(self._running[:3]) + (" ..." if len(self._running) > 3 else "")
            self._progress.update(self._task, running=shown, left=self.eta_text())

    def trial_finished(self, group: str, number: int, result) -> None:
        if self.verbose and not self.quiet:
            score = result.val_score
            value = f" objective {score:.4f}" if score is not None else ""
            self.console.print(f"  trial {number} of {group}: {result.state}{value}")

    def cell_finished(self, row: CellRow, reused: bool = False) -> None:
        if self._progress is not None:
            self._progress.advance(self._task)
        if self.quiet:
            return
        cell = f"{row.dataset}/{row.model}/{row.fraction:g}/seed {row.seed}"
        if row.status == "done":
            metrics = (row.metrics or {}).get("val", {})
            scores = " ".join(f"{m} {metrics[m]:.4f}" for m in ("maF1", "miF1", "ebF1") if metrics.get(m) is not None)
            timing = f" fit {row.fit_seconds:.2f}s" if row.fit_seconds is not None else ""
            self.console.print(f"[green]done[/]   {cell}  {scores}{timing}  trials {row.n_trials or 0}")
        else:
            last = (row.error or "").strip().splitlines()
            self.console.print(f"[red]failed[/] {cell}  {last[-1] if last else ''}")

    def summary(self, summary) -> None:
        self.stop()
        failed = len(summary.failed)
        self.console.print(
            f"{summary.done} cells done, {failed} failed, {summary.already_done} were already done; "
            f"{summary.trials} trials ({summary.pruned} pruned), {summary.fits} fits, "
            f"{summary.seconds:.1f}s"
        )
        for cell, error in summary.failed:
            last = error.strip().splitlines()
            self.console.print(f"[red]failed[/] {'/'.join(str(c) for c in cell)}: {last[-1] if last else ''}")
        if summary.left_to_others:
            self.console.print(f"[yellow]left to another live run[/] (exit code 3; --wait waits for it): "
                               f"{', '.join(summary.left_to_others)}")
        if summary.interrupted:
            self.console.print("[yellow]interrupted[/]: finished cells are recorded; run again to resume")
