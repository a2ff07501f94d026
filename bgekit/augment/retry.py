"""How long to wait before trying a request again: exponential backoff with jitter, or what the server said.

``Retry-After`` (seconds or an HTTP date) and OpenAI's ``retry-after-ms`` are
honoured: the wait is at least what the server asked for.
"""

from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping


@dataclass
class Backoff:
    """``base * 2**(attempt-1)`` capped at ``maximum``, then a random half of it added back (equal jitter)."""

    base: float = 1.0
    maximum: float = 60.0
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        cap = min(self.maximum, self.base * 2 ** max(attempt - 1, 0))
        jittered = cap / 2 + self.rng.uniform(0, cap / 2)
        return max(jittered, retry_after) if retry_after is not None else jittered


def retry_after_seconds(headers: Mapping[str, str], now: Callable[[], float] = time.time) -> float | None:
    """The wait a 429/503 response asks for, in seconds, or None when it names none."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now())
