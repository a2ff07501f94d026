"""A JSON file holding one top-level array of canonical examples, streamed."""

from __future__ import annotations

from typing import Iterator

from bgekit.api import (
    Example,
    JsonSyntaxError,
    RowError,
    TooDeep,
    TrailingValue,
    decode_error,
    example_from_mapping,
    iter_json_array_text,
    resolve_encoding,
)

from bgekit_formats.common import parses_as_json, sample_lines


def detect_json_array(sample) -> float:
    """A file starting with '[' whose first element is an object with a 'query'.

    When the first two lines each hold a complete JSON value the file is one
    value per line (JSONL whose first line is an array, or arrays one per
    line), and the confidence stays low so that JSONL wins where it fits.
    """
    if sample.is_dir:
        return 0.0
    head = sample.text.lstrip()
    if not head.startswith("["):
        return 0.0
    lines = sample_lines(sample, limit=2)
    if len(lines) == 2 and all(parses_as_json(ln) for ln in lines):
        return 0.2
    after = head[1:].lstrip()
    if after.startswith("{") and '"query"' in after[:4096] and '"pos"' in after[:4096]:
        return 0.9
    return 0.3


class JsonArrayReader:
    """Streams the elements of the array; a syntax error ends the file with one row error."""

    def __init__(self, encoding: str = "auto") -> None:
        self.encoding = encoding

    def read(self, path: str) -> Iterator[Example | RowError]:
        codec = resolve_encoding(path, self.encoding)
        with open(path, encoding=codec, errors="strict") as fh:
            try:
                for line, value, raw in iter_json_array_text(fh, path):
                    if isinstance(value, JsonSyntaxError):
                        yield RowError(path, value.line, f"{value}; the rest of the file (from line "
                                       f"{value.line}) cannot be read", raw=value.text)
                        return
                    if isinstance(value, TooDeep):
                        yield RowError(path, line, "not valid JSON here (nested too deeply to read)", raw=raw)
                        continue
                    if isinstance(value, TrailingValue):
                        yield RowError(path, line, "a second JSON value after the top-level array ended at "
                                       f"line {value.array_end_line}; a json file holds one array of examples "
                                       "(merge the arrays, or write one object per line as JSONL)",
                                       raw=raw)
                        continue
                    example = example_from_mapping(value, path, line)
                    if isinstance(example, RowError):
                        example.raw = raw
                    yield example
            except UnicodeDecodeError as exc:
                raise decode_error(path, None, codec, exc) from None
