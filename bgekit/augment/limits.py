"""Requests-per-minute and tokens-per-minute limits as token buckets shared by all worker threads.

A bucket refills at ``per_minute / 60`` a second and holds at most one
second's worth (``burst``), so a limit holds over any window, not only per
calendar minute. A request larger than the bucket waits for a full bucket and
leaves a debt the next requests wait out, so the average rate still holds.
"""

from __future__ import annotations

import threading
import time
from typing import Callable


class TokenBucket:
    def __init__(self, per_minute: float, burst: float | None = None,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self.rate = per_minute / 60.0
        self.capacity = burst if burst is not None else max(1.0, self.rate)
        self.tokens = self.capacity
        self._clock, self._sleep = clock, sleep
        self._updated = clock()
        self._lock = threading.Lock()

    def acquire(self, amount: float = 1.0) -> float:
        """Take ``amount``, waiting as long as the rate needs; returns the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                self.tokens = min(self.capacity, self.tokens + (now - self._updated) * self.rate)
                self._updated = now
                need = min(amount, self.capacity)
                if self.tokens >= need:
                    self.tokens -= amount
                    return waited
                wait = (need - self.tokens) / self.rate
            self._sleep(wait)
            waited += wait


class RateLimits:
    """Both limits; 0 or None switches one off."""

    def __init__(self, requests_per_minute: float | None = None, tokens_per_minute: float | None = None,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.requests = TokenBucket(requests_per_minute, clock=clock, sleep=sleep) if requests_per_minute else None
        self.tokens = TokenBucket(tokens_per_minute, clock=clock, sleep=sleep) if tokens_per_minute else None

    def acquire(self, tokens: int) -> float:
        """Wait until one more request of about ``tokens`` tokens fits both limits."""
        waited = self.requests.acquire(1) if self.requests else 0.0
        if self.tokens:
            waited += self.tokens.acquire(tokens)
        return waited
