"""The built-in augmenters' prompts (a recipe may replace each with its own ``prompt``/``system``)."""

from __future__ import annotations

import json
from typing import Any, Iterable, Mapping

SYSTEM = "You write data for training a search engine. Follow the instructions exactly."

QUERIES = """Write $n different search queries in $language that a person might type to find the passage below.
Each query must be answered by the passage, read like something a real person asks or searches for, and must not copy whole sentences from the passage. Vary their wording and what they ask about.
Reply with a JSON array of $n strings and nothing else.
$examples
Passage:
\"\"\"
$passage
\"\"\""""

PARAPHRASE = """Rewrite the search query below in $n different ways in $language.
Each rewrite must ask for exactly the same information, in other words than the original.
Reply with a JSON array of $n strings and nothing else.

Query:
\"\"\"
$query
\"\"\""""

TRANSLATE = """Translate the text below into $language. Keep its meaning, names and numbers.
Reply with the translation only: no notes, no quotes, no explanations.

Text:
\"\"\"
$text
\"\"\""""


def few_shot_block(examples: Iterable[Mapping[str, Any]], what: str = "queries") -> str:
    """Worked examples for the prompt: each a passage and the queries a person wrote for it."""
    parts = []
    for example in examples:
        parts.append(f"Example passage:\n\"\"\"\n{example['passage']}\n\"\"\"\nExample {what}: "
                     + json.dumps(list(example[what]), ensure_ascii=False))
    return ("\n" + "\n\n".join(parts) + "\n") if parts else ""
