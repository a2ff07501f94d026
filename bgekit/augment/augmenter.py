"""What an augmenter plugin implements, and the items it works on.

An augmenter reads its input file into :class:`Item` records, and for each
item calls ``ask(messages, parse)`` for every chat completion it needs:
bgekit sends it (or takes it from the cache), retries it, rate-limits it, and
returns ``parse(reply)``. ``parse`` raises :class:`Unusable` for a reply that
cannot be used; that reply is asked for again and, if it stays unusable,
the item is reported as failed with its passage id. The augmenter returns
the new texts; bgekit filters them and writes the rows.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, TypeVar

T = TypeVar("T")


class Unusable(Exception):
    """A completion that cannot be used (empty, truncated, not the asked-for shape)."""


class Ask(Protocol):
    def __call__(self, messages: list[dict[str, str]], parse: Callable[[str], T], *,
                 expected_reply: str = "") -> T:
        """``parse`` of the completion for ``messages``.

        ``expected_reply`` is a stand-in of the usual size: a dry run counts
        its tokens and passes it on, so chained requests can be estimated.
        """


@dataclass
class Item:
    """One unit of work: a passage to write queries for, or a row whose query or passage is rewritten."""

    id: str                 # the passage id reported in errors and provenance
    text: str               # what the augmenter works on
    passage: str            # the positive passage of the rows made from this item
    line: int               # line (passages: position) in the input file
    query: str | None = None
    row: dict[str, Any] | None = None  # the input row (training data), kept when originals are kept
    extra: dict[str, Any] = field(default_factory=dict)


class Augmenter(ABC):
    """Makes new texts for items; ``target`` says whether they are queries or passages."""

    target: str = "query"

    @abstractmethod
    def read(self, path: str | Path) -> list[Item]:
        """The items of an input file (bad input: a :class:`~bgekit.errors.BgekitError` with file:line)."""

    @abstractmethod
    def run(self, item: Item, ask: Ask) -> list[str]:
        """New texts for ``item`` (queries, or passages when ``target`` is ``"passage"``)."""

    def output_language(self, item: Item) -> str | None:
        """The language code the new texts must be in, for the script check (None: no check)."""
        return None

    def keeps_originals(self) -> bool:
        """Whether the input rows are written too, before the new ones (rewriting training data)."""
        return False

    def describe(self) -> dict[str, Any]:
        """Settings recorded in each row's provenance (language, pivot, ...)."""
        return {}

    def check(self) -> None:
        """Refuse bad settings (a template with unknown placeholders) before anything is sent."""


def read_passage_items(path: str | Path) -> list[Item]:
    """Passages JSONL (``id``, ``text``), as ``bgekit data split`` writes it: one item per passage."""
    from bgekit.data.pairs import read_passages

    return [Item(id=p.id, text=p.text, passage=p.text, line=i + 1) for i, p in enumerate(read_passages(path))]


def read_training_items(path: str | Path, target: str = "query") -> list[Item]:
    """Canonical training JSONL: one item per row, working on its query or its first positive.

    The passage id is the row's ``passage_id`` (or ``id``) when it has one, else ``line N``.
    """
    from bgekit.mine.run import read_training_examples

    items = []
    for number, example in enumerate(read_training_examples(path), start=1):
        line = example.line or number
        pid = example.extra.get("passage_id", example.extra.get("id"))
        row = example.to_json()
        items.append(Item(id=str(pid) if pid is not None else f"line {line}",
                          text=example.query if target == "query" else example.pos[0],
                          passage=example.pos[0], line=line, query=example.query, row=row))
    return items
