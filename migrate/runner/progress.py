"""Progress of long work (dumping, loading, waiting): a bar with rate and ETA on a terminal, structured
log lines (with the same figures) everywhere else."""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

from migrate import log


@dataclass
class _Task:
    started: float
    first_done: float
    last_log: float = 0.0
    bar_id: Any = None


def human(value: float, unit: str) -> str:
    if unit == "B":
        for suffix, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
            if value >= size:
                return f"{value / size:,.1f} {suffix}"
        return f"{value:,.0f} B"
    return f"{value:,.0f}{(' ' + unit) if unit else ''}"


class Progress:
    def __init__(self, *, terminal: bool | None = None):
        self.terminal = sys.stderr.isatty() if terminal is None else terminal
        self._tasks: dict[str, _Task] = {}
        self._lock = threading.Lock()
        self._bars = None

    def update(self, what: str, *, done: float | None = None, total: float | None = None, unit: str = "",
               every_s: float = 2.0, **context: Any) -> dict[str, Any]:
        """Report `done` of `total` for task `what`; returns the figures (rate, eta_s) it computed."""
        now = time.monotonic()
        with self._lock:
            task = self._tasks.setdefault(what, _Task(started=now, first_done=done or 0.0))
            elapsed = now - task.started
            figures: dict[str, Any] = {}
            if done is not None:
                figures["done"] = human(done, unit) + (f" of {human(total, unit)}" if total else "")
                if total:
                    figures["pct"] = round(min(100.0, 100.0 * done / total), 1)
                rate = (done - task.first_done) / elapsed if elapsed >= 0.5 else 0.0  # from what we saw move
                if rate > 0:
                    figures["rate"] = human(rate, unit) + "/s"
                    if total and done < total:
                        figures["eta_s"] = round((total - done) / rate)
            if self.terminal and done is not None and total:
                self._bar(what, task, done, total, f"{human(done, unit)} / {human(total, unit)}")
            elif now - task.last_log >= every_s or (total and done is not None and done >= total):
                task.last_log = now
                log.get().info(what, **context, **figures)
        return figures

    def _bar(self, what: str, task: _Task, done: float, total: float, figure: str) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, TaskProgressColumn, TextColumn, TimeRemainingColumn
        from rich.progress import Progress as Bars

        if self._bars is None:
            self._bars = Bars(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                              TextColumn("{task.fields[figure]}"), TimeRemainingColumn(),
                              console=Console(stderr=True), transient=False)
            self._bars.start()
        if task.bar_id is None:
            task.bar_id = self._bars.add_task(what, total=total, figure=figure)
        self._bars.update(task.bar_id, completed=done, total=total, figure=figure)

    def close(self) -> None:
        with self._lock:
            if self._bars is not None:
                self._bars.stop()
                self._bars = None
            self._tasks.clear()
