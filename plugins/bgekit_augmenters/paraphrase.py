"""``paraphrase``: the query of each training row rewritten in other words."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bgekit.api import Ask, Augmenter, Item, guess_language, language_name, read_training_items

from bgekit_augmenters.common import TemplatePrompt, parse_texts
from bgekit_augmenters.templates import PARAPHRASE


class Paraphraser(Augmenter):
    target = "query"

    def __init__(self, language: str | None = None, per_query: int = 2, keep_original: bool = True,
                 prompt: str | None = None, system: str | None = None) -> None:
        self.language, self.n, self.keep_original = language, per_query, keep_original
        self.prompt = TemplatePrompt(PARAPHRASE, prompt, system, ("n", "language", "query"),
                                     "paraphrase prompt")

    def read(self, path: str | Path) -> list[Item]:
        return read_training_items(path, "query")

    def run(self, item: Item, ask: Ask) -> list[str]:
        language = self.output_language(item)
        name = language_name(language) if language else "the same language as the query"
        messages = self.prompt.messages(n=self.n, language=name, query=item.text)
        return ask(messages, self.parse, expected_reply=json.dumps([item.text] * self.n, ensure_ascii=False))

    def parse(self, reply: str) -> list[str]:
        return parse_texts(reply, self.n, "rewrite")

    def output_language(self, item: Item) -> str | None:
        return self.language or guess_language(item.text)

    def keeps_originals(self) -> bool:
        return self.keep_original

    def describe(self) -> dict[str, Any]:
        return {"language": self.language}
