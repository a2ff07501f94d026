"""``jsonl-logger``: one JSON object per logged step or evaluation, appended to ``metrics.jsonl``.

A resumed run first drops the lines after the step it resumes from (the
trainer sets ``run.resume_step``), since it logs those steps again: the file
reads as if the run had never stopped.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from bgekit.api import hookimpl, truncate_jsonl_after


class JsonlLogger:
    """Appends ``{"event", "step", "time", **metrics}`` lines; a resumed run appends to the same file."""

    def __init__(self, filename: str = "metrics.jsonl") -> None:
        self.filename = filename
        self.path: Path | None = None
        self.truncated = False

    @hookimpl
    def bgekit_on_run_start(self, run: Any) -> None:
        if run.is_main_process:
            self.path = Path(run.output_dir) / self.filename
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def _write(self, run: Any, event: str, step: int, metrics: dict[str, Any]) -> None:
        if self.path is None:
            return
        resume_step = getattr(run, "resume_step", None)
        if not self.truncated and resume_step is not None:
            truncate_jsonl_after(self.path, resume_step)
            self.truncated = True
        line = json.dumps({"event": event, "step": step, "time": round(time.time(), 3), **metrics},
                          ensure_ascii=False, default=float)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")

    @hookimpl
    def bgekit_on_step_end(self, run: Any, step: int, metrics: dict) -> None:
        self._write(run, "train", step, {k: v for k, v in metrics.items() if k != "step"})

    @hookimpl
    def bgekit_on_evaluate_end(self, run: Any, step: int, metrics: dict) -> None:
        self._write(run, "evaluate", step, metrics)

    @hookimpl
    def bgekit_on_checkpoint(self, run: Any, step: int, path: str) -> None:
        self._write(run, "checkpoint", step, {"path": path})

    @hookimpl
    def bgekit_on_run_end(self, run: Any, status: str) -> None:
        self._write(run, "end", -1, {"status": status})
