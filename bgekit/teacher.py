"""Teacher scores from a cross-encoder for every (query, positive) and (query, negative).

The scores become ``pos_scores`` / ``neg_scores`` for distillation. The
reranker is any Hugging Face ``AutoModelForSequenceClassification`` with
one label (BGE rerankers, or a bgekit-trained reranker). Each query is cut
to its own token budget first (default 3/4 of ``max_length``) and the
passage fills the rest of the pair, so a long query never pushes the passage
out. Pairs are batched longest first to cut padding.

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
from bgekit.errors import BgekitError

#: rows scored between two progress records
CHUNK_ROWS = 256


class CrossEncoder:
    """A one-logit sequence classifier scoring (query, passage) pairs."""

    def __init__(self, path: str, *, device: str = "auto", max_length: int = 512,
                 query_max_length: int | None = None, batch_size: int = 32) -> None:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from bgekit.devices import select_backend
        from bgekit.model_paths import resolve_model_path
        from bgekit.plugins import get_registry

        self.path = resolve_model_path(path)
        if not Path(self.path).is_dir():
            raise BgekitError(f"--reranker {path}: not a directory holding a cross-encoder")
        self.tokenizer = AutoTokenizer.from_pretrained(self.path)
        self.model = AutoModelForSequenceClassification.from_pretrained(self.path)
        if self.model.config.num_labels != 1:
            raise BgekitError(f"{path}: the reranker has {self.model.config.num_labels} labels; a teacher "
                              "cross-encoder gives one score per pair (num_labels=1)")
        self.model.to(select_backend(get_registry(), device).device()).eval()
        self.max_length = max_length
        self.query_max_length = query_max_length or max_length * 3 // 4
        room = max_length - self.tokenizer.num_special_tokens_to_add(pair=True)
        if not 0 < self.query_max_length < room:
            raise BgekitError(f"query budget {self.query_max_length} leaves no room for the passage in "
                              f"{max_length} tokens; lower --query-max-length or raise --max-length")
        self.batch_size = batch_size

    def settings(self) -> dict[str, Any]:
        """What changes the scores (a resumed run must match it)."""
        from bgekit.mine.cache import model_fingerprint

        return {"model": model_fingerprint(self.path), "max_length": self.max_length,
                "query_max_length": self.query_max_length}

    def _cut_queries(self, queries: Sequence[str]) -> dict[str, str]:
        """Each distinct query cut to its token budget (at a token boundary of the original text)."""
        distinct = list(dict.fromkeys(queries))
        encoded = self.tokenizer(distinct, add_special_tokens=False, truncation=True,
                                 max_length=self.query_max_length, return_offsets_mapping=True)
        cut = {}
        for text, offsets in zip(distinct, encoded["offset_mapping"]):
            cut[text] = text[:offsets[-1][1]] if offsets else text
        return cut

    def score_pairs(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """Raw logits, in the order of ``pairs``."""
        import torch

        if not pairs:
            return np.zeros(0, np.float32)
        cut = self._cut_queries([q for q, _ in pairs])
        encoded = self.tokenizer([cut[q] for q, _ in pairs], [p for _, p in pairs], truncation="only_second",
                                 max_length=self.max_length)
        rows = [{k: encoded[k][i] for k in encoded} for i in range(len(pairs))]
        order = np.argsort([-len(r["input_ids"]) for r in rows], kind="stable")
        out = np.zeros(len(pairs), np.float32)
        device = next(self.model.parameters()).device
        with torch.no_grad():
            for start in range(0, len(order), self.batch_size):
                chunk = order[start:start + self.batch_size]
                features = self.tokenizer.pad([rows[i] for i in chunk], padding=True, return_tensors="pt")
                logits = self.model(**{k: v.to(device) for k, v in features.items()}).logits
                out[chunk] = logits[:, 0].float().cpu().numpy()
        return out


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
    lines = raw.decode("utf-8").splitlines()
    if not lines:
        return {}
    header = json.loads(lines[0])
    if header.get("fingerprint") != fingerprint:
        raise BgekitError(f"{path} belongs to another input, reranker or length setting; delete it to "
                          "start scoring afresh")
    done = {}
    for line in lines[1:]:
        record = json.loads(line)
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
               normalize: bool = False, chunk_rows: int = CHUNK_ROWS, fmt: str = "auto",
               progress: Callable[[int], None] | None = None) -> ScoreSummary:
    """Write ``input_path``'s rows with teacher ``pos_scores``/``neg_scores`` to ``output_path``.

    ``scorer`` has ``score_pairs(pairs) -> array`` and ``settings() -> dict``.
    """
    from bgekit.mine.run import read_training_examples

    started = time.perf_counter()
    examples = read_training_examples(input_path, fmt)
    fingerprint = hashlib.sha256(json.dumps({"input": file_fingerprint(input_path), **scorer.settings()},
                                            sort_keys=True).encode()).hexdigest()
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
