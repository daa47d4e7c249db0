"""Progressive rollouts: move traffic from a stable deployment to a candidate in steps, judge the
candidate on measurements every interval, and promote it or roll it back on its own.

A rollout goes through stages: an optional mirror pre-stage (the candidate gets a shadow copy of
live requests and no live traffic, blue-green style), then one stage per step, each giving the
candidate its ``weight`` percent of the share the two deployments held together. Every
``analysis.interval`` the candidate is measured over the interval just passed
(:mod:`cauce.serving.analysis`: each metric's value and verdict).

An interval is **fail** when a measurement crosses its bound, **inconclusive** when one cannot be
measured, **pass** otherwise. After ``failure_limit`` failed intervals the candidate is rolled
back: the stable deployment gets the whole share again. After ``inconclusive_limit``
inconclusive intervals in a row the rollout pauses for a person (``cauce rollouts promote``
resumes it, ``abort`` rolls back). A stage ends when its ``pause`` has passed; a step without
``pause`` waits for a person. The last step gives the candidate 100%; one more passing interval
there promotes it: the registry ``alias`` (default ``champion``) moves to the candidate's model
version in the same transaction.

Every decision is stored with the measured values that led to it, and audited. The state lives
in the store, not in the process that runs the controller: a controller started again (in
``cauce endpoints serve`` or ``cauce agent``) resumes where the rollout was. Two controllers on
the same store never analyse the same interval twice (compare-and-set on ``next_analysis_at``).

Starting, reading, promoting and aborting a rollout are operations, answered through a server
too, and so are the controller's two steps: claiming an interval and carrying out its decision.
The measuring between them (:func:`tick`) reads the collector's files, so the controller runs
where the router runs.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection, select, update

from cauce.errors import BackendError, CauceError, Conflict, InvalidInput, NotFound
from cauce.lineage import audit
from cauce.operations import operation
from cauce.serving.analysis import analyze, reads_collected
from cauce.serving.endpoints import get_endpoint, read_endpoint, write_traffic
from cauce.serving.specs import RolloutSpec
from cauce.specs import Applied, Declared, validation_error
from cauce.store import new_id, now_ms
from cauce.store.schema import (
    endpoints,
    rollout_decisions,
    rollouts,
)
from cauce.validation import check_name, check_time_ms
from cauce.workspace import Workspace, current

__all__ = [
    "Decision",
    "Rollout",
    "abort",
    "promote",
    "start",
    "status",
]

log = logging.getLogger("cauce.rollouts")
CONTROLLER = "cauce-controller"  # the actor of what the controller decides
ACTIVE = ("running", "paused")
_NEW_VERSION_HINT = (
    "to roll out a new version, put it on a deployment without traffic and make that the candidate"
)
MIRROR_STAGE = -1
# How long after an interval ends a controller judges it: the router's collector writes its
# records every half second, so a request answered just before the end is on disk by then.
SETTLE_MS = 2_000


@dataclass(frozen=True)
class Decision:
    """One analysis outcome or action, with what was measured."""

    at: int
    stage: int
    decision: str
    measured: dict[str, Any]
    reason: str
    actor: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class Rollout:
    """A rollout and where it stands."""

    id: str
    endpoint: str
    candidate: str
    stable: str
    state: str
    stage: int
    stage_started_at: int
    next_analysis_at: int | None
    failures: int
    reason: str | None
    spec: dict[str, Any]
    created_at: int
    updated_at: int
    ended_at: int | None
    decisions: list[Decision] = field(default_factory=list)

    @property
    def weight(self) -> int:
        """The candidate's weight in the current stage (0 in the mirror pre-stage)."""
        return 0 if self.stage == MIRROR_STAGE else int(self.spec["steps"][self.stage]["weight"])

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view."""
        return {
            **{k: v for k, v in self.__dict__.items() if k != "decisions"},
            "weight": self.weight,
            "decisions": [d.to_dict() for d in self.decisions],
        }


# -- starting ---------------------------------------------------------------------------------


def _spec(document: dict[str, Any]) -> RolloutSpec:
    try:
        return RolloutSpec.model_validate(document)
    except ValidationError as exc:
        raise validation_error("Rollout", exc, RolloutSpec) from None


def check_rollout(ws: Workspace, spec: RolloutSpec, declared: Declared) -> None:
    """Before an apply changes anything: the endpoint and both deployments exist or are
    declared in the same apply."""
    names = [spec.candidate] + ([spec.stable] if spec.stable is not None else [])
    if ("Endpoint", spec.endpoint) in declared:
        existing: set[str] = set()
    else:
        existing = {d.name for d in get_endpoint(spec.endpoint, workspace=ws).deployments}
    for name in names:
        if name not in existing and ("Deployment", f"{spec.endpoint}/{name}") not in declared:
            raise NotFound(
                f"endpoint {spec.endpoint!r} has no deployment {name!r}",
                hint=f"its deployments: {', '.join(sorted(existing)) or 'none'}",
                details={"field": "candidate" if name == spec.candidate else "stable"},
            )


def save_rollout(conn: Connection, ws: Workspace, spec: RolloutSpec) -> Applied:
    """Start a rollout from its spec; the spec of the candidate's newest rollout again, on the
    same candidate version, changes nothing (whether that rollout runs or has ended)."""
    name = f"{spec.endpoint}/{spec.candidate}"
    if _already_rolled_out(conn, spec):
        return Applied("Rollout", name, "unchanged")
    _start(conn, ws, spec)
    return Applied("Rollout", name, "created")


def _already_rolled_out(conn: Connection, spec: RolloutSpec) -> bool:
    """Whether the newest rollout of this candidate came from the same spec, on the version the
    candidate serves now.

    A re-apply means "this is what I declared", not "do it again": once promoted, rolled back
    or aborted, the same rollout is not started anew. The stable deployment's version does not
    count (it may have followed its alias since), and an omitted ``stable`` matches the one
    the rollout chose.
    """
    endpoint = read_endpoint(conn, spec.endpoint)
    candidate = endpoint.deployment(spec.candidate)
    latest = conn.execute(
        select(rollouts.c.spec, rollouts.c.stable)
        .where(rollouts.c.endpoint_id == endpoint.id, rollouts.c.candidate == spec.candidate)
        .order_by(rollouts.c.created_at.desc(), rollouts.c.id.desc())
        .limit(1)
    ).first()
    if latest is None or latest.spec.get("candidate_version") != candidate.target_id:
        return False
    if spec.stable is not None and spec.stable != latest.stable:
        return False
    body = spec.model_dump(mode="json")
    return all(latest.spec.get(k) == v for k, v in body.items() if k != "stable")


def _resolved(conn: Connection, spec: RolloutSpec) -> dict[str, Any]:
    """The spec as started: the stable deployment chosen, both versions named."""
    endpoint = read_endpoint(conn, spec.endpoint)
    candidate = endpoint.deployment(spec.candidate)
    stable_name = spec.stable or _biggest(endpoint.traffic, exclude=spec.candidate)
    if stable_name is None:
        holds = endpoint.traffic.get(spec.candidate, 0)
        raise InvalidInput(
            f"endpoint {spec.endpoint!r} has no deployment with live traffic to roll out from"
            + (f"; {spec.candidate!r} already takes {holds}%" if holds else ""),
            hint=_NEW_VERSION_HINT
            if holds
            else "give the rollout a stable deployment, or set traffic first",
            details={"field": "stable"},
        )
    stable = endpoint.deployment(stable_name)
    return {
        **spec.model_dump(mode="json"),
        "stable": stable.name,
        "candidate_version": candidate.target_id,
        "stable_version": stable.target_id,
    }


def _biggest(traffic: dict[str, int], exclude: str) -> str | None:
    ranked = sorted(((w, n) for n, w in traffic.items() if n != exclude and w > 0), reverse=True)
    return ranked[0][1] if ranked else None


@operation("POST /rollouts")
def start(spec: RolloutSpec | dict[str, Any], *, workspace: Workspace | None = None) -> Rollout:
    """Start a rollout: the candidate gets the first stage's traffic (or the mirror)."""
    ws = workspace or current()
    if not isinstance(spec, RolloutSpec):
        spec = _spec(spec)
    with ws.store.write() as conn:
        _start(conn, ws, spec)
    return status(spec.endpoint, workspace=ws)


def _start(conn: Connection, ws: Workspace, spec: RolloutSpec) -> None:
    """Start a rollout inside the caller's transaction."""
    body = _resolved(conn, spec)
    stable, candidate = body["stable"], spec.candidate
    now = now_ms()
    row = _endpoint_row(conn, spec.endpoint)
    active = conn.execute(
        select(rollouts.c.candidate).where(
            rollouts.c.endpoint_id == row.id, rollouts.c.state.in_(ACTIVE)
        )
    ).first()
    if active is not None:
        raise Conflict(
            f"endpoint {spec.endpoint!r} already has a rollout in progress "
            f"(candidate {active.candidate})",
            hint=f"cauce rollouts abort {spec.endpoint}",
        )
    if row.traffic.get(stable, 0) == 0:
        # With the candidate holding the share (a promoted rollout's), the stages would move
        # live traffic back to the stable deployment: the opposite of a rollout.
        holds = row.traffic.get(candidate, 0)
        raise InvalidInput(
            f"deployment {stable!r} takes no live traffic, so there is nothing to roll out "
            f"to {candidate!r}" + (f"; {candidate!r} already takes {holds}%" if holds else ""),
            hint=_NEW_VERSION_HINT if holds else "set traffic to the stable deployment first",
            details={"field": "stable"},
        )
    share = row.traffic[stable] + row.traffic.get(candidate, 0)
    body["share"] = share
    stage = MIRROR_STAGE if spec.mirror is not None else 0
    rollout_id = new_id()
    conn.execute(
        rollouts.insert().values(
            id=rollout_id,
            endpoint_id=row.id,
            candidate=candidate,
            stable=stable,
            spec=body,
            state="running",
            stage=stage,
            stage_started_at=now,
            next_analysis_at=now + spec.analysis.interval,
            failures=0,
            reason=None,
            created_at=now,
            updated_at=now,
        )
    )
    audit.record(conn, ws.user, "rollout.start", "rollout", rollout_id, after=body)
    _enter_stage(conn, ws, row, body, stage, f"rollout of {candidate} started", ws.user)
    _decide(conn, ws, rollout_id, stage, "start", {}, f"stage {_stage_name(body, stage)}", ws.user)


def _stage_name(spec: dict[str, Any], stage: int) -> str:
    if stage == MIRROR_STAGE:
        return f"mirror {spec['mirror']['percent']}%"
    return f"{stage + 1}/{len(spec['steps'])}: {spec['steps'][stage]['weight']}%"


def _enter_stage(
    conn: Connection,
    ws: Workspace,
    row: Any,
    spec: dict[str, Any],
    stage: int,
    reason: str,
    actor: str,
) -> None:
    """Set the endpoint's traffic and mirror for a stage."""
    candidate, stable, share = spec["candidate"], spec["stable"], spec["share"]
    traffic = dict(row.traffic)
    mirror = {k: v for k, v in row.mirror.items() if k != candidate}
    if stage == MIRROR_STAGE:
        traffic[candidate], traffic[stable] = 0, share
        mirror = {candidate: spec["mirror"]["percent"]}
    else:
        weight = round(share * spec["steps"][stage]["weight"] / 100)
        traffic[candidate], traffic[stable] = weight, share - weight
    write_traffic(conn, ws, row, traffic, mirror, reason, actor=actor)


# -- reading ----------------------------------------------------------------------------------


@operation("GET /endpoints/{endpoint}/rollout")
def status(endpoint: str, *, workspace: Workspace | None = None) -> Rollout:
    """The endpoint's newest rollout, with its decisions."""
    ws = workspace or current()
    with ws.store.read() as conn:
        row = _endpoint_row(conn, endpoint)
        found = conn.execute(
            select(rollouts)
            .where(rollouts.c.endpoint_id == row.id)
            .order_by(rollouts.c.created_at.desc(), rollouts.c.id.desc())
            .limit(1)
        ).first()
        if found is None:
            raise NotFound(
                f"endpoint {endpoint!r} has no rollout", hint="cauce rollouts start -f rollout.yaml"
            )
        decisions = conn.execute(
            select(rollout_decisions)
            .where(rollout_decisions.c.rollout_id == found.id)
            .order_by(rollout_decisions.c.id)
        ).all()
        return _as_rollout(
            endpoint,
            found,
            [Decision(d.at, d.stage, d.decision, d.measured, d.reason, d.actor) for d in decisions],
        )


def _as_rollout(endpoint: str, row: Any, decisions: list[Decision]) -> Rollout:
    return Rollout(
        id=row.id,
        endpoint=endpoint,
        candidate=row.candidate,
        stable=row.stable,
        state=row.state,
        stage=row.stage,
        stage_started_at=row.stage_started_at,
        next_analysis_at=row.next_analysis_at,
        failures=row.failures,
        reason=row.reason,
        spec=row.spec,
        created_at=row.created_at,
        updated_at=row.updated_at,
        ended_at=row.ended_at,
        decisions=decisions,
    )


# -- people's actions -------------------------------------------------------------------------


@operation("POST /endpoints/{endpoint}/rollout/promote")
def promote(endpoint: str, *, full: bool = False, workspace: Workspace | None = None) -> Rollout:
    """Resume a paused rollout at its next stage, or (``full``) promote the candidate now."""
    ws = workspace or current()
    with ws.store.write() as conn:
        endpoint_row, row = _active(conn, endpoint)
        if full:
            _finish(conn, ws, endpoint_row, row, "promoted", "promoted by hand", {}, ws.user)
        elif row.state == "paused" or row.spec["steps"][row.stage].get("pause") is None:
            _advance(conn, ws, endpoint_row, row, "resumed by hand", actor=ws.user)
        else:
            raise Conflict(
                f"the rollout of {endpoint} is running and will advance on its own",
                hint="use --full to promote the candidate now",
            )
    return status(endpoint, workspace=ws)


@operation("POST /endpoints/{endpoint}/rollout/abort")
def abort(
    endpoint: str, *, reason: str = "aborted by hand", workspace: Workspace | None = None
) -> Rollout:
    """Stop the rollout and give the stable deployment the whole share again."""
    ws = workspace or current()
    with ws.store.write() as conn:
        endpoint_row, row = _active(conn, endpoint)
        _finish(conn, ws, endpoint_row, row, "aborted", reason, {}, ws.user)
    return status(endpoint, workspace=ws)


def _active(conn: Connection, endpoint: str) -> tuple[Any, Any]:
    endpoint_row = _endpoint_row(conn, endpoint, lock=True)
    row = conn.execute(
        select(rollouts)
        .where(rollouts.c.endpoint_id == endpoint_row.id, rollouts.c.state.in_(ACTIVE))
        .with_for_update()
    ).first()
    if row is None:
        raise Conflict(f"endpoint {endpoint!r} has no rollout in progress")
    return endpoint_row, row


# -- transitions (inside the caller's transaction) --------------------------------------------


def _decide(
    conn: Connection,
    ws: Workspace,
    rollout_id: str,
    stage: int,
    decision: str,
    measured: dict[str, Any],
    reason: str,
    actor: str = CONTROLLER,
) -> None:
    conn.execute(
        rollout_decisions.insert().values(
            rollout_id=rollout_id,
            at=now_ms(),
            stage=stage,
            decision=decision,
            measured=measured,
            reason=reason,
            actor=actor,
        )
    )
    audit.record(
        conn,
        actor,
        f"rollout.{decision}",
        "rollout",
        rollout_id,
        after={"stage": stage, "reason": reason, "measured": measured},
    )


def _set(conn: Connection, rollout_id: str, **values: Any) -> None:
    conn.execute(
        update(rollouts).where(rollouts.c.id == rollout_id).values(updated_at=now_ms(), **values)
    )


def _advance(
    conn: Connection, ws: Workspace, endpoint_row: Any, row: Any, reason: str, actor: str
) -> None:
    stage = row.stage + 1
    spec = row.spec
    if stage >= len(spec["steps"]):
        _finish(conn, ws, endpoint_row, row, "promoted", reason, {}, actor)
        return
    why = f"rollout of {row.candidate}: {reason}"
    _enter_stage(conn, ws, endpoint_row, spec, stage, why, actor)
    now = now_ms()
    _set(
        conn,
        row.id,
        stage=stage,
        stage_started_at=now,
        state="running",
        reason=None,
        next_analysis_at=now + spec["analysis"]["interval"],
    )
    _decide(
        conn, ws, row.id, stage, "advance", {}, f"{reason}; stage {_stage_name(spec, stage)}", actor
    )


def _finish(
    conn: Connection,
    ws: Workspace,
    endpoint_row: Any,
    row: Any,
    state: str,
    reason: str,
    measured: dict[str, Any],
    actor: str = CONTROLLER,
) -> None:
    """End the rollout: ``promoted`` gives the candidate the whole share; ``rolled_back`` and
    ``aborted`` give it back to the stable deployment."""
    won = state == "promoted"
    traffic = dict(endpoint_row.traffic)
    traffic[row.candidate] = row.spec["share"] if won else 0
    traffic[row.stable] = 0 if won else row.spec["share"]
    mirror = {k: v for k, v in endpoint_row.mirror.items() if k != row.candidate}
    why = f"rollout of {row.candidate} " + ("promoted" if won else f"rolled back: {reason}")
    write_traffic(conn, ws, endpoint_row, traffic, mirror, why, actor=actor)
    _set(conn, row.id, state=state, reason=reason, ended_at=now_ms(), next_analysis_at=None)
    decision = "promote" if won else "rollback"
    _decide(conn, ws, row.id, row.stage, decision, measured, reason, actor)
    if won:
        _move_alias(conn, endpoint_row, row, reason, actor)


def _move_alias(conn: Connection, endpoint_row: Any, row: Any, reason: str, actor: str) -> None:
    """Point what the promoted candidate serves at its version, in the transaction that ends
    the rollout (no reader sees it promoted with the old one): the registry alias of a model,
    the label of a prompt, the current version of each index a flow deployment pins. ``actor``
    is who promoted: the controller, or the person who ran ``cauce rollouts promote``."""
    from cauce.genai.indexes.registry import move_current
    from cauce.genai.prompts.registry import move_label
    from cauce.registry.models import move_alias

    candidate = read_endpoint(conn, endpoint_row.name).deployment(row.candidate)
    why = f"rollout of {row.candidate} on {endpoint_row.name} promoted: {reason}"
    alias = row.spec.get("alias")
    if candidate.target_kind == "model" and alias:
        assert candidate.model_name is not None and candidate.model_version is not None
        move_alias(
            conn,
            candidate.model_name,
            alias,
            candidate.model_version,
            actor=actor,
            reason=why,
            if_changed=True,
        )
    elif candidate.target_kind == "prompt" and alias:
        name, _, version = candidate.target.removeprefix("prompts:/").partition("/")
        move_label(conn, name, alias, int(version), actor=actor, reason=why)
    for index, version in (candidate.spec.get("indexes") or {}).items():
        move_current(conn, index, int(version), actor=actor, reason=why)


# -- the controller ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Interval:
    """An interval a controller claimed for analysis: the rollout as it stood, and the
    interval ``(since, until]``."""

    rollout: Rollout
    since: int
    until: int


def tick(
    endpoint: str | None = None,
    *,
    now: int | None = None,
    settle_ms: int = 0,
    collected: list[str] | None = None,
    workspace: Workspace | None = None,
) -> list[Rollout]:
    """Analyse every running rollout whose interval is up; return those that were analysed.

    The interval is claimed and the decision carried out in the store (through a server too);
    the measuring happens here, where the router's collected records are. A controller passes
    ``settle_ms`` (:data:`SETTLE_MS`) so that an interval's last records are written before it
    is measured, and ``collected``, the endpoints whose records it can read
    (:func:`claim_intervals`).
    """
    ws = workspace or current()
    done = []
    claimed = claim_intervals(
        endpoint, now=now, settle_ms=settle_ms, collected=collected, workspace=ws
    )
    for interval in claimed:
        row = interval.rollout
        try:
            measured = analyze(
                ws, row.endpoint, row, interval.since, interval.until,
                mirror=row.stage == MIRROR_STAGE,
            )  # fmt: skip
        except Exception as exc:  # the controller goes on; the interval counts as inconclusive
            log.warning("rollout %s: analysis failed: %s", row.id, exc)
            measured = {"analysis": {"value": None, "ok": None, "why": str(exc)}}
        try:
            done.append(judge(row.id, measured, interval.until, workspace=ws))
        except BackendError as exc:  # the store is away for now: the next interval tries again
            log.warning("rollout %s: %s", row.id, exc)
    return done


@operation("POST /rollouts/intervals/claims")
def claim_intervals(
    endpoint: str | None = None,
    *,
    now: int | None = None,
    settle_ms: int = 0,
    collected: list[str] | None = None,
    workspace: Workspace | None = None,
) -> tuple[Interval, ...]:
    """Claim the analysis interval of every running rollout (of ``endpoint``, or all) that is up
    at ``now`` (default: the store's side's clock) less ``settle_ms``: an interval ends there,
    and is judged ``settle_ms`` later, once what was answered in it is stored. Two controllers
    never claim the same one (compare-and-set on ``next_analysis_at``).

    ``collected`` names the endpoints whose collected records the claiming controller reads
    (None: all): a rollout whose analysis reads them (drift, a query, GenAI metrics) on another
    endpoint is left to a controller beside its router, which would otherwise find nothing
    and call the interval inconclusive."""
    ws = workspace or current()
    if collected is not None:
        if not isinstance(collected, list):
            raise InvalidInput(
                f"collected must be a list of endpoint names, got {type(collected).__name__}",
                details={"field": "collected"},
            )
        collected = [check_name(name, "collected endpoint") for name in collected]
    now = now_ms() if now is None else check_time_ms(now, "now")
    if (
        isinstance(settle_ms, bool)
        or not isinstance(settle_ms, int)
        or not 0 <= settle_ms <= 60_000
    ):
        raise InvalidInput(
            f"settle_ms must be 0 to 60000 milliseconds, got {settle_ms!r}",
            details={"field": "settle_ms"},
        )
    until = now - settle_ms
    query = (
        select(rollouts, endpoints.c.name.label("endpoint_name"))
        .join(endpoints, endpoints.c.id == rollouts.c.endpoint_id)
        .where(rollouts.c.state == "running", rollouts.c.next_analysis_at <= until)
    )
    if endpoint is not None:
        query = query.where(endpoints.c.name == endpoint)
    with ws.store.read() as conn:
        due = conn.execute(query).all()
    if collected is not None:
        due = [r for r in due if r.endpoint_name in collected or not reads_collected(r.spec)]
    claimed = []
    for row in due:
        interval = row.spec["analysis"]["interval"]
        with ws.store.write() as conn:
            won = conn.execute(
                update(rollouts)
                .where(rollouts.c.id == row.id, rollouts.c.next_analysis_at == row.next_analysis_at)
                .values(next_analysis_at=until + interval)
            ).rowcount
        if won == 1:
            since = max(row.stage_started_at, row.next_analysis_at - interval)
            claimed.append(Interval(_as_rollout(row.endpoint_name, row, []), since, until))
    return tuple(claimed)


@operation("POST /rollouts/{rollout_id}/judgements")
def judge(
    rollout_id: str,
    measured: dict[str, dict[str, Any]],
    now: int,
    *,
    workspace: Workspace | None = None,
) -> Rollout:
    """Decide on an interval's measurements (each with its verdict ``ok``: true, false or null,
    and ``why``) and carry the decision out in one transaction: pass, fail, inconclusive, and
    what follows (advance, roll back, pause, promote). A decision that cannot be carried out
    pauses the rollout instead."""
    ws = workspace or current()
    check_time_ms(now, "now")
    for name, m in measured.items():
        if m.get("ok") not in (True, False, None) or not isinstance(m.get("why"), str):
            raise InvalidInput(
                f"measured.{name} needs ok (true, false or null) and why (text)",
                details={"field": f"measured.{name}"},
            )
    with ws.store.read() as conn:
        endpoint = conn.execute(
            select(endpoints.c.name)
            .join(rollouts, rollouts.c.endpoint_id == endpoints.c.id)
            .where(rollouts.c.id == rollout_id)
        ).scalar()
    if endpoint is None:
        raise NotFound(f"rollout {rollout_id!r} does not exist")
    try:
        _judge(ws, endpoint, rollout_id, measured, now)
    except BackendError:
        raise
    except Exception as exc:  # it would fail the same way every interval: ask a person
        log.warning("rollout %s: paused, its decision cannot be carried out: %s", rollout_id, exc)
        _pause_on_error(ws, endpoint, rollout_id, measured, exc)
    return status(endpoint, workspace=ws)


def _pause_on_error(
    ws: Workspace, endpoint: str, rollout_id: str, measured: dict[str, Any], exc: Exception
) -> None:
    """Pause a running rollout whose judgement raised (a promotion whose alias cannot move),
    recording why, once: the controller does not try it again every interval."""
    text = str(exc) if isinstance(exc, CauceError) else f"{type(exc).__name__}: {exc}"
    with ws.store.write() as conn:
        row = conn.execute(
            select(rollouts).where(rollouts.c.id == rollout_id).with_for_update()
        ).one()
        if row.state != "running":
            return
        why = (
            f"the controller cannot carry out its decision: {text}; remove the cause and "
            f"resume with cauce rollouts promote {endpoint}, or roll back with abort"
        )
        _set(conn, row.id, state="paused", reason=why)
        _decide(conn, ws, row.id, row.stage, "pause", measured, why)


def _judge(
    ws: Workspace, endpoint: str, rollout_id: str, measured: dict[str, Any], now: int
) -> None:
    failed = [f"{name} {m['why']}" for name, m in measured.items() if m["ok"] is False]
    unknown = [f"{name}: {m['why']}" for name, m in measured.items() if m["ok"] is None]
    with ws.store.write() as conn:
        endpoint_row = _endpoint_row(conn, endpoint, lock=True)
        row = conn.execute(
            select(rollouts).where(rollouts.c.id == rollout_id).with_for_update()
        ).one()
        if row.state != "running":  # aborted or promoted meanwhile
            return
        spec = row.spec
        analysis = spec["analysis"]
        if failed:
            reason = "; ".join(failed)
            _decide(conn, ws, row.id, row.stage, "fail", measured, reason)
            failures = row.failures + 1
            _set(conn, row.id, failures=failures)
            if failures >= analysis["failure_limit"]:
                _finish(
                    conn,
                    ws,
                    endpoint_row,
                    row,
                    "rolled_back",
                    f"{failures} failed analysis interval(s) (limit {analysis['failure_limit']}): "
                    f"{reason}",
                    measured,
                )
            return
        if unknown:
            reason = "; ".join(unknown)
            _decide(conn, ws, row.id, row.stage, "inconclusive", measured, reason)
            if _inconclusive_run(conn, row.id, row.stage) >= analysis["inconclusive_limit"]:
                why = f"{analysis['inconclusive_limit']} inconclusive intervals in a row: {reason}"
                _set(conn, row.id, state="paused", reason=why)
                _decide(conn, ws, row.id, row.stage, "pause", measured, why)
            return
        _decide(conn, ws, row.id, row.stage, "pass", measured, "every metric within its bounds")
        last = row.stage == len(spec["steps"]) - 1
        if row.stage == MIRROR_STAGE:
            pause = spec["mirror"]["duration"]
        else:
            pause = spec["steps"][row.stage].get("pause") or 0
        if last and now - row.stage_started_at >= pause:
            _finish(
                conn, ws, endpoint_row, row, "promoted", "every analysis passed at 100%", measured
            )
        elif not last and spec["steps"][max(row.stage, 0)].get("pause") is None and row.stage >= 0:
            why = (
                f"stage {_stage_name(spec, row.stage)} passed; it waits for cauce rollouts promote"
            )
            _set(conn, row.id, state="paused", reason=why)
            _decide(conn, ws, row.id, row.stage, "pause", measured, why)
        elif now - row.stage_started_at >= pause:
            _advance(conn, ws, endpoint_row, row, "analysis passed", actor=CONTROLLER)


def _inconclusive_run(conn: Connection, rollout_id: str, stage: int) -> int:
    """How many inconclusive intervals in a row this stage ended with."""
    decisions = conn.execute(
        select(rollout_decisions.c.decision)
        .where(
            rollout_decisions.c.rollout_id == rollout_id,
            rollout_decisions.c.stage == stage,
            rollout_decisions.c.decision.in_(("pass", "fail", "inconclusive")),
        )
        .order_by(rollout_decisions.c.id.desc())
    ).scalars()
    run = 0
    for decision in decisions:
        if decision != "inconclusive":
            break
        run += 1
    return run


def _endpoint_row(conn: Connection, name: str, *, lock: bool = False) -> Any:
    query = select(endpoints).where(endpoints.c.name == name)
    if lock:
        query = query.with_for_update()
    row = conn.execute(query).first()
    if row is None:
        raise NotFound(f"endpoint {name!r} does not exist")
    return row


def collected_here(ws: Workspace) -> list[str]:
    """The endpoints whose data collector wrote records on this machine, in ``ws``'s folder."""
    from cauce.serving.collector import endpoints_collected

    return endpoints_collected(ws.settings.state_dir / "collector")


class Controller:
    """Runs :func:`tick` every second in a thread until stopped.

    ``beside_router``: the controller runs in a router's process (``cauce endpoints serve``)
    and reads its collected records. Otherwise (``cauce agent``) it claims only the rollouts
    it can measure: those of endpoints whose records were collected on this machine, and those
    measured on stored counts alone.
    """

    def __init__(
        self,
        ws: Workspace,
        endpoint: str | None = None,
        every: float = 1.0,
        *,
        beside_router: bool = False,
    ) -> None:
        self.ws, self.endpoint, self.every = ws, endpoint, every
        self.beside_router = beside_router
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="cauce-rollouts", daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            try:
                collected = None if self.beside_router else collected_here(self.ws)
                tick(self.endpoint, settle_ms=SETTLE_MS, collected=collected, workspace=self.ws)
            except Exception as exc:
                log.warning("rollout controller: %s", exc)

    def stop(self) -> None:
        """Stop the thread (waits for a tick in progress)."""
        self._stop.set()
        self._thread.join(timeout=30)
