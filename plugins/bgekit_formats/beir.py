"""BEIR-style evaluation data as training examples: a directory with
``corpus.jsonl``, ``queries.jsonl`` and ``qrels/SPLIT.tsv`` (or TREC qrels).

Each judged query becomes an example: documents with relevance > 0 are
positives, judged-irrelevant (0) ones negatives; ``title text`` is the
passage of a titled document. It is read with :func:`bgekit.api.find_beir_files`
and :func:`bgekit.api.examples_from_judgements`, the loaders evaluation uses too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from bgekit.api import Example, RowError, examples_from_judgements, find_beir_files


def detect_beir(sample) -> float:
    if not sample.is_dir:
        return 0.0
    names = set(sample.files)
    has_qrels = any(f.startswith("qrels") for f in names)
    return 0.95 if {"corpus.jsonl", "queries.jsonl"} <= names and has_qrels else 0.0


class BeirReader:
    def __init__(self, split: str = "test", encoding: str = "auto") -> None:
        self.split = split
        self.encoding = encoding

    def read(self, path: str) -> Iterator[Example | RowError]:
        if not Path(path).is_dir():
            from bgekit.api import BgekitError

            raise BgekitError(f"{path}: the beir format reads a directory with corpus.jsonl, "
                              "queries.jsonl and qrels/")
        files = find_beir_files(path, self.split)
        yield from examples_from_judgements(files.qrels, files.queries, files.corpus, self.encoding)
