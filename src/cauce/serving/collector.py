"""The data collector: what deployments were asked and what they answered, kept for monitoring.

The router hands every answered request to :meth:`Collector.record`, which only samples and
appends to a list; twice a second a thread sends the records to the collector's writer, a
process of its own, which turns them into rows and writes them as Parquet or JSON-lines files
partitioned like Azure ML's collector::

    <workspace>/collector/endpoint=churn/deployment=blue/collection=model_inputs/
        date=2026-11-25/hour=14/part-<ms>-<pid>-<n>.parquet

Each protocol's module reads its own bodies (:func:`cauce.serving.invocations.request_rows`
and ``answer_rows``, the same in :mod:`cauce.serving.v2`): ``model_inputs`` holds one row per
input row as sent, ``model_outputs`` one row per prediction, named as
:func:`~cauce.serving.codec.prediction_names` says for either protocol; both
carry ``correlation_id`` (the request's ``x-request-id``), ``row``, ``timestamp`` (ms),
``deployment``, ``model_version``, ``latency_ms`` and ``source`` (``live`` or ``mirror``). Files
are written to a temporary name and renamed. Every ``register_every`` seconds (and when the
router stops) the files written since are registered as one new version of the dataset
``<endpoint>.<deployment>.<collection>``, which monitors read.

Collection never blocks or fails a scoring request: a record that cannot be parsed, redacted or
written is counted in ``errors`` and logged, and the request was answered long before.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pickle
import random
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from cauce.serving import invocations, v2
from cauce.workspace import Workspace

log = logging.getLogger("cauce.collector")
COLLECTIONS = ("model_inputs", "model_outputs")
FLUSH_EVERY_S = 0.5
REDACTED = "[redacted]"


@dataclass(frozen=True)
class Record:
    """One answered request, as the router saw it."""

    deployment: str
    source: str
    model_version: str
    correlation_id: str
    timestamp_ms: int
    latency_ms: float
    request: bytes
    content_type: str
    response: bytes
    # Which protocol's reader reads the bodies: "invocations" (MLflow) or "v2"
    protocol: str = "invocations"
    # Open Inference v2 with binary tensor data: where the JSON part of each body ends
    request_header_length: str | None = None
    response_header_length: str | None = None


@dataclass(frozen=True)
class GenAIRecord:
    """One request to a GenAI deployment, as the router saw it: the bodies as they went by,
    and what the deployment said of its answer (``summary``; ``progress``: the tokens counted
    up to where a stream stopped)."""

    deployment: str
    source: str
    target: str
    correlation_id: str
    timestamp_ms: int
    latency_ms: float
    ttft_ms: float | None
    operation: str  # chat or embeddings
    key: str | None
    status: int
    stream: bool
    abandoned: bool
    cached: bool
    request: bytes
    response: bytes
    summary: Any = None  # cauce.genai.openai_api.Summary
    progress: tuple[int | None, int | None] | None = None
    error: str | None = None
    session: str | None = None  # the cauce-session header


# The columns of the ``genai`` collection, in order (docs/genai-endpoints.md describes them).
GENAI_COLUMNS = (
    "correlation_id",
    "timestamp",
    "deployment",
    "source",
    "target",
    "model",
    "operation",
    "key",
    "session_id",
    "user_id",
    "status",
    "error",
    "stream",
    "abandoned",
    "cached",
    "prompt",
    "query",
    "completion",
    "contexts",
    "input_tokens",
    "output_tokens",
    "usage_estimated",
    "cost",
    "ttft_ms",
    "latency_ms",
    "finish_reason",
    "safety",
    "flagged",
    "blocked",
    "trace_id",
)


@dataclass
class _Settings:
    requests: bool
    responses: bool
    sampling: float
    format: str
    redact: frozenset[str]
    redactor: Callable[[dict[str, Any]], dict[str, Any]] | None
    columns: list[str] | None  # signature column names, for inputs sent as plain arrays
    genai: bool = False


class Collector:
    """Records of one endpoint's answered requests, handed to a writer process.

    :meth:`record` only appends to a list; a thread sends what is queued to the writer, a
    child process of this one, twice a second (pickled, on its stdin), and the writer turns
    the records into rows, writes them, registers them and says how many it has handled.
    Parsing, PII redaction and Parquet writing are most of what a GenAI record costs: in the
    router's process they would hold its interpreter lock beside the requests it relays. A
    writer that dies is started again with the next records; the records sent to it and not
    handled are counted in ``errors``, its traces (a GenAI relay's root spans, stored by the
    writer too) in ``traces_lost``.
    """

    def __init__(self, ws: Workspace, endpoint: str, *, register_every: float = 60.0) -> None:
        self.ws = ws
        self.endpoint = endpoint
        self.register_every = register_every
        self.errors = 0  # records lost (sent to a writer that died), and those the writer skipped
        self.written = 0  # records whose rows the writers wrote
        self.traces_stored = 0
        self.traces_lost = 0
        self._settings: dict[str, _Settings] = {}
        self._deployments: list[tuple[str, dict[str, Any] | None, bool, list[str] | None]] = []
        self._pending: list[Record | GenAIRecord] = []
        self._spans: list[tuple[Any, Any]] = []
        self._lock = threading.Lock()  # the pending lists
        self._pipe = threading.Lock()  # sending to the writer (one message at a time)
        self._state = threading.Condition()  # the writer and its counts
        self._writer: _WriterProcess | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="cauce-collector", daemon=True)
        self._thread.start()

    def configure(self, deployments: list[Any]) -> None:
        """Take the collect settings of the endpoint's deployments (on start and on change)."""
        chosen = []
        for deployment in deployments:
            spec = deployment.collect
            genai = _answers_openai(deployment)
            if not genai and (not spec or not (spec["requests"] or spec["responses"])):
                continue
            inputs = (deployment.signature or {}).get("inputs") or {}
            columns = [c["name"] for c in inputs.get("columns", [])] or None
            chosen.append((deployment.name, spec, genai, columns))
        self._settings = {c[0]: _settings(*c[1:], load=False) for c in chosen}
        with self._pipe:
            self._deployments = chosen
            if self._writer is not None:
                self._send(("configure", chosen))

    @property
    def writer_pid(self) -> int | None:
        """The writer process's id; None while none runs."""
        with self._state:
            return self._writer.process.pid if self._writer is not None else None

    def wants(self, deployment: str) -> bool:
        """Whether a request answered by ``deployment`` should be recorded (sampling decides)."""
        settings = self._settings.get(deployment)
        return settings is not None and (
            settings.sampling >= 1.0 or random.random() < settings.sampling
        )

    def genai(self, deployment: str) -> bool:
        """Whether ``deployment`` answers OpenAI's API (its records are GenAI records)."""
        settings = self._settings.get(deployment)
        return settings is not None and settings.genai

    def record(self, record: Record | GenAIRecord) -> None:
        """Queue one record; returns at once."""
        with self._lock:
            self._pending.append(record)

    def span(self, span: Any, trace: Any) -> None:
        """Queue a finished root span and its trace's summary for the writer to store (the
        sink of :func:`cauce.genai.tracing.send_root_spans_to`); returns at once."""
        with self._lock:
            self._spans.append((span, trace))

    def flush(self, timeout: float = 60.0) -> None:
        """Send what is queued and wait until the writer has handled everything sent (for
        tests and shutdown; the thread sends on its own)."""
        records, spans = self._take()
        with self._pipe:
            if records or spans:
                self._send(("records", records, spans))
        deadline = time.monotonic() + timeout
        with self._state:
            while (writer := self._writer) is not None and writer.busy:
                if not self._state.wait(deadline - time.monotonic()):
                    break

    def close(self) -> None:
        """Write what is queued, register what is unregistered, stop the writer."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=60)
        self.flush()
        with self._pipe:
            writer = self._writer
            if writer is None:
                return
            writer.closing = True
            with contextlib.suppress(OSError):
                _write_frame(writer.process.stdin, ("close",))  # type: ignore[arg-type]
            writer.reader.join(timeout=60)  # the writer registers, then ends
            writer.stop()

    # -- the sending thread -----------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(FLUSH_EVERY_S)
            records, spans = self._take()
            if records or spans:
                with self._pipe:
                    self._send(("records", records, spans))

    def _take(self) -> tuple[list[Record | GenAIRecord], list[tuple[Any, Any]]]:
        with self._lock:
            records, self._pending = self._pending, []
            spans, self._spans = self._spans, []
        return records, spans

    def _send(self, message: tuple[Any, ...]) -> None:
        """Send one message to the writer, started first when none runs."""
        records, spans = (len(message[1]), len(message[2])) if message[0] == "records" else (0, 0)
        try:
            frame = _frame(message)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            self._lose(records, spans, f"they cannot be pickled: {exc}")
            return
        with self._state:
            writer = self._writer
            if writer is not None:  # still running: were it to end now, they count as lost
                writer.sent.add(records, spans)
        if writer is None:
            try:
                writer = self._start()
            except OSError as exc:
                self._lose(records, spans, f"the writer cannot start: {exc}")
                return
            with self._state:
                writer.sent.add(records, spans)
        try:
            writer.process.stdin.write(frame)  # type: ignore[union-attr]
            writer.process.stdin.flush()  # type: ignore[union-attr]
        except OSError as exc:  # it has ended: its reader counts what it did not handle
            log.warning("collector: the writer failed: %s", exc)

    def _lose(self, records: int, traces: int, why: str) -> None:
        with self._state:
            self.errors += records
            self.traces_lost += traces
        log.warning("collector: %s records and %s traces lost: %s", records, traces, why)

    def _start(self) -> _WriterProcess:
        process = subprocess.Popen(
            [sys.executable, "-m", "cauce.serving.collector"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=self.ws.child_environment(),
        )
        writer = _WriterProcess(process)
        writer.reader = threading.Thread(
            target=self._read, args=(writer,), name="cauce-collector-answers", daemon=True
        )
        with self._state:
            self._writer = writer
        writer.reader.start()
        _write_frame(process.stdin, ("start", self.ws.settings, self.endpoint, self.register_every))  # type: ignore[arg-type]
        _write_frame(process.stdin, ("configure", self._deployments))  # type: ignore[arg-type]
        return writer

    def _read(self, writer: _WriterProcess) -> None:
        """The writer's answers, until it ends; a writer that ends with records unhandled
        (killed, crashed) has lost them."""
        assert writer.process.stdout is not None
        while True:
            try:
                _, told = _read_frame(writer.process.stdout)
            except (EOFError, OSError, ValueError, pickle.UnpicklingError):
                break
            with self._state:
                self.written += told.written - writer.told.written
                self.errors += told.errors - writer.told.errors
                self.traces_stored += told.traces_stored - writer.told.traces_stored
                self.traces_lost += told.traces_lost - writer.told.traces_lost
                writer.told = told
                self._state.notify_all()
        with self._state:
            records = writer.sent.records - writer.told.records
            traces = writer.sent.traces - writer.told.traces
            if records or traces:
                self.errors += records
                self.traces_lost += traces
                writer.told.add(records, traces)
                log.warning(
                    "collector: the writer ended; %s records and %s traces lost", records, traces
                )
            if self._writer is writer:
                self._writer = None
            self._state.notify_all()
        if not writer.closing:
            writer.stop()


@dataclass
class _Handled:
    """Records and traces (a root span and its summary) sent to a writer, or handled by it:
    the records' rows written or not (``errors``), the traces stored or not."""

    records: int = 0
    traces: int = 0
    written: int = 0
    errors: int = 0
    traces_stored: int = 0
    traces_lost: int = 0

    def add(self, records: int, traces: int) -> None:
        self.records += records
        self.traces += traces


@dataclass
class _WriterProcess:
    """A running writer, and what it has been sent and has said."""

    process: subprocess.Popen[bytes]
    reader: threading.Thread = field(init=False)
    sent: _Handled = field(default_factory=_Handled)
    told: _Handled = field(default_factory=_Handled)  # the writer's last answer
    closing: bool = False

    @property
    def busy(self) -> bool:
        """Whether it has not yet handled everything it was sent."""
        return self.told.records < self.sent.records or self.told.traces < self.sent.traces

    def stop(self) -> None:
        """Wait for the process to end (killed after a minute), and close its pipes."""
        for pipe in (self.process.stdin, self.process.stdout):
            with contextlib.suppress(OSError):
                pipe.close()  # type: ignore[union-attr]
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _settings(
    spec: dict[str, Any] | None, genai: bool, columns: list[str] | None, *, load: bool = True
) -> _Settings:
    if genai:
        # Every GenAI request is a row (tokens and cost are accounts, not samples); the
        # settings decide which texts the rows keep.
        spec = {"requests": True, "responses": True, "sampling": 1.0, "format": "parquet",
                **(spec or {})}  # fmt: skip
    assert spec is not None
    return _Settings(
        requests=spec["requests"],
        responses=spec["responses"],
        sampling=float(spec["sampling"]),
        format=spec["format"],
        redact=frozenset(spec.get("redact") or ()),
        redactor=_load_redactor(spec.get("redactor")) if load else None,
        columns=columns,
        genai=genai,
    )


def _frame(message: tuple[Any, ...]) -> bytes:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return struct.pack("!I", len(data)) + data


def _write_frame(out: IO[bytes], message: tuple[Any, ...]) -> None:
    out.write(_frame(message))
    out.flush()


def _read_frame(source: IO[bytes]) -> tuple[Any, ...]:
    head = source.read(4)
    if len(head) < 4:
        raise EOFError("the pipe closed")
    (size,) = struct.unpack("!I", head)
    data = source.read(size)
    if len(data) < size:
        raise EOFError("the pipe closed mid-message")
    message: tuple[Any, ...] = pickle.loads(data)
    return message


# -- the writer process -------------------------------------------------------------------------


class _Writer:
    """Rows of records, written to files and registered as dataset versions."""

    def __init__(self, ws: Workspace, endpoint: str) -> None:
        self.ws = ws
        self.endpoint = endpoint
        self.root = ws.settings.state_dir / "collector"
        self.handled = _Handled()
        self._settings: dict[str, _Settings] = {}
        self._unregistered: dict[tuple[str, str], list[Path]] = {}
        self._sequence = 0

    def configure(self, deployments: list[Any]) -> None:
        settings = {}
        for name, spec, genai, columns in deployments:
            try:
                settings[name] = _settings(spec, genai, columns)
            except Exception as exc:  # a redactor that cannot be loaded: nothing collected
                log.warning("collector: deployment %s is not collected: %s", name, exc)
        self._settings = settings

    def store_spans(self, spans: list[tuple[Any, Any]]) -> None:
        """Store finished root spans and their traces' summaries, in one transaction."""
        if not spans:
            return
        from cauce.genai.tracing import record_spans

        try:
            record_spans([s for s, _ in spans], [t for _, t in spans], workspace=self.ws)
        except Exception as exc:
            self.handled.traces_lost += len(spans)
            log.warning("collector: %s traces lost: %s", len(spans), exc)
        else:
            self.handled.traces_stored += len(spans)

    def write(self, records: list[Record | GenAIRecord]) -> None:
        """Write records as rows (a file per deployment, collection and hour)."""
        if not records:
            return
        # Rows by file, with the records they came from: a record is written when every file
        # its rows go to is.
        groups: dict[tuple[str, str, str, str], tuple[list[dict[str, Any]], set[int]]] = {}
        lost: set[int] = set()
        for index, record in enumerate(records):
            settings = self._settings.get(record.deployment)
            if settings is None:  # no longer collected: neither written nor lost
                continue
            try:
                hour = datetime.fromtimestamp(record.timestamp_ms / 1000, UTC)
                date, hh = hour.strftime("%Y-%m-%d"), hour.strftime("%H")
                made: list[tuple[str, list[dict[str, Any]]]] = []
                if isinstance(record, GenAIRecord):
                    made.append(("genai", [genai_row(record, settings)]))
                else:
                    if settings.requests:
                        made.append(("model_inputs", _input_rows(record, settings)))
                    if settings.responses:
                        made.append(("model_outputs", _output_rows(record)))
            except Exception as exc:  # one bad record must not cost the others
                lost.add(index)
                log.warning("collector: record %s skipped: %s", record.correlation_id, exc)
                continue
            for collection, rows in made:
                group = groups.setdefault((record.deployment, collection, date, hh), ([], set()))
                group[0].extend(rows)
                group[1].add(index)
        written: set[int] = set()
        for (deployment, collection, date, hh), (rows, sources) in groups.items():
            try:
                fmt = self._settings[deployment].format
                path = self._write(deployment, collection, date, hh, rows, fmt)
                self._unregistered.setdefault((deployment, collection), []).append(path)
                written |= sources
            except Exception as exc:
                lost |= sources
                log.warning(
                    "collector: %s rows of %s/%s lost: %s", len(rows), deployment, collection, exc
                )
        self.handled.written += len(written - lost)
        self.handled.errors += len(lost)

    def _write(
        self,
        deployment: str,
        collection: str,
        date: str,
        hour: str,
        rows: list[dict[str, Any]],
        fmt: str,
    ) -> Path:
        partition = folder(self.root, self.endpoint, deployment, collection)
        partition = partition / f"date={date}" / f"hour={hour}"
        partition.mkdir(parents=True, exist_ok=True)
        self._sequence += 1
        name = f"part-{int(time.time() * 1000)}-{os.getpid()}-{self._sequence}"
        path = partition / f"{name}.{'parquet' if fmt == 'parquet' else 'jsonl'}"
        temporary = partition / f".{name}.tmp"
        if fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            # Every column of every row: requests in one flush need not share their columns.
            columns = list(dict.fromkeys(key for row in rows for key in row))
            try:
                table = pa.Table.from_pydict({c: [row.get(c) for row in rows] for c in columns})
            except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed types in a column: as text
                text = [_as_text(row) for row in rows]
                table = pa.Table.from_pydict({c: [row.get(c) for row in text] for c in columns})
            pq.write_table(table, temporary)
        else:
            with open(temporary, "w") as out:
                for row in rows:
                    out.write(json.dumps(row, default=str) + "\n")
        os.replace(temporary, path)
        return path

    def register(self) -> None:
        """Register the files written since the last call as dataset versions."""
        pending, self._unregistered = self._unregistered, {}
        for (deployment, collection), paths in pending.items():
            try:
                self._register(deployment, collection, paths)
            except Exception as exc:
                log.warning("collector: registering %s/%s failed: %s", deployment, collection, exc)
                self._unregistered.setdefault((deployment, collection), []).extend(paths)

    def _register(self, deployment: str, collection: str, paths: list[Path]) -> None:
        import pandas as pd

        from cauce.data.assets import register

        frames = [
            pd.read_parquet(p)
            if p.suffix == ".parquet"
            else pd.read_json(p, lines=True, convert_dates=False)
            for p in paths
        ]
        frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        register(
            f"{self.endpoint}.{deployment}.{collection}",
            one_type_per_column(frame),
            layer="bronze",
            description=f"collected by endpoint {self.endpoint}, deployment {deployment}",
            allow_schema_change=True,
            workspace=self.ws,
        )


def folder(root: Path, endpoint: str, deployment: str, collection: str) -> Path:
    """Where the collector writes one deployment's collection."""
    return root / f"endpoint={endpoint}" / f"deployment={deployment}" / f"collection={collection}"


def endpoints_collected(root: Path) -> list[str]:
    """The endpoints whose records a collector wrote under ``root`` (on this machine)."""
    return sorted(p.name.removeprefix("endpoint=") for p in root.glob("endpoint=*") if p.is_dir())


def files(root: Path, endpoint: str, deployment: str, collection: str) -> list[Path]:
    """Every file the collector wrote for one deployment and collection, oldest first."""
    return sorted(
        (
            p
            for p in folder(root, endpoint, deployment, collection).glob("date=*/hour=*/part-*")
            if not p.name.startswith(".")
        ),
        key=lambda p: p.name.split("-")[1],
    )


def read_window(
    root: Path, endpoint: str, deployment: str, collection: str, since: int, until: int
) -> Any:
    """The records of one deployment and collection with ``since < timestamp <= until`` (ms)."""
    import pandas as pd

    tables = [
        pd.read_parquet(p)
        if p.suffix == ".parquet"
        else pd.read_json(p, lines=True, convert_dates=False)
        for p in files(root, endpoint, deployment, collection)
        if int(p.name.split("-")[1]) >= since  # a file is written after its records
    ]
    return _in_window(tables, since, until)


def records(
    ws: Workspace, endpoint: str, deployment: str, collection: str, since: int, until: int
) -> Any:
    """The collected records with ``since < timestamp <= until``: from the collector's files when
    this machine holds them, else from the versions it registered (in the shared artifact store:
    a monitor on another machine than the router, as on Kubernetes, reads those)."""
    import pandas as pd

    from cauce.data.assets import load, versions
    from cauce.errors import NotFound

    root = ws.settings.state_dir / "collector"
    if folder(root, endpoint, deployment, collection).is_dir():
        return read_window(root, endpoint, deployment, collection, since, until)
    try:
        registered = versions(f"{endpoint}.{deployment}.{collection}", workspace=ws)
    except NotFound:
        return pd.DataFrame()
    # A version holds the records written since the one before it: none is newer than itself.
    tables = [load(v, workspace=ws) for v in registered if v.created_at > since]
    return _in_window(tables, since, until)


def _in_window(tables: list[Any], since: int, until: int) -> Any:
    """The tables' records with ``since < timestamp <= until``, as one table."""
    import pandas as pd

    frame = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    if frame.empty:
        return frame
    in_window = (frame["timestamp"] > since) & (frame["timestamp"] <= until)
    return frame[in_window].reset_index(drop=True)


def _meta(record: Record, row: int) -> dict[str, Any]:
    return {
        "correlation_id": record.correlation_id,
        "row": row,
        "timestamp": record.timestamp_ms,
        "deployment": record.deployment,
        "model_version": record.model_version,
        "latency_ms": record.latency_ms,
        "source": record.source,
    }


def _input_rows(record: Record, settings: _Settings) -> list[dict[str, Any]]:
    if record.protocol == "v2":
        length = v2.header_length(record.request_header_length)
        rows = v2.request_rows(record.request, length, settings.columns)
    else:
        rows = invocations.request_rows(record.request, record.content_type, settings.columns)
    out = []
    for i, values in enumerate(rows):
        if settings.redact:
            values = {k: (REDACTED if k in settings.redact else v) for k, v in values.items()}
        if settings.redactor is not None:
            values = settings.redactor(dict(values))
        out.append({**_meta(record, i), **values})
    return out


def _output_rows(record: Record) -> list[dict[str, Any]]:
    if record.protocol == "v2":
        length = v2.header_length(record.response_header_length)
        rows = v2.answer_rows(record.response, length)
    else:
        rows = invocations.answer_rows(record.response)
    return [{**_meta(record, i), **values} for i, values in enumerate(rows)]


def _answers_openai(deployment: Any) -> bool:
    if getattr(deployment, "genai", False):
        return True
    from cauce.registry.models import resolve

    try:
        return bool(resolve(deployment.target).flavor == "gguf")
    except Exception:  # the model is gone from the registry: its records are classic ones
        return False


def genai_row(record: GenAIRecord, settings: _Settings) -> dict[str, Any]:
    """The ``genai`` collection's row of one record; texts are PII-redacted, with the same
    placeholders across the prompt, the query, the completion and the contexts."""
    from cauce.genai.openai_api import user_of
    from cauce.genai.safety.pii import Redactor

    summary = record.summary
    redactor = Redactor()
    prompt = query = completion = contexts = None
    request = _json(record.request)
    if settings.requests and isinstance(request, dict):
        if record.operation == "chat":
            messages = request.get("messages") or []
            prompt = redactor.redact(json.dumps(messages, ensure_ascii=False))
            users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
            query = redactor.redact(_text(users[-1].get("content"))) if users else None
        else:
            prompt = redactor.redact(json.dumps(request.get("input"), ensure_ascii=False))
    error = record.error or (summary.error if summary is not None else None)
    if record.operation == "chat" and record.status < 400:
        text, error = _answer_text(record.response, record.stream, error)
        if settings.responses:
            completion = redactor.redact(text)
    elif record.status >= 400:
        body = _json(record.response)
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            error = body["error"].get("code") or body["error"].get("message")
    if summary is not None and summary.contexts and settings.requests:
        contexts = json.dumps([redactor.redact(c) for c in summary.contexts], ensure_ascii=False)
    tokens: tuple[int | None, int | None] = (None, None)
    estimated = False
    if record.cached:
        tokens = (0, 0)
    elif record.progress is not None:  # a stream that stopped early: counted up to there
        tokens = record.progress
        estimated = record.progress[0] is None  # a connection's, counted as its pieces
    elif summary is not None:
        tokens = (summary.prompt_tokens, summary.completion_tokens)
        estimated = summary.usage_estimated
    decisions = (summary.safety if summary is not None else None) or []
    return {
        "correlation_id": record.correlation_id,
        "timestamp": record.timestamp_ms,
        "deployment": record.deployment,
        "source": record.source,
        "target": record.target,
        "model": summary.model if summary is not None else None,
        "operation": record.operation,
        "key": record.key,
        "session_id": record.session,
        # Accounting, as the key: kept when the texts are not.
        "user_id": user_of(request.get("user")) if isinstance(request, dict) else None,
        "status": record.status,
        "error": error,
        "stream": record.stream,
        "abandoned": record.abandoned,
        "cached": record.cached,
        "prompt": prompt,
        "query": query,
        "completion": completion,
        "contexts": contexts,
        "input_tokens": tokens[0] or 0,
        "output_tokens": tokens[1] or 0,
        "usage_estimated": estimated,
        "cost": None if record.cached else (summary.cost if summary is not None else None),
        "ttft_ms": record.ttft_ms,
        "latency_ms": record.latency_ms,
        "finish_reason": summary.finish_reason if summary is not None else None,
        "safety": json.dumps(decisions, ensure_ascii=False, default=str),
        "flagged": any(d.get("triggered", True) for d in decisions),
        "blocked": any(d.get("action") == "block" and d.get("triggered", True) for d in decisions),
        "trace_id": summary.trace_id if summary is not None else None,
    }


def _json(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(p.get("text")) for p in content if isinstance(p, dict) and p.get("text")
        )
    return ""


def _answer_text(response: bytes, stream: bool, error: str | None) -> tuple[str, str | None]:
    """The answer's text from a whole body or from a stream's events (and the error event
    a broken stream ended with)."""
    if not stream:
        body = _json(response)
        try:
            return str(body["choices"][0]["message"].get("content") or ""), error
        except (KeyError, IndexError, TypeError):
            return "", error
    parts: list[str] = []
    for line in response.split(b"\n"):
        if not line.startswith(b"data: {"):
            continue
        event = _json(line[6:])
        if not isinstance(event, dict):
            continue
        if isinstance(event.get("error"), dict):
            error = error or event["error"].get("code") or event["error"].get("message")
            continue
        for choice in event.get("choices") or []:
            content = (choice.get("delta") or {}).get("content")
            if content:
                parts.append(content)
    return "".join(parts), error


def one_type_per_column(frame: Any) -> Any:
    """Columns whose values mix types (a CSV request's ``"30"`` beside a JSON ``30``, files
    written as text beside typed ones) as text: one odd request must not keep a whole batch
    of records from being registered."""
    for column in frame.columns:
        if frame[column].dtype != object:
            continue
        kinds = {type(v) for v in frame[column] if not _missing(v)}
        if len(kinds) > 1:
            frame[column] = [None if _missing(v) else str(v) for v in frame[column]]
    return frame


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _as_text(row: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v if k in ("row", "timestamp", "latency_ms") else None if v is None else str(v)
        for k, v in row.items()
    }


def _load_redactor(target: str | None) -> Callable[[dict[str, Any]], dict[str, Any]] | None:
    if not target:
        return None
    from cauce.config import load_object

    redactor: Callable[[dict[str, Any]], dict[str, Any]] = load_object(target, what="redactor")
    return redactor


class _Inbox:
    """Messages read from a pipe, waiting at most so long for the next one."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = bytearray()

    def next(self, timeout: float | None) -> tuple[Any, ...] | None:
        """The next message; None when none came within ``timeout``; EOFError at the end."""
        import select

        while True:
            if len(self.buffer) >= 4:
                (size,) = struct.unpack("!I", self.buffer[:4])
                if len(self.buffer) >= 4 + size:
                    data = bytes(self.buffer[4 : 4 + size])
                    del self.buffer[: 4 + size]
                    message: tuple[Any, ...] = pickle.loads(data)
                    return message
            if not select.select([self.fd], [], [], timeout)[0]:
                return None
            chunk = os.read(self.fd, 1 << 20)
            if not chunk:
                raise EOFError("the pipe closed")
            self.buffer += chunk


def _writer_main() -> None:
    """The writer process: messages on stdin; after each batch, how many records it has
    handled so far and how (:class:`_Handled`), on stdout."""
    import signal

    # Ctrl-C (SIGINT to the whole process group) stops the router, which then closes this
    # writer when it has sent the last records: the writer must outlive that moment.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    inbox = _Inbox(0)
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything else printed goes to stderr, never into the answers
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    start = inbox.next(None)
    assert start is not None and start[0] == "start"
    _, settings, endpoint, register_every = start
    writer = _Writer(Workspace(settings), endpoint)
    last_registration = time.monotonic()
    while True:
        try:
            # Registration is due every ``register_every`` seconds, with or without traffic.
            message = inbox.next(1.0) or ("idle",)
        except EOFError:  # the router has gone: register what was written, and stop
            writer.register()
            return
        kind = message[0]
        if kind == "configure":
            writer.configure(message[1])
        elif kind == "records":
            writer.write(message[1])
            writer.store_spans(message[2])
            writer.handled.add(len(message[1]), len(message[2]))
            _write_frame(answers, ("done", writer.handled))
        elif kind == "close":
            writer.register()
            return
        if time.monotonic() - last_registration >= register_every:
            writer.register()
            last_registration = time.monotonic()


if __name__ == "__main__":
    # Run as the module cauce.serving.collector, so that the records unpickled here are of
    # its classes (this file run as __main__ is another module with classes of its own).
    from cauce.serving.collector import _writer_main as main

    main()
