"""OpenLineage RunEvents for pipeline and step runs, written as JSON lines or POSTed.

Each event follows the OpenLineage 2-0-2 ``RunEvent`` schema: ``eventType`` (START, COMPLETE,
FAIL), ``eventTime``, ``producer``, ``schemaURL``, ``run.runId`` (a UUID), ``job.namespace`` and
``job.name``, ``inputs`` and ``outputs`` (datasets by namespace and name). A pipeline run is the
job ``<pipeline>``; a step run is ``<pipeline>.<step>`` with the pipeline run as its parent.

Sending never fails the run it describes: a transport error is logged and the event dropped.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cauce import __version__

SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/definitions/RunEvent"
PRODUCER = f"https://github.com/cauce-ops/cauce/tree/v{__version__}"
EVENT_TYPES = ("START", "COMPLETE", "FAIL", "ABORT")

log = logging.getLogger(__name__)
_file_lock = threading.Lock()


def run_uuid(entity_id: str) -> str:
    """Cauce's 32-hex ids as the UUIDs OpenLineage requires."""
    return str(uuid.UUID(hex=entity_id))


def dataset(namespace: str, name: str, facets: dict[str, Any] | None = None) -> dict[str, Any]:
    """An input or output dataset of an event."""
    return {"namespace": namespace, "name": name, "facets": facets or {}}


def run_event(
    event_type: str,
    *,
    run_id: str,
    job: str,
    namespace: str,
    inputs: Sequence[dict[str, Any]] = (),
    outputs: Sequence[dict[str, Any]] = (),
    parent: tuple[str, str] | None = None,
    error: str | None = None,
    event_time: dt.datetime | None = None,
) -> dict[str, Any]:
    """One RunEvent. ``parent`` is the (run id, job name) of the enclosing run."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"event type must be one of {EVENT_TYPES}, not {event_type!r}")
    when = (event_time or dt.datetime.now(dt.UTC)).isoformat(timespec="milliseconds")
    run_facets: dict[str, Any] = {}
    if parent is not None:
        run_facets["parent"] = {
            "_producer": PRODUCER,
            "_schemaURL": "https://openlineage.io/spec/facets/1-0-1/ParentRunFacet.json",
            "run": {"runId": run_uuid(parent[0])},
            "job": {"namespace": namespace, "name": parent[1]},
        }
    if error is not None:
        run_facets["errorMessage"] = {
            "_producer": PRODUCER,
            "_schemaURL": "https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json",
            "message": error,
            "programmingLanguage": "python",
        }
    return {
        "eventType": event_type,
        "eventTime": when.replace("+00:00", "Z"),
        "producer": PRODUCER,
        "schemaURL": SCHEMA_URL,
        "run": {"runId": run_uuid(run_id), "facets": run_facets},
        "job": {"namespace": namespace, "name": job, "facets": {}},
        "inputs": list(inputs),
        "outputs": list(outputs),
    }


def send(event: dict[str, Any], target: str | None, *, timeout: float = 5.0) -> bool:
    """Send an event to an http(s) URL (POST) or append it to a JSON-lines file.

    Returns whether it was delivered; failures are logged, never raised.
    """
    if not target:
        return False
    body = json.dumps(event, separators=(",", ":"))
    try:
        if target.startswith(("http://", "https://")):
            import urllib.request

            request = urllib.request.Request(
                target,
                data=body.encode(),
                headers={"Content-Type": "application/json"},
                method="POST",
            )
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status: int = response.status
                return 200 <= status < 300
        path = Path(target)
        path.parent.mkdir(parents=True, exist_ok=True)
        with _file_lock, open(path, "a", encoding="utf-8") as handle:
            handle.write(body + "\n")
        return True
    except OSError as exc:
        log.warning("OpenLineage event not sent to %s: %s", target, exc)
        return False
