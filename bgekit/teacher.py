"""Teacher scores from a cross-encoder for every (query, positive) and (query, negative).

The scores become ``pos_scores`` / ``neg_scores`` for distillation. The
reranker is any Hugging Face ``AutoModelForSequenceClassification`` with
one label (BGE rerankers, or a bgekit-trained reranker), run through
:class:`bgekit.models.cross_encoder.CrossEncoder`: each query is kept within
its own token budget (default 3/4 of ``max_length``) and pairs are batched
longest first.

Scoring is resumable: rows finish in chunks, and each finished chunk is
appended (and synced) to ``OUTPUT.progress.jsonl`` as raw logits. A killed
run started again with the same input, reranker and lengths skips the rows
in that file; the output appears atomically at the end and the progress file
is removed. ``normalize`` (a sigmoid) is applied when writing, so it never
invalidates progress.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from bgekit.data.atomic import atomic_write
from bgekit.data.jsonlines import JsonProblem, iter_json_lines
from bgekit.errors import BgekitError

#: rows scored between two progress records
CHUNK_ROWS = 256


class TeacherScorer:
    """A trained reranker (:class:`bgekit.models.cross_encoder.CrossEncoder`) scoring pairs as raw logits."""

    def __init__(self, path: str, *, device: str = "auto", max_length: int = 512,
                 query_max_length: int | None = None, batch_size: int = 32) -> None:
        from transformers import AutoConfig

        from bgekit.devices import select_backend
        from bgekit.model_paths import local_model_dir
        from bgekit.models.cross_encoder import CrossEncoder
        from bgekit.plugins import get_registry

        # a folder, pkg:NAME or a hub id (fetched into the hub cache, so resuming can fingerprint its files);
        # one line when it cannot be had
        self.path = local_model_dir(path)
        architectures = getattr(AutoConfig.from_pretrained(self.path), "architectures", None) or []
        if not any(a.endswith("ForSequenceClassification") for a in architectures):
            raise BgekitError(f"--reranker {path}: not a trained cross-encoder (no sequence-classification "
                              "head); a teacher must be a reranker such as BAAI/bge-reranker-v2-m3")
        self.model = CrossEncoder.from_pretrained(self.path, max_length=max_length, query_max_length=query_max_length)
        self.model.to(select_backend(get_registry(), device).device()).eval()
        self.max_length, self.query_max_length = self.model.budgets()
        self.batch_size = batch_size

    def settings(self) -> dict[str, Any]:
        """What changes the scores (a resumed run must match it)."""
        from bgekit.mine.cache import model_fingerprint

        return {"model": model_fingerprint(self.path), "max_length": self.max_length,
                "query_max_length": self.query_max_length}

    def score_pairs(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """Raw logits, in the order of ``pairs``."""
        return self.model.score(pairs, batch_size=self.batch_size)


def file_fingerprint(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def progress_path(output: str | os.PathLike) -> Path:
    return Path(f"{output}.progress.jsonl")


def _load_progress(path: Path, fingerprint: str) -> dict[int, dict[str, list[float]]]:
    """Rows already scored; a torn last line (a kill mid-write) is cut off so appending stays clean."""
    if not path.exists():
        return {}
    raw = path.read_bytes()
    if raw and not raw.endswith(b"\n"):
        raw = raw[:raw.rfind(b"\n") + 1]
        with open(path, "r+b") as handle:
            handle.truncate(len(raw))
    records = iter_json_lines(path, "utf-8")
    first = next(records, None)
    if first is None:
        return {}
    if not isinstance(first[1], dict) or first[1].get("fingerprint") != fingerprint:
        raise BgekitError(f"{path} belongs to another input, reranker or length setting; delete it to "
                          "start scoring afresh")
    done = {}
    for line, record, _ in records:
        if not isinstance(record, dict) or not {"row", "pos", "neg"} <= set(record):
            why = record if isinstance(record, JsonProblem) else "expected a record with row, pos and neg"
            raise BgekitError(f"{path}:{line}: {why}; delete the file to start scoring afresh")
        done[int(record["row"])] = {"pos": record["pos"], "neg": record["neg"]}
    return done


@dataclass
class ScoreSummary:
    rows: int
    pairs_scored: int
    rows_resumed: int
    seconds: float

    @property
    def pairs_per_second(self) -> float:
        return self.pairs_scored / self.seconds if self.seconds > 0 else float("nan")


def _sigmoid(values: list[float]) -> list[float]:
    return [float(1.0 / (1.0 + np.exp(-v))) for v in values]


def score_file(input_path: str | os.PathLike, output_path: str | os.PathLike, scorer: Any, *,
               normalize: bool = False, chunk_rows: int = CHUNK_ROWS, fmt: str | dict[str, Any] = "auto",
               progress: Callable[[int], None] | None = None,
               on_start: Callable[[int], None] | None = None) -> ScoreSummary:
    """Write ``input_path``'s rows with teacher ``pos_scores``/``neg_scores`` to ``output_path``.

    ``scorer`` has ``score_pairs(pairs) -> array`` and ``settings() -> dict``; ``on_start(rows)`` is called
    once the input has been read, ``progress(n)`` as rows finish (for a progress bar).
    """
    from bgekit.mine.run import read_training_examples

    started = time.perf_counter()
    examples = read_training_examples(input_path, fmt)
    if on_start is not None:
        on_start(len(examples))
    # the rows scored depend on how the file is read too (a format's parameters can split rows differently)
    fingerprint = hashlib.sha256(json.dumps({"input": file_fingerprint(input_path), "format": fmt,
                                             **scorer.settings()}, sort_keys=True).encode()).hexdigest()
    log_path = progress_path(output_path)
    done = _load_progress(log_path, fingerprint)
    resumed = len(done)
    pending = [i for i in range(len(examples)) if i not in done]
    pairs_scored = 0
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a", encoding="utf-8") as log:
        if log.tell() == 0:
            log.write(json.dumps({"fingerprint": fingerprint}) + "\n")
        if progress is not None and resumed:
            progress(resumed)
        for first in range(0, len(pending), chunk_rows):
            rows = pending[first:first + chunk_rows]
            pairs = [(examples[i].query, p) for i in rows for p in [*examples[i].pos, *examples[i].neg]]
            scores = scorer.score_pairs(pairs).tolist()
            pairs_scored += len(pairs)
            at = 0
            for i in rows:
                n_pos, n_neg = len(examples[i].pos), len(examples[i].neg)
                done[i] = {"pos": scores[at:at + n_pos], "neg": scores[at + n_pos:at + n_pos + n_neg]}
                at += n_pos + n_neg
                log.write(json.dumps({"row": i, **done[i]}) + "\n")
            log.flush()
            os.fsync(log.fileno())
            if progress is not None:
                progress(len(rows))
    with atomic_write(output_path) as handle:
        for i, example in enumerate(examples):
            pos, neg = done[i]["pos"], done[i]["neg"]
            example.pos_scores = _sigmoid(pos) if normalize else pos
            example.neg_scores = _sigmoid(neg) if normalize else neg
            handle.write(json.dumps(example.to_json(), ensure_ascii=False) + "\n")
    log_path.unlink()
    return ScoreSummary(len(examples), pairs_scored, resumed, time.perf_counter() - started)
