"""OpenLineage RunEvents: their shape, and both transports (JSON lines, HTTP POST on loopback)."""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from cauce.lineage.openlineage import SCHEMA_URL, dataset, run_event, send

RUN = uuid.uuid4().hex
PARENT = uuid.uuid4().hex


def test_event_has_every_required_field() -> None:
    event = run_event(
        "COMPLETE",
        run_id=RUN,
        job="training.clean",
        namespace="cauce",
        inputs=[dataset("cauce", "customers@1")],
        outputs=[dataset("cauce", "artifact:ab12")],
        parent=(PARENT, "training"),
    )
    assert event["eventType"] == "COMPLETE"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", event["eventTime"])
    assert event["producer"].startswith("https://")
    assert event["schemaURL"] == SCHEMA_URL
    assert uuid.UUID(event["run"]["runId"]).hex == RUN
    assert event["job"] == {"namespace": "cauce", "name": "training.clean", "facets": {}}
    assert event["inputs"][0]["name"] == "customers@1"
    assert event["outputs"][0]["namespace"] == "cauce"
    parent = event["run"]["facets"]["parent"]
    assert uuid.UUID(parent["run"]["runId"]).hex == PARENT
    assert parent["job"]["name"] == "training"


def test_fail_event_carries_the_error() -> None:
    event = run_event("FAIL", run_id=RUN, job="p", namespace="n", error="ValueError: bad")
    assert event["run"]["facets"]["errorMessage"]["message"] == "ValueError: bad"


def test_unknown_event_type_is_refused() -> None:
    with pytest.raises(ValueError, match="event type"):
        run_event("DONE", run_id=RUN, job="p", namespace="n")


def test_json_lines_file_gets_one_event_per_line(tmp_path: Path) -> None:
    target = tmp_path / "lineage" / "events.jsonl"
    for kind in ("START", "COMPLETE"):
        assert send(run_event(kind, run_id=RUN, job="p", namespace="n"), str(target))
    lines = target.read_text().splitlines()
    assert [json.loads(line)["eventType"] for line in lines] == ["START", "COMPLETE"]


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, object]]]]:
    received: list[dict[str, object]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            assert self.headers["Content-Type"] == "application/json"
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(201)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/api/v1/lineage", received
    finally:
        server.shutdown()
        server.server_close()


def test_http_target_receives_a_post(receiver: tuple[str, list[dict[str, object]]]) -> None:
    url, received = receiver
    assert send(run_event("START", run_id=RUN, job="p", namespace="n"), url)
    assert received[0]["eventType"] == "START"


def test_an_unreachable_target_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    # Port 9 on loopback: nothing listens, the connection is refused at once.
    event = run_event("START", run_id=RUN, job="p", namespace="n")
    assert send(event, "http://127.0.0.1:9/lineage", timeout=2) is False
    assert "not sent" in caplog.text
