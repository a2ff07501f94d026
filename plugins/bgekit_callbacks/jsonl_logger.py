"""``jsonl-logger``: one JSON object per logged step or evaluation, appended to ``metrics.jsonl``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import bgekit


class JsonlLogger:
    """Appends ``{"event", "step", "time", **metrics}`` lines; a resumed run appends to the same file."""

    def __init__(self, filename: str = "metrics.jsonl") -> None:
        self.filename = filename
        self.path: Path | None = None

    @bgekit.hookimpl
    def bgekit_on_run_start(self, run: Any) -> None:
        if run.is_main_process:
            self.path = Path(run.output_dir) / self.filename
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def _write(self, event: str, step: int, metrics: dict[str, Any]) -> None:
        if self.path is None:
            return
        line = json.dumps({"event": event, "step": step, "time": round(time.time(), 3), **metrics},
                          ensure_ascii=False, default=float)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")

    @bgekit.hookimpl
    def bgekit_on_step_end(self, run: Any, step: int, metrics: dict) -> None:
        self._write("train", step, {k: v for k, v in metrics.items() if k != "step"})

    @bgekit.hookimpl
    def bgekit_on_evaluate_end(self, run: Any, step: int, metrics: dict) -> None:
        self._write("evaluate", step, metrics)

    @bgekit.hookimpl
    def bgekit_on_checkpoint(self, run: Any, step: int, path: str) -> None:
        self._write("checkpoint", step, {"path": path})

    @bgekit.hookimpl
    def bgekit_on_run_end(self, run: Any, status: str) -> None:
        self._write("end", -1, {"status": status})
