"""Batches whose loss or gradient norm is not finite: skipped, counted, logged, bounded.

A NaN or infinite loss (or gradient norm) would poison the weights for good.
The trainer skips such an update (no optimizer or scheduler step), and
:class:`FailedBatches` appends one line per skipped batch to
``<output_dir>/errors.jsonl`` with the examples it held (their line numbers
in the training data and ids), so the rows can be found and fixed. More than
``train.max_failed_batches`` of them stop the run with a one-line error: at
that point the learning rate, not the data, is usually the problem.

Weights are checked before every checkpoint and final save
(:func:`check_finite_weights`): a non-finite model is never written, so the
last good checkpoint is never pruned for a bad one.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, Sequence

import torch

from bgekit.data.jsonlines import truncate_jsonl_after
from bgekit.errors import BgekitError

ERRORS_FILE = "errors.jsonl"


def _finite(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


class FailedBatches:
    """Counts and logs skipped batches; raises once more than ``limit`` were skipped in the run."""

    def __init__(self, output_dir: Path, limit: int, *, write: bool = True, examples: Sequence[Any] = ()) -> None:
        self.path = Path(output_dir) / ERRORS_FILE
        self.limit = limit
        self.write = write
        self.examples = examples  # the sampler's examples, to name a batch's rows
        self.count = 0

    def resume_at(self, step: int, count: int) -> None:
        """Continue from a checkpoint at ``step`` that had skipped ``count`` batches: drop later lines."""
        self.count = count
        if self.write:
            truncate_jsonl_after(self.path, step)

    def describe(self, indices: Sequence[int]) -> list[dict[str, Any]]:
        out = []
        for index in indices:
            example = self.examples[index] if 0 <= index < len(self.examples) else None
            item: dict[str, Any] = {"index": int(index)}
            if example is not None:
                item["line"] = getattr(example, "line", None)
                extra = getattr(example, "extra", None) or {}
                if "id" in extra:
                    item["id"] = extra["id"]
            out.append(item)
        return out

    def record(self, step: int, reason: str, loss: Any, grad_norm: Any, indices: Sequence[int]) -> None:
        """Log one skipped batch (``step`` is the update it would have been); raise past the limit."""
        self.count += 1
        if self.write:
            line = {"step": step, "time": round(time.time(), 3), "reason": reason,
                    "loss": _finite(loss) if loss is not None else None,
                    "grad_norm": _finite(grad_norm) if grad_norm is not None else None,
                    "failed_batches": self.count, "examples": self.describe(indices)}
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(line, default=str) + "\n")
        if self.count > self.limit:
            raise BgekitError(f"training stopped at step {step - 1}: {self.count} batches failed (non-finite "
                              "loss or gradient norm, or out of memory; train.max_failed_batches is "
                              f"{self.limit}); their examples and reasons are in {self.path}. Lower "
                              "train.learning_rate (or train.batch_size for memory) or fix those rows, then "
                              "resume with train.resume_from=latest")


def check_finite_weights(model: torch.nn.Module, what: str) -> None:
    """A one-line error, before anything is written, when any weight of ``model`` is NaN or infinite."""
    checks = [torch.isfinite(p).all() for p in model.parameters()]
    if checks and not bool(torch.stack(checks).all()):
        raise BgekitError(f"not saving {what}: the model's weights are not finite (NaN or inf); earlier checkpoints "
                          "are kept. Lower train.learning_rate and resume with train.resume_from=latest")
