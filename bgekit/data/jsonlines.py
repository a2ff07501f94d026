"""JSON Lines: one JSON object per line, read with line numbers.

Every reader of a JSONL side file (pools, texts to encode, BEIR corpus and
queries) goes through :func:`iter_jsonl_records`, so encodings are detected
the same way everywhere and every bad line is reported as ``file:line``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

from bgekit.data.encoding import iter_lines
from bgekit.data.example import RowError


def iter_jsonl_records(path: str | Path, encoding: str | None = "auto") -> Iterator[tuple[int, dict] | RowError]:
    """``(line, object)`` for each JSON object line; bad lines as row errors."""
    for line, text in iter_lines(path, encoding):
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except ValueError as exc:
            yield RowError(str(path), line, f"not valid JSON ({exc.msg} at column {exc.colno})", raw=text[:200])
            continue
        if not isinstance(obj, dict):
            yield RowError(str(path), line, f"expected a JSON object, got {type(obj).__name__}")
            continue
        yield line, obj
