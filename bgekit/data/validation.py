"""Checking a data file row by row: counts, each bad row with its line, warnings.

Streams the file, so memory stays flat however large it is; only the first
``max_reported`` errors and a few line numbers per warning are kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from bgekit.data.example import Example, RowError, score_range_problem
from bgekit.data.readers import open_data
from bgekit.registry import Registry

WARNING_LINES_KEPT = 20


@dataclass
class WarningTally:
    """A kind of warning: how often it happened and the first lines where."""

    message: str
    count: int = 0
    lines: list[int] = field(default_factory=list)

    def add(self, line: int | None) -> None:
        self.count += 1
        if line is not None and len(self.lines) < WARNING_LINES_KEPT:
            self.lines.append(line)


@dataclass
class ValidationReport:
    path: str
    format: str
    encoding: str
    total: int = 0
    valid: int = 0
    invalid: int = 0
    errors: list[RowError] = field(default_factory=list)
    warnings: dict[str, WarningTally] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.invalid == 0

    def warn(self, key: str, message: str, line: int | None) -> None:
        self.warnings.setdefault(key, WarningTally(message)).add(line)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path, "format": self.format, "encoding": self.encoding,
            "total": self.total, "valid": self.valid, "invalid": self.invalid, "ok": self.ok,
            "errors": [e.to_json() for e in self.errors],
            "errors_not_shown": self.invalid - len(self.errors),
            "warnings": [{"kind": k, "message": w.message, "count": w.count, "lines": w.lines}
                         for k, w in self.warnings.items()],
        }


TokenCounter = Callable[[list[str]], list[int]]


def token_counter(tokenizer_dir: str | Path) -> TokenCounter:
    """Counts tokens (without special tokens) with the tokenizer saved in ``tokenizer_dir``."""
    from transformers import AutoTokenizer

    from bgekit.errors import BgekitError

    try:
        tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    except Exception as exc:  # noqa: BLE001 - any load failure is the user's path
        raise BgekitError(f"{tokenizer_dir}: cannot load a tokenizer ({exc})") from None

    def count(texts: list[str]) -> list[int]:
        return [len(ids) for ids in tok(texts, add_special_tokens=False)["input_ids"]]

    return count


def check_example(example: Example, report: ValidationReport, count_tokens: TokenCounter | None,
                  max_length: int | None) -> None:
    """Add the warnings one valid example raises."""
    line = example.line
    if not example.neg:
        report.warn("no_negatives", "queries with no negatives (in-batch negatives only)", line)
    if len(set(example.neg)) != len(example.neg):
        report.warn("duplicate_negatives", "rows listing the same negative twice", line)
    if count_tokens is not None and max_length:
        texts = [example.query, *example.pos, *example.neg]
        if any(n > max_length for n in count_tokens(texts)):
            report.warn("too_long", f"rows with a query or passage longer than {max_length} tokens "
                        "(truncated in training)", line)


def validate(path: str | Path, registry: Registry | None = None, fmt: str = "auto",
             encoding: str | None = "auto", tokenizer: str | Path | None = None,
             max_length: int | None = None, score_range: tuple[float, float] | None = None,
             max_reported: int = 1000, **params) -> ValidationReport:
    """Read every row of ``path`` and report what is wrong with which line."""
    data = open_data(path, registry, fmt, encoding)
    report = ValidationReport(str(path), data.spec.name, data.encoding)
    count_tokens = token_counter(tokenizer) if tokenizer else None
    if count_tokens is not None and not max_length:
        max_length = 512
    for item in data.rows(**params):
        report.total += 1
        if isinstance(item, Example) and score_range is not None:
            for name in ("pos_scores", "neg_scores"):
                problem = score_range_problem(getattr(item, name), score_range)
                if problem:
                    item = RowError(str(path), item.line or 0, problem, name)
                    break
        if isinstance(item, RowError):
            report.invalid += 1
            if len(report.errors) < max_reported:
                report.errors.append(item)
            continue
        report.valid += 1
        check_example(item, report, count_tokens, max_length)
    return report
