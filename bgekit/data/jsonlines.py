"""JSON Lines: one JSON object per line, read with line numbers.

Every reader of a JSONL side file (pools, texts to encode, BEIR corpus and
queries) goes through :func:`iter_jsonl_records` (bad lines become row
errors) or :func:`iter_json_lines` (the reader stops at the first bad line
with its own message), so encodings are detected the same way everywhere and
every bad line is reported as ``file:line``.
:func:`parse_json` is the one place a line of JSON is decoded: whatever the
line holds (a 10,000-digit number, 100,000 nested brackets), it returns the
value or a reason, never raises.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

from bgekit.data.atomic import atomic_write
from bgekit.data.encoding import iter_lines
from bgekit.data.example import RowError


#: Python refuses to convert longer digit strings to int (quadratic-time protection).
MAX_INT_DIGITS = 4300


class TooManyDigits(float):
    """An integer literal too long to read, kept as infinity so that it fails every range
    check; readers name it (:func:`bgekit.data.example.text_problem`) instead of crashing."""

    def __new__(cls, text: str) -> "TooManyDigits":
        value = super().__new__(cls, "-inf" if text.startswith("-") else "inf")
        value.digits = len(text.lstrip("-"))
        return value


def _parse_int(text: str) -> int | float:
    return int(text) if len(text) <= MAX_INT_DIGITS else TooManyDigits(text)


#: The one JSON decoder of data files: C-accelerated, and integers of any length never raise.
DECODER = json.JSONDecoder(parse_int=_parse_int)


class JsonProblem(str):
    """Why a text is not valid JSON (a ``str``, so it reads as the reason)."""


def parse_json(text: str) -> Any | JsonProblem:
    """The JSON value in ``text``, or a :class:`JsonProblem` saying why there is none."""
    try:
        return DECODER.decode(text)
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


def iter_json_lines(path: str | Path, encoding: str | None = "auto") -> Iterator[tuple[int, Any, str]]:
    """``(line, value, text)`` for each non-blank line; ``value`` is a :class:`JsonProblem` when
    the line is not JSON. For strict files, whose readers raise ``file:line`` errors of their own."""
    for line, text in iter_lines(path, encoding):
        if text.strip():
            yield line, parse_json(text), text


def json_type(value: Any) -> str:
    """The JSON name of a decoded value's type (``array``, ``object``, ...)."""
    names = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number",
             float: "number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def truncate_jsonl_after(path: Path, step: int) -> None:
    """Keep the lines of a JSON-lines log whose ``step`` is at most ``step`` (a resumed run writes the rest
    again); a line cut short by a kill is dropped too. Rewritten atomically; a missing file is left missing."""
    if not path.is_file():
        return
    kept, changed = [], False
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
            keep = isinstance(record, dict) and int(record.get("step", 0)) <= step
        except (ValueError, TypeError):
            keep = False
        if keep:
            kept.append(line)
        else:
            changed = True
    if changed:
        with atomic_write(path) as handle:
            handle.write("".join(f"{line}\n" for line in kept))
