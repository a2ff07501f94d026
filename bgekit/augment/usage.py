"""Token counts: what each request used, the run's totals, estimates before sending, and prices.

Estimates (for ``--dry-run`` and the tokens-per-minute limit) count one token
per CJK character and one per four other characters: close enough for
budgeting without downloading a tokenizer. Servers' own ``usage`` counts are
used whenever a response carries them.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Any, Sequence

#: tokens a chat message costs beyond its text (role, separators), as OpenAI documents
PER_MESSAGE_TOKENS = 4


def _is_cjk(char: str) -> bool:
    code = ord(char)
    return (0x3040 <= code <= 0x30FF or 0x3400 <= code <= 0x4DBF or 0x4E00 <= code <= 0x9FFF
            or 0xAC00 <= code <= 0xD7AF or 0xF900 <= code <= 0xFAFF or 0x20000 <= code <= 0x2FA1F)


def estimate_tokens(text: str) -> int:
    """A rough token count: CJK characters one each, other characters four to a token."""
    cjk = sum(1 for c in text if _is_cjk(c))
    return cjk + math.ceil((len(text) - cjk) / 4)


def estimate_messages(messages: Sequence[dict[str, Any]]) -> int:
    return sum(PER_MESSAGE_TOKENS + estimate_tokens(str(m.get("content", ""))) for m in messages)


@dataclass(frozen=True)
class Prices:
    """Price per 1000 prompt (input) and completion (output) tokens, in the user's currency."""

    per_1k_input: float | None = None
    per_1k_output: float | None = None

    @property
    def known(self) -> bool:
        return self.per_1k_input is not None or self.per_1k_output is not None

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        if not self.known:
            return None
        return (prompt_tokens * (self.per_1k_input or 0.0) + completion_tokens * (self.per_1k_output or 0.0)) / 1000


@dataclass
class Usage:
    """Totals of a run; updated from many threads."""

    requests: int = 0          # HTTP requests sent, retries included
    responses: int = 0         # completions received (usable or not)
    cache_hits: int = 0        # completions taken from the cache instead of sent
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    estimated_tokens: int = 0  # responses without a usage block, counted by estimate
    per_request: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def record(self, entry: dict[str, Any]) -> None:
        """One response: its tokens go into the totals and the per-request log."""
        with self._lock:
            self.responses += 1
            self.prompt_tokens += entry["prompt_tokens"]
            self.completion_tokens += entry["completion_tokens"]
            if entry.get("usage_estimated"):
                self.estimated_tokens += entry["prompt_tokens"] + entry["completion_tokens"]
            self.per_request.append(entry)

    def to_json(self, prices: Prices) -> dict[str, Any]:
        return {"requests": self.requests, "responses": self.responses, "cache_hits": self.cache_hits,
                "retries": self.retries, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "estimated_tokens": self.estimated_tokens,
                "cost": prices.cost(self.prompt_tokens, self.completion_tokens)}
