"""TREC-style topic XML: ``<topics><topic><query/><positive/><negative/></topic></topics>``.

Parsed with the standard library's SAX reader, which streams (memory stays
flat), reports line numbers, and does not fetch external entities. A
``score`` attribute on every positive (negative) gives ``pos_scores``
(``neg_scores``).
"""

from __future__ import annotations

import re
import xml.sax
from xml.sax.expatreader import ExpatLocator
from typing import Iterator

from bgekit.api import Example, RowError, decode_error, example_from_mapping, resolve_encoding

CHUNK_CHARS = 1 << 20
_DECLARED_ENCODING = re.compile(r"""^(\s*<\?xml[^>]*?)\s+encoding\s*=\s*["'][^"']*["']""")
TEXT_TAGS = {"query": "query", "positive": "pos", "negative": "neg"}


def detect_trec_xml(sample) -> float:
    if sample.is_dir:
        return 0.0
    head = sample.text[:8192]
    return 0.95 if "<topics" in head and "<topic" in head.replace("<topics", "") else 0.0


class _TopicHandler(xml.sax.ContentHandler):
    """Collects each ``<topic>`` into a row; finished rows wait in ``ready``."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        self.ready: list[Example | RowError] = []
        self.row: dict | None = None
        self.line = 0
        self.field: str | None = None
        self.text: list[str] = []
        self.score: str | None = None
        self.scores: dict[str, list] = {}

    def startElement(self, name, attrs):
        if name == "topic":
            self.row, self.line = {"pos": [], "neg": []}, self._locator.getLineNumber()
            self.scores = {"pos": [], "neg": []}
        elif self.row is not None and name in TEXT_TAGS:
            self.field, self.text, self.score = TEXT_TAGS[name], [], attrs.get("score")

    def characters(self, content):
        if self.field is not None:
            self.text.append(content)

    def endElement(self, name):
        if self.row is None:
            return
        if name in TEXT_TAGS and self.field is not None:
            text = "".join(self.text).strip()
            if self.field == "query":
                self.row["query"] = text
            else:
                self.row[self.field].append(text)
                self.scores[self.field].append(self.score)
            self.field = None
        elif name == "topic":
            self.ready.append(self._finish())
            self.row = None

    def _finish(self) -> Example | RowError:
        row = self.row
        assert row is not None
        for name in ("pos", "neg"):
            given = [s for s in self.scores[name] if s is not None]
            if not given:
                continue
            if len(given) != len(self.scores[name]):
                return RowError(self.path, self.line, f"'score' is given on some <{'positive' if name == 'pos' else 'negative'}> "
                                "elements of this topic but not all", f"{name}_scores")
            try:
                row[f"{name}_scores"] = [float(s) for s in given]
            except ValueError:
                return RowError(self.path, self.line, "a 'score' attribute is not a number", f"{name}_scores")
        return example_from_mapping(row, self.path, self.line)


class TrecXmlReader:
    def __init__(self, encoding: str = "auto") -> None:
        self.encoding = encoding

    def read(self, path: str) -> Iterator[Example | RowError]:
        codec = resolve_encoding(path, self.encoding)
        handler = _TopicHandler(path)
        parser = xml.sax.make_parser()
        parser.setFeature(xml.sax.handler.feature_external_ges, False)
        parser.setContentHandler(handler)
        handler.setDocumentLocator(ExpatLocator(parser))  # parse() would; feed() does not
        first = True
        with open(path, encoding=codec, errors="strict") as fh:
            while True:
                try:
                    chunk = fh.read(CHUNK_CHARS)
                except UnicodeDecodeError as exc:
                    raise decode_error(path, None, codec, exc) from None
                if first:
                    # the text is decoded already; expat must not re-decode by the declaration
                    chunk, first = _DECLARED_ENCODING.sub(r"\1", chunk.lstrip("\ufeff"), count=1), False
                try:
                    if chunk:
                        parser.feed(chunk)
                    else:
                        parser.close()
                except xml.sax.SAXParseException as exc:
                    yield from handler.ready
                    yield RowError(path, exc.getLineNumber(), f"not well-formed XML ({exc.getMessage()}); "
                                   "the rest of the file cannot be read")
                    return
                yield from handler.ready
                handler.ready.clear()
                if not chunk:
                    return
