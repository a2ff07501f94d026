"""BEIR-style evaluation data: ``corpus.jsonl``, ``queries.jsonl`` and qrels.

Qrels come as TSV ``query-id corpus-id score`` (header line or not) or TREC
``qid 0 docid rel``. Loaders stream the corpus so that only the documents a
caller asks for are kept in memory.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from bgekit.data.encoding import iter_lines
from bgekit.data.jsonlines import iter_jsonl_records, json_type
from bgekit.data.example import Example, RowError
from bgekit.errors import BgekitError


#: trec_eval stores grades in a C int.
MAX_GRADE = 2**31 - 1


@dataclass
class Judgement:
    """One qrels line."""

    query_id: str
    doc_id: str
    relevance: int
    line: int


def iter_qrels(path: str | Path, encoding: str | None = "auto") -> Iterator[Judgement | RowError]:
    """Stream qrels judgements in TSV (3 columns) or TREC (4 columns) form."""
    for line, text in iter_lines(path, encoding):
        if not text.strip() or text.startswith("#"):
            continue
        cols = text.split("\t") if "\t" in text else text.split()
        if len(cols) == 4:
            qid, _, did, rel = cols
        elif len(cols) == 3:
            qid, did, rel = cols
        else:
            yield RowError(str(path), line, f"expected 3 columns (query-id corpus-id score) or 4 (TREC), "
                           f"got {len(cols)}", raw=text)
            continue
        try:
            number = float(rel)
        except ValueError:
            if line == 1 and len(cols) == 3:  # a header such as "query-id corpus-id score"
                continue
            yield RowError(str(path), line, f"relevance {rel!r} is not a number", "score", raw=text)
            continue
        if not number.is_integer():
            yield RowError(str(path), line, f"relevance {rel!r} is not a whole number; trec_eval grades "
                           "are integers", "score", raw=text)
            continue
        if abs(number) > MAX_GRADE:
            yield RowError(str(path), line, f"relevance {rel!r} is out of range; trec_eval grades are "
                           f"integers within -{MAX_GRADE}..{MAX_GRADE}", "score", raw=text)
            continue
        if not qid.strip() or not did.strip():
            yield RowError(str(path), line, "empty query or document id", raw=text)
            continue
        yield Judgement(qid.strip(), did.strip(), int(number), line)


def record_id(obj: dict, path: str | Path, line: int, what: str) -> str | RowError:
    """The ``_id`` (or ``id``) of a corpus or queries line as a string.

    The one rule for ids everywhere (``data validate``/``convert``, ``eval``,
    ``rerank``): a non-empty string or a whole number (``7`` and ``"7"`` are the
    same id); a list, mapping, boolean, fraction or null is invalid, never
    stringified.
    """
    key = "_id" if "_id" in obj else "id"
    value = obj.get(key)
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if value is None:
        return RowError(str(path), line, f"a {what} line needs an 'id' (or '_id')", "id", raw=_raw(obj))
    return RowError(str(path), line, f"the {what} id must be a non-empty string or a whole number, got "
                    f"{json_type(value)} {_short(value)}", key, raw=_raw(obj))


class UniqueIds:
    """Remembers where each id was first seen; a second line with one is an error.

    Keeps 64-bit hashes with their line (a few dozen bytes per id, so a corpus
    of millions streams in little memory), as the grouping of adjacent rows does.
    """

    def __init__(self, path: str | Path, what: str) -> None:
        self.path, self.what = str(path), what
        self.first_line: dict[int, int] = {}

    def check(self, doc_id: str, line: int) -> RowError | None:
        earlier = self.first_line.setdefault(hash(doc_id), line)
        if earlier == line:
            return None
        return RowError(self.path, line, f"{self.what} id {doc_id!r} is already used at line {earlier}; "
                        "ids must be unique (remove or rename one)", "id")


def _short(value: object) -> str:
    text = json.dumps(value, ensure_ascii=True, default=str) if not isinstance(value, float) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _raw(obj: dict) -> str | None:
    try:
        return json.dumps(obj, ensure_ascii=False)
    except (ValueError, RecursionError):
        return None


def iter_corpus(path: str | Path, encoding: str | None = "auto") -> Iterator[tuple[str, str, str] | RowError]:
    """``(id, title, text)`` for each document of ``corpus.jsonl`` (``_id`` or ``id``).

    A line whose id breaks :func:`record_id`'s rule, or repeats an earlier
    line's id, is a row error naming both lines.
    """
    seen = UniqueIds(path, "document")
    for item in iter_jsonl_records(path, encoding):
        if isinstance(item, RowError):
            yield item
            continue
        line, obj = item
        doc_id = record_id(obj, path, line, "corpus")
        if isinstance(doc_id, RowError):
            yield doc_id
            continue
        text, title = obj.get("text"), obj.get("title")
        if not isinstance(text, str):
            yield RowError(str(path), line, "a corpus line needs a string 'text'", "text", raw=_raw(obj))
            continue
        if title is not None and not isinstance(title, str):
            yield RowError(str(path), line, "'title' must be a string", "title", raw=_raw(obj))
            continue
        duplicate = seen.check(doc_id, line)
        if duplicate:
            yield duplicate
            continue
        yield doc_id, title or "", text


def load_queries(path: str | Path, encoding: str | None = "auto",
                 only: Iterable[str] | None = None) -> dict[str, str]:
    """``{query_id: text}`` from ``queries.jsonl`` (or a ``qid<TAB>text`` TSV)."""
    wanted = set(only) if only is not None else None
    queries: dict[str, str] = {}
    seen = UniqueIds(path, "query")
    for line, qid, text in _query_lines(path, encoding):
        duplicate = seen.check(qid, line)
        if duplicate:
            raise BgekitError(str(duplicate))
        if wanted is None or qid in wanted:
            queries[qid] = text
    return queries


def _query_lines(path: str | Path, encoding: str | None) -> Iterator[tuple[int, str, str]]:
    """``(line, id, text)`` of each query; the first bad line is an error."""
    if Path(path).suffix.lower() in (".tsv", ".txt"):
        for line, text in iter_lines(path, encoding):
            qid, sep, query = text.partition("\t")
            if not sep or not qid.strip():
                if text.strip():
                    raise BgekitError(f"{path}:{line}: expected 'query-id<TAB>text'")
                continue
            yield line, qid, query
        return
    for item in iter_jsonl_records(path, encoding):
        if isinstance(item, RowError):
            raise BgekitError(str(item))
        line, obj = item
        qid = record_id(obj, path, line, "query")
        if isinstance(qid, RowError):
            raise BgekitError(str(qid))
        if not isinstance(obj.get("text"), str):
            raise BgekitError(f"{path}:{line}: a query line needs a string 'text'")
        yield line, qid, obj["text"]


def passage_text(title: str, text: str) -> str:
    """How a titled document is given to an encoder: ``title text`` (BEIR's convention)."""
    return f"{title} {text}" if title else text


def load_documents(path: str | Path, ids: set[str], encoding: str | None = "auto") -> dict[str, str]:
    """The texts of just ``ids`` from a corpus, streaming the rest past."""
    docs: dict[str, str] = {}
    for item in iter_corpus(path, encoding):
        if isinstance(item, RowError):
            raise BgekitError(str(item))
        doc_id, title, text = item
        if doc_id in ids:
            docs[doc_id] = passage_text(title, text)
    return docs


@dataclass
class BeirDataset:
    """Paths of one BEIR-style dataset split."""

    corpus: Path
    queries: Path
    qrels: Path
    extra: dict[str, str] = field(default_factory=dict)


def find_beir_files(root: str | Path, split: str = "test") -> BeirDataset:
    """Locate ``corpus.jsonl``, ``queries.jsonl`` and the qrels of ``split`` under ``root``."""
    root = Path(root)
    corpus, queries = root / "corpus.jsonl", root / "queries.jsonl"
    candidates = [root / "qrels" / f"{split}.tsv", root / f"qrels.{split}.tsv", root / "qrels.tsv",
                  root / f"qrels.{split}.trec", root / "qrels.trec"]
    qrels = next((c for c in candidates if c.is_file()), None)
    if qrels is None:
        found = sorted(str(p.relative_to(root)) for p in root.glob("qrels/*.tsv"))
        if len(found) == 1:
            qrels = root / found[0]
    missing = [str(p) for p in (corpus, queries) if not p.is_file()]
    if qrels is None:
        missing.append(f"{root}/qrels/{split}.tsv")
    if missing:
        raise BgekitError(f"{root}: not a BEIR-style dataset; missing {', '.join(missing)}")
    return BeirDataset(corpus, queries, qrels)


def examples_from_judgements(qrels: str | Path, queries: str | Path, corpus: str | Path,
                             encoding: str | None = "auto",
                             load_docs=load_documents) -> Iterator[Example | RowError]:
    """One training example per judged query: relevance > 0 positive, 0 negative.

    Memory holds the judgements and the judged documents only: the queries
    and the corpus are streamed past and filtered by id.
    """
    from bgekit.data.example import example_from_mapping

    judged: dict[str, list[Judgement]] = {}
    for item in iter_qrels(qrels, encoding):
        if isinstance(item, RowError):
            yield item
            continue
        judged.setdefault(item.query_id, []).append(item)
    texts = load_queries(queries, encoding, only=judged)
    docs = load_docs(corpus, {j.doc_id for js in judged.values() for j in js}, encoding)
    for qid, judgements in judged.items():
        first = judgements[0].line
        if qid not in texts:
            yield RowError(str(qrels), first, f"query id {qid!r} is not in {Path(queries).name}", "query-id")
            continue
        row: dict[str, list[str] | str] = {"query": texts[qid], "pos": [], "neg": []}
        missing = [j for j in judgements if j.doc_id not in docs]
        if missing:
            yield RowError(str(qrels), missing[0].line,
                           f"document id {missing[0].doc_id!r} is not in {Path(corpus).name}", "corpus-id")
            continue
        for j in judgements:
            row["pos" if j.relevance > 0 else "neg"].append(docs[j.doc_id])  # type: ignore[union-attr]
        if not row["pos"]:
            yield RowError(str(qrels), first, f"query id {qid!r} has no judgement with relevance > 0", "score")
            continue
        yield example_from_mapping(row, str(qrels), first)
