"""A local OpenAI-compatible chat-completions server for tests and offline tries.

It listens on 127.0.0.1 only (a free port), answers deterministically, counts
and records every request, and can inject the faults real servers produce::

    with MockChatServer() as server:
        server.fail_next("429", "500", "timeout", "malformed", "truncated", "length")
        ... ChatClient(server.url, "mock") ...
        server.requests          # each with its time, JSON body and headers

Faults: ``429`` (with ``Retry-After``), ``500``, ``401``, ``timeout`` (answers
after ``timeout_seconds``), ``malformed`` (a body that is not JSON),
``truncated`` (the connection drops mid-body), ``length`` (half the text,
``finish_reason: length``), ``empty`` (an empty completion), ``echo-auth``
(a 400 whose body quotes the Authorization header, as a careless proxy might). ``fail_when``
picks a fault for matching requests every time; ``hold_after`` makes requests
after the first N wait until :meth:`release` (to kill a client mid-run).

The default answers: for a "Write N ... search queries" prompt, a JSON array
of N queries made of the passage's own words; for a rewrite prompt, N
variants of the query; for a translation, the text unchanged.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from bgekit.augment.usage import estimate_messages, estimate_tokens

_QUOTED = re.compile(r'"""\n(.*?)\n"""', re.S)
_WORD = re.compile(r"\w+")


def default_reply(messages: list[dict[str, Any]]) -> str:
    """A deterministic completion for the built-in prompts."""
    prompt = str(messages[-1].get("content", ""))
    quoted = _QUOTED.findall(prompt)
    text = quoted[-1] if quoted else prompt
    count = re.search(r"(?:Write|in) (\d+) different", prompt)
    n = int(count.group(1)) if count else 1
    if "search queries" in prompt:
        words = _WORD.findall(text) or ["passage"]
        queries = []
        for i in range(n):
            start = (i * 3) % len(words)
            chosen = (words[start:] + words[:start])[:4]
            joiner = "" if all(len(w) == 1 for w in chosen) else " "
            queries.append("what about " + joiner.join(chosen) + "?")
        return json.dumps(queries, ensure_ascii=False)
    if prompt.startswith("Rewrite"):
        return json.dumps([f"{text} (variant {i + 1})" for i in range(n)], ensure_ascii=False)
    return text


@dataclass
class RecordedRequest:
    time: float
    path: str
    body: Any
    headers: dict[str, str]
    fault: str | None


class MockChatServer:
    def __init__(self, reply: Callable[[list[dict[str, Any]]], str] = default_reply, retry_after: str = "1",
                 timeout_seconds: float = 2.0) -> None:
        self.reply = reply
        self.retry_after = retry_after
        self.timeout_seconds = timeout_seconds
        self.requests: list[RecordedRequest] = []
        self.fail_when: Callable[[Any], str | None] | None = None
        self.hold_after: int | None = None
        self._faults: deque[str] = deque()
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def fail_next(self, *faults: str) -> None:
        """The next requests get these faults, one each, in order."""
        with self._lock:
            self._faults.extend(faults)

    def release(self) -> None:
        self._released.set()

    def __enter__(self) -> "MockChatServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()

    # -- serving ----------------------------------------------------------
    def _take(self, body: Any) -> tuple[str | None, int]:
        with self._lock:
            number = len(self.requests)
            fault = self._faults.popleft() if self._faults else None
            if fault is None and self.fail_when is not None:
                fault = self.fail_when(body)
            return fault, number

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _send(self, status: int, payload: bytes, headers: dict[str, str] | None = None,
                      cut: bool = False) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                if cut:
                    self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(payload[: len(payload) // 2] if cut else payload)
                self.wfile.flush()
                if cut:
                    self.close_connection = True

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                fault, number = server._take(body)
                with server._lock:
                    server.requests.append(RecordedRequest(time.monotonic(), self.path, body,
                                                           dict(self.headers.items()), fault))
                if server.hold_after is not None and number >= server.hold_after:
                    server._released.wait(60)
                    self._send(503, b'{"error": "released"}')
                    return
                if not self.path.endswith("/chat/completions") or not isinstance(body, dict):
                    self._send(404, b'{"error": {"message": "not found"}}')
                    return
                if fault == "timeout":
                    time.sleep(server.timeout_seconds)
                if fault in ("429", "500", "401"):
                    headers = {"Retry-After": server.retry_after} if fault == "429" else {}
                    self._send(int(fault), json.dumps({"error": {"message": f"injected {fault}"}}).encode(), headers)
                    return
                if fault == "echo-auth":  # a misbehaving proxy quoting the request's headers
                    echoed = json.dumps({"error": {"message": "bad request",
                                                   "authorization": self.headers.get("Authorization")}})
                    self._send(400, echoed.encode())
                    return
                if fault == "malformed":
                    self._send(200, b"<html>upstream error</html>")
                    return
                messages = body.get("messages") or []
                text = "" if fault == "empty" else server.reply(messages)
                finish = "stop"
                if fault == "length":
                    text, finish = text[: len(text) // 2], "length"
                payload = {"id": f"mock-{number}", "object": "chat.completion", "model": body.get("model"),
                           "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                        "finish_reason": finish}],
                           "usage": {"prompt_tokens": estimate_messages(messages),
                                     "completion_tokens": estimate_tokens(text),
                                     "total_tokens": estimate_messages(messages) + estimate_tokens(text)}}
                self._send(200, json.dumps(payload, ensure_ascii=False).encode("utf-8"),
                           cut=fault == "truncated")

        return Handler


if __name__ == "__main__":  # python -m bgekit.augment.mock_server: try bgekit augment without an LLM
    with MockChatServer() as mock:
        print(f"mock OpenAI-compatible server at {mock.url} (Ctrl-C stops it)", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
