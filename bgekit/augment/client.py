"""One chat-completions request to any OpenAI-compatible server, with its errors sorted.

``POST {base_url}/chat/completions`` over httpx with a timeout. What can go
wrong is sorted for the engine (:mod:`bgekit.augment.engine`):

- :class:`TransientError`: 429, 408, 409, 5xx, timeouts, dropped connections,
  bodies that are not the JSON a completion should be - worth retrying
  (``retry_after`` carries the server's ``Retry-After``);
- :class:`RejectedError`: any other 4xx for this request (too long, bad
  parameters) - this row fails, the run goes on;
- :class:`ServerRefused` (a :class:`~bgekit.errors.BgekitError`): 401, 403,
  404 - a wrong key, model or URL; no other request will do better, so the
  run stops.

The API key goes only into the ``Authorization`` header; every message this
module makes has it masked, in case a server echoes it back.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Sequence

import httpx

from bgekit.augment.retry import retry_after_seconds
from bgekit.augment.usage import estimate_messages, estimate_tokens
from bgekit.errors import BgekitError

#: response text quoted in an error message
QUOTED_CHARS = 200


class TransientError(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason, self.retry_after = reason, retry_after


class RejectedError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ServerRefused(BgekitError):
    """The server refuses every request (key, model or address wrong)."""


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int
    usage_estimated: bool
    seconds: float


class ChatClient:
    """A connection pool to one server for one model; thread-safe."""

    def __init__(self, base_url: str, model: str, api_key: str | None = None, timeout: float = 60.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise BgekitError(f"base URL '{base_url}' must start with http:// or https:// "
                              "(e.g. https://api.openai.com/v1 or http://localhost:8000/v1)")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self._secret = api_key or None
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(headers=headers, timeout=httpx.Timeout(timeout), transport=transport)

    def mask(self, text: str) -> str:
        """``text`` with the API key replaced by ``***``."""
        return text.replace(self._secret, "***") if self._secret else text

    def complete(self, messages: Sequence[dict[str, Any]], params: dict[str, Any]) -> Completion:
        body = {"model": self.model, "messages": list(messages), **params}
        url = f"{self.base_url}/chat/completions"
        started = time.perf_counter()
        try:
            response = self._http.post(url, json=body)
            raw = response.content
        except httpx.TimeoutException as exc:
            raise TransientError(f"timed out ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise TransientError(self.mask(f"connection failed ({type(exc).__name__}: {exc})")) from None
        seconds = time.perf_counter() - started
        status = response.status_code
        if status >= 400:
            snippet = self.mask(raw[:QUOTED_CHARS].decode("utf-8", "replace")).strip()
            reason = f"HTTP {status} from {url}" + (f": {snippet}" if snippet else "")
            if status in (401, 403, 404):
                hint = "check the model name and --base-url" if status == 404 else \
                    "check the API key's environment variable and its permissions"
                raise ServerRefused(f"{reason} ({hint})")
            if status in (408, 409, 429) or status >= 500:
                raise TransientError(reason, retry_after_seconds(response.headers))
            raise RejectedError(reason)
        return self._parse(raw, messages, seconds)

    def _parse(self, raw: bytes, messages: Sequence[dict[str, Any]], seconds: float) -> Completion:
        try:
            data = json.loads(raw)
            choice = data["choices"][0]
            text = choice["message"]["content"]
            if not isinstance(text, str):
                raise TypeError("content is not a string")
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            snippet = self.mask(raw[:80].decode("utf-8", "replace"))
            raise TransientError(f"malformed response ({type(exc).__name__}: {exc}; body starts {snippet!r})") \
                from None
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        prompt_tokens, completion_tokens = usage.get("prompt_tokens"), usage.get("completion_tokens")
        estimated = not isinstance(prompt_tokens, int) or not isinstance(completion_tokens, int)
        if estimated:
            prompt_tokens, completion_tokens = estimate_messages(messages), estimate_tokens(text)
        return Completion(text, choice.get("finish_reason"), prompt_tokens, completion_tokens, estimated, seconds)

    def close(self) -> None:
        self._http.close()
