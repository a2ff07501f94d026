"""Rich tables for evaluation, comparison and benchmark results."""

from __future__ import annotations

import math
from typing import Sequence

from rich.table import Table

from bgekit.evaluate.results import EvalResult


def metrics_table(results: Sequence[EvalResult], title: str = "") -> Table:
    """One column per system, one row per metric."""
    table = Table(title=title or None)
    table.add_column("metric")
    for result in results:
        table.add_column(f"{result.label}\n({len(result.values.qids)} queries)", justify="right")
    names = list(dict.fromkeys(n for r in results for n in r.values.names))
    for name in names:
        table.add_row(name, *(_fmt(r.metrics.get(name)) for r in results))
    return table


def comparison_table(rows: Sequence[dict], title: str = "") -> Table:
    """Rows from :meth:`bgekit.evaluate.compare.Comparison.to_json`'s ``metrics``."""
    table = Table(title=title or None)
    for col in ("metric", "baseline", "candidate", "delta", "CI", "p", "d", "+/-/="):
        table.add_column(col, justify="left" if col == "metric" else "right", no_wrap=col in ("metric", "CI"))
    for row in rows:
        ci = f"[{row['ci_low']:+.3f}, {row['ci_high']:+.3f}]"
        style = "green" if row["ci_low"] > 0 else "red" if row["ci_high"] < 0 else ""
        effect = row["effect_size"]
        table.add_row(
            row["metric"], _fmt(row["baseline"]), _fmt(row["candidate"]), f"[{style}]{row['delta']:+.4f}[/]" if style
            else f"{row['delta']:+.4f}", ci, f"{row['p_value']:.4f}",
            "inf" if effect is None else f"{effect:+.2f}", f"{row['improved']}/{row['hurt']}/{row['tied']}",
        )
    return table


def _fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.4f}"
