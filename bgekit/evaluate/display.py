"""Tables for evaluation, comparison and benchmark results: rich on a terminal, plain text otherwise.

Numbers and paths are never cut: a table too wide for the terminal, and any
output that is not a terminal (a pipe, a file, CI), is printed as plain
aligned text with every cell whole, one row per line, no colours or box
characters, so it can be read by people and parsed by scripts alike.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Sequence

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

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


def distinct_labels(paths: Sequence[str]) -> list[str]:
    """The shortest trailing part of each path that tells them apart (``runs/a/model`` and
    ``runs/b/model`` -> ``a/model`` and ``b/model``); the folder name when that already does, or when
    the paths are the same."""
    parts = [Path(os.path.normpath(str(p))).parts or (str(p),) for p in paths]
    wanted = len({tuple(p) for p in parts})
    longest = max((len(p) for p in parts), default=1)
    for depth in range(1, longest + 1):
        labels = ["/".join(p[-depth:]) for p in parts]
        if len(set(labels)) == wanted:
            return labels
    return ["/".join(p) for p in parts]


def _cell(value) -> str:  # noqa: ANN001 - a rich renderable or markup string
    if isinstance(value, Text):
        return value.plain
    return Text.from_markup(str(value)).plain if isinstance(value, str) else str(value)


def plain_table(table: Table) -> str:
    """``table`` as aligned plain text: title, header, rows; every cell whole (two spaces between columns)."""
    columns = [[_cell(c.header).replace("\n", " ")] + [_cell(v) for v in c._cells] for c in table.columns]
    if not columns:
        return _cell(table.title or "")
    widths = [max(len(v) for v in column) for column in columns]
    right = [c.justify == "right" for c in table.columns]
    lines = [_cell(table.title)] if table.title else []
    for row in zip(*columns):
        cells = [v.rjust(w) if r else v.ljust(w) for v, w, r in zip(row, widths, right)]
        lines.append("  ".join(cells).rstrip())
    if table.caption:
        lines.append(_cell(table.caption))
    return "\n".join(lines)


def show_table(table: Table, console: Console | None = None) -> None:
    """Print ``table``: rich when it fits a terminal, else :func:`plain_table` (never truncated or wrapped)."""
    console = console or Console()
    natural = Measurement.get(console, console.options.update_width(1 << 16), table).maximum  # unconstrained
    if console.is_terminal and natural <= console.width:
        console.print(table)
        return
    console.print(plain_table(table), markup=False, highlight=False, soft_wrap=True, crop=False)


def _fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.4f}"
