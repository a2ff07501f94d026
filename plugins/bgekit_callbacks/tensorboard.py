"""``tensorboard``: scalars for TensorBoard (needs ``pip install 'bgekit[tensorboard]'``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from bgekit.api import BgekitError, hookimpl


class TensorBoardLogger:
    """Every numeric metric becomes a scalar: ``train/<name>`` per step, ``eval/<name>`` per evaluation."""

    def __init__(self, log_dir: str = "tensorboard") -> None:
        if importlib.util.find_spec("tensorboard") is None:
            raise BgekitError("callback 'tensorboard' needs the tensorboard package: "
                              "pip install 'bgekit[tensorboard]' (or drop it from callbacks)")
        self.log_dir = log_dir
        self.writer: Any = None
        self.is_main = False

    @hookimpl
    def bgekit_on_run_start(self, run: Any) -> None:
        self.writer = None
        self.is_main = run.is_main_process

    def _open(self, run: Any) -> None:
        """The writer, opened at the first scalar: by then the trainer has set ``run.resume_step``, and a
        resumed run purges the events after it (it logs those steps again)."""
        from torch.utils.tensorboard import SummaryWriter

        resume_step = getattr(run, "resume_step", None)
        self.writer = SummaryWriter(log_dir=str(Path(run.output_dir) / self.log_dir),
                                    purge_step=resume_step + 1 if resume_step else None)

    def _scalars(self, run: Any, prefix: str, step: int, metrics: dict) -> None:
        if not self.is_main:
            return
        if self.writer is None:
            self._open(run)
        for name, value in metrics.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and name != "step":
                self.writer.add_scalar(f"{prefix}/{name}", value, step)
        self.writer.flush()

    @hookimpl
    def bgekit_on_step_end(self, run: Any, step: int, metrics: dict) -> None:
        self._scalars(run, "train", step, metrics)

    @hookimpl
    def bgekit_on_evaluate_end(self, run: Any, step: int, metrics: dict) -> None:
        self._scalars(run, "eval", step, metrics)

    @hookimpl
    def bgekit_on_run_end(self, run: Any, status: str) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
