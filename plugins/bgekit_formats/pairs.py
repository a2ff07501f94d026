"""Reranker pairs: one ``(query, passage, label[, score])`` per line.

JSON lines with those keys, or TSV ``query<TAB>passage<TAB>label[<TAB>score]``
(a header row is optional). Adjacent lines of one query are grouped into one
canonical example: label > 0 positive, 0 negative; scores, when every pair of
the query has one, become ``pos_scores``/``neg_scores``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterator

from bgekit.api import Example, JsonProblem, RowError, adjacent_groups, example_from_mapping, iter_lines, parse_json

from bgekit_formats.common import json_objects, sample_lines, share

HEADER = ["query", "passage", "label", "score"]


def detect_pairs(sample) -> float:
    if sample.is_dir:
        return 0.0
    lines = sample_lines(sample)
    if not lines:
        return 0.0
    if lines[0].lstrip().startswith("{"):
        objs = json_objects(lines) or []
        return 0.96 * share(objs, "query", "passage", "label")
    rows = [ln.split("\t") for ln in lines]
    if [c.strip().lower() for c in rows[0]][:3] == HEADER[:3]:
        return 0.95
    if all(len(r) in (3, 4) and _label(r[2]) is not None for r in rows):
        return 0.8
    return 0.0


def _label(value: Any) -> int | None:
    """A relevance label as a whole number >= 0, or None."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        value = value.strip()
        if not value.isascii() or not value.isdigit() or len(value) > 9:
            return None
        return int(value)
    if isinstance(value, int) and 0 <= value < 10**9:
        return value
    if isinstance(value, float) and value.is_integer() and 0 <= value < 1e9:
        return int(value)
    return None


@dataclass
class Pair:
    query: str
    passage: str
    label: int
    score: float | None


def _pair(row: dict, path: str, line: int) -> Pair | RowError:
    query, passage = row.get("query"), row.get("passage")
    if not isinstance(query, str) or not query.strip():
        return RowError(path, line, "empty or missing query", "query")
    if not isinstance(passage, str) or not passage.strip():
        return RowError(path, line, "empty or missing passage", "passage")
    label = _label(row.get("label"))
    if label is None:
        return RowError(path, line, f"label {row.get('label')!r} is out of range; use 1 (relevant) or 0, "
                        "or a graded relevance >= 0", "label")
    score = row.get("score")
    if score in (None, ""):
        score = None
    else:
        try:
            score = float(score)
        except (TypeError, ValueError, OverflowError):
            return RowError(path, line, f"score {score!r} is not a number", "score")
        if not math.isfinite(score):
            return RowError(path, line, "score is NaN or infinite", "score")
    return Pair(query, passage, label, score)


class PairsReader:
    def __init__(self, encoding: str = "auto") -> None:
        self.encoding = encoding

    def _pairs(self, path: str) -> Iterator[tuple[int, str, Pair] | RowError]:
        first = True
        for line, text in iter_lines(path, self.encoding):
            if not text.strip():
                continue
            if text.lstrip().startswith("{"):
                row = parse_json(text)
                if isinstance(row, JsonProblem):
                    yield RowError(path, line, row, raw=text)
                    continue
                if not isinstance(row, dict):
                    yield RowError(path, line, "expected a JSON object", raw=text)
                    continue
            else:
                cols = text.split("\t")
                if first and [c.strip().lower() for c in cols][:3] == HEADER[:3]:
                    first = False
                    continue
                if len(cols) not in (3, 4):
                    yield RowError(path, line, f"expected 3 or 4 tab-separated columns "
                                   f"(query passage label [score]), got {len(cols)}", raw=text)
                    continue
                row = dict(zip(HEADER, cols))
            first = False
            pair = _pair(row, path, line)
            if isinstance(pair, RowError):
                pair.raw = text
                yield pair
            else:
                yield line, pair.query, pair

    def read(self, path: str) -> Iterator[Example | RowError]:
        for group in adjacent_groups(self._pairs(path), path):
            if isinstance(group, RowError):
                yield group
                continue
            pairs: list[Pair] = group.rows
            row: dict[str, Any] = {
                "query": group.key,
                "pos": [p.passage for p in pairs if p.label > 0],
                "neg": [p.passage for p in pairs if p.label == 0],
            }
            if not row["pos"]:
                yield RowError(path, group.line, "no pair of this query has label > 0", "label")
                continue
            graded = [p.label for p in pairs if p.label > 0]
            if any(label != 1 for label in graded):  # graded relevance: keep it for the reranker's losses
                row["pos_labels"] = graded
            scored = [p.score is not None for p in pairs]
            if any(scored) and not all(scored):
                yield RowError(path, group.line, "some pairs of this query have a score and some do not", "score")
                continue
            if all(scored):
                row["pos_scores"] = [p.score for p in pairs if p.label > 0]
                row["neg_scores"] = [p.score for p in pairs if p.label == 0]
            yield example_from_mapping(row, path, group.line)
