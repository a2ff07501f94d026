"""Evaluation and comparison reports: ``report.html``, ``report.md`` and ``metrics.json``.

The HTML file is self-contained: plots are matplotlib PNGs embedded as
base64 ``data:`` URIs, styles are inline, nothing is fetched. The same PNGs
are written under ``plots/`` for ``report.md``. Plots:

- recall@k curve, one line per system;
- metric bars per system, with percentile-bootstrap confidence intervals;
- with a comparison: per-metric delta with its paired bootstrap interval, and
  the distribution of per-query deltas.

matplotlib is the optional extra ``report`` (``pip install 'bgekit[report]'``).
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from bgekit.data.atomic import atomic_write
from bgekit.errors import BgekitError
from bgekit.evaluate.compare import Comparison
from bgekit.evaluate.results import EvalResult
from bgekit.evaluate.stats import bootstrap_ci

#: bootstrap resamples for the error bars of single systems
BAR_SAMPLES = 1000


#: what a report needs beyond bgekit's own dependencies, and how to get it
REPORT_NEEDS = "reports need matplotlib: pip install 'bgekit[report]'"


def require_report_dependencies() -> None:
    """Fail (one line) unless matplotlib can be imported: commands call it before evaluating, so a missing
    optional dependency never costs the evaluation and its printed table."""
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        raise BgekitError(REPORT_NEEDS)


def _figure(width: float = 6.4, height: float = 3.6):
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise BgekitError(REPORT_NEEDS) from exc
    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def recall_curve_plot(results: Sequence[EvalResult]) -> bytes | None:
    curves = [r for r in results if r.recall_curve]
    if not curves:
        return None
    fig = _figure()
    ax = fig.add_subplot()
    for result in curves:
        ks = sorted(result.recall_curve)
        ax.plot(ks, [result.recall_curve[k] for k in ks], marker="o", label=result.label)
    ax.set_xscale("log")
    ticks = sorted({k for r in curves for k in r.recall_curve})
    ax.set_xticks(ticks, [str(k) for k in ticks])
    ax.minorticks_off()
    ax.set_xlabel("k (documents retrieved)")
    ax.set_ylabel("recall@k")
    ax.set_ylim(0, 1.02)
    ax.grid(True, alpha=0.3)
    ax.legend()
    ax.set_title("Recall@k")
    return _png(fig)


def metric_bars_plot(results: Sequence[EvalResult], confidence: float = 0.95) -> bytes:
    names = list(dict.fromkeys(n for r in results for n in r.values.names))
    fig = _figure(max(6.4, 1.2 * len(names) * max(1, len(results)) / 2 + 2))
    ax = fig.add_subplot()
    width = 0.8 / len(results)
    x = np.arange(len(names))
    for i, result in enumerate(results):
        means, lows, highs = [], [], []
        for name in names:
            values = result.values.per_query.get(name)
            if values is None:
                means.append(np.nan), lows.append(0), highs.append(0)
                continue
            weights = result.values.weights.get(name)
            mean = result.values.aggregate(name)
            low, high = bootstrap_ci(values, weights, samples=BAR_SAMPLES, confidence=confidence)
            means.append(mean), lows.append(mean - low), highs.append(high - mean)
        ax.bar(x + (i - (len(results) - 1) / 2) * width, means, width, yerr=[lows, highs], capsize=3,
               label=result.label)
    ax.set_xticks(x, names, rotation=30 if len(names) > 5 else 0)
    ax.set_ylabel("value")
    ax.set_title(f"Metrics with {confidence:.0%} bootstrap intervals")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend()
    return _png(fig)


def delta_bars_plot(comparison: Comparison) -> bytes:
    names = list(comparison.tests)
    tests = [comparison.tests[n] for n in names]
    fig = _figure()
    ax = fig.add_subplot()
    deltas = np.array([t.delta for t in tests])
    errors = [deltas - [t.ci_low for t in tests], [t.ci_high for t in tests] - deltas]
    colours = ["tab:green" if t.ci_low > 0 else "tab:red" if t.ci_high < 0 else "tab:gray" for t in tests]
    ax.bar(names, deltas, yerr=errors, capsize=4, color=colours)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_ylabel("candidate - baseline")
    ax.set_title(f"Delta with {comparison.confidence:.0%} paired bootstrap intervals")
    ax.grid(True, axis="y", alpha=0.3)
    return _png(fig)


def delta_histogram_plot(comparison: Comparison, name: str) -> bytes:
    deltas = comparison.deltas[name]
    fig = _figure()
    ax = fig.add_subplot()
    ax.hist(deltas, bins=min(40, max(10, len(deltas) // 5)), color="tab:blue", alpha=0.8)
    ax.axvline(0, color="black", linewidth=0.8)
    test = comparison.tests[name]
    ax.set_title(f"Per-query {name} delta: {test.improved} improved, {test.hurt} hurt, {test.tied} tied")
    ax.set_xlabel(f"{name} (candidate - baseline)")
    ax.set_ylabel("queries")
    return _png(fig)


def _plots(results: Sequence[EvalResult], comparison: Comparison | None) -> list[tuple[str, str, bytes]]:
    """(file stem, caption, PNG) for every plot of the report."""
    plots = []
    curve = recall_curve_plot(results)
    if curve is not None:
        plots.append(("recall_curve", "Recall@k curve", curve))
    plots.append(("metric_bars", "Metrics with bootstrap confidence intervals", metric_bars_plot(results)))
    if comparison is not None:
        plots.append(("delta_bars", "Deltas with paired bootstrap confidence intervals", delta_bars_plot(comparison)))
        for name in comparison.tests:
            stem = "delta_hist_" + "".join(ch if ch.isalnum() else "_" for ch in name)
            plots.append((stem, f"Per-query {name} deltas", delta_histogram_plot(comparison, name)))
    return plots


def _metric_rows(results: Sequence[EvalResult]) -> tuple[list[str], list[list[str]]]:
    header = ["metric"] + [f"{r.label} ({len(r.values.qids)} queries)" for r in results]
    names = list(dict.fromkeys(n for r in results for n in r.values.names))
    rows = [[n] + [f"{r.metrics[n]:.4f}" if n in r.metrics else "-" for r in results] for n in names]
    return header, rows


def _comparison_rows(comparison: Comparison) -> tuple[list[str], list[list[str]]]:
    header = ["metric", "baseline", "candidate", "delta", f"{comparison.confidence:.0%} CI", "p", "Cohen's d",
              "improved / hurt / tied"]
    rows = []
    for name, t in comparison.tests.items():
        effect = f"{t.effect_size:+.3f}" if np.isfinite(t.effect_size) else ("+inf" if t.effect_size > 0 else "-inf")
        rows.append([name, f"{t.baseline:.4f}", f"{t.candidate:.4f}", f"{t.delta:+.4f}",
                     f"[{t.ci_low:+.4f}, {t.ci_high:+.4f}]", f"{t.p_value:.4f}", effect,
                     f"{t.improved} / {t.hurt} / {t.tied}"])
    return header, rows


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 980px; color: #222; }
table { border-collapse: collapse; margin: 1rem 0; }
th, td { border: 1px solid #ccc; padding: 4px 10px; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
figure { margin: 1.5rem 0; } img { max-width: 100%; }
.note { color: #555; font-size: 0.9em; }
"""

#: marks the page once every plot has decoded, so a headless browser can check that they render
RENDER_CHECK = """
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.setAttribute("data-plots-rendered", ok + "/" + imgs.length);
});
"""


def _write_bytes(path: Path, data: bytes) -> None:
    """Binary counterpart of :func:`bgekit.data.atomic.atomic_write`: temp file, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_report(directory: str | Path, results: Sequence[EvalResult], comparison: Comparison | None = None,
                 title: str = "bgekit evaluation") -> Path:
    """Write ``report.html``, ``report.md``, ``metrics.json`` and ``plots/*.png``; return the HTML path."""
    out = Path(directory)
    plots = _plots(results, comparison)
    for stem, _, png in plots:
        _write_bytes(out / "plots" / f"{stem}.png", png)

    payload: dict[str, Any] = {"results": [r.to_json() for r in results]}
    if comparison is not None:
        payload["comparison"] = comparison.to_json()
    with atomic_write(out / "metrics.json") as fh:
        fh.write(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")

    sections_html, sections_md = [], [f"# {title}", ""]
    header, rows = _metric_rows(results)
    sections_html.append("<h2>Metrics</h2>" + _html_table(header, rows))
    sections_md += ["## Metrics", "", _md_table(header, rows), ""]
    if comparison is not None:
        header, rows = _comparison_rows(comparison)
        note = (f"{len(comparison.qids)} shared queries; CI: {comparison.to_json()['ci_method']}; p: "
                f"{comparison.to_json()['p_value_method']}; {comparison.samples} samples.")
        sections_html.append(f"<h2>{html.escape(comparison.candidate.label)} vs "
                             f"{html.escape(comparison.baseline.label)}</h2>"
                             + _html_table(header, rows) + f"<p class='note'>{html.escape(note)}</p>")
        sections_md += [f"## {comparison.candidate.label} vs {comparison.baseline.label}", "",
                        _md_table(header, rows), "", note, ""]
    sections_html.append("<h2>Plots</h2>")
    sections_md += ["## Plots", ""]
    for stem, caption, png in plots:
        data = base64.b64encode(png).decode("ascii")
        sections_html.append(f"<figure><img alt='{html.escape(caption)}' src='data:image/png;base64,{data}'>"
                             f"<figcaption>{html.escape(caption)}</figcaption></figure>")
        sections_md += [f"![{caption}](plots/{stem}.png)", ""]
    page = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>{''.join(sections_html)}"
            f"<script>{RENDER_CHECK}</script></body></html>\n")
    with atomic_write(out / "report.md") as fh:
        fh.write("\n".join(sections_md))
    with atomic_write(out / "report.html") as fh:
        fh.write(page)
    return out / "report.html"
