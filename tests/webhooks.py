"""A webhook receiver on a free loopback port, for alert actions: a real ``http.server``.

Importable from every test module (pytest puts this folder on sys.path, as for clitools); the
``hook`` fixture is registered for every test by the root conftest.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


class Hook:
    """Answers ``codes`` in turn (then the last); holds the first ``hold`` requests until
    :attr:`release` is set, so that a test can catch an action in the middle of its attempt."""

    def __init__(self, hold: int = 0) -> None:
        self.codes: list[int] = [200]
        self.received: list[dict[str, Any]] = []
        self.hold = hold
        self.release = threading.Event()
        self._lock = threading.Lock()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with hook._lock:
                    hook.received.append({"body": json.loads(body), "headers": dict(self.headers)})
                    count = len(hook.received)
                if count <= hook.hold:
                    hook.release.wait(120)
                code = hook.codes[min(count, len(hook.codes)) - 1]
                try:
                    self.send_response(code)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:  # the caller is gone (a killed agent)
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/cauce"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def keys(self) -> list[str]:
        """The ``Idempotency-Key`` of each request, in arrival order."""
        with self._lock:
            return [r["headers"].get("Idempotency-Key", "") for r in self.received]

    def close(self) -> None:
        """Stop serving (held requests are released)."""
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def hook() -> Iterator[Hook]:
    """A receiver that answers 200 to every request, stopped after the test."""
    server = Hook()
    try:
        yield server
    finally:
        server.close()
