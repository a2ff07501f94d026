"""Canonical JSONL: one training example per line."""

from __future__ import annotations

import json
from typing import Iterator

from bgekit.data.example import Example, RowError, example_from_mapping


def detect_jsonl(sample) -> float:
    """Confident when the first non-empty lines are JSON objects with a 'query'."""
    lines = [ln for ln in sample.text.splitlines()[:20] if ln.strip()]
    if not lines or not lines[0].lstrip().startswith("{"):
        return 0.0
    parsed = 0
    for ln in lines[:-1] or lines:  # the last line of the sample may be cut off
        try:
            obj = json.loads(ln)
        except ValueError:
            return 0.1
        parsed += isinstance(obj, dict) and "query" in obj
    return 0.95 if parsed else 0.3


class JsonlReader:
    """Streams a JSONL file; each bad line becomes a RowError with its line number."""

    def __init__(self, encoding: str = "utf-8-sig") -> None:
        self.encoding = encoding

    def read(self, path: str) -> Iterator[Example | RowError]:
        with open(path, encoding=self.encoding, errors="strict", newline="") as fh:
            lineno = 0
            while True:
                lineno += 1
                try:
                    line = fh.readline()
                except UnicodeDecodeError as exc:
                    raise_decode(path, lineno, exc)
                if not line:
                    return
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except ValueError as exc:
                    yield RowError(path, lineno, f"not valid JSON ({exc.msg} at column {exc.colno})",
                                   raw=line.rstrip("\n")[:200])
                    continue
                yield example_from_mapping(row, path, lineno)


def raise_decode(path: str, lineno: int, exc: UnicodeDecodeError) -> None:
    from bgekit.errors import BgekitError

    raise BgekitError(f"{path}:{lineno}: cannot decode as UTF-8 ({exc.reason}); "
                      "pass the file's encoding (e.g. --encoding gb18030)")
