"""`bgekit eval metrics` and the qrels/run readers behind it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import pytrec_eval
from click.testing import CliRunner

from bgekit.commands.eval import eval_group
from bgekit.errors import BgekitError
from bgekit.evaluate.trec import read_qrels, read_run

RUN = """\
q1 Q0 d3 1 0.9 sys
q1 Q0 d1 2 0.9 sys
q1 Q0 d2 3 0.5 sys
q2 Q0 d9 1 2.0 sys
q3 Q0 d1 1 1.0 sys
"""
QRELS_TREC = "q1 0 d1 2\nq1 0 d2 1\nq1 0 d4 1\nq2 0 d9 0\n"
QRELS_BEIR = "query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\td2\t1\nq1\td4\t1\nq2\td9\t0\n"


@pytest.fixture
def files(tmp_path):
    (tmp_path / "run.trec").write_text(RUN)
    (tmp_path / "qrels.trec").write_text(QRELS_TREC)
    (tmp_path / "qrels.tsv").write_text(QRELS_BEIR)
    return tmp_path


def expected(tmp_path, measure: str) -> float:
    """pytrec_eval's mean over the queries trec_eval evaluates."""
    per_query = pytrec_eval.RelevanceEvaluator(read_qrels(tmp_path / "qrels.trec"), {measure}).evaluate(
        read_run(tmp_path / "run.trec"))
    key = measure.replace(".", "_")
    return sum(v[key] for v in per_query.values()) / len(per_query)


def test_trec_and_beir_qrels_read_alike(files):
    assert read_qrels(files / "qrels.trec") == read_qrels(files / "qrels.tsv")
    (files / "noheader.tsv").write_text(QRELS_BEIR.split("\n", 1)[1])
    assert read_qrels(files / "noheader.tsv") == read_qrels(files / "qrels.tsv")


def test_eval_metrics_json_matches_pytrec_eval(files):
    result = CliRunner().invoke(eval_group, [
        "metrics", "--qrels", str(files / "qrels.tsv"), "--run", str(files / "run.trec"),
        "--metrics", "ndcg@10,map", "--metrics", "precision@2", "--json",
        "--output", str(files / "out"), "--report", str(files / "report")])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["num_queries"] == 2  # q3 has no qrels: skipped, as trec_eval does
    assert payload["metrics"]["ndcg@10"] == pytest.approx(expected(files, "ndcg_cut.10"), abs=1e-6)
    assert payload["metrics"]["map"] == pytest.approx(expected(files, "map"), abs=1e-6)
    assert payload["metrics"]["precision@2"] == pytest.approx(expected(files, "P.2"), abs=1e-6)
    per_query = (files / "out" / "per_query.jsonl").read_text().splitlines()
    assert [json.loads(line)["qid"] for line in per_query] == ["q1", "q2"]
    page = (files / "report" / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 2  # recall curve and metric bars


def test_eval_metrics_table_and_complete(files):
    result = CliRunner().invoke(eval_group, ["metrics", "--qrels", str(files / "qrels.trec"),
                                             "--run", str(files / "run.trec"), "--metrics", "recall@10"])
    assert result.exit_code == 0, result.output
    assert "recall@10" in result.output and "0.3333" in result.output  # (2/3 + 0) / 2
    (files / "q4.trec").write_text(QRELS_TREC + "q4 0 d7 1\n")
    result = CliRunner().invoke(eval_group, ["metrics", "--qrels", str(files / "q4.trec"), "--run",
                                             str(files / "run.trec"), "--metrics", "recall@10", "--complete", "--json"])
    assert json.loads(result.stdout)["num_queries"] == 3


@pytest.mark.parametrize("name, content, message", [
    ("run.trec", "q1 Q0 d1 1 0.5\n", r"run.trec:1: expected 'qid Q0 docid rank score tag'"),
    ("run.trec", "q1 Q0 d1 1 0.5 t\nq1 Q0 d2 2 high t\n", r"run.trec:2: score 'high' is not a number"),
    ("run.trec", "q1 Q0 d1 1 0.5 t\n\nq1 Q0 d1 2 0.4 t\n", r"run.trec:3: document 'd1' is listed twice"),
    ("qrels.tsv", "q1\td1\t1\nq1\td2\n", r"qrels.tsv:2  expected 3 columns"),
    ("qrels.tsv", "q1\td1\t0.5\n", r"qrels.tsv:1  \$.score  relevance '0.5' is not a whole number"),
    ("qrels.trec", "q1 0 d1 x\n", r"qrels.trec:1  \$.score  relevance 'x' is not a number"),
    ("qrels.trec", "q1 d1\n", r"qrels.trec:1  expected 3 columns \(query-id corpus-id score\) or 4 \(TREC\)"),
])
def test_bad_lines_name_file_and_line(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    reader = read_run if name.startswith("run") else read_qrels
    with pytest.raises(BgekitError, match=message):
        reader(path)


def test_eval_metrics_real_subprocess(files):
    """The installed command line, end to end."""
    cmd = [sys.executable, "-m", "bgekit.cli", "eval", "metrics", "--qrels", str(files / "qrels.trec"),
           "--run", str(files / "run.trec"), "--metrics", "mrr@10", "--json"]
    ok = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["metrics"]["mrr@10"] == pytest.approx(expected(files, "recip_rank"), abs=1e-6)


def test_errors_are_one_clean_line_with_exit_1(files):
    from bgekit.cli import main

    result = CliRunner().invoke(main, ["eval", "metrics", "--qrels", str(files / "qrels.trec"), "--run",
                                       str(files / "run.trec"), "--metrics", "ndcg@10,Nope@3"])
    assert result.exit_code == 1
    assert "unknown metric 'nope'" in result.output and "Traceback" not in result.output
    assert "metric 'Nope@3'" in result.output  # what the user wrote, as recipe errors say it
