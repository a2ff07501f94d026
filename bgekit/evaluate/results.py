"""An evaluation's results, and the directory they are written to and read back from.

A result directory holds:

- ``metrics.json``: aggregate metrics, number of queries, recall@k curve, and
  what was evaluated (model, mode, data files, top_k, ...);
- ``per_query.jsonl``: one line per evaluated query, ``{"qid", "num_rel",
  "num_ret", "metrics": {...}, "weights": {...}}`` (weights only for pooled
  metrics such as coverage);
- ``run.trec``: the ranking, when the evaluation produced one.

``bgekit compare`` reads two such directories, so a baseline evaluated once
can be compared with many candidates.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from bgekit.data.atomic import atomic_write
from bgekit.data.example import RowError
from bgekit.data.jsonlines import iter_jsonl_records
from bgekit.errors import BgekitError
from bgekit.evaluate.judged import Judged
from bgekit.evaluate.metrics import MetricValues, compute

METRICS_FILE = "metrics.json"
PER_QUERY_FILE = "per_query.jsonl"
RUN_FILE = "run.trec"
#: cut-offs of the recall@k curve drawn in reports (those up to the ranking depth)
CURVE_CUTOFFS = (1, 2, 3, 5, 10, 20, 30, 50, 100, 200, 500, 1000)


@dataclass
class EvalResult:
    """Per-query metric values of one system, its recall curve, and what produced them."""

    label: str
    values: MetricValues
    recall_curve: dict[int, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def metrics(self) -> dict[str, float]:
        return self.values.summary()

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "metrics": self.metrics,
            "num_queries": len(self.values.qids),
            "recall_curve": {str(k): v for k, v in self.recall_curve.items()},
            **self.info,
        }


def recall_curve(judged: Judged) -> dict[int, float]:
    """Mean recall@k at the standard cut-offs up to the ranking's depth."""
    depth = judged.grades.shape[1]
    cutoffs = [k for k in CURVE_CUTOFFS if k <= depth] or [max(depth, 1)]
    values = compute(judged, [f"recall@{k}" for k in cutoffs])
    return {k: values.aggregate(f"recall@{k}") for k in cutoffs}


def evaluate_judged(label: str, judged: Judged, metrics: Sequence[str], info: dict[str, Any] | None = None) -> EvalResult:
    """Metrics and recall curve of judged rankings, as one result."""
    return EvalResult(label, compute(judged, metrics), recall_curve(judged), dict(info or {}))


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def run_tag(label: str) -> str:
    """The ``tag`` column of a result's ``run.trec``: its label without spaces."""
    return label.replace(" ", "_") or "bgekit"


def write_result(directory: str | Path, result: EvalResult, run_lines: Iterable[str] | None = None) -> Path:
    """Write ``metrics.json``, ``per_query.jsonl`` and, given its lines, ``run.trec`` into ``directory``
    (atomically, each)."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    if run_lines is not None:
        with atomic_write(out / RUN_FILE) as fh:
            fh.writelines(run_lines)
    values = result.values
    lines = []
    for i, qid in enumerate(values.qids):
        row: dict[str, Any] = {"qid": qid}
        if values.num_rel is not None:
            row["num_rel"] = int(values.num_rel[i])
        if values.num_ret is not None:
            row["num_ret"] = int(values.num_ret[i])
        row["metrics"] = {n: _finite(float(v[i])) for n, v in values.per_query.items()}
        if values.weights:
            row["weights"] = {n: float(w[i]) for n, w in values.weights.items()}
        lines.append(json.dumps(row, ensure_ascii=False))
    with atomic_write(out / PER_QUERY_FILE) as fh:
        fh.writelines(line + "\n" for line in lines)
    with atomic_write(out / METRICS_FILE) as fh:
        fh.write(json.dumps(result.to_json(), indent=2, ensure_ascii=False) + "\n")
    return out


def is_result_dir(path: str | Path) -> bool:
    p = Path(path)
    return (p / METRICS_FILE).is_file() and (p / PER_QUERY_FILE).is_file()


def read_result(directory: str | Path) -> EvalResult:
    """Read a directory written by :func:`write_result`."""
    root = Path(directory)
    if not is_result_dir(root):
        raise BgekitError(f"{root}: not an evaluation result directory (needs {METRICS_FILE} and "
                          f"{PER_QUERY_FILE}, as written by 'bgekit eval ... --output DIR')")
    try:
        summary = json.loads((root / METRICS_FILE).read_text(encoding="utf-8"))
    except ValueError as exc:
        raise BgekitError(f"{root / METRICS_FILE}: not valid JSON ({exc})") from exc
    qids: list[str] = []
    per_query: dict[str, list[float]] = {}
    weights: dict[str, list[float]] = {}
    num_rel: list[int] = []
    num_ret: list[int] = []
    path = root / PER_QUERY_FILE
    for item in iter_jsonl_records(path, encoding="utf-8"):
        if isinstance(item, RowError):
            raise BgekitError(f"{path}:{item.line}: not a per-query result line ({item.reason})")
        lineno, row = item
        try:
            qids.append(str(row["qid"]))
            for name, value in row["metrics"].items():
                per_query.setdefault(name, []).append(float("nan") if value is None else float(value))
            for name, value in row.get("weights", {}).items():
                weights.setdefault(name, []).append(float(value))
            num_rel.append(int(row.get("num_rel", 0)))
            num_ret.append(int(row.get("num_ret", 0)))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BgekitError(f"{path}:{lineno}: not a per-query result line ({exc})") from exc
    if any(len(v) != len(qids) for v in (*per_query.values(), *weights.values())):
        raise BgekitError(f"{path}: every line must carry the same metrics")
    values = MetricValues(
        qids=qids,
        per_query={n: np.array(v) for n, v in per_query.items()},
        weights={n: np.array(v) for n, v in weights.items()},
        num_rel=np.array(num_rel),
        num_ret=np.array(num_ret),
    )
    info = {k: v for k, v in summary.items() if k not in ("label", "metrics", "num_queries", "recall_curve")}
    curve = {int(k): float(v) for k, v in summary.get("recall_curve", {}).items()}
    return EvalResult(summary.get("label", root.name), values, curve, info)
