"""MS MARCO passage-ranking data, in its three shapes.

- judged rows: TSV ``query_id query doc_id document relevance``, adjacent rows
  of one query grouped into one example (relevance > 0 positive, 0 negative);
- the official triples: TSV ``query positive negative``, adjacent rows of one
  query grouped;
- the official layout: a directory with ``collection.tsv`` (``pid passage``),
  ``queries[.SPLIT].tsv`` (``qid query``) and ``qrels[.SPLIT].tsv`` (TREC),
  read into one example per judged query.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from bgekit.api import (
    BgekitError,
    Example,
    RowError,
    adjacent_groups,
    example_from_mapping,
    examples_from_judgements,
    iter_lines,
)


def _is_int(text: str) -> bool:
    try:
        int(float(text))
    except (ValueError, OverflowError):
        return False
    return True


def _is_id(text: str) -> bool:
    return bool(text) and " " not in text.strip() and len(text) <= 64


def detect_msmarco(sample) -> float:
    if sample.is_dir:
        names = {Path(f).name for f in sample.files}
        has_queries = any(n.startswith("queries") and n.endswith(".tsv") for n in names)
        has_qrels = any(n.startswith("qrels") for n in names)
        return 0.95 if "collection.tsv" in names and has_queries and has_qrels else 0.0
    lines = [ln for ln in sample.text.splitlines() if ln.strip()][:20]
    rows = [ln.split("\t") for ln in lines]
    if not rows:
        return 0.0
    body = rows[1:] if rows[0] and not _is_int(rows[0][-1]) and len(rows) > 1 else rows
    if all(len(r) == 5 and _is_id(r[0]) and _is_id(r[2]) and _is_int(r[4]) for r in body[:10]):
        return 0.9
    if all(len(r) == 3 and not _is_int(r[2]) for r in rows[:10]):
        return 0.6
    return 0.0


def find_layout(root: Path, split: str) -> tuple[Path, Path, Path]:
    """``(qrels, queries, collection)`` of an MS MARCO directory for ``split``."""

    def pick(prefix: str) -> Path:
        exact = [root / f"{prefix}.{split}.tsv", root / f"{prefix}.tsv"]
        for p in exact:
            if p.is_file():
                return p
        found = sorted(root.glob(f"{prefix}*.tsv"))
        if len(found) == 1:
            return found[0]
        raise BgekitError(f"{root}: cannot tell which {prefix} file to read "
                          f"({', '.join(p.name for p in found) or 'none found'}); "
                          f"name it {prefix}.{split}.tsv")

    collection = root / "collection.tsv"
    if not collection.is_file():
        raise BgekitError(f"{root}: an MS MARCO directory needs collection.tsv")
    return pick("qrels"), pick("queries"), collection


def load_collection(path: str | Path, ids: set[str], encoding: str | None = "auto") -> dict[str, str]:
    """Passages of ``ids`` from ``collection.tsv``, streaming the rest past."""
    docs = {}
    for _, text in iter_lines(path, encoding):
        pid, _, passage = text.partition("\t")
        if pid in ids:
            docs[pid] = passage
    return docs


class MsMarcoReader:
    def __init__(self, split: str = "train", encoding: str = "auto") -> None:
        self.split = split
        self.encoding = encoding

    def read(self, path: str) -> Iterator[Example | RowError]:
        if Path(path).is_dir():
            qrels, queries, collection = find_layout(Path(path), self.split)
            yield from examples_from_judgements(qrels, queries, collection, self.encoding,
                                                load_docs=load_collection)
            return
        yield from self._grouped(path)

    def _split_rows(self, path: str) -> Iterator[tuple[int, str, tuple[str, str, int | str]] | RowError]:
        """``(line, query key, (query, passage, relevance))`` for judged rows,
        ``(line, query, (query, positive, negative))`` for triples."""
        width = None
        for line, text in iter_lines(path, self.encoding):
            if not text.strip():
                continue
            cols = text.split("\t")
            if width is None:
                width = len(cols)
                if width == 5 and not _is_int(cols[4]):
                    continue  # header row
                if width not in (3, 5):
                    raise BgekitError(f"{path}:{line}: expected 5 tab-separated columns (query_id query "
                                      f"doc_id document relevance) or 3 (query positive negative), got {width}")
            if len(cols) != width:
                yield RowError(path, line, f"has {len(cols)} columns, expected {width}", raw=text)
                continue
            if width == 5:
                qid, query, _, passage, rel = cols
                if not _is_int(rel) or int(float(rel)) < 0:
                    yield RowError(path, line, f"relevance {rel!r} is not a whole number >= 0", "relevance")
                    continue
                yield line, qid, (query, passage, int(float(rel)))
            else:
                query, pos, neg = cols
                yield line, query, (query, pos, neg)

    def _grouped(self, path: str) -> Iterator[Example | RowError]:
        for group in adjacent_groups(self._split_rows(path), path):
            if isinstance(group, RowError):
                yield group
                continue
            query = group.rows[0][0]
            pos: list[str] = []
            neg: list[str] = []
            for _, passage, third in group.rows:
                if isinstance(third, int):  # judged row: relevance decides
                    (pos if third > 0 else neg).append(passage)
                    continue
                if passage not in pos:  # a triple repeats its positive
                    pos.append(passage)
                if third not in neg:
                    neg.append(third)
            yield example_from_mapping({"query": query, "pos": pos, "neg": neg}, path, group.line)
