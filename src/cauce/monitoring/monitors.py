"""Monitors: compare a window of production data with a reference, on a schedule.

A run reads the current window (an endpoint's collected requests and answers, or a dataset's
newest rows), the reference profile (computed once per reference and binning, then read back),
computes each signal, stores one row per value in ``signal_results`` (the time series behind
``cauce monitors history`` and reports) and, when a signal breaches, raises an alert
(:mod:`cauce.monitoring.alerts`) with its pending actions, all in one transaction. The reading
and computing happen where the run is started (:func:`run_monitor`, through a server too); the
storing is one operation (:func:`record_run`, ``POST /monitors/{name}/runs``). A run is
``ok``, ``alert``, ``no_data`` (fewer rows than ``min_rows``: nothing is judged, nothing is
alerted) or ``failed`` (the reason is stored).

A GenAI monitor (``genai_*`` and ``query_drift`` signals) reads the endpoint's ``genai`` records
instead, needs no profile, and is judged by :mod:`cauce.monitoring.genai`; its reference, when
it has one, is a dataset of queries or an earlier window of the same target.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, cast, get_args

from pydantic import ValidationError
from sqlalchemy import Connection, select
from typing_extensions import TypedDict

from cauce.data.assets import LAYERS, DatasetVersion, PreparedVersion
from cauce.errors import CauceError, InvalidInput, NotFound
from cauce.lineage import audit
from cauce.monitoring import signals
from cauce.monitoring.alerts import Alert
from cauce.monitoring.profiles import (
    Profile,
    build_profile,
    column_kinds,
    profile_key,
    stored_profile,
)
from cauce.monitoring.signals import Window
from cauce.monitoring.specs import MonitorSpec, from_store
from cauce.operations import operation
from cauce.specs import Applied, Declared, save_spec, validation_error
from cauce.store import id_matches, new_id, now_ms, only_match
from cauce.store.schema import (
    dataset_versions,
    monitor_runs,
    monitors,
    reference_profiles,
    signal_results,
)
from cauce.validation import INT64_MAX, INT64_MIN, check_limit, check_time_ms, next_cron_time
from cauce.workspace import Workspace, current

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "Findings",
    "Monitor",
    "MonitorRun",
    "SignalValue",
    "get_monitor",
    "history",
    "list_monitors",
    "record_run",
    "run_monitor",
    "run_values",
    "runs",
]

log = logging.getLogger(__name__)
# Collector columns that describe a record, not the model's input.
RECORD_COLUMNS = (
    "correlation_id",
    "row",
    "timestamp",
    "deployment",
    "model_version",
    "latency_ms",
    "source",
)
Status = Literal["ok", "alert", "no_data", "failed"]
# drift.PASSED, BREACHED, MEASURED and NOT_COMPUTED.
Outcome = Literal["passed", "breached", "measured", "not_computed"]
OUTCOMES = get_args(Outcome)
# Predictions scored on the reference for prediction drift: a deterministic sample at most this big.
PREDICTION_SAMPLE = 50_000


@dataclass(frozen=True)
class Monitor:
    """A stored monitor and where it stands."""

    name: str
    spec: dict[str, Any]
    enabled: bool
    next_run_at: int | None
    last_run_at: int | None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view."""
        return dict(self.__dict__)


@dataclass
class MonitorRun:
    """One run of a monitor: its status, window and every value it computed."""

    id: str
    monitor: str
    status: str
    started_at: int
    duration_ms: int
    window_start: int | None
    window_end: int | None
    rows: int
    summary: dict[str, Any]
    values: list[dict[str, Any]] = field(default_factory=list)
    alert: Alert | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view."""
        out = {k: v for k, v in self.__dict__.items() if k != "alert"}
        out["alert"] = self.alert.to_dict() if self.alert is not None else None
        return out


class SignalValue(TypedDict):
    """One value a run computed: its signal, feature and metric, and how it compares."""

    signal: str
    feature: str  # "*" for a value of the whole window
    metric: str
    value: float | None
    threshold: float | None
    outcome: Outcome
    details: dict[str, Any] | None


@dataclass
class Findings:
    """What one run of a monitor found over its window, before it is stored.

    Computed where the data is read (see :func:`run_monitor`), stored by :func:`record_run`.
    ``breaches`` are the values among ``values`` that raise the alert; ``references`` the
    dataset versions read as the reference; ``window`` the alerting window, its Parquet
    uploaded, to keep as a version of ``<monitor>.window``.
    """

    status: Status
    started_at: int
    duration_ms: int
    rows: int
    summary: dict[str, Any]
    values: list[SignalValue] = field(default_factory=list)
    breaches: list[SignalValue] = field(default_factory=list)
    window_start: int | None = None
    window_end: int | None = None
    error: str | None = None
    profile_id: str | None = None
    references: list[str] = field(default_factory=list)
    window: PreparedVersion | None = None


# -- specs ------------------------------------------------------------------------------------


def parse_spec(document: dict[str, Any]) -> MonitorSpec:
    """A Monitor document as a validated spec (InvalidInput names the bad field)."""
    try:
        return MonitorSpec.model_validate(document)
    except ValidationError as exc:
        raise validation_error("Monitor", exc, MonitorSpec) from None


def stored_spec(body: dict[str, Any]) -> MonitorSpec:
    """A stored spec read back, its durations (stored in milliseconds) with their unit."""
    return parse_spec(from_store(MonitorSpec, body))


def check_monitor(ws: Workspace, spec: MonitorSpec, declared: Declared) -> None:
    """Before an apply changes anything: the target endpoint exists or is declared beside the
    monitor, and the reference model or dataset version exists."""
    from cauce.data.assets import get_version
    from cauce.registry.models import resolve
    from cauce.serving.endpoints import get_endpoint

    endpoint = spec.target.endpoint
    if endpoint is not None and ("Endpoint", endpoint) not in declared:
        try:
            get_endpoint(endpoint, workspace=ws)
        except NotFound as exc:
            exc.details = {**exc.details, "field": "target.endpoint"}
            raise
    reference = spec.reference
    if reference is not None and reference.model is not None:
        resolve(reference.model, workspace=ws)
    if reference is not None and reference.dataset is not None:
        try:
            get_version(reference.dataset, workspace=ws)
        except NotFound as exc:
            exc.details = {**exc.details, "field": "reference.dataset"}
            raise


def save_monitor(conn: Connection, ws: Workspace, spec: MonitorSpec) -> Applied:
    """Create or update a monitor in the caller's transaction; an identical spec changes
    nothing."""
    next_run = next_cron_time(spec.schedule, now_ms()) if spec.schedule else None
    return save_spec(
        conn,
        ws,
        monitors,
        "Monitor",
        spec.model_dump(mode="json"),
        {"enabled": spec.enabled, "next_run_at": next_run},
    )


@operation("GET /monitors")
def list_monitors(*, workspace: Workspace | None = None) -> list[Monitor]:
    """Every monitor, by name."""
    ws = workspace or current()
    with ws.store.read() as conn:
        rows = conn.execute(select(monitors).order_by(monitors.c.name)).all()
    return [Monitor(r.name, r.spec, r.enabled, r.next_run_at, r.last_run_at) for r in rows]


@operation("GET /monitors/{name}")
def get_monitor(name: str, *, workspace: Workspace | None = None) -> Monitor:
    """One monitor by name."""
    ws = workspace or current()
    with ws.store.read() as conn:
        row = _monitor_row(conn, name)
    return Monitor(row.name, row.spec, row.enabled, row.next_run_at, row.last_run_at)


def _monitor_row(conn: Any, name: str) -> Any:
    row = conn.execute(select(monitors).where(monitors.c.name == name)).first()
    if row is None:
        raise NotFound(f"monitor {name!r} does not exist", hint="cauce monitors list")
    return row


# -- the reference ----------------------------------------------------------------------------


@dataclass
class _Reference:
    versions: list[DatasetVersion]  # a model's training data may be several versions
    features: list[str]
    model_uri: str | None = None
    model_version_id: str | None = None

    @property
    def label(self) -> str:
        """``name@version`` of each reference version."""
        return " + ".join(f"{v.name}@{v.version}" for v in self.versions)


def _resolve_reference(ws: Workspace, spec: MonitorSpec) -> _Reference:
    """The reference dataset version and the features to monitor."""
    from cauce.data.assets import get_version
    from cauce.registry.models import resolve
    from cauce.tracking.runs import get_run

    reference = spec.reference
    assert reference is not None  # the spec demands one for the classic signals
    if reference.dataset is not None:
        version = get_version(reference.dataset, workspace=ws)
        return _Reference([version], list(version.schema))
    assert reference.model is not None
    model = resolve(reference.model, workspace=ws)
    if model.run_id is None:
        raise InvalidInput(
            f"{model.uri} has no source run, so its training data is unknown",
            hint="give the reference as {dataset: NAME@VERSION}",
            details={"field": "reference.model"},
        )
    inputs = get_run(model.run_id, workspace=ws).inputs.dataset_inputs
    training = [i for i in inputs if i.context == "training"] or inputs
    if not training:
        raise InvalidInput(
            f"the run behind {model.uri} logged no input dataset, so its training data is unknown",
            hint="log it with cauce.log_input(version, context='training'), or give the "
            "reference as {dataset: NAME@VERSION}",
            details={"field": "reference.model"},
        )
    versions = [get_version(f"{i.dataset}@{i.version}", workspace=ws) for i in training]
    common = [c for c in versions[0].schema if all(c in v.schema for v in versions[1:])]
    columns = _signature_columns(model.signature)
    features = [c for c in columns if c in common] if columns else common
    return _Reference(versions, features, model.uri, model.id)


def _signature_columns(signature: dict[str, Any] | None) -> list[str]:
    inputs = (signature or {}).get("inputs") or {}
    return [c["name"] for c in inputs.get("columns", [])] if isinstance(inputs, dict) else []


def _reference_profile(
    ws: Workspace, spec: MonitorSpec, reference: _Reference, sample: pd.DataFrame | None
) -> tuple[str, Profile, bool]:
    """The stored profile of the reference (built and stored on first use)."""
    from cauce.data.assets import load

    wants_predictions = any(s.name == "prediction_drift" for s in spec.signals)
    extra = f"predictions:{reference.model_version_id}" if wants_predictions else ""
    # The window's time column says when, not what: it is never a monitored feature.
    skip = {*RECORD_COLUMNS, spec.target.timestamp}
    features = [f for f in reference.features if f not in skip]

    def build() -> Profile:
        import pandas as pd

        frames = [load(v, workspace=ws)[features] for v in reference.versions]
        frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        kinds = column_kinds(frame[features])
        profile = build_profile(frame, bins=spec.bins, columns=kinds)
        if wants_predictions:
            assert reference.model_uri is not None
            predictions = _score(ws, reference.model_uri, frame[features])
            profile.predictions = build_profile(predictions, bins=spec.bins).columns
        return profile

    # The kinds are part of the key; they come from the reference's schema, not its content.
    first = reference.versions[0]
    kinds_key = {f: str(first.schema.get(f)) for f in features}
    content = "+".join(v.content_hash for v in reference.versions)
    return stored_profile(
        ws, profile_key(content, kinds_key, spec.bins, extra), ("dataset_version", first.id), build
    )


def _score(ws: Workspace, uri: str, frame: pd.DataFrame) -> pd.DataFrame:
    """The model's predictions on (a deterministic sample of) the reference."""
    import pandas as pd

    from cauce.registry.models import load

    if len(frame) > PREDICTION_SAMPLE:
        frame = frame.sample(n=PREDICTION_SAMPLE, random_state=0)
    predictions = load(uri, workspace=ws).predict(frame)
    # Named like the collector names the answers' columns, so that the two sides meet: a
    # table's or a dict's own names, ``prediction`` for one value, ``prediction_<i>`` for a row.
    if isinstance(predictions, (pd.DataFrame, dict)):
        return pd.DataFrame(predictions).rename(columns=str)
    values = pd.DataFrame(predictions)
    if values.shape[1] == 1:
        return pd.DataFrame({"prediction": values.iloc[:, 0].to_numpy()})
    return values.rename(columns=lambda c: f"prediction_{c}")


# -- the current window -----------------------------------------------------------------------


def _current_window(ws: Workspace, spec: MonitorSpec, now: int) -> Window:
    end = now - spec.window.offset
    return _window(ws, spec, end - spec.window.size, end)


def _not_collecting(ws: Workspace, spec: MonitorSpec) -> str:
    """Why an endpoint's window is empty when its deployments record no requests."""
    from cauce.serving.endpoints import get_endpoint

    if spec.target.endpoint is None or spec.genai:
        return ""
    endpoint = get_endpoint(spec.target.endpoint, workspace=ws)
    names = spec.target.deployments or [d.name for d in endpoint.deployments]
    deaf = [
        d.name
        for d in endpoint.deployments
        if d.name in names and not (d.collect or {}).get("requests", False)
    ]
    if not deaf or len(deaf) < len(names):
        return ""
    return (
        f": deployment {', '.join(deaf)} of endpoint {endpoint.name} records no requests "
        f"(add collect: {{requests: true}} to its spec)"
    )


def _window(ws: Workspace, spec: MonitorSpec, start: int, end: int) -> Window:
    """The target's records with ``start < timestamp <= end``: the model's inputs and answers,
    or (GenAI signals) the ``genai`` records as the inputs."""
    import pandas as pd

    target = spec.target
    if target.dataset is not None:
        from cauce.data.assets import load

        frame = load(target.dataset, workspace=ws)
        if target.timestamp is None:
            return Window(frame, None, None, None)
        if target.timestamp not in frame.columns:
            raise InvalidInput(
                f"dataset {target.dataset} has no column {target.timestamp!r}",
                details={"field": "target.timestamp"},
            )
        stamps = _as_ms(frame[target.timestamp])
        frame = frame[(stamps > start) & (stamps <= end)].reset_index(drop=True)
        return Window(frame, None, start, end)
    from cauce.serving.collector import records
    from cauce.serving.endpoints import get_endpoint

    assert target.endpoint is not None
    endpoint = get_endpoint(target.endpoint, workspace=ws)
    names = target.deployments or [d.name for d in endpoint.deployments]
    collections = ("genai",) if spec.genai else ("model_inputs", "model_outputs")
    parts: dict[str, list[pd.DataFrame]] = {c: [] for c in collections}
    for deployment in names:
        for collection, frames in parts.items():
            frame = records(ws, target.endpoint, deployment, collection, start, end)
            if not frame.empty and not target.include_mirror:
                frame = frame[frame["source"] == "live"]
            frames.append(frame)
    found = [
        pd.concat([f for f in frames if not f.empty], ignore_index=True)
        if any(not f.empty for f in frames)
        else pd.DataFrame()
        for frames in parts.values()
    ]
    if spec.genai:
        return Window(found[0], None, start, end)
    return Window(found[0], found[1], start, end)


def _genai_reference(
    ws: Workspace, spec: MonitorSpec, window: Window, now: int
) -> tuple[
    dict[str, Any],
    Callable[[], tuple[list[dict[str, Any]], list[dict[str, Any]]]],
    list[DatasetVersion],
]:
    """A GenAI monitor's summary, the call that judges its window, and the reference dataset
    versions it reads (for lineage)."""
    from cauce.monitoring import genai

    reference = spec.reference
    summary: dict[str, Any] = {"records": len(window.inputs)}
    versions: list[DatasetVersion] = []
    read: Callable[[], list[str]] | None = None
    if reference is not None and reference.dataset is not None:
        from cauce.data.assets import get_version, load

        version = get_version(reference.dataset, workspace=ws)
        versions.append(version)
        summary["reference"] = f"{version.name}@{version.version}"

        def read() -> list[str]:
            frame = load(version, workspace=ws)
            texts = frame[_query_column(spec, frame, version.ref)].dropna().astype(str)
            found = [t for t in texts if t.strip()]
            summary["reference_rows"] = len(found)
            return found

    elif reference is not None and reference.window is not None:
        end = now - reference.window.offset
        start = end - reference.window.size
        summary["reference"] = f"the window {_utc(start)} to {_utc(end)}"

        def read() -> list[str]:
            found = genai.queries(_window(ws, spec, start, end).inputs)
            summary["reference_rows"] = len(found)
            return found

    return summary, functools.partial(genai.compute, ws, spec, window.inputs, read), versions


def _utc(ms: int) -> str:
    """A time in ms since the epoch as ``2027-01-15 07:00:00 UTC``."""
    import datetime as dt

    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _query_column(spec: MonitorSpec, frame: pd.DataFrame, ref: str) -> str:
    """The reference dataset's column of queries: ``query_drift.column``, else the first of
    ``query``, ``question``, ``inputs.question``."""
    named = next((s.body.column for s in spec.signals if s.name == "query_drift"), None)
    found = named or next(
        (c for c in ("query", "question", "inputs.question") if c in frame.columns), None
    )
    if found is None or found not in frame.columns:
        raise InvalidInput(
            f"reference dataset {ref} has no column {named or 'query'!r}",
            hint="name its column of queries: query_drift: {column: NAME}",
            details={"field": "signals.query_drift.column"},
        )
    return found


def _as_ms(values: pd.Series) -> Any:
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(values):
        return values.astype("datetime64[ms, UTC]" if values.dt.tz else "datetime64[ms]").astype(
            "int64"
        )
    return pd.to_numeric(values, errors="coerce")


# -- running ----------------------------------------------------------------------------------


def run_monitor(
    name: str,
    *,
    now: int | None = None,
    workspace: Workspace | None = None,
    actions: bool = True,
    wait: bool = False,
    actor: str | None = None,
) -> MonitorRun:
    """Run a monitor once over the window ending at ``now``; store and return what it found.

    The window and the reference are read, and the signals computed, here (through a server
    too: an endpoint's collected records are this machine's files, or the versions the
    collector registered); :func:`record_run` stores the result. An alert's actions are stored
    pending, for an agent to run; ``wait=True`` runs them here, in order, and returns once each
    has succeeded or failed. ``actions=False`` stores none.
    """
    ws = workspace or current()
    now = now_ms() if now is None else now
    spec = stored_spec(get_monitor(name, workspace=ws).spec)
    findings = _judge(ws, spec, now)
    run = record_run(name, findings, actions=actions, actor=actor, workspace=ws)
    if wait and run.alert is not None and run.alert.actions:
        from cauce.monitoring.actions.workers import run_alert_actions

        run.alert.actions = run_alert_actions(ws, run.alert.id, actor=actor or ws.user)
    return run


def _judge(ws: Workspace, spec: MonitorSpec, now: int) -> Findings:
    """Read the window and the reference, compute every signal: what a run found."""
    started = time.perf_counter()
    profile_id: str | None = None
    window: Window | None = None
    references: list[str] = []
    kept: PreparedVersion | None = None  # the alerting window, written with the run
    status: Status
    try:
        window = _current_window(ws, spec, now)
        rows = len(window.inputs)
        judge: Callable[[], tuple[list[dict[str, Any]], list[dict[str, Any]]]]
        if spec.genai:
            summary, judge, versions = _genai_reference(ws, spec, window, now)
        else:
            reference = _resolve_reference(ws, spec)
            profile_id, profile, reused = _reference_profile(ws, spec, reference, None)
            summary = {
                "reference": reference.label,
                "reference_rows": profile.rows,
                "profile_reused": reused,
                "features": len(profile.columns),
            }
            judge = functools.partial(signals.compute, ws, spec, profile, window)
            versions = reference.versions
        if rows < spec.min_rows:
            status = "no_data"
            reason = f"the window has {rows} rows, fewer than min_rows {spec.min_rows}"
            reason += _not_collecting(ws, spec) if rows == 0 else ""
            values = [{**signals.not_computed(s.name, "*", s.name, reason)} for s in spec.signals]
            breaches: list[dict[str, Any]] = []
            summary["reason"] = reason
        else:
            values, breaches = judge()
            status = "alert" if breaches else "ok"
        references = [v.id for v in versions]
        if breaches:
            kept = _keep_window(ws, spec, window)
        error = None
    except CauceError as exc:
        status, error, rows, values, breaches = "failed", str(exc), 0, [], []
        summary = {"reason": str(exc)}
    return Findings(
        status=status,
        started_at=now,
        duration_ms=int((time.perf_counter() - started) * 1000),
        rows=rows,
        summary=summary,
        values=cast(list[SignalValue], values),
        breaches=cast(list[SignalValue], breaches),
        window_start=window.start if window else None,
        window_end=window.end if window else None,
        error=error,
        profile_id=profile_id,
        references=references,
        window=kept,
    )


@operation("POST /monitors/{name}/runs")
def record_run(
    name: str,
    findings: Findings,
    *,
    actions: bool = True,
    actor: str | None = None,
    workspace: Workspace | None = None,
) -> MonitorRun:
    """Store one run of a monitor: its values, the kept window, the alerts it resolves, and the
    alert it raises with that alert's pending actions (``actions=False``: none).

    All in one transaction, so that no reader (and no crash) sees an alerting run without its
    alert, or an alert without its actions. The alert follows the monitor's stored spec
    (cooldown, ``on_alert``).
    """
    from cauce.data.assets import stored_blob
    from cauce.monitoring import alerts

    ws = workspace or current()
    if not isinstance(actions, bool):
        raise InvalidInput("actions must be true or false", details={"field": "actions"})
    _check_findings(name, findings)
    kept = None if findings.window is None else stored_blob(ws, findings.window)
    run = MonitorRun(
        id=new_id(),
        monitor=name,
        status=findings.status,
        started_at=findings.started_at,
        duration_ms=findings.duration_ms,
        window_start=findings.window_start,
        window_end=findings.window_end,
        rows=findings.rows,
        summary={**findings.summary, "breaches": len(findings.breaches)},
        values=cast(list[dict[str, Any]], findings.values),
        error=findings.error,
    )
    breaches = cast(list[dict[str, Any]], findings.breaches)
    inputs = [(version_id, "reference") for version_id in findings.references]
    with ws.store.write() as conn:
        row = _monitor_row(conn, name)
        _check_stored(conn, findings)
        _store_run(conn, ws, row.id, run, findings.profile_id, inputs, actor or ws.user, kept)
        if run.status == "ok":
            alerts.resolve_open(conn, row.id, run.id, run.started_at)
        if breaches:
            run.alert = alerts.raise_alert(
                conn,
                row,
                stored_spec(row.spec),
                run.id,
                breaches,
                now=run.started_at,
                queue_actions=actions,
            )
    return run


def _check_findings(name: str, findings: Findings) -> None:
    """A run whose parts disagree is refused, naming the part (through a server, the caller
    computed them)."""

    def refuse(message: str, where: str) -> None:
        raise InvalidInput(message, details={"field": f"findings.{where}"})

    for where in ("started_at", "duration_ms", "rows", "window_start", "window_end"):
        number = getattr(findings, where)
        if number is not None and not INT64_MIN <= number <= INT64_MAX:
            refuse(f"{where} must fit in 64 bits", where)
    for where in ("rows", "duration_ms"):
        if getattr(findings, where) < 0:
            refuse(f"{where} must be 0 or more", where)
    if (findings.status == "alert") != bool(findings.breaches):
        refuse("a run is 'alert' exactly when it has breaches", "breaches")
    if findings.status == "failed" and not findings.error:
        refuse("a failed run needs its error", "error")
    for i, value in enumerate(findings.values):
        if value["outcome"] not in OUTCOMES:
            refuse(f"outcome must be one of {', '.join(OUTCOMES)}", f"values.{i}.outcome")
    computed = {(v["signal"], v["feature"], v["metric"]) for v in findings.values}
    for i, breach in enumerate(findings.breaches):
        key = (breach["signal"], breach["feature"], breach["metric"])
        if breach["outcome"] != "breached" or key not in computed:
            refuse("a breach must be one of the run's values, breached", f"breaches.{i}")
    window = findings.window
    if window is not None:
        if findings.status != "alert":
            refuse("only an alerting run keeps its window", "window")
        if window.name != f"{name}.window":
            refuse(f"the kept window is a version of {name}.window", "window.name")
        if window.layer is not None and window.layer not in LAYERS:
            refuse(f"layer must be one of {', '.join(LAYERS)}", "window.layer")


def _check_stored(conn: Connection, findings: Findings) -> None:
    """The profile and the reference versions a run names exist (NotFound names them)."""
    if findings.profile_id is not None:
        known = reference_profiles.c.id == findings.profile_id
        if conn.execute(select(reference_profiles.c.id).where(known)).first() is None:
            raise NotFound(
                f"reference profile {findings.profile_id!r} does not exist",
                details={"field": "findings.profile_id"},
            )
    wanted = set(findings.references)
    if wanted:
        dv = dataset_versions.c
        found = set(conn.execute(select(dv.id).where(dv.id.in_(wanted))).scalars())
        if wanted - found:
            raise NotFound(
                f"dataset version {sorted(wanted - found)[0]!r} does not exist",
                details={"field": "findings.references"},
            )


def _keep_window(ws: Workspace, spec: MonitorSpec, window: Window) -> PreparedVersion | None:
    """Prepare the window that raised an alert as a version of ``<monitor>.window``: the
    evidence, for people to inspect and for lineage (identical windows are one version),
    written with the monitor run. A window that cannot be stored is logged, and the alert goes
    on without it."""
    from cauce.data.assets import prepare_version
    from cauce.serving.collector import one_type_per_column

    try:
        return prepare_version(
            f"{spec.name}.window",
            one_type_per_column(window.inputs),
            layer="bronze",
            description=f"windows in which monitor {spec.name} raised an alert",
            allow_schema_change=True,
            workspace=ws,
        )
    except CauceError as exc:
        log.warning("monitor %s: the alerting window was not kept: %s", spec.name, exc)
        return None


def _store_run(
    conn: Connection,
    ws: Workspace,
    monitor_id: str,
    run: MonitorRun,
    profile_id: str | None,
    inputs: list[tuple[str, str]],
    actor: str,
    window: PreparedVersion | None,
) -> None:
    """Write the run, its values, its lineage and the kept window in the caller's transaction."""
    from cauce.data.assets import write_version
    from cauce.lineage.graph import add_edge

    if window is not None:
        kept, _ = write_version(conn, ws, window)
        run.summary["window_dataset"] = kept.ref
        inputs = [*inputs, (kept.id, "current")]
    conn.execute(
        monitor_runs.insert().values(
            id=run.id,
            monitor_id=monitor_id,
            reference_profile_id=profile_id,
            status=run.status,
            window_start=run.window_start,
            window_end=run.window_end,
            rows=run.rows,
            summary=run.summary,
            error=run.error,
            started_at=run.started_at,
            duration_ms=run.duration_ms,
        )
    )
    if run.values:
        conn.execute(
            signal_results.insert(),
            [
                {
                    "monitor_run_id": run.id,
                    "monitor_id": monitor_id,
                    "at": run.started_at,
                    "signal": v["signal"],
                    "feature": v["feature"],
                    "metric": v["metric"],
                    "value": v["value"],
                    "threshold": v["threshold"],
                    "outcome": v["outcome"],
                    "details": v["details"],
                }
                for v in run.values
            ],
        )
    for version_id, relation in inputs:
        add_edge(conn, ("dataset_version", version_id), ("monitor_run", run.id), relation)
    conn.execute(
        monitors.update().where(monitors.c.id == monitor_id).values(last_run_at=run.started_at)
    )
    audit.record(
        conn,
        actor,
        "monitor.run",
        "monitor",
        monitor_id,
        after={
            "run_id": run.id,
            "status": run.status,
            "rows": run.rows,
            "breaches": run.summary.get("breaches", 0),
        },
    )


@operation("POST /monitors/claims")
def claim_due_monitors(
    *, now: int | None = None, workspace: Workspace | None = None
) -> tuple[str, ...]:
    """Claim every monitor whose schedule is due at ``now`` (the server's clock by default),
    each with a compare-and-set on its next run time; return their names.

    Missed slots collapse into one run: the next run time is moved after ``now``.
    """
    ws = workspace or current()
    now = now_ms() if now is None else check_time_ms(now, "now")
    m = monitors.c
    due = (
        select(monitors)
        .where(m.enabled.is_(True), m.next_run_at.is_not(None), m.next_run_at <= now)
        .order_by(m.name)
    )
    with ws.store.read() as conn:  # most looks find nothing: no write lock for those
        if conn.execute(due.limit(1)).first() is None:
            return ()
    claimed = []
    with ws.store.write() as conn:
        for row in conn.execute(due).all():
            result = conn.execute(
                monitors.update()
                .where(m.id == row.id, m.next_run_at == row.next_run_at)
                .values(next_run_at=next_cron_time(row.spec["schedule"], now)),
                execution_options={"preserve_rowcount": True},
            )
            if result.rowcount == 1:
                claimed.append(row.name)
    return tuple(claimed)


def claim_due(ws: Workspace, now: int | None = None) -> list[str]:
    """The monitors due at ``now`` in ``ws``, claimed (:func:`claim_due_monitors`)."""
    return list(claim_due_monitors(now=now, workspace=ws))


@operation("GET /monitors/{name}/runs")
def runs(name: str, *, limit: int = 50, workspace: Workspace | None = None) -> list[MonitorRun]:
    """The latest runs of a monitor, newest first (without their values)."""
    ws = workspace or current()
    check_limit(limit)
    r = monitor_runs.c
    with ws.store.read() as conn:
        monitor_id = _monitor_row(conn, name).id
        rows = conn.execute(
            select(monitor_runs)
            .where(r.monitor_id == monitor_id)
            .order_by(r.started_at.desc(), r.id.desc())
            .limit(limit)
        ).all()
    return [_monitor_run(x, name) for x in rows]


@operation("GET /monitors/{name}/runs/{run_id}")
def get_run(name: str, run_id: str, *, workspace: Workspace | None = None) -> MonitorRun:
    """One run of a monitor (without its values), by its id or the start of it (4 or more
    characters) when that names one run."""
    ws = workspace or current()
    r = monitor_runs.c
    with ws.store.read() as conn:
        monitor_id = _monitor_row(conn, name).id
        rows = conn.execute(
            select(monitor_runs)
            .where(r.monitor_id == monitor_id, id_matches(r.id, run_id))
            .limit(2)
        ).all()
    row = only_match(rows, run_id, "monitor run", "run_id", hint=f"cauce monitors show {name}")
    return _monitor_run(row, name)


def _monitor_run(x: Any, name: str) -> MonitorRun:
    return MonitorRun(
        x.id,
        name,
        x.status,
        x.started_at,
        x.duration_ms,
        x.window_start,
        x.window_end,
        x.rows,
        x.summary,
        error=x.error,
    )


@operation("GET /monitor-runs/{run_id}/values")
def run_values(run_id: str, *, workspace: Workspace | None = None) -> list[dict[str, Any]]:
    """Every value one run computed."""
    ws = workspace or current()
    s = signal_results.c
    with ws.store.read() as conn:
        rows = conn.execute(
            select(signal_results).where(s.monitor_run_id == run_id).order_by(s.id)
        ).all()
    return [_series_row(x) for x in rows]


@operation("GET /monitors/{name}/history")
def history(
    name: str,
    *,
    signal: str | None = None,
    feature: str | None = None,
    metric: str | None = None,
    limit: int = 1000,
    workspace: Workspace | None = None,
) -> list[dict[str, Any]]:
    """The time series of a monitor's values, oldest first, optionally one signal/feature."""
    ws = workspace or current()
    check_limit(limit)
    s = signal_results.c
    with ws.store.read() as conn:
        monitor_id = _monitor_row(conn, name).id
        query = select(signal_results).where(s.monitor_id == monitor_id)
        for column, wanted in ((s.signal, signal), (s.feature, feature), (s.metric, metric)):
            if wanted is not None:
                query = query.where(column == wanted)
        rows = conn.execute(query.order_by(s.at.desc(), s.id.desc()).limit(limit)).all()
    return [_series_row(x) for x in reversed(rows)]


def _series_row(x: Any) -> dict[str, Any]:
    return {
        "at": x.at,
        "run_id": x.monitor_run_id,
        "signal": x.signal,
        "feature": x.feature,
        "metric": x.metric,
        "value": x.value,
        "threshold": x.threshold,
        "outcome": x.outcome,
        "details": x.details,
    }
