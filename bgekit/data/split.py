"""Cutting documents into passages: by sentence, by paragraph, or by window.

Sizes are in tokens when a tokenizer is given, in characters otherwise.
``sentence`` and ``paragraph`` pack whole units greedily up to ``chunk_size``
and start the next passage with the last whole units of the previous one
that fit in ``overlap``; a single unit bigger than ``chunk_size`` is the only
thing ever cut, by window. ``window`` cuts fixed-size windows that overlap
by exactly ``overlap``. Passages never span two chapters.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

from bgekit.data.atomic import atomic_write
from bgekit.data.documents import Document, read_document
from bgekit.data.sentences import sentence_spans
from bgekit.errors import BgekitError

METHODS = ("sentence", "paragraph", "window")


@dataclass
class Unit:
    """A sentence or paragraph, with the text that separated it from the previous unit."""

    text: str
    sep: str


@dataclass
class Passage:
    id: str
    doc_id: str
    chapter: str | None
    position: int
    text: str
    title: str | None = None

    def to_json(self) -> dict:
        out = {"id": self.id, "doc_id": self.doc_id, "chapter": self.chapter,
               "position": self.position, "text": self.text}
        if self.title:
            out["title"] = self.title
        return out


class Measure:
    """Text size in characters, or in tokens of a Hugging Face tokenizer."""

    def __init__(self, tokenizer=None) -> None:
        self.tokenizer = tokenizer

    @property
    def unit(self) -> str:
        return "tokens" if self.tokenizer is not None else "characters"

    def __call__(self, text: str) -> int:
        if self.tokenizer is None:
            return len(text)
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def windows(self, text: str, size: int, overlap: int) -> list[str]:
        """``text`` cut into windows of ``size`` that overlap by ``overlap``."""
        stride = size - overlap
        if self.tokenizer is None:
            return [text[i:i + size] for i in range(0, max(len(text) - overlap, 1), stride)]
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        offsets = enc["offset_mapping"]
        out = []
        for i in range(0, max(len(offsets) - overlap, 1), stride):
            span = offsets[i:i + size]
            if span:
                out.append(text[span[0][0]:span[-1][1]])
        return out


def load_tokenizer(path: str | Path):
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(path))
    except Exception as exc:  # noqa: BLE001 - any load failure is the user's path
        raise BgekitError(f"{path}: cannot load a tokenizer ({exc})") from None
    if not getattr(tok, "is_fast", False):
        raise BgekitError(f"{path}: splitting by tokens needs a fast tokenizer (tokenizer.json)")
    return tok


def _join(units: Sequence[Unit]) -> str:
    return units[0].text + "".join(u.sep + u.text for u in units[1:]) if units else ""


def sentence_units(paragraphs: Iterable[str]) -> list[Unit]:
    units: list[Unit] = []
    for p in paragraphs:
        prev_end = None
        for start, end in sentence_spans(p):
            units.append(Unit(p[start:end], "\n" if prev_end is None else p[prev_end:start]))
            prev_end = end
    return units


def pack(units: list[Unit], size: int, overlap: int, measure: Measure,
         smaller: Callable[[Unit], list[Unit] | None] | None = None) -> list[str]:
    """Greedy packing of whole units up to ``size``, overlapping by whole units.

    A unit bigger than ``size`` is replaced by ``smaller(unit)`` when that
    gives anything, else cut into windows.
    """
    chunks: list[str] = []
    current: list[Unit] = []
    fresh = False  # whether ``current`` holds a unit not yet in any chunk

    def emit() -> None:
        if current and fresh:
            chunks.append(_join(current))

    queue = list(units)
    while queue:
        unit = queue.pop(0)
        if measure(unit.text) > size:
            parts = smaller(unit) if smaller is not None else None
            if parts:
                parts[0] = Unit(parts[0].text, unit.sep)
                queue[:0] = parts
                continue
            emit()
            chunks.extend(measure.windows(unit.text, size, overlap))
            current, fresh = [], False
            continue
        if current and measure(_join(current + [unit])) > size:
            emit()
            keep: list[Unit] = []
            for prev in reversed(current):
                if overlap <= 0 or measure(_join([prev] + keep)) > overlap:
                    break
                keep.insert(0, prev)
            while keep and measure(_join(keep + [unit])) > size:
                keep.pop(0)
            current = keep
        current.append(unit)
        fresh = True
    emit()
    return chunks


def _sentences_if_several(unit: Unit) -> list[Unit] | None:
    units = sentence_units([unit.text])
    return units if len(units) > 1 else None


def chunk_chapter(paragraphs: list[str], by: str, size: int, overlap: int, measure: Measure) -> list[str]:
    if by == "sentence":
        return pack(sentence_units(paragraphs), size, overlap, measure)
    if by == "paragraph":
        units = [Unit(p, "\n") for p in paragraphs]
        return pack(units, size, overlap, measure, smaller=_sentences_if_several)
    return measure.windows("\n".join(paragraphs), size, overlap)


def split_document(doc: Document, chunk_size: int, overlap: int = 0, by: str = "sentence",
                   measure: Measure | None = None) -> Iterator[Passage]:
    """The passages of one document, numbered by ``position`` in reading order."""
    if by not in METHODS:
        raise BgekitError(f"unknown split method '{by}'; use one of {', '.join(METHODS)}")
    if chunk_size <= 0:
        raise BgekitError("--chunk-size must be positive")
    if not 0 <= overlap < chunk_size:
        raise BgekitError(f"--overlap must be at least 0 and smaller than --chunk-size ({chunk_size})")
    measure = measure or Measure()
    position = 0
    for chapter in doc.chapters:
        for text in chunk_chapter(chapter.paragraphs, by, chunk_size, overlap, measure):
            if text.strip():
                yield Passage(f"{doc.doc_id}#{position}", doc.doc_id, chapter.name, position, text,
                              doc.title if doc.title != doc.doc_id else None)
                position += 1


@dataclass
class SplitReport:
    out: str
    documents: int
    passages: int
    unit: str
    chapters: int


def split_files(paths: Sequence[str | Path], out: str | Path, chunk_size: int, overlap: int = 0,
                by: str = "sentence", tokenizer: str | Path | None = None,
                encoding: str | None = "auto") -> SplitReport:
    """Split each file into passages and write them as JSONL to ``out`` (atomically)."""
    if not paths:
        raise BgekitError("give at least one .txt, .md or .epub file to split")
    measure = Measure(load_tokenizer(tokenizer) if tokenizer else None)
    seen: dict[str, int] = {}
    passages = chapters = 0
    with atomic_write(out) as fh:
        for path in paths:
            stem = Path(path).stem
            seen[stem] = seen.get(stem, 0) + 1
            doc_id = stem if seen[stem] == 1 else f"{stem}-{seen[stem]}"
            doc = read_document(path, encoding, doc_id)
            chapters += sum(1 for c in doc.chapters if c.name)
            for passage in split_document(doc, chunk_size, overlap, by, measure):
                fh.write(json.dumps(passage.to_json(), ensure_ascii=False) + "\n")
                passages += 1
    return SplitReport(str(out), len(paths), passages, measure.unit, chapters)
