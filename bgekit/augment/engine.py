"""Running an augmenter over many items: concurrency, cache, limits, retries, accounting.

Items run on a pool of ``concurrency`` threads. Each request an augmenter
asks for is looked up in the cache first; otherwise it waits for the rate
limits, is sent, and is retried with backoff when the server fails
transiently or the reply is unusable (``finish_reason: length`` counts as
unusable: the reply was cut off). An item whose request stays unusable after
``max_retries`` retries fails alone, with its reason; the run goes on. Only
a server that refuses every request (wrong key, model or URL) stops the run.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Sequence, TypeVar

from bgekit.augment.augmenter import Augmenter, Item, Unusable
from bgekit.augment.cache import CachedCompletion, CompletionCache, cache_key
from bgekit.augment.client import ChatClient, RejectedError, TransientError
from bgekit.augment.limits import RateLimits
from bgekit.augment.retry import Backoff
from bgekit.augment.usage import Usage, estimate_messages, estimate_tokens
from bgekit.errors import BgekitError

T = TypeVar("T")


class ItemFailed(Exception):
    """A request of this item stayed unusable; ``reason`` says what the last attempt got."""


class _Stopped(Exception):
    """Another item hit an error that stops the run."""


@dataclass
class ItemResult:
    item: Item
    texts: list[str] | None
    error: str | None = None
    attempts: int = 0


class Engine:
    """Sends (or, with ``dry_run``, only counts) the requests augmenters ask for."""

    def __init__(self, client: ChatClient | None, cache: CompletionCache, *, model: str, params: dict[str, Any],
                 limits: RateLimits | None = None, backoff: Backoff | None = None, max_retries: int = 6,
                 concurrency: int = 4, dry_run: bool = False, sleep: Callable[[float], None] = time.sleep) -> None:
        if client is None and not dry_run:
            raise ValueError("a client is needed unless dry_run")
        self.client, self.cache, self.model, self.params = client, cache, model, dict(params)
        self.limits = limits or RateLimits()
        self.backoff = backoff or Backoff()
        self.max_retries, self.concurrency, self.dry_run = max_retries, max(1, concurrency), dry_run
        self.sleep = sleep
        self.usage = Usage()
        self._stop = threading.Event()

    def run(self, augmenter: Augmenter, items: Sequence[Item],
            progress: Callable[[int], None] | None = None) -> list[ItemResult]:
        """One result per item, in input order."""
        fatal: list[BaseException] = []

        def work(item: Item) -> ItemResult:
            result = self._run_item(augmenter, item, fatal)
            if progress is not None:
                progress(1)
            return result

        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="augment") as pool:
            results = list(pool.map(work, items))
        if fatal:
            raise fatal[0]
        return results

    def _run_item(self, augmenter: Augmenter, item: Item, fatal: list[BaseException]) -> ItemResult:
        if self._stop.is_set():
            return ItemResult(item, None, "not run: the run stopped")
        attempts = [0]
        try:
            texts = augmenter.run(item, self._ask_for(item, attempts))
        except ItemFailed as exc:
            return ItemResult(item, None, str(exc), attempts[0])
        except _Stopped:
            return ItemResult(item, None, "not run: the run stopped", attempts[0])
        except BgekitError as exc:  # the server refuses everything: stop the other items too
            self._stop.set()
            fatal.append(exc)
            return ItemResult(item, None, str(exc), attempts[0])
        except Unusable as exc:
            return ItemResult(item, None, f"unusable: {exc}", attempts[0])
        except Exception as exc:  # noqa: BLE001 - a plugin bug fails its item, not the run
            return ItemResult(item, None, f"the augmenter raised {type(exc).__name__}: {exc}", attempts[0])
        return ItemResult(item, [t for t in texts if isinstance(t, str)], None, attempts[0])

    def _ask_for(self, item: Item, attempts: list[int]):
        def ask(messages: list[dict[str, str]], parse: Callable[[str], T], *, expected_reply: str = "") -> T:
            return self._ask(item, messages, parse, expected_reply, attempts)

        return ask

    def _ask(self, item: Item, messages: list[dict[str, str]], parse: Callable[[str], T], expected_reply: str,
             attempts: list[int]) -> T:
        key = cache_key(messages, self.model, self.params)
        cached = self.cache.get(key)
        if cached is not None:
            try:
                value = parse(cached.text)
            except Unusable:
                pass  # stored by an older parser that accepted it: ask again
            else:
                self.usage.add(cache_hits=1)
                return value
        if self.dry_run:
            self.usage.add(requests=1)
            self.usage.record({"passage_id": item.id, "prompt_tokens": estimate_messages(messages),
                               "completion_tokens": estimate_tokens(expected_reply), "usage_estimated": True})
            return parse(expected_reply)
        estimate = estimate_messages(messages) + int(self.params.get("max_tokens") or 0)
        last, retry_after = "", None
        for attempt in range(self.max_retries + 1):
            if self._stop.is_set():
                raise _Stopped()
            if attempt:
                self.usage.add(retries=1)
                self.sleep(self.backoff.delay(attempt, retry_after))
            retry_after = None
            attempts[0] += 1
            self.limits.acquire(estimate)
            self.usage.add(requests=1)
            try:
                completion = self.client.complete(messages, self.params)
            except TransientError as exc:
                last, retry_after = exc.reason, exc.retry_after
                continue
            except RejectedError as exc:
                raise ItemFailed(exc.reason) from None
            self.usage.record({"passage_id": item.id, "key": key[:16], "attempt": attempt + 1,
                               "prompt_tokens": completion.prompt_tokens,
                               "completion_tokens": completion.completion_tokens,
                               "usage_estimated": completion.usage_estimated,
                               "seconds": round(completion.seconds, 3)})
            try:
                if completion.finish_reason == "length":
                    raise Unusable("cut off at max_tokens (finish_reason: length)")
                value = parse(completion.text)
            except Unusable as exc:
                last = f"unusable completion: {exc}"
                continue
            self.cache.put(key, self.model, CachedCompletion(completion.text, completion.finish_reason,
                                                             completion.prompt_tokens,
                                                             completion.completion_tokens))
            return value
        raise ItemFailed(f"{last} (after {self.max_retries + 1} attempts)")
