"""``bgekit score``: cross-encoder teacher scores, checked against the model itself, and resuming."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from bgekit.cli import main
from bgekit.errors import BgekitError
from bgekit.teacher import TeacherScorer, progress_path, score_file
from bgekit.testing import tiny_cross_encoder

ROWS = [
    {"query": f"问题 {i}：长江有多长？", "pos": [f"长江全长约六千三百公里。{i}"],
     "neg": [f"北京是首都。{i}", f"Machine learning {i}", "红楼梦"][: 1 + i % 3], "id": i}
    for i in range(7)
]


@pytest.fixture(scope="module")
def reranker_dir(tmp_path_factory):
    return tiny_cross_encoder(tmp_path_factory.mktemp("tiny-reranker"))


def _train(tmp_path):
    path = tmp_path / "mined.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ROWS), encoding="utf-8")
    return path


def test_scores_match_the_cross_encoder_logits(tmp_path, reranker_dir):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    out = tmp_path / "scored.jsonl"
    result = CliRunner().invoke(main, ["score", "--reranker", str(reranker_dir), "--input", str(_train(tmp_path)),
                                       "--output", str(out), "--batch-size", "3"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    tokenizer = AutoTokenizer.from_pretrained(reranker_dir)
    model = AutoModelForSequenceClassification.from_pretrained(reranker_dir).eval()
    for row in rows:
        for field, texts in (("pos_scores", row["pos"]), ("neg_scores", row["neg"])):
            with torch.no_grad():  # one pair at a time, no padding: independent of batching and sorting
                want = [model(**tokenizer(row["query"], t, return_tensors="pt")).logits[0, 0].item() for t in texts]
            assert row[field] == pytest.approx(want, abs=1e-4)
    assert [r["id"] for r in rows] == list(range(7)) and not progress_path(out).exists()

    normalized = tmp_path / "normalized.jsonl"
    CliRunner().invoke(main, ["score", "--reranker", str(reranker_dir), "--input", str(_train(tmp_path)),
                              "--output", str(normalized), "--normalize"])
    first = json.loads(normalized.read_text(encoding="utf-8").splitlines()[0])
    assert first["pos_scores"][0] == pytest.approx(1 / (1 + torch.exp(torch.tensor(-rows[0]["pos_scores"][0])).item()))


class Killed(Exception):
    pass


class CountingScorer:
    """Wraps a scorer, counts the pairs it scores, and can die after some calls."""

    def __init__(self, inner, die_after_calls=None):
        self.inner, self.die_after_calls, self.calls, self.pairs = inner, die_after_calls, 0, []

    def settings(self):
        return self.inner.settings()

    def score_pairs(self, pairs):
        if self.die_after_calls is not None and self.calls >= self.die_after_calls:
            raise Killed
        self.calls += 1
        self.pairs.extend(pairs)
        return self.inner.score_pairs(pairs)


def test_a_killed_run_resumes_without_rescoring(tmp_path, reranker_dir):
    train = _train(tmp_path)
    inner = TeacherScorer(str(reranker_dir), device="cpu", batch_size=4)
    reference = tmp_path / "reference.jsonl"
    score_file(train, reference, inner, chunk_rows=2)

    out = tmp_path / "scored.jsonl"
    dying = CountingScorer(inner, die_after_calls=2)
    with pytest.raises(Killed):
        score_file(train, out, dying, chunk_rows=2)
    assert not out.exists() and progress_path(out).exists()
    scored_before = list(dying.pairs)
    with open(progress_path(out), "a", encoding="utf-8") as log:
        log.write('{"row": 6, "pos": [0.')  # a kill in the middle of a write

    with pytest.raises(BgekitError, match="delete it"):  # read another way, the rows may not be these rows
        score_file(train, out, inner, chunk_rows=2, fmt={"name": "jsonl"})
    resumed = CountingScorer(inner)
    summary = score_file(train, out, resumed, chunk_rows=2)
    assert summary.rows_resumed == 4
    assert not set(resumed.pairs) & set(scored_before)  # nothing scored twice
    assert len(resumed.pairs) + len(scored_before) == sum(1 + len(r["neg"]) for r in ROWS)
    assert out.read_text(encoding="utf-8") == reference.read_text(encoding="utf-8")
    assert not progress_path(out).exists()


def test_progress_of_another_input_is_refused(tmp_path, reranker_dir, tiny_model_dir):
    train = _train(tmp_path)
    out = tmp_path / "scored.jsonl"
    progress_path(out).write_text('{"fingerprint": "something else"}\n', encoding="utf-8")
    with pytest.raises(BgekitError, match="delete it"):
        score_file(train, out, TeacherScorer(str(reranker_dir), device="cpu"))
    with pytest.raises(BgekitError, match="not a trained cross-encoder"):
        TeacherScorer(str(tiny_model_dir), device="cpu")  # a plain encoder would score with a random head
    with pytest.raises(BgekitError, match="no room"):
        TeacherScorer(str(reranker_dir), device="cpu", max_length=16, query_max_length=15)
