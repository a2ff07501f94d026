"""Comparison of result directories, and the HTML/Markdown report (rendered in Chromium when present)."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from bgekit.evaluate.compare import compare_results  # noqa: E402
from bgekit.evaluate.judged import judge_run  # noqa: E402
from bgekit.evaluate.report import write_report  # noqa: E402
from bgekit.evaluate.results import evaluate_judged, read_result, write_result  # noqa: E402

METRICS = ["ndcg@10", "recall@20", "coverage@20", "mrr@10"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def synthetic_results(n_queries: int = 150, seed: int = 0):
    """A baseline and a candidate that ranks each query's relevant documents higher."""
    rng = np.random.default_rng(seed)
    qrels, base_run, cand_run = {}, {}, {}
    for q in range(n_queries):
        qid = f"q{q}"
        relevant = {f"d{d}": int(rng.integers(1, 3)) for d in rng.choice(50, 3, replace=False)}
        qrels[qid] = relevant
        noise = {f"d{d}": float(rng.random()) for d in range(50)}
        base_run[qid] = noise
        cand_run[qid] = {d: s + (0.6 if d in relevant else 0.0) for d, s in noise.items()}
    baseline = evaluate_judged("base", judge_run(base_run, qrels), METRICS)
    candidate = evaluate_judged("tuned", judge_run(cand_run, qrels), METRICS)
    return baseline, candidate


def test_result_directories_round_trip(tmp_path):
    baseline, _ = synthetic_results()
    write_result(tmp_path / "base", baseline)
    back = read_result(tmp_path / "base")
    assert back.values.qids == baseline.values.qids
    assert back.metrics == pytest.approx(baseline.metrics)
    assert back.recall_curve == pytest.approx(baseline.recall_curve)
    np.testing.assert_array_equal(back.values.weights["coverage@20"], baseline.values.weights["coverage@20"])


def test_compare_cli_on_result_dirs_real_subprocess(tmp_path):
    """A clearly better candidate: CI above zero, small p; the baseline against itself: zeros and p = 1."""
    baseline, candidate = synthetic_results()
    write_result(tmp_path / "base", baseline)
    write_result(tmp_path / "tuned", candidate)
    cmd = [sys.executable, "-m", "bgekit.cli", "compare", "--baseline", str(tmp_path / "base"), "--samples", "500",
           "--json"]
    better = subprocess.run(cmd + ["--candidate", str(tmp_path / "tuned")], capture_output=True, text=True,
                            timeout=120)
    assert better.returncode == 0, better.stderr
    rows = {r["metric"]: r for r in json.loads(better.stdout)["metrics"]}
    assert set(rows) == set(METRICS)
    for row in rows.values():
        assert 0 < row["ci_low"] <= row["delta"] <= row["ci_high"]
        assert row["p_value"] < 0.01 and row["improved"] > row["hurt"]

    from click.testing import CliRunner

    from bgekit.cli import main

    same = CliRunner().invoke(main, ["compare", "--baseline", str(tmp_path / "base"), "--candidate",
                                     str(tmp_path / "base"), "--json", "--samples", "200"])
    assert same.exit_code == 0, same.output
    for row in json.loads(same.stdout)["metrics"]:
        assert row["delta"] == 0 and row["ci_low"] == 0 and row["ci_high"] == 0
        assert row["p_value"] == 1.0 and row["hurt"] == row["improved"] == 0


def test_report_is_self_contained_with_every_plot(tmp_path):
    baseline, candidate = synthetic_results()
    comparison = compare_results(baseline, candidate, samples=200)
    html_path = write_report(tmp_path / "report", [baseline, candidate], comparison, title="tuned vs base")
    page = html_path.read_text(encoding="utf-8")
    images = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    # recall curve, metric bars, delta bars, one delta histogram per metric
    assert len(images) == 3 + len(METRICS)
    assert all(base64.b64decode(img).startswith(PNG_SIGNATURE) for img in images)
    assert not re.search(r"(src|href)=['\"]?(https?:|//)", page)  # nothing fetched from outside
    md = (tmp_path / "report" / "report.md").read_text(encoding="utf-8")
    for target in re.findall(r"\]\((plots/[^)]+)\)", md):
        assert (tmp_path / "report" / target).read_bytes().startswith(PNG_SIGNATURE)
    summary = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert summary["comparison"]["p_value_method"].startswith("paired randomisation")
    assert [r["label"] for r in summary["results"]] == ["base", "tuned"]


def _browser() -> str | None:
    for name in ("chromium", "chromium-headless-shell", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


@pytest.mark.skipif(_browser() is None and not os.environ.get("BGEKIT_CI"),
                    reason="no Chromium on this machine (.ci/run installs it and sets BGEKIT_CI=1, where this fails)")
def test_report_renders_in_headless_chromium(tmp_path):
    assert _browser(), "BGEKIT_CI is set but no Chromium is installed (.ci/run installs Debian's chromium)"
    baseline, candidate = synthetic_results()
    html_path = write_report(tmp_path / "report", [baseline, candidate],
                             compare_results(baseline, candidate, samples=100))
    browser = [_browser(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    dom = subprocess.run(browser + ["--dump-dom", html_path.as_uri()], capture_output=True, text=True, timeout=60)
    rendered = re.search(r'data-plots-rendered="(\d+)/(\d+)"', dom.stdout)
    assert rendered, dom.stderr[-2000:]
    assert rendered.group(1) == rendered.group(2) == str(3 + len(METRICS))  # every image decoded
    shot = tmp_path / "shot.png"
    subprocess.run(browser + ["--window-size=1000,1800", f"--screenshot={shot}", html_path.as_uri()],
                   capture_output=True, timeout=60)
    from matplotlib.image import imread

    pixels = imread(shot)[..., :3]
    assert pixels.shape[:2] == (1800, 1000)
    colourful = (pixels.max(axis=2) - pixels.min(axis=2)) > 0.3  # plot lines and bars, not grey text
    assert colourful.mean() > 0.01
