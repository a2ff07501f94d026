"""A JSON file holding one top-level array of canonical examples, streamed."""

from __future__ import annotations

from typing import Iterator

from bgekit.data.encoding import decode_error, resolve_encoding
from bgekit.data.example import Example, RowError, example_from_mapping
from bgekit.data.jsonstream import JsonSyntaxError, iter_json_array


def detect_json_array(sample) -> float:
    """A file starting with '[' whose first element is an object with a 'query'."""
    if sample.is_dir:
        return 0.0
    head = sample.text.lstrip()
    if not head.startswith("["):
        return 0.0
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
                for line, value in iter_json_array(fh, path):
                    if isinstance(value, JsonSyntaxError):
                        yield RowError(path, value.line, f"{value}; the rest of the array cannot be read")
                        return
                    yield example_from_mapping(value, path, line)
            except UnicodeDecodeError as exc:
                raise decode_error(path, None, codec, exc) from None
