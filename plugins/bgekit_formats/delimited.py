"""CSV and TSV with a header row naming canonical columns.

List columns (``pos``, ``neg``, ``pos_scores``, ``neg_scores``) hold a JSON
list (``["a", "b"]``), a Python list literal (``['a', 'b']``, read with
``ast.literal_eval``, which evaluates literals only and never runs code), or a
single plain value that becomes a one-item list.
"""

from __future__ import annotations

import ast
import csv
from typing import Any, Iterator

from bgekit.api import (
    KNOWN_FIELDS,
    Example,
    JsonProblem,
    RowError,
    decode_error,
    example_from_mapping,
    parse_json,
    resolve_encoding,
)

LIST_COLUMNS = ("pos", "neg", "pos_scores", "neg_scores")
MAX_FIELD_CHARS = 64 << 20


def _header(sample, delimiter: str) -> list[str]:
    first = next((ln for ln in sample.text.splitlines() if ln.strip()), "")
    return [c.strip().lower() for c in next(csv.reader([first], delimiter=delimiter), [])]


def detector(delimiter: str, suffixes: tuple[str, ...]):
    """A detector for a header row with 'query' and 'pos' columns."""

    def detect(sample) -> float:
        if sample.is_dir:
            return 0.0
        cols = _header(sample, delimiter)
        if "query" in cols and "pos" in cols:
            return 0.9 if sample.suffix in suffixes or len(cols) > 2 else 0.7
        return 0.0

    return detect


def parse_list_cell(cell: str, column: str) -> Any:
    """A list cell as a Python value; ValueError says why it is not one."""
    text = cell.strip()
    if not text:
        return None
    if text.startswith("["):
        value = parse_json(text)
        if not isinstance(value, JsonProblem):
            return value
        try:
            return ast.literal_eval(text)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            raise ValueError("looks like a list but is neither a JSON list nor a Python list literal") from None
    if column.endswith("_scores"):
        try:
            return [float(text)]
        except ValueError:
            raise ValueError(f"{text[:40]!r} is not a number or a list of numbers") from None
    return [cell]


class DelimitedReader:
    """Streams CSV/TSV rows; line numbers are where each record starts."""

    def __init__(self, delimiter: str = ",", encoding: str = "auto") -> None:
        self.delimiter = delimiter
        self.encoding = encoding

    def read(self, path: str) -> Iterator[Example | RowError]:
        csv.field_size_limit(MAX_FIELD_CHARS)
        codec = resolve_encoding(path, self.encoding)
        with open(path, encoding=codec, errors="strict", newline="") as fh:
            reader = csv.reader(fh, delimiter=self.delimiter)
            try:
                yield from self._rows(path, reader)
            except UnicodeDecodeError as exc:
                raise decode_error(path, reader.line_num + 1, codec, exc) from None

    def _rows(self, path: str, reader) -> Iterator[Example | RowError]:
        header: list[str] | None = None
        start = 1
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:  # a NUL byte, a field over the size limit: this record only
                line, start = start, reader.line_num + 1
                yield RowError(path, line, f"not a valid {'TSV' if self.delimiter == chr(9) else 'CSV'} "
                               f"record ({exc})")
                continue
            line, start = start, reader.line_num + 1
            if not any(c.strip() for c in cells):
                continue
            if header is None:
                header = [c.strip().lstrip("\ufeff").lower() for c in cells]
                if "query" not in header:
                    yield RowError(path, line, "the header row has no 'query' column; name the columns "
                                   f"{', '.join(sorted(KNOWN_FIELDS))}")
                    return
                continue
            if len(cells) != len(header):
                yield RowError(path, line, f"has {len(cells)} columns, the header has {len(header)}",
                               raw=self.delimiter.join(cells))
                continue
            row: dict[str, Any] = {}
            error = None
            for name, cell in zip(header, cells):
                if name in LIST_COLUMNS:
                    try:
                        value = parse_list_cell(cell, name)
                    except ValueError as exc:
                        error = RowError(path, line, str(exc), name)
                        break
                    if value is not None:
                        row[name] = value
                elif cell != "" or name == "query":
                    row[name] = cell
            result = error or example_from_mapping(row, path, line)
            if isinstance(result, RowError):
                result.raw = self.delimiter.join(cells)
            yield result
