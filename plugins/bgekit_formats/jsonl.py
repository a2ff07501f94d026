"""Canonical JSONL: one training example per line."""

from __future__ import annotations

import json
from typing import Iterator

from bgekit.data.encoding import iter_lines
from bgekit.data.example import Example, RowError, example_from_mapping

from bgekit_formats.common import json_objects, sample_lines, share


def detect_jsonl(sample) -> float:
    """Confident when the first lines are JSON objects with 'query' and 'pos'."""
    if sample.is_dir:
        return 0.0
    lines = sample_lines(sample)
    if not lines or not lines[0].lstrip().startswith("{"):
        return 0.0
    objs = json_objects(lines)
    if objs is None:
        # some broken lines among good ones still read as JSONL
        objs = json_objects([ln for ln in lines if _parses(ln)]) or []
        return 0.6 * share(objs, "query")
    if share(objs, "query", "pos") > 0:
        return 0.95
    return 0.3 * share(objs, "query")


def _parses(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


class JsonlReader:
    """Streams a JSONL file; each bad line becomes a RowError with its line number."""

    def __init__(self, encoding: str = "auto") -> None:
        self.encoding = encoding

    def read(self, path: str) -> Iterator[Example | RowError]:
        for lineno, line in iter_lines(path, self.encoding):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                yield RowError(path, lineno, f"not valid JSON ({exc.msg} at column {exc.colno})",
                               raw=line[:200])
                continue
            yield example_from_mapping(row, path, lineno)
