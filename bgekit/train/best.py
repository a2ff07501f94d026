"""``train.select_best``: keep the model that scored best on one evaluation metric.

Every evaluation during training (``evaluate.every_steps``) and the one at
the end are offered to :class:`BestModel`. When the chosen metric beats the
best so far, the model is saved to ``<output_dir>/best`` (written to a temp
folder, then renamed) and ``<output_dir>/best.json`` records the step and the
value. ``<output_dir>/model`` stays the last step's model, so both are there
to compare. Every bgekit metric is "higher is better"; ties keep the earlier
model. A resumed run reads ``best.json`` first, so it only replaces ``best``
with a model that beats the one saved before the interruption.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable, Sequence

from bgekit.data.atomic import atomic_write
from bgekit.errors import BgekitError
from bgekit.train import checkpoint as ckpt

BEST_DIR = "best"
BEST_FILE = "best.json"


def check_select_best(metric: str | None, evaluate: dict[str, Any] | None) -> None:
    """A clear error, before any loading, when ``select_best`` cannot work with this ``evaluate`` section."""
    if not metric:
        return
    evaluate = evaluate or {}
    if not evaluate.get("corpus"):
        raise BgekitError(f"train.select_best: {metric} needs held-out data; set evaluate.corpus, "
                          "evaluate.queries and evaluate.qrels")
    metrics: Sequence[str] = evaluate.get("metrics") or []
    if metric not in metrics:
        raise BgekitError(f"train.select_best: {metric} is not among evaluate.metrics ({', '.join(metrics)}); "
                          f"add it there")


class BestModel:
    """Tracks the best value of ``metric`` and saves the model that reached it."""

    def __init__(self, output_dir: str | Path, metric: str,
                 save: Callable[[Any, Path], None]) -> None:
        self.output_dir = Path(output_dir)
        self.metric = metric
        self.save = save  # (model, folder) -> None: the task's own save (model + resolved recipe)
        self.step: int | None = None
        self.value = -math.inf
        previous = self.output_dir / BEST_FILE
        if previous.is_file() and (self.output_dir / BEST_DIR).is_dir():
            record = json.loads(previous.read_text(encoding="utf-8"))
            if record.get("metric") == metric:
                self.step, self.value = int(record["step"]), float(record["value"])

    @property
    def path(self) -> Path:
        return self.output_dir / BEST_DIR

    def offer(self, step: int, metrics: dict[str, float], model: Any) -> bool:
        """Save ``model`` as the best when ``metrics[metric]`` beats the best so far; True if it did."""
        if self.metric not in metrics:
            raise BgekitError(f"train.select_best: the evaluation returned no {self.metric} "
                              f"(it returned {', '.join(metrics) or 'nothing'})")
        value = float(metrics[self.metric])
        if not value > self.value:  # also False for NaN
            return False
        ckpt.write_dir_atomically(self.path, lambda tmp: self.save(model, tmp), f"the best model {self.path}")
        self.step, self.value = step, value
        with atomic_write(self.output_dir / BEST_FILE) as handle:
            handle.write(json.dumps({"metric": self.metric, "step": step, "value": value,
                                     "path": str(self.path)}, indent=2) + "\n")
        return True

    def summary(self) -> dict[str, Any]:
        return {"best_dir": str(self.path) if self.step is not None else None, "best_step": self.step,
                "best_metric": self.metric, "best_value": self.value if self.step is not None else None}
