"""What a new user meets first: optional dependencies checked before work, extras listed by doctor,
progress that shows on a terminal and stays quiet (periodic plain lines) in logs."""

from __future__ import annotations

import json
import sys

import pytest
from click.testing import CliRunner

from bgekit.cli import main
from bgekit.commands.progress import StepProgress


@pytest.fixture
def qrels_and_run(tmp_path):
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text("q1\t0\td1\t1\nq2\t0\td2\t1\n", encoding="utf-8")
    run = tmp_path / "run.trec"
    run.write_text("q1 Q0 d1 1 2.0 t\nq1 Q0 d2 2 1.0 t\nq2 Q0 d1 1 2.0 t\nq2 Q0 d2 2 1.0 t\n", encoding="utf-8")
    return qrels, run


def test_report_without_matplotlib_fails_before_any_work(qrels_and_run, tmp_path, monkeypatch):
    qrels, run = qrels_and_run
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if it were not installed
    out = tmp_path / "results"
    result = CliRunner().invoke(main, ["eval", "metrics", "--qrels", str(qrels), "--run", str(run),
                                       "--output", str(out), "--report", str(tmp_path / "report")])
    assert result.exit_code == 1
    assert result.output == "error: reports need matplotlib: pip install 'bgekit[report]'\n"
    assert not out.exists()  # nothing was evaluated or written first


def test_report_with_matplotlib_still_works(qrels_and_run, tmp_path):
    pytest.importorskip("matplotlib")
    qrels, run = qrels_and_run
    result = CliRunner().invoke(main, ["eval", "metrics", "--qrels", str(qrels), "--run", str(run),
                                       "--report", str(tmp_path / "report")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "report" / "report.html").is_file()


def test_doctor_lists_each_extra_with_what_it_enables(monkeypatch):
    from bgekit.commands import doctor

    real = doctor._version
    monkeypatch.setattr(doctor, "_version", lambda dist: None if dist == "matplotlib" else real(dist))
    rows = {name: (status, detail) for name, status, detail in doctor.checks(doctor.Path("runs"))}
    extras = {name for name in rows if name.startswith("extra ")}
    assert {"extra pairs", "extra report", "extra tensorboard", "extra wandb", "extra quickstart"} <= extras
    status, detail = rows["extra report"]
    assert status == "warn" and "matplotlib missing" in detail and "pip install 'bgekit[report]'" in detail
    assert "--report" in detail  # what it enables
    status, detail = rows["extra pairs"]
    assert status == "ok" and detail.startswith("installed") and "BM25" in detail
    result = CliRunner().invoke(main, ["doctor"])
    assert "extra report" in result.output


def test_plain_progress_lines_have_counts_rate_and_eta():
    lines = []
    progress = StepProgress("encoding", 10, lines.append, interval=0)
    progress._started -= 4.0  # four seconds in
    progress.advance(4)
    assert lines and lines[-1].startswith("encoding: 4/10 (40%), ") and "/s, ETA " in lines[-1]
    progress.advance(6)
    progress.finish()
    assert lines[-1].startswith("encoding: 10/10 done in ")
    quiet = StepProgress("scoring", None, None, interval=0)
    quiet.advance(3)
    quiet.finish()  # nothing to write to: nothing written, no error
    assert quiet.line().startswith("scoring: 3, ")


def test_commands_print_periodic_progress_lines_when_not_on_a_terminal(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("BGEKIT_PROGRESS_SECONDS", "0")  # every batch, to see them in a fast test
    texts = tmp_path / "texts.jsonl"
    texts.write_text("".join(json.dumps({"text": f"text {i} 北京"}) + "\n" for i in range(5)), encoding="utf-8")
    result = CliRunner().invoke(main, ["encode", "--model", str(tiny_model_dir), "--input", str(texts),
                                       "--output", str(tmp_path / "v.jsonl"), "--batch-size", "2"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("encoding: ")]
    assert lines[0].startswith("encoding: 2/5 (40%)") and lines[-1].startswith("encoding: 5/5 done in")
    assert "\x1b[" not in result.stderr and "━" not in result.stderr  # plain: no bar, no escape codes
