"""JSON Lines: one JSON object per line, read with line numbers.

Every reader of a JSONL side file (pools, texts to encode, BEIR corpus and
queries) goes through :func:`iter_jsonl_records`, so encodings are detected
the same way everywhere and every bad line is reported as ``file:line``.
:func:`parse_json` is the one place a line of JSON is decoded: whatever the
line holds (a 10,000-digit number, 100,000 nested brackets), it returns the
value or a reason, never raises.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

from bgekit.data.encoding import iter_lines
from bgekit.data.example import RowError


class JsonProblem(str):
    """Why a text is not valid JSON (a ``str``, so it reads as the reason)."""


def parse_json(text: str) -> Any | JsonProblem:
    """The JSON value in ``text``, or a :class:`JsonProblem` saying why there is none."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        return JsonProblem(f"not valid JSON ({exc.msg} at column {exc.colno})")
    except RecursionError:
        return JsonProblem("not valid JSON here (nested too deeply to read)")
    except ValueError as exc:  # e.g. an integer longer than Python's digit limit
        return JsonProblem(f"not valid JSON here ({str(exc).split(';')[0]})")


def iter_jsonl_records(path: str | Path, encoding: str | None = "auto") -> Iterator[tuple[int, dict] | RowError]:
    """``(line, object)`` for each JSON object line; bad lines as row errors."""
    for line, text in iter_lines(path, encoding):
        if not text.strip():
            continue
        obj = parse_json(text)
        if isinstance(obj, JsonProblem):
            yield RowError(str(path), line, obj, raw=text)
            continue
        if not isinstance(obj, dict):
            yield RowError(str(path), line, f"expected a JSON object, got {json_type(obj)}", raw=text)
            continue
        yield line, obj


def json_type(value: Any) -> str:
    """The JSON name of a decoded value's type (``array``, ``object``, ...)."""
    names = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number",
             float: "number", type(None): "null"}
    return names.get(type(value), type(value).__name__)
