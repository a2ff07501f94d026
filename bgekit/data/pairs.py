"""Training pairs from passages: pseudo-queries plus BM25 hard negatives.

Query sources:

- ``ict`` (inverse cloze task): a sentence of the passage is the query and
  is removed from the positive, so the pair cannot be solved by string match;
- ``title``: the passage's title (or chapter) is the query;
- ``file:QUERIES``: queries written for passages, JSONL
  ``{"query", "passage_id"}`` or TSV ``passage_id<TAB>query``;
- ``generate``: queries from a plugin implementing ``bgekit_generate_queries``
  (LLM-written queries, for instance).

Hard negatives are BM25's top passages for the query, minus the passage's
own neighbours (same document, positions within ``exclude_window``), which
overlap it or continue it and so are likely relevant; ``negatives`` of the
best ``pool`` remaining are sampled with ``seed``, so runs repeat exactly.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from bgekit.data.atomic import atomic_write
from bgekit.data.encoding import iter_lines
from bgekit.data.jsonlines import JsonProblem, iter_json_lines, parse_json
from bgekit.data.sentences import is_cjk, sentence_spans
from bgekit.errors import BgekitError

GENERATE_BATCH = 32
SEARCH_BATCH = 256


@dataclass
class PassageRecord:
    id: str
    doc_id: str
    position: int | None
    text: str
    title: str | None = None
    chapter: str | None = None


@dataclass
class Query:
    passage: int  # index into the passage list
    text: str
    positive: str


def read_passages(path: str | Path, encoding: str | None = "auto") -> list[PassageRecord]:
    """Passages JSONL as written by ``bgekit data split`` (``id``, ``text``; ``doc_id``,
    ``position``, ``title``, ``chapter`` optional)."""
    out: list[PassageRecord] = []
    ids: set[str] = set()
    for line, obj, _ in iter_json_lines(path, encoding):
        if isinstance(obj, JsonProblem):
            raise BgekitError(f"{path}:{line}: {obj}; fix or remove the line")
        text = obj.get("text") if isinstance(obj, dict) else None
        if not isinstance(text, str) or not text.strip():
            raise BgekitError(f"{path}:{line}: $.text  every passage needs a non-empty 'text'")
        pid = str(obj.get("id", len(out)))
        if pid in ids:
            raise BgekitError(f"{path}:{line}: $.id  passage id {pid!r} appears twice")
        ids.add(pid)
        position = obj.get("position")
        out.append(PassageRecord(pid, str(obj.get("doc_id", pid)),
                                 position if isinstance(position, int) else None,
                                 text, obj.get("title"), obj.get("chapter")))
    if not out:
        raise BgekitError(f"{path}: no passages")
    return out


def _remove_span(text: str, start: int, end: int) -> str:
    """``text`` without ``text[start:end]``, the seam joined as the script needs."""
    left, right = text[:start].rstrip(), text[end:].lstrip()
    sep = " " if left and right and not (is_cjk(left[-1]) or is_cjk(right[0])) else ""
    return left + sep + right


def ict_queries(passages: Sequence[PassageRecord], n: int, rng: random.Random) -> Iterator[Query]:
    """Up to ``n`` sentences of each passage as queries, each removed from its positive."""
    for i, p in enumerate(passages):
        spans = sentence_spans(p.text)
        if len(spans) < 2:
            continue
        for a, b in sorted(rng.sample(spans, min(n, len(spans)))):
            yield Query(i, p.text[a:b], _remove_span(p.text, a, b))


def title_queries(passages: Sequence[PassageRecord]) -> Iterator[Query]:
    for i, p in enumerate(passages):
        title = p.title or p.chapter
        if title and title.strip():
            yield Query(i, title.strip(), p.text)


def file_queries(path: str | Path, passages: Sequence[PassageRecord]) -> Iterator[Query]:
    by_id = {p.id: i for i, p in enumerate(passages)}
    for line, raw in iter_lines(path):
        if not raw.strip():
            continue
        if raw.lstrip().startswith("{"):  # a JSON line; anything else is passage_id<TAB>query
            obj = parse_json(raw)
            if isinstance(obj, JsonProblem):
                raise BgekitError(f"{path}:{line}: {obj}")
            if not isinstance(obj, dict):
                raise BgekitError(f"{path}:{line}: expected a JSON object with 'passage_id' and 'query'")
            pid, query = obj.get("passage_id"), obj.get("query")
        else:
            pid, _, query = raw.partition("\t")
        if not isinstance(query, str) or not query.strip():
            raise BgekitError(f"{path}:{line}: $.query  empty or missing query")
        if str(pid) not in by_id:
            raise BgekitError(f"{path}:{line}: $.passage_id  no passage with id {pid!r} in the passages file")
        i = by_id[str(pid)]
        yield Query(i, query.strip(), passages[i].text)


def generated_queries(passages: Sequence[PassageRecord], n: int) -> Iterator[Query]:
    from bgekit.plugins import get_plugin_manager

    hook = get_plugin_manager().hook.bgekit_generate_queries
    if not hook.get_hookimpls():
        raise BgekitError("--method generate needs a plugin that implements bgekit_generate_queries "
                          "(an LLM query writer); none is installed. Use --method ict or title, or "
                          "install such a plugin (see `bgekit plugins list`)")
    for start in range(0, len(passages), GENERATE_BATCH):
        batch = passages[start:start + GENERATE_BATCH]
        answer = hook(passages=[p.text for p in batch], n=n)
        if answer is None or len(answer) != len(batch):
            raise BgekitError("the bgekit_generate_queries plugin returned "
                              f"{'nothing' if answer is None else len(answer)} query lists "
                              f"for {len(batch)} passages")
        for offset, queries in enumerate(answer):
            for q in list(queries)[:n]:
                if isinstance(q, str) and q.strip():
                    yield Query(start + offset, q.strip(), batch[offset].text)


def is_neighbour(a: PassageRecord, b: PassageRecord, window: int) -> bool:
    """Same passage, or the same document within ``window`` positions."""
    if a.id == b.id:
        return True
    if a.doc_id != b.doc_id or a.position is None or b.position is None:
        return False
    return abs(a.position - b.position) <= window


@dataclass
class PairsReport:
    out: str
    method: str
    passages: int
    examples: int
    passages_without_query: int
    without_negatives: int


def make_pairs(passages_path: str | Path, out: str | Path, method: str = "ict",
               queries_per_passage: int = 1, negatives: int = 7, pool: int = 30,
               exclude_window: int = 2, seed: int = 42) -> PairsReport:
    """Write canonical training examples built from passages to ``out`` (atomically)."""
    if queries_per_passage < 1:
        raise BgekitError("--queries-per-passage must be at least 1")
    if negatives < 0 or pool < negatives:
        raise BgekitError("--negatives must be >= 0 and no more than --pool")
    passages = read_passages(passages_path)
    rng = random.Random(seed)
    if method == "ict":
        queries = list(ict_queries(passages, queries_per_passage, rng))
    elif method == "title":
        queries = list(title_queries(passages))
    elif method == "generate":
        queries = list(generated_queries(passages, queries_per_passage))
    elif method.startswith("file:"):
        queries = list(file_queries(method[5:], passages))
    else:
        raise BgekitError(f"unknown --method '{method}'; use ict, title, generate or file:QUERIES")
    index = None
    if negatives:
        from bgekit.data.lexical import Bm25Index

        index = Bm25Index([p.text for p in passages])
    search_k = pool + 2 * exclude_window + 2
    examples = no_negatives = 0
    with atomic_write(out) as fh:
        for start in range(0, len(queries), SEARCH_BATCH):
            batch = queries[start:start + SEARCH_BATCH]
            ranked = index.search([q.text for q in batch], search_k) if index else [[] for _ in batch]
            for query, hits in zip(batch, ranked):
                own = passages[query.passage]
                candidates = [h for h in hits if not is_neighbour(own, passages[h], exclude_window)
                              and passages[h].text != query.positive][:pool]
                picked = sorted(rng.sample(range(len(candidates)), min(negatives, len(candidates))))
                chosen = [candidates[r] for r in picked]  # in BM25 rank order
                row = {"query": query.text, "pos": [query.positive],
                       "neg": [passages[h].text for h in chosen], "passage_id": own.id}
                no_negatives += not chosen and negatives > 0
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
                examples += 1
    with_query = len({q.passage for q in queries})
    return PairsReport(str(out), method, len(passages), examples, len(passages) - with_query, no_negatives)
