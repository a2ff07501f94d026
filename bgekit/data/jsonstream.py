"""Streaming the elements of a top-level JSON array, with their line numbers.

``json.load`` holds the whole file; a multi-GB JSON array must be read element
by element. The standard library's C-accelerated ``JSONDecoder.raw_decode``
decodes one element from a text buffer and says where it ended, which is all
an array scanner needs, and knowing the position gives each element's line
number for error messages (which event-based parsers such as ijson do not).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import IO, Any, Iterator

from bgekit.data.jsonlines import DECODER
from bgekit.errors import BgekitError

CHUNK_CHARS = 1 << 20
#: An element bigger than this is taken to be broken rather than incomplete.
MAX_ELEMENT_CHARS = 64 << 20
_SPACE = re.compile(r"[ \t\n\r]*")
_DECODER = DECODER


@dataclass
class JsonSyntaxError:
    """Where a JSON array stopped being valid; nothing after it can be read."""

    line: int
    column: int
    message: str
    #: the text of the line where it stopped (what a user looks at to fix it)
    text: str = ""

    def __str__(self) -> str:
        return f"not valid JSON ({self.message} at line {self.line} column {self.column})"


@dataclass
class TooDeep:
    """An element nested too deeply to decode; it was skipped, the elements after it still read."""

    line: int

    def __str__(self) -> str:
        return "nested too deeply to read"


_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


@dataclass
class TrailingValue:
    """A complete JSON value after the top-level array had ended (the file is not one array)."""

    raw: str
    array_end_line: int


class _Buffer:
    """A sliding text window over a file, counting lines as it advances."""

    def __init__(self, fh: IO[str]) -> None:
        self.fh = fh
        self.text = ""
        self.pos = 0
        self.line = 1
        self.eof = False
        #: the source text of the value :meth:`decode` returned last
        self.last_raw = ""

    def more(self) -> bool:
        """Read another chunk; False at end of file."""
        if self.eof:
            return False
        chunk = self.fh.read(CHUNK_CHARS)
        if not chunk:
            self.eof = True
            return False
        if self.pos > CHUNK_CHARS:
            self.text, self.pos = self.text[self.pos:], 0
        self.text += chunk
        return True

    def advance(self, to: int) -> None:
        self.line += self.text.count("\n", self.pos, to)
        self.pos = to

    def skip_space(self) -> str:
        """Skip whitespace; the next character, or "" at end of file."""
        while True:
            self.advance(_SPACE.match(self.text, self.pos).end())
            if self.pos < len(self.text):
                return self.text[self.pos]
            if not self.more():
                return ""

    def decode(self) -> Any | JsonSyntaxError:
        """Decode one JSON value at the current position, reading more as needed."""
        while True:
            try:
                value, end = _DECODER.raw_decode(self.text, self.pos)
            except json.JSONDecodeError as exc:
                if len(self.text) - self.pos < MAX_ELEMENT_CHARS and self.more():
                    continue
                line = self.line + self.text.count("\n", self.pos, exc.pos)
                column = exc.pos - (self.text.rfind("\n", 0, exc.pos) + 1) + 1
                return JsonSyntaxError(line, column, exc.msg, self._line_text(exc.pos))
            except RecursionError:
                line = self.line
                end = self._end_of_nested_value()  # may slide the window: the value starts at self.pos
                if end is None:
                    return self._here("nested too deeply to read")
                self.last_raw = self.text[self.pos:end]
                self.advance(end)
                return TooDeep(line)
            except ValueError as exc:  # an integer longer than Python's digit limit
                return self._here(str(exc).split(";")[0])
            if end == len(self.text) and self.more():
                continue  # a number at the edge of the buffer may go on
            self.last_raw = self.text[self.pos:end]
            self.advance(end)
            return value

    def _end_of_nested_value(self) -> int | None:
        """Where the array or object at the current position ends, found by counting
        brackets outside strings (no recursion); None when it does not end in time."""
        while True:
            depth = 0
            for token in _TOKEN.finditer(self.text, self.pos):
                kind = token.group()[0]
                if kind in "[{":
                    depth += 1
                elif kind in "]}":
                    depth -= 1
                    if depth == 0:
                        return token.end()
            if len(self.text) - self.pos >= MAX_ELEMENT_CHARS or not self.more():
                return None

    def _here(self, message: str) -> JsonSyntaxError:
        column = self.pos - (self.text.rfind("\n", 0, self.pos) + 1) + 1
        return JsonSyntaxError(self.line, column, message, self._line_text(self.pos))

    def _line_text(self, pos: int) -> str:
        start = self.text.rfind("\n", 0, pos) + 1
        end = self.text.find("\n", pos)
        return self.text[start:end if end >= 0 else len(self.text)]


def iter_json_array(fh: IO[str], path: str, key: str | None = None) -> Iterator[tuple[int, Any]]:
    """Yield ``(line, element)`` for each element of the file's top-level array (see
    :func:`iter_json_array_text`, which also gives each element's source text)."""
    for line, value, _ in iter_json_array_text(fh, path, key):
        yield line, value


def iter_json_array_text(fh: IO[str], path: str, key: str | None = None) -> Iterator[tuple[int, Any, str]]:
    """Yield ``(line, element, source text)`` for each element of the file's top-level array.

    With ``key``, the array is the value of that key in a top-level object,
    which must be the object's first key (``{"data": [...]}``). A syntax error
    is yielded once as ``(line, JsonSyntaxError, "")`` and ends the stream.
    Without ``key``, nothing may follow the array: each value after it is
    yielded as a :class:`TrailingValue` (so a second array pasted after the
    first is reported, not dropped), and anything else as a syntax error.
    """
    buf = _Buffer(fh)
    first = buf.skip_space()
    if key is not None:
        if first != "{":
            raise BgekitError(f"{path}:{buf.line}: expected a JSON object with a '{key}' array")
        buf.advance(buf.pos + 1)
        buf.skip_space()
        name = buf.decode()
        if name != key or buf.skip_space() != ":":
            raise BgekitError(f"{path}:{buf.line}: expected '{key}' as the first key of the top-level object")
        buf.advance(buf.pos + 1)
        first = buf.skip_space()
    if first != "[":
        raise BgekitError(f"{path}:{buf.line}: expected a JSON array ('['), found {first or 'end of file'!r}")
    buf.advance(buf.pos + 1)
    if buf.skip_space() != "]":
        while True:
            line = buf.line
            value = buf.decode()
            yield line, value, buf.last_raw
            if isinstance(value, JsonSyntaxError):
                return
            nxt = buf.skip_space()
            if nxt == "]":
                break
            if nxt != ",":
                yield buf.line, buf._here("expected ',' or ']' between elements"), ""
                return
            buf.advance(buf.pos + 1)
            buf.skip_space()
    if key is not None:
        return
    end_line = buf.line
    buf.advance(buf.pos + 1)
    while buf.skip_space():
        line = buf.line
        value = buf.decode()
        if isinstance(value, JsonSyntaxError):
            yield line, value, ""
            return
        yield line, TrailingValue(buf.last_raw, end_line), buf.last_raw
