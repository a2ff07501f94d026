"""What the built-in augmenters share: the prompt template a recipe may override, and the system message."""

from __future__ import annotations

from bgekit.api import Unusable, chat_messages, check_template, parse_reply_list, render_template

from bgekit_augmenters.templates import SYSTEM


class TemplatePrompt:
    """A user template (checked for unknown placeholders) and a system message."""

    def __init__(self, default: str, custom: str | None, system: str | None, allowed: tuple[str, ...],
                 where: str) -> None:
        self.template = check_template(custom if custom is not None else default, allowed, where)
        self.system = SYSTEM if system is None else (system or None)

    def messages(self, **values: object) -> list[dict[str, str]]:
        return chat_messages(render_template(self.template, values), self.system)


def parse_texts(reply: str, n: int, what: str) -> list[str]:
    """Up to ``n`` texts of a list reply; none at all makes the reply unusable (asked again)."""
    found = parse_reply_list(reply)
    if not found:
        raise Unusable(f"no {what} in the reply")
    return found[:n]
