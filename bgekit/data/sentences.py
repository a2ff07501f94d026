"""Sentence boundaries for Chinese and English text, and chapter headings.

Chinese sentences end at 。！？；… (and their runs, e.g. ……, ！？), with any
closing quotes or brackets after them kept in the sentence. English sentences
end at . ! ? followed by space and not by a lower-case word, except after
common abbreviations (Mr., e.g.) and initials (J. K.). The result is spans
into the original text, so chunks can be cut from it without re-joining.
"""

from __future__ import annotations

import re

CJK_TERMINATORS = "。！？；…"
CLOSERS = "”’」』）》〉】)\"'"
_CANDIDATE = re.compile(rf"(?:[{CJK_TERMINATORS}]+|[.!?]+)[{re.escape(CLOSERS)}]*")
_LAST_WORD = re.compile(r"([A-Za-z][A-Za-z.]*)\.+$")
ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "vs", "etc", "e.g", "i.e", "cf", "al",
    "fig", "no", "vol", "pp", "ch", "inc", "ltd", "co", "corp", "gen", "col", "capt", "lt", "sgt",
    "rev", "hon", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
}

_ZH_NUMBER = "0-9０-９零〇一二两三四五六七八九十百千万"
_EN_NUMBER = ("(?:twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)(?:-[a-z]+)?|one|two|three|four|five"
              "|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen"
              "|eighteen|nineteen")
CHAPTER_PATTERNS = [
    re.compile(rf"^第[{_ZH_NUMBER}]+[章回节卷部篇集](?:[\s:：、.．].*)?$"),
    re.compile(rf"^(?:chapter|book|part)\s+(?:[0-9]+|[ivxlcdm]+|{_EN_NUMBER})\b(?:[\s.:\-—].*)?$", re.IGNORECASE),
    re.compile(r"^(?:prologue|epilogue|preface|序章|序言|前言|楔子|后记|尾声)[\s.:：]*$", re.IGNORECASE),
]
MAX_HEADING_CHARS = 60


def is_cjk(char: str) -> bool:
    """True for CJK ideographs and full-width punctuation."""
    code = ord(char)
    return (0x3000 <= code <= 0x9FFF or 0xF900 <= code <= 0xFAFF or 0xFF00 <= code <= 0xFFEF
            or 0x20000 <= code <= 0x2FFFF)


def chapter_heading(line: str) -> str | None:
    """The heading when ``line`` is a chapter heading (第三回 ..., Chapter IV, ...)."""
    text = line.strip().strip("　")
    if not text or len(text) > MAX_HEADING_CHARS:
        return None
    return text if any(p.match(text) for p in CHAPTER_PATTERNS) else None


def _ends_sentence(text: str, start: int, match: re.Match) -> bool:
    term = match.group()
    if term[0] in CJK_TERMINATORS:
        return True
    end = match.end()
    following = text[end:end + 1]
    if following and not following.isspace():
        return is_cjk(following)  # "3.14", "e.g.x" go on; "OK?然后" ends
    if term[0] == ".":
        word = _LAST_WORD.search(text, start, end)
        if word:
            w = word.group(1).lower().rstrip(".")
            if w in ABBREVIATIONS or (len(w) == 1 and w.isalpha()):
                return False
    rest = text[end:end + 40].lstrip()
    return not rest or not rest[0].islower()


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each sentence of ``text``, whitespace around them excluded."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _CANDIDATE.finditer(text):
        if match.end() <= start or not _ends_sentence(text, start, match):
            continue
        _append(text, start, match.end(), spans)
        start = match.end()
    _append(text, start, len(text), spans)
    return spans


def _append(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    piece = text[start:end]
    if piece.strip():
        lead = len(piece) - len(piece.lstrip())
        trail = len(piece) - len(piece.rstrip())
        spans.append((start + lead, end - trail))


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text``."""
    return [text[a:b] for a, b in sentence_spans(text)]
