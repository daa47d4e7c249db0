"""A fast OpenAI-compatible chat server for the gateway benchmark: uvicorn on loopback.

``POST /v1/chat/completions`` answers ``--chunks`` words, streamed as server-sent events
``--gap-ms`` apart (the time a real model takes per token) with the usage chunk when asked, or
whole. Its events are built once, so that the upstream costs little CPU beside what is measured.

Example::

    python benchmarks/fake_llm.py --port 9100 --chunks 20 --gap-ms 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any


def build(chunks: int) -> tuple[list[bytes], bytes, bytes, bytes]:
    """The stream's events, its usage event, [DONE], and the whole answer's body."""
    base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 0,
            "model": "bench"}  # fmt: skip
    words = [f" w{i}" for i in range(chunks)]
    events = [
        b"data: "
        + json.dumps(
            {**base, "choices": [{"index": 0, "delta": {"content": w}, "finish_reason": None}]}
        ).encode()
        + b"\n\n"
        for w in words
    ]
    events.append(
        b"data: "
        + json.dumps(
            {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        ).encode()
        + b"\n\n"
    )
    usage = {"prompt_tokens": 12, "completion_tokens": chunks, "total_tokens": 12 + chunks}
    usage_event = b"data: " + json.dumps({**base, "choices": [], "usage": usage}).encode() + b"\n\n"
    whole = json.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": 0,
            "model": "bench",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(words)},
                         "finish_reason": "stop"}],
            "usage": usage,
        }
    ).encode()  # fmt: skip
    return events, usage_event, b"data: [DONE]\n\n", whole


def app_for(chunks: int, gap_s: float) -> Any:
    """The ASGI application."""
    events, usage_event, done, whole = build(chunks)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["method"] == "GET":
            payload = b'{"object": "list", "data": [{"id": "bench", "object": "model"}]}'
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json")]})  # fmt: skip
            await send({"type": "http.response.body", "body": payload})
            return
        request = json.loads(body)
        if not request.get("stream"):
            await asyncio.sleep(gap_s * chunks)
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json")]})  # fmt: skip
            await send({"type": "http.response.body", "body": whole})
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})  # fmt: skip
        for event in events:
            await asyncio.sleep(gap_s)
            await send({"type": "http.response.body", "body": event, "more_body": True})
        tail = usage_event if (request.get("stream_options") or {}).get("include_usage") else b""
        await send({"type": "http.response.body", "body": tail + done, "more_body": False})

    return app


def main() -> None:
    """Serve until killed."""
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--chunks", type=int, default=20)
    parser.add_argument("--gap-ms", type=float, default=5.0)
    args = parser.parse_args()
    uvicorn.run(
        app_for(args.chunks, args.gap_ms / 1000),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
