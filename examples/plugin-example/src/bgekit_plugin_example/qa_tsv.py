"""``question<TAB>answer`` files: FAQ exports and the like."""

from __future__ import annotations

from typing import Iterator

from bgekit.api import Example, RowError

HEADER = ("question", "answer")


def _rows(text: str) -> list[list[str]]:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    # the sample may end inside a line: leave the last one out when there are others
    return [ln.split("\t") for ln in (lines[:-1] if len(lines) > 1 else lines)]


def detect_qa_tsv(sample) -> float:
    """Sure with the header; fairly sure when every line is two non-empty tab-separated fields."""
    if getattr(sample, "is_dir", False):
        return 0.0
    rows = _rows(sample.text)
    if not rows:
        return 0.0
    if tuple(c.strip().lower() for c in rows[0]) == HEADER:
        return 0.9
    if rows[0][0].lstrip().startswith(("{", "[")):
        return 0.0
    if all(len(r) == 2 and r[0].strip() and r[1].strip() for r in rows):
        return 0.6
    return 0.0


class QaTsvReader:
    """Reads each line into an example with the answer as its one positive."""

    def __init__(self, encoding: str = "utf-8-sig") -> None:
        self.encoding = encoding

    def read(self, path: str) -> Iterator[Example | RowError]:
        with open(path, encoding=self.encoding, newline="") as fh:
            for lineno, line in enumerate(fh, start=1):
                line = line.rstrip("\r\n")
                if not line.strip():
                    continue
                fields = line.split("\t")
                if lineno == 1 and tuple(f.strip().lower() for f in fields) == HEADER:
                    continue
                if len(fields) != 2:
                    yield RowError(path, lineno, f"expected question<TAB>answer, found {len(fields)} fields",
                                   raw=line[:200])
                    continue
                question, answer = (f.strip() for f in fields)
                if not question or not answer:
                    yield RowError(path, lineno, "empty question or answer",
                                   field="query" if not question else "pos", raw=line[:200])
                    continue
                yield Example(query=question, pos=[answer])
