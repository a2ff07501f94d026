"""Reading books and documents (.txt, .md, .epub) into chapters of paragraphs.

Paragraphs are separated by blank lines; a text with (almost) no blank lines,
like most Chinese e-texts, has one paragraph per line. Hard-wrapped lines of
a paragraph are joined with a space, or with nothing between two CJK
characters. Chapter headings (第X章/回/节, Chapter N, Markdown ``#`` headings
in .md and .epub) start a new chapter and are kept as its name, not as text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Iterable

from bgekit.data.encoding import open_text, resolve_encoding
from bgekit.data.sentences import chapter_heading, is_cjk
from bgekit.errors import BgekitError

_MD_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$")
SUFFIXES = (".txt", ".md", ".markdown", ".epub")


@dataclass
class Chapter:
    """A run of paragraphs under one heading (``name`` None before the first)."""

    name: str | None
    paragraphs: list[str] = field(default_factory=list)


@dataclass
class Document:
    doc_id: str
    title: str
    chapters: list[Chapter]


def _join_wrapped(lines: list[str]) -> str:
    text = ""
    for line in lines:
        line = line.strip().strip("　")
        if not line:
            continue
        if text and not (is_cjk(text[-1]) and is_cjk(line[0])):
            text += " "
        text += line
    return text


def chapters_from_lines(lines: Iterable[str], markdown: bool = False) -> list[Chapter]:
    """Group lines into chapters of paragraphs (see the module docstring)."""
    lines = [ln.rstrip("\r\n") for ln in lines]
    blank = sum(1 for ln in lines if not ln.strip())
    filled = len(lines) - blank
    line_per_paragraph = blank < 0.05 * max(filled, 1)
    chapters = [Chapter(None)]
    pending: list[str] = []

    def flush() -> None:
        text = _join_wrapped(pending)
        if text:
            chapters[-1].paragraphs.append(text)
        pending.clear()

    for line in lines:
        md = _MD_HEADING.match(line) if markdown else None
        heading = md.group(1).strip() if md else chapter_heading(line)
        if heading:
            flush()
            chapters.append(Chapter(heading))
        elif not line.strip():
            flush()
        else:
            pending.append(line)
            if line_per_paragraph:
                flush()
    flush()
    return [c for c in chapters if c.paragraphs]


class _HtmlText(HTMLParser):
    """An XHTML chapter as lines: one per block element, headings as ``# ...``."""

    BLOCKS = {"p", "div", "li", "br", "tr", "blockquote", "section", "article", "h1", "h2", "h3",
              "h4", "h5", "h6", "pre"}
    HEADINGS = {"h1", "h2", "h3"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.current: list[str] = []
        self.heading = False
        self.skip = 0

    def _end_block(self) -> None:
        text = " ".join("".join(self.current).split())
        if text:
            self.lines.extend([f"# {text}" if self.heading else text, ""])
        self.current = []

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style", "head"):
            self.skip += 1
        elif tag in self.BLOCKS:
            self._end_block()
            self.heading = tag in self.HEADINGS

    def handle_endtag(self, tag):
        if tag in ("script", "style", "head"):
            self.skip = max(0, self.skip - 1)
        elif tag in self.BLOCKS:
            self._end_block()
            self.heading = False

    def handle_data(self, data):
        if not self.skip:
            self.current.append(data)


def html_lines(html: str) -> list[str]:
    parser = _HtmlText()
    parser.feed(html)
    parser.close()
    parser._end_block()
    return parser.lines


def read_epub(path: str | Path) -> tuple[str, list[str]]:
    """``(title, lines)`` of an EPUB's documents in reading (spine) order."""
    try:
        import ebooklib
        from ebooklib import epub
    except ImportError:
        raise BgekitError("reading .epub needs ebooklib: pip install 'bgekit[books]'") from None
    try:
        book = epub.read_epub(str(path), options={"ignore_ncx": True})
    except Exception as exc:  # noqa: BLE001 - a broken file is the user's to fix
        raise BgekitError(f"{path}: not a readable EPUB ({exc})") from None
    titles = book.get_metadata("DC", "title")
    title = titles[0][0] if titles else Path(path).stem
    lines: list[str] = []
    for item_id, _ in book.spine:
        item = book.get_item_with_id(item_id)
        if item is not None and item.get_type() == ebooklib.ITEM_DOCUMENT:
            lines.extend(html_lines(item.get_content().decode("utf-8", errors="replace")))
    return title, lines


def read_document(path: str | Path, encoding: str | None = "auto", doc_id: str | None = None) -> Document:
    """Read one book or document into chapters of paragraphs."""
    path = Path(path)
    if not path.is_file():
        raise BgekitError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise BgekitError(f"{path}: cannot split {suffix or 'files without an extension'}; "
                          f"use {', '.join(SUFFIXES)}")
    if suffix == ".epub":
        title, lines = read_epub(path)
        markdown = True
    else:
        codec = resolve_encoding(path, encoding)
        try:
            with open_text(path, codec) as fh:
                lines = fh.read().lstrip("\ufeff").splitlines()
        except UnicodeDecodeError as exc:
            raise BgekitError(f"{path}: cannot decode as {codec} ({exc.reason}); "
                              "pass the file's encoding with --encoding") from None
        title, markdown = path.stem, suffix in (".md", ".markdown")
    return Document(doc_id or path.stem, title, chapters_from_lines(lines, markdown))
