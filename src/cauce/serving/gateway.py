"""What the router does for GenAI requests besides routing them: API keys, their rate limits
and token budgets, and the exact-match response cache.

Limits are kept in the router's memory (one router: exact; several replicas: each enforces
the limits on what it sees). Rates are token buckets refilled continuously: a key with
``requests_per_minute: 60`` may burst 60 requests, then one per second. Tokens are charged
when the answer's usage is known, so one request may take a key below zero; the next waits
until the bucket is back above it. Budgets count a period's tokens in the store
(``api_key_usage``), flushed every second with the router's stats, so a restart forgets
nothing but the last second. A refusal is a 429 with ``Retry-After``, in OpenAI's shape.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from cauce.errors import BackendError, RateLimited, Unauthorized
from cauce.serving.keys import Usage, add_usage, budget_period, hash_key, live_keys
from cauce.store import new_id, now_ms
from cauce.workspace import Workspace


@dataclass
class _Bucket:
    capacity: float
    rate: float  # per second
    level: float = 0.0
    at: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.level = self.capacity

    def refill(self, now: float) -> float:
        self.level = min(self.capacity, self.level + (now - self.at) * self.rate)
        self.at = now
        return self.level


@dataclass
class KeyState:
    """One key as the router holds it: its limits and what it spent."""

    id: str
    name: str
    limits: dict[str, Any]
    requests: _Bucket | None = None
    tokens: _Bucket | None = None
    period: str = ""
    spent: int = 0  # tokens in the current budget period, stored and not yet stored

    def __post_init__(self) -> None:
        rpm, tpm = self.limits.get("requests_per_minute"), self.limits.get("tokens_per_minute")
        self.requests = _Bucket(rpm, rpm / 60) if rpm else None
        self.tokens = _Bucket(tpm, tpm / 60) if tpm else None

    def admit(self) -> None:
        """Take one request, or refuse it with how long to wait."""
        now = time.monotonic()
        budget = self.limits.get("token_budget")
        if budget is not None:
            self._roll_period()
            if self.spent >= budget:
                raise RateLimited(
                    f"key {self.name!r} has spent its token budget of {budget} for {self.period}",
                    retry_after=_until_next(self.limits.get("budget_period", "month")),
                    details={"code": "insufficient_quota"},
                )
        if self.tokens is not None and self.tokens.refill(now) <= 0:
            wait = (1 - self.tokens.level) / self.tokens.rate
            raise RateLimited(
                f"key {self.name!r} is over its {self.limits['tokens_per_minute']} tokens "
                "per minute",
                retry_after=wait,
                details={"code": "rate_limit_exceeded", "limit": "tokens"},
            )
        if self.requests is not None:
            if self.requests.refill(now) < 1:
                wait = (1 - self.requests.level) / self.requests.rate
                raise RateLimited(
                    f"key {self.name!r} is over its {self.limits['requests_per_minute']} "
                    "requests per minute",
                    retry_after=wait,
                    details={"code": "rate_limit_exceeded", "limit": "requests"},
                )
            self.requests.level -= 1

    def charge(self, tokens: int) -> None:
        """Charge an answer's tokens to the rate and the budget."""
        if self.tokens is not None:
            self.tokens.refill(time.monotonic())
            self.tokens.level -= tokens
        self._roll_period()
        self.spent += tokens

    def _roll_period(self) -> None:
        period = budget_period(self.limits.get("budget_period", "month"), now_ms())
        if period != self.period:
            self.period, self.spent = period, 0


def _until_next(period: str) -> float:
    """Seconds until the next budget period starts (UTC)."""
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    if period == "day":
        start = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    else:
        month = now.replace(day=28) + timedelta(days=4)
        start = month.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return (start - now).total_seconds()


class KeyRing:
    """An endpoint's live keys, by hash, with usage waiting to be stored."""

    def __init__(self, ws: Workspace, endpoint: str) -> None:
        self.ws = ws
        self.endpoint = endpoint
        self._keys: dict[str, KeyState] = {}
        self._unstored: dict[tuple[str, str], list[float]] = {}
        # A report sent but not known to be stored: sent again, with its id, until it is.
        self._report: tuple[str, list[Usage]] | None = None
        self._lock = threading.Lock()

    def load(self) -> None:
        """Read the endpoint's live keys and their periods' spending (blocking: a thread)."""
        found: dict[str, KeyState] = {}
        for live in live_keys(self.endpoint, workspace=self.ws):
            state = self._keys.get(live.sha256)
            if state is None or state.limits != live.limits:
                state = KeyState(live.id, live.name, dict(live.limits))
                state.period = live.period
                state.spent = live.spent
                state.spent += self._pending_tokens(live.id, live.period)
            found[live.sha256] = state
        self._keys = found

    def find(self, presented: bytes | None) -> KeyState:
        """The key a request presents; Unauthorized when none or not a live one."""
        if not presented:
            raise Unauthorized(
                "this endpoint needs an API key: send Authorization: Bearer <key>",
                details={"code": "missing_api_key"},
            )
        state = self._keys.get(hash_key(presented.decode("latin-1")))
        if state is None:
            raise Unauthorized(
                "the API key is not valid for this endpoint (unknown or revoked)",
                details={"code": "invalid_api_key"},
            )
        return state

    def spend(self, state: KeyState, input_tokens: int, output_tokens: int, cost: float) -> None:
        """Charge an answer to its key and keep it for the store."""
        state.charge(input_tokens + output_tokens)
        with self._lock:
            row = self._unstored.setdefault((state.id, state.period), [0, 0, 0, 0.0])
            row[0] += 1
            row[1] += input_tokens
            row[2] += output_tokens
            row[3] += cost

    def store(self) -> None:
        """Add the usage kept since the last call to the store (blocking: a thread), as a
        report with an id of its own: when the store cannot be told, or its answer is lost,
        the same report is sent again by the next call, and counted once."""
        for _ in range(2):  # a report held from a failed call first, then what came since
            with self._lock:
                if self._report is None:
                    if not self._unstored:
                        return
                    pending, self._unstored = self._unstored, {}
                    usage = [
                        Usage(key_id, period, int(n), int(t_in), int(t_out), float(cost))
                        for (key_id, period), (n, t_in, t_out, cost) in pending.items()
                    ]
                    self._report = (new_id(), usage)
                report_id, usage = self._report
            try:
                add_usage(self.endpoint, usage, report_id, workspace=self.ws)
            except BackendError:
                raise  # not told, or its answer lost: the same report goes again next time
            except Exception:
                with self._lock:
                    self._report = None  # refused: sending it again would be refused again
                raise
            with self._lock:
                self._report = None

    def _pending_tokens(self, key_id: str, period: str) -> int:
        """Tokens a key spent in ``period`` that the store may not count yet."""
        with self._lock:
            held = [u for u in (self._report[1] if self._report else []) if u.key_id == key_id]
            kept = self._unstored.get((key_id, period))
        tokens = sum(u.input_tokens + u.output_tokens for u in held if u.period == period)
        return tokens + (int(kept[1] + kept[2]) if kept else 0)


def presented_key(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    """The key in ``Authorization: Bearer`` or ``api-key``."""
    for name, value in headers:
        if name == b"authorization" and value[:7].lower() == b"bearer ":
            return value[7:].strip()
        if name == b"api-key":
            return value.strip()
    return None


@dataclass
class Cached:
    """A stored answer: replayed byte for byte."""

    expires: float
    status: int
    content_type: bytes
    body: bytes
    deployment: str
    target: str
    summary: bytes | None


class ResponseCache:
    """Answers by the sha256 of their request: the path, the deployment asked for, and the
    body's JSON in canonical form (key order and spacing do not matter; every value does,
    ``stream`` included, so a streamed request replays a stream)."""

    def __init__(self, ttl_ms: int, max_entries: int) -> None:
        self.ttl = ttl_ms / 1000
        self.max_entries = max_entries
        self._entries: OrderedDict[str, Cached] = OrderedDict()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(path: str, pinned: str | None, request: dict[str, Any]) -> str:
        """The cache key of a request."""
        canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        return hashlib.sha256(f"{path}\n{pinned or ''}\n{canonical}".encode()).hexdigest()

    def get(self, key: str) -> Cached | None:
        """The live answer stored under ``key``."""
        found = self._entries.get(key)
        if found is None or found.expires < time.monotonic():
            if found is not None:
                del self._entries[key]
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return found

    def put(self, key: str, answer: Cached) -> None:
        """Store an answer; the least recently used goes when full."""
        self._entries[key] = answer
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def expires(self) -> float:
        """When an answer stored now expires (monotonic seconds)."""
        return time.monotonic() + self.ttl


def retry_after(seconds: float) -> bytes:
    """A ``Retry-After`` value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds))).encode()
