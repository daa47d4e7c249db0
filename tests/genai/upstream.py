"""An OpenAI-compatible server on a free loopback port whose answers a test scripts: a real
``http.server`` that answers chat (whole and streamed) and embeddings, or fails on purpose
(429 with ``Retry-After``, 5xx, a slow answer, malformed JSON, a dropped connection).

Its answers are deterministic: the text is ``echo: <last user message>`` cut to
``max_tokens`` words, and a token is a whitespace-separated word, so usage is exact and
checkable.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Upstream:
    """Answers each request with the next step of :attr:`script` (then ``ok``).

    A step is ``"ok"``, ``"slow"`` (sleeps :attr:`delay` seconds first), ``"malformed"``
    (200 with a body that is not JSON), ``"drop"`` (closes the connection), ``"die"`` (a
    stream that stops after its second chunk, the connection cut), or an HTTP status as
    ``(code, headers)``. Streamed chunks are :attr:`chunk_delay` seconds apart.
    """

    def __init__(self) -> None:
        self.script: list[Any] = []
        self.delay = 2.0
        self.chunk_delay = 0.0
        self.abandoned = 0
        self.usage_on_last_choice = False
        # Answers a chat instead of the echo: body -> text (a judge's verdict, say).
        self.reply: Callable[[dict[str, Any]], str] | None = None
        self.requests: list[dict[str, Any]] = []
        self.times: list[float] = []
        self._lock = threading.Lock()
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                upstream._record(self, None)
                self._json(200, {"object": "list", "data": [{"id": "echo", "object": "model"}]})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
                step = upstream._record(self, body)
                try:
                    self._respond(body, step)
                except (KeyError, TypeError, AttributeError, IndexError, ValueError) as exc:
                    # What a real server says of a request it cannot read.
                    error = {"message": f"bad request: {exc!r}", "type": "invalid_request_error"}
                    self._json(400, {"error": {**error, "param": None, "code": None}})

            def _respond(self, body: dict[str, Any], step: Any) -> None:
                if step == "slow":
                    time.sleep(upstream.delay)
                elif step == "malformed":
                    self._raw(200, b"<html>gateway says hello</html>", "application/json")
                    return
                elif step == "drop":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                elif isinstance(step, tuple):
                    code, headers = step
                    error = {"message": f"scripted {code}", "type": "server_error", "code": code}
                    self._json(code, {"error": error}, headers)
                    return
                if self.path.endswith("/embeddings"):
                    self._json(200, _embeddings(body))
                elif body.get("stream"):
                    self._stream(body, die=step == "die")
                else:
                    self._json(200, _completion(body, upstream.reply))

            def _stream(self, body: dict[str, Any], die: bool = False) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                words, finish, usage = _answer(body, upstream.reply)
                include = (body.get("stream_options") or {}).get("include_usage")
                base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "echo"}
                chunks = [
                    {**base, "choices": [{"index": 0, "delta": {"content": w}}], "usage": None}
                    for w in [words[0], *(" " + w for w in words[1:])]
                ]
                last = {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}
                if include and upstream.usage_on_last_choice:
                    last["usage"] = usage
                chunks.append(last)
                if include and not upstream.usage_on_last_choice:
                    chunks.append({**base, "choices": [], "usage": usage})
                try:
                    for i, chunk in enumerate(chunks):
                        if die and i == 2:
                            self.close_connection = True
                            self.connection.shutdown(2)
                            return
                        self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                        self.wfile.flush()
                        if upstream.chunk_delay:
                            time.sleep(upstream.chunk_delay)
                    self.wfile.write(b"data: [DONE]\n\n")
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    upstream.abandoned += 1  # the reader went away

            def _json(self, code: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _raw(self, code: int, data: bytes, media_type: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", media_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 512  # a load test's hundreds of connections at once

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _record(self, handler: BaseHTTPRequestHandler, body: Any) -> Any:
        with self._lock:
            self.requests.append(
                {
                    "path": handler.path,
                    "headers": {k.lower(): v for k, v in handler.headers.items()},
                    "body": body,
                }
            )
            self.times.append(time.monotonic())
            return self.script.pop(0) if self.script else "ok"

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


def _answer(
    body: dict[str, Any], reply: Callable[[dict[str, Any]], str] | None = None
) -> tuple[list[str], str, dict[str, int]]:
    last = [m for m in body["messages"] if m["role"] == "user"][-1]["content"]
    words = reply(body).split(" ") if reply else ["echo:", *last.split()]
    finish = "stop"
    limit = body.get("max_tokens")
    if limit is not None and len(words) > limit:
        words, finish = words[:limit], "length"
    prompt = sum(len(m["content"].split()) for m in body["messages"])
    usage = {
        "prompt_tokens": prompt,
        "completion_tokens": len(words),
        "total_tokens": prompt + len(words),
    }
    return words, finish, usage


def _completion(
    body: dict[str, Any], reply: Callable[[dict[str, Any]], str] | None
) -> dict[str, Any]:
    words, finish, usage = _answer(body, reply)
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "echo",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": " ".join(words)},
                "finish_reason": finish,
            }
        ],
        "usage": usage,
    }


def _embeddings(body: dict[str, Any]) -> dict[str, Any]:
    texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
    data = [
        {"object": "embedding", "index": i, "embedding": [float(len(t)), float(len(t.split()))]}
        for i, t in enumerate(texts)
    ]
    tokens = sum(len(t.split()) for t in texts)
    return {
        "object": "list",
        "data": list(reversed(data)),  # out of order on purpose: clients sort by index
        "model": "echo-embed",
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
