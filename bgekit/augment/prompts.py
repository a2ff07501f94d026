"""Prompt helpers for augmenters (public as ``bgekit.api.check_template``, ``chat_messages``, ...).

Templates use ``$name`` placeholders (:class:`string.Template`), so JSON and
braces in a prompt need no escaping. Each augmenter documents its names; a
template naming anything else is refused before any request is sent. The
built-in prompts themselves belong to the built-in augmenters
(``plugins/bgekit_augmenters/templates.py``).
"""

from __future__ import annotations

import json
import re
from string import Template
from typing import Any, Iterable, Mapping

from bgekit.errors import BgekitError

LANGUAGE_NAMES = {
    "en": "English", "zh": "Simplified Chinese", "zh-hant": "Traditional Chinese", "ja": "Japanese",
    "ko": "Korean", "fr": "French", "de": "German", "es": "Spanish", "it": "Italian", "pt": "Portuguese",
    "ru": "Russian", "ar": "Arabic", "nl": "Dutch", "vi": "Vietnamese", "id": "Indonesian",
}

def language_name(code: str) -> str:
    """``en`` -> ``English``; an unknown code is used as written (``Swahili`` works too)."""
    return LANGUAGE_NAMES.get(code.lower(), code)


def check_template(template: str, allowed: Iterable[str], where: str) -> Template:
    """A template whose placeholders are all ``allowed``, or an error naming the first that is not."""
    allowed = set(allowed)
    compiled = Template(template)
    for match in compiled.pattern.finditer(template):
        name = match.group("named") or match.group("braced")
        if match.group("invalid") is not None:
            raise BgekitError(f"{where}: a lone '$' in the template; write '$$' for a dollar sign")
        if name and name not in allowed:
            raise BgekitError(f"{where}: unknown placeholder ${name}; this template may use "
                              + ", ".join(f"${a}" for a in sorted(allowed)))
    return compiled


def render(template: Template, values: Mapping[str, Any]) -> str:
    """The text of a checked template with ``values`` (each written with ``str``) in its placeholders."""
    return template.substitute({k: str(v) for k, v in values.items()})


def messages(user: str, system: str | None = None) -> list[dict[str, str]]:
    """OpenAI-style chat messages: the system message (when there is one), then the user's."""
    return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]


_FENCE = re.compile(r"^```[a-zA-Z]*\s*|\s*```$")
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)、]|[（(]?\d+[)）])\s*")


def parse_list(text: str) -> list[str]:
    """The strings of a JSON array reply; failing that, one per non-empty line without numbering."""
    body = _FENCE.sub("", text.strip())
    start, end = body.find("["), body.rfind("]")
    if start >= 0 and end > start:
        try:
            value = json.loads(body[start:end + 1])
        except ValueError:
            value = None
        if isinstance(value, list):
            return [v.strip() for v in value if isinstance(v, str) and v.strip()]
    lines = [_BULLET.sub("", line).strip().strip('"').strip() for line in body.splitlines()]
    return [line for line in lines if line and line not in ("[", "]")]


def parse_text(text: str) -> str:
    """A single-text reply without code fences or surrounding quotes."""
    body = _FENCE.sub("", text.strip()).strip()
    if len(body) >= 2 and body[0] == body[-1] and body[0] in "\"'":
        body = body[1:-1].strip()
    return body
