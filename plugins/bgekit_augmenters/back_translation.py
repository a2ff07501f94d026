"""``back-translation``: a query or passage translated into a pivot language and back (zh->en->zh, en->zh->en).

The round trip keeps the meaning and changes the wording, as paraphrasing
does, but follows the translation model's habits rather than a rewrite
prompt's. The result is in the text's own language (``source``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bgekit.api import (Ask, Augmenter, Item, Unusable, guess_language, language_name, parse_reply_text,
                        read_training_items)

from bgekit_augmenters.common import TemplatePrompt
from bgekit_augmenters.templates import TRANSLATE


class BackTranslator(Augmenter):
    def __init__(self, field: str = "query", source: str | None = None, pivot: str = "en",
                 keep_original: bool = True, prompt: str | None = None, system: str | None = None) -> None:
        self.field, self.source, self.pivot, self.keep_original = field, source, pivot, keep_original
        self.target = "query" if field == "query" else "passage"
        self.prompt = TemplatePrompt(TRANSLATE, prompt, system, ("language", "text"),
                                     "back-translation prompt")

    def read(self, path: str | Path) -> list[Item]:
        return read_training_items(path, self.target)

    def run(self, item: Item, ask: Ask) -> list[str]:
        source = self.output_language(item)
        if source is None:
            raise Unusable("cannot tell the text's language; set source")
        if source == self.pivot:
            raise Unusable(f"the text is already in the pivot language '{self.pivot}'; pick another pivot")
        there = ask(self.prompt.messages(language=language_name(self.pivot), text=item.text), self.parse,
                    expected_reply=item.text)
        back = ask(self.prompt.messages(language=language_name(source), text=there), self.parse,
                   expected_reply=item.text)
        return [back]

    @staticmethod
    def parse(reply: str) -> str:
        text = parse_reply_text(reply)
        if not text:
            raise Unusable("empty translation")
        return text

    def output_language(self, item: Item) -> str | None:
        return self.source or guess_language(item.text)

    def keeps_originals(self) -> bool:
        return self.keep_original

    def describe(self) -> dict[str, Any]:
        return {"field": self.field, "source": self.source, "pivot": self.pivot}
