"""What Cauce's GenAI gateway adds over calling the same upstream directly.

One fast OpenAI-compatible upstream (``fake_llm.py``: 20 words streamed 5 ms apart, or whole)
is called two ways by the same load generator (``loadgen.py``, raw keep-alive HTTP/1.1, one
connection per client per URL): directly, and through ``cauce endpoints serve`` with a
deployment that proxies a connection to it (router with API-key check and collector on; the
deployment's input and output safety filters on when ``--safety``). Each client takes the two
URLs in turn, so that requests compared were sent moments apart on the same machine;
``paired`` figures are the quartiles (and p99) of gateway minus direct in the same cycle.

Figures: total latency of a streamed answer and time to its first chunk (TTFT), p50 and p99 on
each side and their difference, at ``--concurrency`` concurrent streams. Targets (issue 12):
overhead ≤ 1 ms p50 and ≤ 3 ms p99 at 32 concurrent streams; streaming adds ≤ 1 ms to TTFT.

Example::

    python benchmarks/gateway_overhead.py --json .bench/gateway.json
    python benchmarks/gateway_overhead.py --quick        # smoke test, ~30 s
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from peers import load_average, machine, note
from servers import Server, free_port, serving

REPO = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
LOADGEN = HERE / "loadgen.py"
FAKE = HERE / "fake_llm.py"

SAFETY = {
    "input": [
        {"filter": "injection", "action": "block"},
        {"filter": "pii", "action": "redact"},
    ],
    "output": [{"filter": "pii", "action": "redact"}, {"filter": "canary", "action": "block"}],
}


def prepare(
    home: Path, upstream: str, *, safety: bool, key: bool, runs_in: str = "workers"
) -> str | None:
    """A workspace with the endpoint applied; the API key, when asked for one."""
    env = {**os.environ, "CAUCE_HOME": str(home)}
    deployment: dict[str, Any] = {
        "kind": "Deployment",
        "endpoint": "bench",
        "name": "proxy",
        "connection": "upstream",
        "workers": 2,
        "runs_in": runs_in,
    }
    if safety:
        deployment["safety"] = SAFETY
    docs = [
        {
            "kind": "Connection",
            "name": "upstream",
            "base_url": upstream,
            "api_key": "sk-bench",
            "models": {"chat": "bench"},
            "prices": {"bench": {"input": 1.0, "output": 2.0}},
            "max_retries": 0,
        },
        {
            "kind": "Endpoint",
            "name": "bench",
            "traffic": {"proxy": 100},
            "auth": "api_key" if key else "none",
        },
        deployment,
    ]
    spec = home / "bench.yaml"
    spec.write_text("\n---\n".join(json.dumps(d) for d in docs))
    cauce = [sys.executable, "-m", "cauce.cli.main"]
    subprocess.run([*cauce, "apply", "-f", str(spec)], env=env, check=True, capture_output=True)
    if not key:
        return None
    made = subprocess.run(
        [*cauce, "endpoints", "keys", "create", "bench", "load", "--json"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return str(json.loads(made.stdout)["key"])


def load(urls: list[str], body: Path, args: argparse.Namespace, headers: list[str]) -> Any:
    out = Path(tempfile.mkstemp(suffix=".json")[1])
    cmd = [sys.executable, str(LOADGEN), "--body-file", str(body), "--json", str(out)]
    for url in urls:
        cmd += ["--url", url]
    for header in headers:
        cmd += ["--header", header]
    cmd += [
        "--concurrency", str(args.concurrency),
        "--requests", str(args.requests),
        "--warmup", str(args.warmup),
        "--duration-max", str(args.duration_max),
        "--timeout", "30",
    ]  # fmt: skip
    subprocess.run(cmd, check=True)
    return json.loads(out.read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--requests", type=int, default=4000, help="over both URLs")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--duration-max", type=float, default=180)
    parser.add_argument("--safety", action="store_true", help="input and output filters on")
    parser.add_argument(
        "--runs-in", choices=("workers", "router"), default="workers",
        help="where the deployment runs: worker processes, or the router's own",
    )  # fmt: skip
    parser.add_argument(
        "--no-collect", action="store_true", help="the collector off (to see what it costs)"
    )
    parser.add_argument(
        "--floor", action="store_true",
        help="also a bare byte relay (bare_relay.py) in the same load: the floor of any Python hop",
    )  # fmt: skip
    parser.add_argument(
        "--granian", action="store_true",
        help="with --floor: the uvicorn floor's relay also on granian (ASGI and RSGI)",
    )  # fmt: skip
    parser.add_argument("--json", type=Path)
    parser.add_argument("--quick", action="store_true", help="a smoke run; figures mean nothing")
    args = parser.parse_args()
    if args.granian and not args.floor:
        parser.error("--granian adds floors: use it with --floor")
    if args.quick:
        args.concurrency, args.requests, args.warmup = 4, 40, 4
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="cauce-gateway-") as tmp:
        home = Path(tmp)
        upstream_port, router_port = free_port(), free_port()
        upstream = Server(
            "upstream",
            [sys.executable, str(FAKE), "--port", str(upstream_port)],
            dict(os.environ),
            REPO,
            upstream_port,
            home / "upstream.log",
            "/v1/models",
        )
        upstream_url = f"http://127.0.0.1:{upstream_port}/v1"
        key = prepare(home, upstream_url, safety=args.safety, key=True, runs_in=args.runs_in)
        router = Server(
            "cauce",
            [sys.executable, "-m", "cauce.cli.main", "endpoints", "serve", "bench",
             "--port", str(router_port), *(["--no-collect"] if args.no_collect else [])],
            {**os.environ, "CAUCE_HOME": str(home)},
            REPO,
            router_port,
            home / "router.log",
            "/v2/health/ready",
        )  # fmt: skip
        servers = [upstream, router]
        floors = _floors(args, upstream_port)
        for name, _, command, port in floors:
            log = home / f"{name}.log"
            servers.append(Server(name, command, dict(os.environ), REPO, port, log, "/v1/models"))
        body = home / "body.json"
        body.write_text(
            json.dumps(
                {
                    "model": "bench",
                    "messages": [
                        {"role": "system", "content": "You are a helpful assistant."},
                        {"role": "user", "content": "Where is my parcel? Order 4411 from May."},
                    ],
                    "stream": True,
                    "stream_options": {"include_usage": True},
                }
            )
        )
        urls = [f"{upstream_url}/chat/completions"]
        urls += [f"http://127.0.0.1:{port}/v1/chat/completions" for *_, port in floors]
        urls.append(f"http://127.0.0.1:{router_port}/v1/chat/completions")
        with serving(servers, timeout=120):
            # CPU spent under the load only: Cauce's start (imports, building the deployment,
            # settling the collector) is seconds of CPU that is no stream's.
            before = [s.cpu_s() for s in servers]
            result = load(urls, body, args, [f"Authorization: Bearer {key}"])
            spent = [s.cpu_s() - b for s, b in zip(servers, before, strict=True)]
            cpu = {"upstream_s": spent[0], "cauce_s": spent[1]}
            cpu.update({f"{s.name}_s": c for s, c in zip(servers[2:], spent[2:], strict=True)})
    direct, gateway = result["targets"][0], result["targets"][-1]
    paired, paired_first = result["paired_diff_ms"][-1], result["paired_first_chunk_diff_ms"][-1]
    warmed = -(-args.warmup // args.concurrency) * args.concurrency / len(urls)

    def streams(target: dict[str, Any]) -> float:
        """The streams a URL was sent under the load: answered, failed and warm-up ones."""
        return max(1.0, target["ok"] + sum(target["errors"].values()) + warmed)

    report = {
        "machine": machine(load_before=load_before, load_after=load_average()),
        "settings": {
            "concurrency": args.concurrency,
            "requests": args.requests,
            "safety": args.safety,
            "runs_in": args.runs_in,
            "collect": not args.no_collect,
            "stream": "20 chunks, 5 ms apart, include_usage",
        },
        "direct": {
            k: direct[k] for k in ("ok", "statuses", "errors", "latency_ms", "first_chunk_ms")
        },
        "gateway": {
            k: gateway[k] for k in ("ok", "statuses", "errors", "latency_ms", "first_chunk_ms")
        },
        "overhead_ms": {
            "p50": gateway["latency_ms"]["p50"] - direct["latency_ms"]["p50"],
            "p99": gateway["latency_ms"]["p99"] - direct["latency_ms"]["p99"],
            "paired": paired,
        },
        "ttft_overhead_ms": {
            "p50": gateway["first_chunk_ms"]["p50"] - direct["first_chunk_ms"]["p50"],
            "p99": gateway["first_chunk_ms"]["p99"] - direct["first_chunk_ms"]["p99"],
            "paired": paired_first,
        },
        "cpu": {**cpu, "cauce_ms_per_request": 1000 * cpu["cauce_s"] / streams(gateway)},
    }
    report["floors"] = {}
    for at, (name, _, _, _) in enumerate(floors, start=1):
        relay = result["targets"][at]
        report["floors"][name] = {
            "latency_ms": relay["latency_ms"],
            "first_chunk_ms": relay["first_chunk_ms"],
            "errors": relay["errors"],
            "paired": result["paired_diff_ms"][at - 1],
            "paired_first_chunk": result["paired_first_chunk_diff_ms"][at - 1],
            "cpu_ms_per_request": 1000 * cpu[f"{name}_s"] / streams(relay),
        }
    text = json.dumps(report, indent=2)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text)
    print(text)
    over, ttft = report["overhead_ms"], report["ttft_overhead_ms"]
    note(
        f"gateway overhead: p50 {over['p50']:+.2f} ms (target ≤ 1), p99 {over['p99']:+.2f} ms "
        f"(target ≤ 3), paired p50 {paired['p50']:+.2f} ms; TTFT added p50 {ttft['p50']:+.2f} ms "
        f"(target ≤ 1); {gateway['ok']} gateway answers, errors {gateway['errors'] or 'none'}"
    )
    for name, what, _, _ in floors:
        floor = report["floors"][name]
        note(
            f"{what}: paired p50 {floor['paired']['p50']:+.2f} ms, "
            f"p99 {floor['latency_ms']['p99'] - direct['latency_ms']['p99']:+.2f} ms; "
            f"TTFT paired p50 {floor['paired_first_chunk']['p50']:+.2f} ms; "
            f"{floor['cpu_ms_per_request']:.2f} ms CPU per stream"
        )
    return 0 if gateway["ok"] and direct["ok"] else 2


def _floors(args: argparse.Namespace, upstream_port: int) -> list[tuple[str, str, list[str], int]]:
    """The floors asked for: (name, what it is, command, port), each relaying to the upstream."""
    if not args.floor:
        return []
    origin = f"http://127.0.0.1:{upstream_port}"
    port = free_port()
    floors = [
        ("relay", "bare relay (the floor of a Python hop)",
         [sys.executable, str(HERE / "bare_relay.py"), "--port", str(port),
          "--upstream-port", str(upstream_port)], port),
    ]  # fmt: skip
    servers = [("asgi", "uvicorn", "uvicorn")]
    if args.granian:
        servers += [("granian_asgi", "granian (ASGI)", "granian-asgi"),
                    ("granian_rsgi", "granian (RSGI)", "granian-rsgi")]  # fmt: skip
    for name, server, option in servers:
        port = free_port()
        command = [sys.executable, str(HERE / "bare_asgi_relay.py"), "--port", str(port),
                   "--upstream", origin, "--server", option]  # fmt: skip
        floors.append((name, f"{server} + Cauce's upstream client, relaying only", command, port))
    return floors


if __name__ == "__main__":
    sys.exit(main())
