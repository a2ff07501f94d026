"""Completions on disk, so a run that was killed continues without paying for a request twice.

Keyed by a SHA-256 of (messages, model, request parameters) — never the API
key or the server's address. SQLite commits each completion as one
transaction (write-ahead log), so a kill at any moment leaves every earlier
completion readable and never a half-written one. Only usable completions are
stored: a reply that failed to parse is asked for again next time.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from bgekit.errors import BgekitError

SCHEMA = """CREATE TABLE IF NOT EXISTS completions (
    key TEXT PRIMARY KEY, model TEXT NOT NULL, text TEXT NOT NULL, finish_reason TEXT,
    prompt_tokens INTEGER, completion_tokens INTEGER, created REAL)"""


def cache_key(messages: Sequence[dict[str, Any]], model: str, params: dict[str, Any]) -> str:
    payload = json.dumps({"messages": list(messages), "model": model, "params": params},
                         sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CachedCompletion:
    text: str
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int


class CompletionCache:
    """A SQLite file of completions; safe to share between worker threads.

    ``read_only`` (dry runs) never creates or changes the file.
    """

    def __init__(self, path: str | Path, read_only: bool = False) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        try:
            if read_only:
                if self.path.is_file():
                    self._conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise BgekitError(f"{self.path}: not a readable completion cache ({exc}); move it away or pass "
                              "another --cache") from None

    def get(self, key: str) -> CachedCompletion | None:
        if self._conn is None:
            return None
        with self._lock:
            try:
                row = self._conn.execute("SELECT text, finish_reason, prompt_tokens, completion_tokens "
                                         "FROM completions WHERE key = ?", (key,)).fetchone()
            except sqlite3.OperationalError:  # a read-only view of a file without the table yet
                return None
        return CachedCompletion(row[0], row[1], row[2] or 0, row[3] or 0) if row else None

    def put(self, key: str, model: str, completion: CachedCompletion) -> None:
        if self._conn is None:
            raise BgekitError(f"{self.path}: the cache was opened read-only")
        with self._lock:
            self._conn.execute("INSERT OR REPLACE INTO completions VALUES (?, ?, ?, ?, ?, ?, ?)",
                               (key, model, completion.text, completion.finish_reason, completion.prompt_tokens,
                                completion.completion_tokens, time.time()))

    def __len__(self) -> int:
        if self._conn is None:
            return 0
        with self._lock:
            try:
                return int(self._conn.execute("SELECT COUNT(*) FROM completions").fetchone()[0])
            except sqlite3.OperationalError:
                return 0

    def close(self) -> None:
        if self._conn is not None:
            with self._lock:
                self._conn.close()
                self._conn = None
