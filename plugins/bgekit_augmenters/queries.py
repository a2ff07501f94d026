"""``queries``: N search queries per passage, in a chosen language."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bgekit.api import Ask, Augmenter, Item, language_name, read_passage_items

from bgekit_augmenters.common import TemplatePrompt, parse_texts
from bgekit_augmenters.templates import QUERIES, few_shot_block

#: a stand-in query for dry-run estimates (about 12 tokens)
TYPICAL_QUERY = "?" * 48


class QueryWriter(Augmenter):
    target = "query"

    def __init__(self, language: str = "en", per_passage: int = 3, few_shot: list[dict[str, Any]] | None = None,
                 prompt: str | None = None, system: str | None = None) -> None:
        self.language, self.n = language, per_passage
        self.prompt = TemplatePrompt(QUERIES, prompt, system, ("n", "language", "passage", "examples"),
                                     "queries prompt")
        self.examples = few_shot_block(few_shot or [])

    def read(self, path: str | Path) -> list[Item]:
        return read_passage_items(path)

    def run(self, item: Item, ask: Ask) -> list[str]:
        messages = self.prompt.messages(n=self.n, language=language_name(self.language),
                                        passage=item.text, examples=self.examples)
        return ask(messages, self.parse, expected_reply=json.dumps([TYPICAL_QUERY] * self.n))

    def parse(self, reply: str) -> list[str]:
        return parse_texts(reply, self.n, "query")

    def output_language(self, item: Item) -> str | None:
        return self.language

    def describe(self) -> dict[str, Any]:
        return {"language": self.language}
