"""A small, bounded HTTP/1.1 load generator for the serving benchmark, run as its own process.

Each concurrent client holds one raw keep-alive connection (asyncio streams) and sends the same
pre-built ``POST`` request again and again: no HTTP library, so that the generator costs little
CPU next to the server it measures. A client reads the status line, the headers and a
``Content-Length`` or chunked body, records the latency (``perf_counter_ns``, from the first byte
written to the last byte read) and the status code; a transport error or a timeout is counted and
the client reconnects. The run stops at ``--requests`` answered-or-failed requests or at
``--duration-max`` seconds, whichever comes first; ``--warmup`` requests are sent first and not
recorded. Only loopback URLs are accepted: this is a benchmark tool, not a load-testing service.

With ``--url`` given several times, each client sends to the URLs in turn (one connection to
each), and ``paired_diff_ms`` gives the quartiles of each URL's latency minus the first URL's in
the same cycle: requests sent moments apart see the same machine, which makes a small difference
(a router's overhead) measurable on a busy one.

It imports only the standard library, so any interpreter runs it; the benchmark uses the same
one (the project's) for every side.

Example::

    python benchmarks/loadgen.py --url http://127.0.0.1:5000/invocations \\
        --body-file body.json --concurrency 16 --requests 2000 --duration-max 30 --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass
class Target:
    """One URL under load: the request it gets and what came back from it."""

    url: str
    host: str
    port: int
    request: bytes
    latencies_ns: list[int] = field(default_factory=list)
    # Time to the first body chunk (a stream's first event; a whole body's end).
    first_chunk_ns: list[int] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    first_body: bytes | None = None
    error_bodies: dict[int, bytes] = field(default_factory=dict)


@dataclass
class Budget:
    """What the clients share: how many requests may still go out, until when, and cycles.

    A cycle is one request to each target in turn by one client; with several targets, the
    latencies of a cycle's requests are compared pairwise (they were sent moments apart).
    """

    requests: int
    deadline: float
    issued: int = 0
    last_done: float = 0.0
    cycles: list[list[int | None]] = field(default_factory=list)
    first_chunk_cycles: list[list[int | None]] = field(default_factory=list)

    def take(self) -> bool:
        """Claim one request of the budget; False once it is spent or the deadline has passed."""
        if self.issued >= self.requests or time.perf_counter() >= self.deadline:
            return False
        self.issued += 1
        return True


def target(url: str) -> tuple[str, int, str]:
    """Host, port and path of a loopback ``http://`` URL; SystemExit for anything else."""
    parts = urlsplit(url)
    if parts.scheme != "http":
        raise SystemExit(f"loadgen: only http:// URLs are supported, not {url!r}")
    host = parts.hostname or ""
    if host not in LOOPBACK:
        raise SystemExit(f"loadgen: refusing {host!r}: only loopback (127.0.0.1, localhost)")
    if parts.port is None:
        raise SystemExit(f"loadgen: the URL needs an explicit port: {url!r}")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return host, parts.port, path


def build_request(
    host: str, port: int, path: str, body: bytes, headers: list[tuple[str, str]]
) -> bytes:
    """The raw bytes of one keep-alive POST with a JSON body."""
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Connection: keep-alive",
        *(f"{k}: {v}" for k, v in headers),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class ProtocolError(Exception):
    """The server's answer was not a well-formed HTTP/1.1 response."""


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool, int]:
    """Status code, body, whether the server keeps the connection open, and when the body's
    first chunk had arrived (``perf_counter_ns``)."""
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionResetError("connection closed before the status line")
    parts = status_line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
        raise ProtocolError(f"bad status line {status_line[:80]!r}")
    status = int(parts[1])
    length: int | None = None
    first = 0
    chunked = False
    keep_alive = parts[0] == b"HTTP/1.1"
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n"):
            break
        if not line:
            raise ConnectionResetError("connection closed inside the headers")
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        value = value.strip()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif name == b"connection":
            keep_alive = value.lower() != b"close"
    if chunked:
        chunks = []
        while True:
            size = int((await reader.readline()).split(b";")[0].strip(), 16)
            if size == 0:
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                break
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
            if len(chunks) == 1:
                first = time.perf_counter_ns()
        body = b"".join(chunks)
    elif length is not None:
        body = await reader.readexactly(length)
    else:
        body = await reader.read()  # until the server closes
        keep_alive = False
    return status, body, keep_alive, first or time.perf_counter_ns()


async def client(targets: list[Target], budget: Budget | None, warmup: int, timeout: float) -> None:
    """One client's loop over the targets in turn (one connection to each): send, read, record.

    A transport error or a timeout is counted and the connection opened again. With ``budget``
    None it is a warm-up client that sends ``warmup`` requests and records nothing.
    """
    streams: dict[int, tuple[asyncio.StreamReader, asyncio.StreamWriter]] = {}
    sent = 0
    cycle: list[int | None] = []
    first_cycle: list[int | None] = []
    try:
        while True:
            if budget is None:
                if sent >= warmup:
                    return
            elif not budget.take():
                return
            index = sent % len(targets)
            sent += 1
            t = targets[index]
            started = time.perf_counter_ns()
            try:
                if index not in streams:
                    streams[index] = await asyncio.wait_for(
                        asyncio.open_connection(t.host, t.port), timeout
                    )
                reader, writer = streams[index]
                writer.write(t.request)
                status, body, keep_alive, first = await asyncio.wait_for(
                    read_response(reader), timeout
                )
            except (TimeoutError, OSError, ProtocolError, asyncio.IncompleteReadError) as exc:
                if budget is not None:
                    t.errors[type(exc).__name__] += 1
                    cycle.append(None)
                    first_cycle.append(None)
                _close(streams.pop(index, None))
            else:
                elapsed = time.perf_counter_ns() - started
                if budget is not None:
                    t.latencies_ns.append(elapsed)
                    t.first_chunk_ns.append(first - started)
                    t.statuses[status] += 1
                    budget.last_done = time.perf_counter()
                    if t.first_body is None:
                        t.first_body = body
                    if not 200 <= status < 300:
                        t.error_bodies.setdefault(status, body)
                    cycle.append(elapsed if 200 <= status < 300 else None)
                    first_cycle.append(first - started if 200 <= status < 300 else None)
                if not keep_alive:
                    _close(streams.pop(index))
            if budget is not None and len(cycle) == len(targets):
                budget.cycles.append(cycle)
                budget.first_chunk_cycles.append(first_cycle)
                cycle, first_cycle = [], []
    finally:
        for pair in streams.values():
            _close(pair)


def _close(stream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None) -> None:
    if stream is not None:
        stream[1].close()


def percentile(sorted_values: list[int], q: float) -> float | None:
    """The q-th percentile (0-100) of sorted nanoseconds, in ms, by linear interpolation."""
    if not sorted_values:
        return None
    pos = (len(sorted_values) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(sorted_values) - 1)
    value = sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (pos - low)
    return value / 1e6


def summary(t: Target, wall: float) -> dict[str, Any]:
    """One target's figures: counts, throughput over ``wall`` and latency percentiles."""
    latencies = sorted(t.latencies_ns)
    firsts = sorted(t.first_chunk_ns)
    answered = len(latencies)
    ok = sum(n for s, n in t.statuses.items() if 200 <= s < 300)
    return {
        "url": t.url,
        "answered": answered,
        "ok": ok,
        "statuses": {str(k): v for k, v in sorted(t.statuses.items())},
        "errors": dict(t.errors),
        "throughput_rps": ok / wall if wall > 0 else 0.0,
        "answered_rps": answered / wall if wall > 0 else 0.0,
        "latency_ms": {
            "p50": percentile(latencies, 50),
            "p90": percentile(latencies, 90),
            "p99": percentile(latencies, 99),
            "mean": (sum(latencies) / answered / 1e6) if answered else None,
            "max": latencies[-1] / 1e6 if latencies else None,
        },
        "first_chunk_ms": {
            "p50": percentile(firsts, 50),
            "p99": percentile(firsts, 99),
        },
        "first_body": t.first_body.decode("utf-8", "replace")[:2000]
        if t.first_body is not None
        else None,
        "error_bodies": {
            str(k): v.decode("utf-8", "replace")[:1000] for k, v in t.error_bodies.items()
        },
    }


def paired(cycles: list[list[int | None]], index: int) -> dict[str, Any]:
    """Latency of target ``index`` minus target 0's in the same cycle: quartiles, in ms."""
    diffs = []
    for cycle in cycles:
        first, other = cycle[0], cycle[index]
        if first is not None and other is not None:
            diffs.append(other - first)
    diffs.sort()
    return {
        "pairs": len(diffs),
        "p25": percentile(diffs, 25),
        "p50": percentile(diffs, 50),
        "p75": percentile(diffs, 75),
        "p99": percentile(diffs, 99),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Warm up, then run the bounded load; the summary."""
    body = args.body_file.read_bytes()
    headers = [(k.strip(), v.strip()) for k, v in (h.split(":", 1) for h in args.header)]
    targets = []
    for url in args.url:
        host, port, path = target(url)
        targets.append(Target(url, host, port, build_request(host, port, path, body, headers)))
    if args.warmup:
        per_client = -(-args.warmup // args.concurrency)
        await asyncio.gather(
            *(client(targets, None, per_client, args.timeout) for _ in range(args.concurrency))
        )
    started = time.perf_counter()
    budget = Budget(requests=args.requests, deadline=started + args.duration_max)
    await asyncio.gather(
        *(client(targets, budget, 0, args.timeout) for _ in range(args.concurrency))
    )
    wall = (budget.last_done or time.perf_counter()) - started
    everything = Target(" ".join(args.url), "", 0, b"")
    for t in targets:
        everything.latencies_ns += t.latencies_ns
        everything.first_chunk_ns += t.first_chunk_ns
        everything.statuses.update(t.statuses)
        everything.errors.update(t.errors)
        everything.first_body = everything.first_body or t.first_body
        for status, text in t.error_bodies.items():
            everything.error_bodies.setdefault(status, text)
    result = {
        **summary(everything, wall),
        "concurrency": args.concurrency,
        "requests_budget": args.requests,
        "duration_max_s": args.duration_max,
        "warmup": args.warmup,
        "issued": budget.issued,
        "wall_s": wall,
        "stopped_by": "requests" if budget.issued >= args.requests else "duration",
        "targets": [summary(t, wall) for t in targets],
        "paired_diff_ms": [paired(budget.cycles, i) for i in range(1, len(targets))],
        "paired_first_chunk_diff_ms": [
            paired(budget.first_chunk_cycles, i) for i in range(1, len(targets))
        ],
        "latencies_ms": [[v / 1e6 for v in t.latencies_ns] for t in targets]
        if args.keep_latencies
        else None,
    }
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        description="Bounded keep-alive HTTP/1.1 POST load against a loopback URL.",
        epilog="Example: python benchmarks/loadgen.py --url http://127.0.0.1:5000/invocations "
        "--body-file body.json --concurrency 16 --requests 2000 --json out.json",
    )
    parser.add_argument(
        "--url",
        action="append",
        required=True,
        help="http://127.0.0.1:PORT/path (loopback only); several: each client takes them in "
        "turn, and paired_diff_ms compares each to the first",
    )
    parser.add_argument("--body-file", type=Path, required=True, help="the JSON body to POST")
    parser.add_argument("--concurrency", type=int, default=1, help="clients = connections")
    parser.add_argument("--requests", type=int, default=1000, help="stop after this many")
    parser.add_argument("--duration-max", type=float, default=30.0, help="or after this long (s)")
    parser.add_argument("--warmup", type=int, default=0, help="requests sent first, not recorded")
    parser.add_argument("--timeout", type=float, default=10.0, help="per request (s)")
    parser.add_argument(
        "--header", action="append", default=[], help="an extra 'Name: value' header"
    )
    parser.add_argument("--keep-latencies", action="store_true", help="every latency in the JSON")
    parser.add_argument("--json", type=Path, help="write the summary here (default: stdout)")
    args = parser.parse_args(argv)
    if args.concurrency < 1 or args.requests < 1 or args.duration_max <= 0:
        parser.error("--concurrency and --requests must be >= 1, --duration-max > 0")
    if any(":" not in h for h in args.header):
        parser.error("--header takes 'Name: value'")
    for url in args.url:
        target(url)
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the load and write the summary; exit 0 even when requests failed (they are counted)."""
    args = parse_args(argv)
    summary = asyncio.run(run(args))
    text = json.dumps(summary, indent=2)
    if args.json:
        args.json.write_text(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
