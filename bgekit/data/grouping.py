"""Folding row-per-pair files (one query, many lines) into one example per query.

Formats such as MS MARCO's TSV and reranker pairs write one line per
(query, passage). Streaming them means grouping *adjacent* lines of a query;
a query that shows up again after other queries is reported at that line
(sort the file by query), rather than silently starting a second example or
holding the whole file in memory to regroup it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, Iterable, Iterator, TypeVar

from bgekit.data.example import RowError

T = TypeVar("T")


@dataclass
class Group(Generic[T]):
    """Adjacent rows of one query; ``line`` is where the first of them is."""

    key: str
    line: int
    rows: list[T] = field(default_factory=list)


def adjacent_groups(rows: Iterable[tuple[int, str, T] | RowError], path: str,
                    what: str = "query") -> Iterator[Group[T] | RowError]:
    """Group ``(line, key, row)`` items by adjacent equal keys.

    Row errors pass through in order; a key seen before but not adjacent
    becomes a row error for that line. Only 64-bit hashes of finished keys
    are kept, so memory grows by a few dozen bytes per query.
    """
    finished: dict[int, int] = {}
    current: Group[T] | None = None
    for item in rows:
        if isinstance(item, RowError):
            yield item
            continue
        line, key, row = item
        if current is not None and key == current.key:
            current.rows.append(row)
            continue
        earlier = finished.get(hash(key))
        if earlier is not None:
            yield RowError(path, line, f"{what} {key[:60]!r} was already grouped at line {earlier}; "
                           f"rows of one {what} must be adjacent (sort the file by {what})", what)
            continue
        if current is not None:
            finished[hash(current.key)] = current.line
            yield current
        current = Group(key, line, [row])
    if current is not None:
        yield current
