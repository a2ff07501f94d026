"""DuReader-style questions with judged documents.

``{"data": [{"question", "answers", "documents": [{"content", "is_relevant"}]}]}``
or one question object per line. Relevant documents become positives, the
others negatives; DuReader 2.0's ``paragraphs``/``is_selected`` are read too,
and when no document is marked relevant the ``answers`` serve as positives.
"""

from __future__ import annotations

from typing import Any, Iterator

from bgekit.api import (
    Example,
    JsonProblem,
    JsonSyntaxError,
    RowError,
    TooDeep,
    decode_error,
    example_from_mapping,
    iter_json_array,
    iter_lines,
    parse_json,
    resolve_encoding,
)

from bgekit_formats.common import json_objects, sample_lines, share


def detect_dureader(sample) -> float:
    if sample.is_dir:
        return 0.0
    head = sample.text.lstrip()
    if head.startswith("{") and head[1:].lstrip().startswith('"data"') and '"question"' in head[:8192]:
        return 0.95
    objs = json_objects(sample_lines(sample)) or []
    return 0.9 * share(objs, "question", "documents")


def example_from_question(obj: Any, path: str, line: int) -> Example | RowError:
    """One DuReader question as a canonical example."""
    if not isinstance(obj, dict):
        return RowError(path, line, f"expected a question object, got {type(obj).__name__}")
    docs = obj.get("documents", [])
    if not isinstance(docs, list):
        return RowError(path, line, "must be a list of document objects", "documents")
    pos, neg = [], []
    for i, doc in enumerate(docs):
        if not isinstance(doc, dict):
            return RowError(path, line, f"document {i} is not an object", "documents")
        content = doc.get("content")
        if content is None and isinstance(doc.get("paragraphs"), list):
            content = "\n".join(str(p) for p in doc["paragraphs"])
        if not isinstance(content, str):
            return RowError(path, line, f"document {i} has no string 'content'", "documents")
        relevant = doc.get("is_relevant", doc.get("is_selected", False))
        if not isinstance(relevant, (bool, int)) or isinstance(relevant, int) and relevant not in (0, 1, True, False):
            return RowError(path, line, f"document {i}: 'is_relevant' must be true/false or 1/0", "documents")
        (pos if relevant else neg).append(content)
    if not pos:
        answers = obj.get("answers") or []
        pos = [answers] if isinstance(answers, str) else answers
    row = {"query": obj.get("question"), "pos": pos, "neg": neg}
    example = example_from_mapping(row, path, line)
    if isinstance(example, RowError) and example.field == "query":
        example.field = "question"
    return example


class DureaderReader:
    """Streams questions from the ``data`` array, or from JSON lines."""

    def __init__(self, encoding: str = "auto") -> None:
        self.encoding = encoding

    def read(self, path: str) -> Iterator[Example | RowError]:
        codec = resolve_encoding(path, self.encoding)
        with open(path, encoding=codec, errors="strict") as fh:
            head = fh.read(4096).lstrip("\ufeff \t\r\n")
        if head.startswith("{") and head[1:].lstrip().startswith('"data"'):
            with open(path, encoding=codec, errors="strict") as fh:
                try:
                    for line, value in iter_json_array(fh, path, key="data"):
                        if isinstance(value, JsonSyntaxError):
                            yield RowError(path, value.line, f"{value}; the rest of the file cannot be read")
                            return
                        if isinstance(value, TooDeep):
                            yield RowError(path, line, "not valid JSON here (nested too deeply to read)")
                            continue
                        yield example_from_question(value, path, line)
                except UnicodeDecodeError as exc:
                    raise decode_error(path, None, codec, exc) from None
            return
        for line, text in iter_lines(path, codec):
            if not text.strip():
                continue
            obj = parse_json(text)
            if isinstance(obj, JsonProblem):
                yield RowError(path, line, obj, raw=text)
                continue
            yield example_from_question(obj, path, line)
