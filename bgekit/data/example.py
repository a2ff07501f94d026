"""The canonical training example and the row-level error that replaces a bad one.

Every data format reads into :class:`Example`; a row that cannot become one
becomes a :class:`RowError` carrying file, line, field and reason, so readers
never drop a row silently and valid rows still count.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass
class Example:
    """One query with its positives, negatives and optional teacher scores."""

    query: str
    pos: list[str]
    neg: list[str] = field(default_factory=list)
    pos_scores: list[float] | None = None
    neg_scores: list[float] | None = None
    #: graded relevance of each positive (e.g. 1-3 from qrels); None means every positive counts 1
    pos_labels: list[float] | None = None
    prompt: str | None = None
    type: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: where the example was read from (file line), for messages; not part of the data
    line: int | None = field(default=None, repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        """The canonical JSONL object; unset optional fields are left out."""
        out: dict[str, Any] = {"query": self.query, "pos": self.pos, "neg": self.neg}
        for name in ("pos_scores", "neg_scores", "pos_labels", "prompt", "type"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        out.update(self.extra)
        return out


@dataclass
class RowError:
    """Why one input row is not a valid example."""

    path: str
    line: int
    reason: str
    field: str | None = None
    raw: str | None = None

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}"
        return f"{where}  {'$.' + self.field + '  ' if self.field else ''}{self.reason}"

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "line": self.line, "field": self.field,
                "reason": self.reason, "raw": self.raw}


#: Teacher scores are logits or probabilities; beyond this they overflow float32 softmaxes in training.
MAX_ABS_SCORE = 1e6
#: Graded relevance; LambdaRank's 2^label gains overflow float32 past 127.
MAX_LABEL = 100
_SURROGATE = re.compile("[\ud800-\udfff]")

KNOWN_FIELDS = {"query", "pos", "neg", "pos_scores", "neg_scores", "pos_labels", "prompt", "type"}


def example_from_mapping(row: Mapping[str, Any], path: str, line: int, *,
                         score_range: tuple[float, float] | None = None) -> Example | RowError:
    """Check one canonical row and build the example, or say what is wrong with it.

    ``score_range`` (low, high), when given, bounds every teacher score; scores
    must always be finite.
    """

    def bad(reason: str, fld: str | None = None) -> RowError:
        return RowError(path, line, reason, fld)

    if not isinstance(row, Mapping):
        return bad(f"expected a JSON object, got {type(row).__name__}")
    query = row.get("query")
    if not isinstance(query, str):
        return bad("missing or not a string; every row needs a 'query'", "query")
    if not query.strip():
        return bad("empty query", "query")
    lists: dict[str, list[str]] = {}
    for name in ("pos", "neg"):
        value = row.get(name, [] if name == "neg" else None)
        if isinstance(value, str):
            value = [value]
        if value is None:
            return bad("missing; every row needs at least one positive passage", name)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return bad("must be a list of strings", name)
        lists[name] = value
    if not lists["pos"] or not any(p.strip() for p in lists["pos"]):
        return bad("no non-empty positive passage", "pos")
    for name in ("pos", "neg"):
        for i, text in enumerate(lists[name]):
            if not text.strip():
                return bad(f"passage {i} is empty", name)
    scores: dict[str, list[float] | None] = {}
    for name, ref in (("pos_scores", "pos"), ("neg_scores", "neg")):
        value = row.get(name)
        if value is None:
            scores[name] = None
            continue
        numbers = _finite_numbers(value, "score", MAX_ABS_SCORE, "teacher scores")
        if isinstance(numbers, str):
            return bad(numbers, name)
        if len(numbers) != len(lists[ref]):
            return bad(f"has {len(numbers)} scores for {len(lists[ref])} passages in '{ref}'", name)
        out_of_range = score_range_problem(numbers, score_range)
        if out_of_range:
            return bad(out_of_range, name)
        scores[name] = numbers
    labels = row.get("pos_labels")
    if labels is not None:
        labels = _finite_numbers(labels, "label", MAX_LABEL, "labels (2^label gains)")
        if isinstance(labels, str):
            return bad(labels.replace("a list of numbers", "a list of numbers (the graded relevance of each "
                                      "positive)"), "pos_labels")
        if len(labels) != len(lists["pos"]):
            return bad(f"has {len(labels)} labels for {len(lists['pos'])} passages in 'pos'", "pos_labels")
        if any(v <= 0 for v in labels):
            return bad("labels of positives must be finite and > 0 (a non-relevant passage goes in 'neg')",
                       "pos_labels")
    positives = {p.strip() for p in lists["pos"]}
    for i, neg in enumerate(lists["neg"]):
        if neg.strip() in positives:
            return bad(f"negative {i} is identical to a positive; remove it", "neg")
    for name in ("prompt", "type"):
        if row.get(name) is not None and not isinstance(row.get(name), str):
            return bad("must be a string", name)
    extra = {k: v for k, v in row.items() if k not in KNOWN_FIELDS}
    problem = text_problem(row)
    if problem:
        return bad(*problem)
    return Example(query=query, pos=lists["pos"], neg=lists["neg"],
                   pos_scores=scores["pos_scores"], neg_scores=scores["neg_scores"], pos_labels=labels,
                   prompt=row.get("prompt"), type=row.get("type"), extra=extra, line=line)


def _finite_numbers(value: Any, what: str, limit: float, kind: str) -> list[float] | str:
    """``value`` as a list of finite floats within +-``limit``, or why it is not one."""
    if not isinstance(value, list) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
    ):
        return "must be a list of numbers"
    out = []
    for i, v in enumerate(value):
        try:
            number = float(v)
        except OverflowError:
            digits = int((v.bit_length() - 1) * math.log10(2)) + 1  # str(v) refuses past 4300 digits
            return f"{what} {i} is an integer too large for a number (about {digits} digits)"
        if getattr(v, "digits", None):  # jsonlines.TooManyDigits
            return f"{what} {i} is a number with {v.digits} digits, too long to read"
        if not math.isfinite(number):
            return "contains NaN or infinity"
        if abs(number) > limit:
            return f"{what} {i} is {number:g}; {kind} must lie within -{limit:g}..{limit:g}"
        out.append(number)
    return out


def text_problem(row: Mapping[str, Any]) -> tuple[str, str | None] | None:
    """``(reason, field)`` when a row holds text no UTF-8 file can store (an unpaired
    surrogate such as ``"\\ud800"``) or a non-finite number in an extra field
    (not valid JSON), else None. Walks iteratively: the row may be deeply nested."""
    stack: list[tuple[Any, str | None]] = [(row, None)]
    while stack:
        value, top = stack.pop()
        if isinstance(value, str):
            found = _SURROGATE.search(value)
            if found:
                return (f"holds an unpaired surrogate (\\u{ord(found.group()):04x}), which is not valid "
                        "Unicode text; fix the escape in the file", top)
        elif isinstance(value, float) and getattr(value, "digits", None):  # jsonlines.TooManyDigits
            return f"holds a number with {value.digits} digits, too long to read", top
        elif isinstance(value, float) and not math.isfinite(value):
            return "contains NaN or infinity, which JSON cannot hold", top
        elif isinstance(value, Mapping):
            for key, sub in value.items():
                stack.append((key, top))
                stack.append((sub, top if top is not None else str(key)))
        elif isinstance(value, list):
            stack.extend((sub, top) for sub in value)
    return None


def score_range_problem(scores: list[float] | None, score_range: tuple[float, float] | None) -> str | None:
    """Why ``scores`` break ``score_range`` (low, high), or None when they do not."""
    if not scores or score_range is None:
        return None
    low, high = score_range
    for i, v in enumerate(scores):
        if not low <= v <= high:
            return f"score {i} is {v}, out of range [{low}, {high}]"
    return None
