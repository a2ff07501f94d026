"""Canonical JSONL: one training example per line."""

from __future__ import annotations

from typing import Iterator

from bgekit.api import Example, JsonProblem, RowError, example_from_mapping, iter_lines, parse_json

from bgekit_formats.common import json_objects, sample_lines, share


def detect_jsonl(sample) -> float:
    """Confident when the first lines are JSON objects with 'query' and 'pos'.

    A file whose first line is something else (``["x"]``, a broken row) is
    still JSONL when its other lines are objects with a 'query': its bad lines
    are then rejected one by one instead of the file being read as one array.
    """
    if sample.is_dir:
        return 0.0
    lines = sample_lines(sample)
    if not lines:
        return 0.0
    objs = json_objects(lines)
    if objs is None:
        # some broken lines among good ones still read as JSONL
        objs = json_objects([ln for ln in lines if isinstance(parse_json(ln), dict)]) or []
        return 0.6 * share(objs, "query")
    if share(objs, "query", "pos") > 0:
        return 0.95
    return 0.3 * share(objs, "query")


class JsonlReader:
    """Streams a JSONL file; each bad line becomes a RowError with its line number."""

    def __init__(self, encoding: str = "auto") -> None:
        self.encoding = encoding

    def read(self, path: str) -> Iterator[Example | RowError]:
        for lineno, line in iter_lines(path, self.encoding):
            if not line.strip():
                continue
            row = parse_json(line)
            if isinstance(row, JsonProblem):
                yield RowError(path, lineno, row, raw=line)
                continue
            example = example_from_mapping(row, path, lineno)
            if isinstance(example, RowError):
                example.raw = line
            yield example
