"""Progress of a long command step: a rich bar with ETA on a terminal, quiet periodic lines otherwise.

Every long step of a command (encoding, mining, scoring, evaluating) reports
through :func:`step_progress`. On a terminal it draws a transient bar on stderr;
when stderr is redirected (a log file, CI, a cluster job) it writes one plain
line every ``BGEKIT_PROGRESS_SECONDS`` seconds (default 30) and one when the
step ends, e.g. ``encoding: 1200/5000 (24%), 35.1/s, ETA 1m48s``, so logs show
the run is alive without filling with redraws.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from typing import Callable, Iterator

#: seconds between two plain progress lines when stderr is not a terminal
DEFAULT_INTERVAL = 30.0


def _interval() -> float:
    try:
        return max(0.0, float(os.environ.get("BGEKIT_PROGRESS_SECONDS", DEFAULT_INTERVAL)))
    except ValueError:
        return DEFAULT_INTERVAL


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class StepProgress:
    """What a step calls: ``advance(n)`` after each piece of work, ``set_total(n)`` once it is known."""

    def __init__(self, label: str, total: int | None, write: Callable[[str], None] | None,
                 interval: float) -> None:
        self.label, self.total, self.done = label, total, 0
        self._write, self._interval = write, interval
        self._started = self._last = time.monotonic()
        self._bar = None
        self._task = None

    def phase(self, label: str, total: int | None) -> None:
        """Start the step's next phase (e.g. encoding, then reranking) on the same bar or log."""
        self.finish()
        self.label, self.total, self.done = label, total, 0
        self._started = self._last = time.monotonic()
        if self._bar is not None:
            self._bar.reset(self._task, total=total, description=label)

    def set_total(self, total: int | None) -> None:
        self.total = total
        if self._bar is not None:
            self._bar.update(self._task, total=total)

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.advance(self._task, n)
            return
        now = time.monotonic()
        if self._write is not None and now - self._last >= self._interval:
            self._last = now
            self._write(self.line(now))

    __call__ = advance  # so a StepProgress is itself the ``progress(n)`` callback engines take

    def line(self, now: float | None = None) -> str:
        """``label: done/total (pct%), rate/s, ETA ...`` (without total: ``label: done, rate/s``)."""
        elapsed = max((now or time.monotonic()) - self._started, 1e-9)
        rate = self.done / elapsed
        if self.total:
            left = max(self.total - self.done, 0)
            eta = f", ETA {_duration(left / rate)}" if rate > 0 and left else ""
            return (f"{self.label}: {self.done}/{self.total} ({100 * self.done / self.total:.0f}%), "
                    f"{rate:.1f}/s{eta}")
        return f"{self.label}: {self.done}, {rate:.1f}/s"

    def finish(self) -> None:
        if self._bar is None and self._write is not None and self.done:
            elapsed = time.monotonic() - self._started
            self._write(f"{self.label}: {self.done}{'/' + str(self.total) if self.total else ''} done in "
                        f"{_duration(elapsed)}")


@contextlib.contextmanager
def step_progress(label: str, total: int | None = None, *, quiet: bool = False) -> Iterator[StepProgress]:
    """A :class:`StepProgress` for one step; ``quiet`` (e.g. ``--json``) shows nothing at all."""
    from rich.console import Console

    console = Console(stderr=True)
    if quiet or not console.is_terminal:
        def write(text: str) -> None:
            print(text, file=sys.stderr, flush=True)

        progress = StepProgress(label, total, None if quiet else write, _interval())
        try:
            yield progress
        finally:
            progress.finish()
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
        TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("elapsed"), TimeElapsedColumn(),
               TextColumn("ETA"), TimeRemainingColumn())
    progress = StepProgress(label, total, None, _interval())
    with Progress(*columns, console=console, transient=True) as bar:
        progress._bar, progress._task = bar, bar.add_task(label, total=total)
        yield progress
