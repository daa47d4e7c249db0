"""Endpoints and deployments: what serves which model version, and how live traffic is split.

An endpoint is a stable address; each deployment behind it serves one registered model version
(the version its ``models:/`` URI named when the spec was applied). ``traffic`` splits live
requests by percent and sums to 100 (or 0: no live traffic); ``mirror`` sends a shadow copy of a
percentage of requests to one deployment that takes no live traffic. Every change is audited and
every traffic change is kept in the endpoint's history. A running router picks changes up from
the store through the endpoint's ``revision``. Reads, traffic moves and deletes are operations,
answered through a server too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, select

from cauce.errors import Conflict, InvalidInput, NotFound
from cauce.genai.prompts.registry import parse_ref, version_row
from cauce.lineage import audit
from cauce.lineage.graph import add_edge
from cauce.operations import operation
from cauce.registry import models as registry
from cauce.serving.specs import (
    DeploymentSpec,
    EndpointSpec,
    check_mirror,
    check_mirror_not_live,
    check_traffic,
)
from cauce.specs import Applied, Declared, changes, spec_digest
from cauce.store import new_id, now_ms
from cauce.store.schema import (
    api_key_usage,
    api_key_usage_reports,
    api_keys,
    connections,
    deployment_stats,
    deployments,
    endpoints,
    flow_versions,
    flows,
    model_versions,
    models,
    prompt_versions,
    rollouts,
    traffic_history,
)
from cauce.store.schema import prompts as prompts_table
from cauce.validation import check_name
from cauce.workspace import Workspace, current

__all__ = [
    "Deployment",
    "Endpoint",
    "delete_deployment",
    "delete_endpoint",
    "endpoint_revision",
    "get_deployment",
    "get_endpoint",
    "list_endpoints",
    "set_mirror",
    "set_traffic",
    "traffic_changes",
]


@dataclass(frozen=True)
class Deployment:
    """What one deployment behind an endpoint serves, pinned when its spec was applied."""

    endpoint: str
    name: str
    id: str
    target_kind: str  # model, flow, prompt or connection
    target: str  # the pinned version: models:/churn/3, flows:/rag/2, prompts:/qa/4, connections:/x
    model_uri: str | None  # the model URI as applied (an alias, say); None for other targets
    model_name: str | None
    model_version: int | None
    model_version_id: str | None
    signature: dict[str, Any] | None
    workers: int
    batching: dict[str, Any] | None
    collect: dict[str, Any] | None
    spec: dict[str, Any]
    created_at: int
    updated_at: int
    target_id: str = ""  # the pinned version's (or the connection's) id
    connection: str | None = None

    @property
    def genai(self) -> bool:
        """Whether it answers OpenAI's API (flows, prompts, connections; LLMs are models and
        tell by their flavor)."""
        return self.target_kind != "model"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class Endpoint:
    """A scoring address, its deployments and where live traffic goes."""

    name: str
    id: str
    description: str
    traffic: dict[str, int]
    mirror: dict[str, int]
    max_request_bytes: int
    timeout_ms: int
    revision: int
    deployments: list[Deployment]
    spec: dict[str, Any]
    created_at: int
    updated_at: int

    def deployment(self, name: str) -> Deployment:
        """The deployment called ``name``; NotFound otherwise."""
        for deployment in self.deployments:
            if deployment.name == name:
                return deployment
        raise NotFound(
            f"endpoint {self.name!r} has no deployment {name!r}",
            hint=f"its deployments: {', '.join(d.name for d in self.deployments) or 'none'}",
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view."""
        return {**self.__dict__, "deployments": [d.to_dict() for d in self.deployments]}


# -- specs ------------------------------------------------------------------------------------


def check_endpoint(ws: Workspace, spec: EndpointSpec, declared: Declared) -> None:
    """Before an apply changes anything: every traffic and mirror name must be a deployment
    that exists or that the same apply declares."""
    with ws.store.read() as conn:
        existing = _deployment_names(conn, spec.name)
    for field, split in (("traffic", spec.traffic), ("mirror", spec.mirror)):
        for name in split:
            if name not in existing and ("Deployment", f"{spec.name}/{name}") not in declared:
                raise InvalidInput(
                    f"Endpoint {spec.name}: {field} names deployment {name!r}, which "
                    "neither exists nor is declared in this apply",
                    details={"field": f"{field}.{name}"},
                )


def save_endpoint(conn: Connection, ws: Workspace, spec: EndpointSpec) -> Applied:
    """Create or update an endpoint from its spec; an identical spec changes nothing.

    Traffic that names deployments not created yet is set when the last of them is applied.
    """
    body = spec.model_dump(mode="json")
    digest = spec_digest(body)
    now = now_ms()
    row = conn.execute(select(endpoints).where(endpoints.c.name == spec.name)).first()
    if row is not None and row.spec_sha256 == digest:
        return Applied("Endpoint", spec.name, "unchanged")
    if row is None:
        endpoint_id = new_id()
        conn.execute(
            endpoints.insert().values(
                id=endpoint_id,
                name=spec.name,
                spec=body,
                spec_sha256=digest,
                traffic={},
                mirror={},
                revision=1,
                created_at=now,
                updated_at=now,
            )
        )
        audit.record(conn, ws.user, "endpoint.create", "endpoint", endpoint_id, after=body)
        applied = Applied("Endpoint", spec.name, "created")
    else:
        endpoint_id = row.id
        conn.execute(
            endpoints.update()
            .where(endpoints.c.id == row.id)
            .values(
                spec=body,
                spec_sha256=digest,
                revision=endpoints.c.revision + 1,
                updated_at=now,
            )
        )
        audit.record(
            conn, ws.user, "endpoint.update", "endpoint", row.id, before=row.spec, after=body
        )
        applied = Applied("Endpoint", spec.name, "updated", changes(row.spec, body))
    _apply_spec_traffic(conn, ws, endpoint_id, spec.name)
    return applied


def _apply_spec_traffic(conn: Connection, ws: Workspace, endpoint_id: str, name: str) -> None:
    """Set the traffic and mirror of the endpoint's spec once, as soon as its deployments exist.

    Once: traffic moved later (by hand, by a rollout) stays where it was moved when other specs
    are applied; only a new version of the Endpoint spec sets it again.
    """
    row = conn.execute(select(endpoints).where(endpoints.c.id == endpoint_id)).one()
    reason = f"applied from spec {row.spec_sha256[:12]}"
    done = conn.execute(
        select(traffic_history.c.id)
        .where(traffic_history.c.endpoint_id == row.id, traffic_history.c.reason == reason)
        .limit(1)
    ).first()
    wanted = {"traffic": row.spec["traffic"], "mirror": row.spec["mirror"]}
    named = set(wanted["traffic"]) | set(wanted["mirror"])
    if done is not None or not named <= _deployment_names(conn, name):
        return
    write_traffic(conn, ws, row, wanted["traffic"], wanted["mirror"], reason)


def check_deployment(ws: Workspace, spec: DeploymentSpec, declared: Declared) -> None:
    """Before an apply changes anything: the endpoint exists or is declared beside the
    deployment, and what it serves exists."""
    if ("Endpoint", spec.endpoint) not in declared:
        with ws.store.read() as conn:
            _endpoint_row(conn, spec.endpoint)
    if spec.model is not None:
        registry.resolve(spec.model, workspace=ws)
    undeclared = {
        "Prompt": spec.prompt and parse_ref(spec.prompt)[0],
        "Flow": spec.flow and spec.flow.removeprefix("flows:/").split("/")[0],
        "Connection": spec.connection,
    }
    with ws.store.read() as conn:
        for kind, name in undeclared.items():
            if name and (kind, name) not in declared:
                _target(conn, ws, spec)
                break
    if spec.safety is not None:
        from cauce.genai.safety.filters import SafetySpec

        _spec_field(lambda: SafetySpec.model_validate(spec.safety), f"{spec.name}: safety")


def _spec_field(check: Any, where: str) -> None:
    from pydantic import ValidationError

    try:
        check()
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise InvalidInput(
            f"Deployment {where}.{loc}: {first['msg']}", details={"field": f"safety.{loc}"}
        ) from None


@dataclass(frozen=True)
class _Target:
    kind: str
    uri: str
    columns: dict[str, str | None]
    node: tuple[str, str] | None  # its lineage node, when it is a version


def _target(conn: Connection, ws: Workspace, spec: DeploymentSpec) -> _Target:
    """What a deployment spec serves, resolved to the version it pins."""
    from cauce.genai import connections as conns
    from cauce.genai.flows import records as flows

    columns: dict[str, str | None] = {
        "model_version_id": None,
        "prompt_version_id": None,
        "flow_version_id": None,
        "connection_id": None,
    }
    if spec.connection is not None:
        columns["connection_id"] = conns.connection_row(conn, spec.connection).id
    if spec.model is not None:
        version = registry.resolve(spec.model, workspace=ws)
        columns["model_version_id"] = version.id
        return _Target(
            "model",
            f"models:/{version.name}/{version.version}",
            columns,
            ("model_version", version.id),
        )
    if spec.flow is not None:
        for index, number in spec.indexes.items():
            _check_index_version(conn, index, number)
        row = flows.version_row(conn, spec.flow)
        name = spec.flow.removeprefix("flows:/").split("/")[0]
        columns["flow_version_id"] = row.id
        return _Target("flow", f"flows:/{name}/{row.version}", columns, ("flow_version", row.id))
    if spec.prompt is not None:
        row = version_row(conn, spec.prompt)
        name = parse_ref(spec.prompt)[0]
        columns["prompt_version_id"] = row.id
        return _Target(
            "prompt", f"prompts:/{name}/{row.version}", columns, ("prompt_version", row.id)
        )
    return _Target("connection", f"connections:/{spec.connection}", columns, None)


def _check_index_version(conn: Connection, name: str, number: int) -> None:
    from cauce.store.schema import index_versions, indexes

    found = conn.execute(
        select(index_versions.c.id)
        .join(indexes, indexes.c.id == index_versions.c.index_id)
        .where(indexes.c.name == name, index_versions.c.version == number)
    ).first()
    if found is None:
        raise InvalidInput(
            f"indexes: index {name!r} has no version {number}",
            hint="cauce indexes versions NAME lists them",
            details={"field": f"indexes.{name}"},
        )


def save_deployment(conn: Connection, ws: Workspace, spec: DeploymentSpec) -> Applied:
    """Create or update a deployment; the same spec serving the same version changes nothing."""
    target = _target(conn, ws, spec)
    body = spec.model_dump(mode="json", exclude_none=True)
    digest = spec_digest(body)
    now = now_ms()
    label = f"{spec.endpoint}/{spec.name}"
    endpoint = _endpoint_row(conn, spec.endpoint)
    row = conn.execute(
        select(deployments).where(
            deployments.c.endpoint_id == endpoint.id, deployments.c.name == spec.name
        )
    ).first()
    pinned = {"target_kind": target.kind, **target.columns}
    if (
        row is not None
        and row.spec_sha256 == digest
        and all(getattr(row, k) == v for k, v in pinned.items())
    ):
        return Applied("Deployment", label, "unchanged")
    served_as = "model_version" if target.kind == "model" else "serves"
    after = {**body, served_as: target.uri}
    if row is None:
        deployment_id = new_id()
        conn.execute(
            deployments.insert().values(
                id=deployment_id,
                endpoint_id=endpoint.id,
                name=spec.name,
                spec=body,
                spec_sha256=digest,
                created_at=now,
                updated_at=now,
                **pinned,
            )
        )
        audit.record(conn, ws.user, "deployment.create", "deployment", deployment_id, after=after)
        applied = Applied("Deployment", label, "created")
    else:
        deployment_id = row.id
        conn.execute(
            deployments.update()
            .where(deployments.c.id == row.id)
            .values(spec=body, spec_sha256=digest, updated_at=now, **pinned)
        )
        before = {
            **row.spec,
            "model_version" if row.target_kind == "model" else "serves": _served(conn, row),
        }
        audit.record(
            conn, ws.user, "deployment.update", "deployment", row.id, before=before, after=after
        )
        applied = Applied("Deployment", label, "updated", changes(before, after))
    if target.node is not None:
        add_edge(conn, target.node, ("deployment", deployment_id), "served_by")
    _bump(conn, endpoint.id)
    _apply_spec_traffic(conn, ws, endpoint.id, spec.endpoint)
    return applied


def _served(conn: Connection, row: Any) -> str:
    """The pinned target of a stored deployment row, as a URI."""
    if row.model_version_id is not None:
        return _version_uri(conn, row.model_version_id)
    if row.flow_version_id is not None:
        found = conn.execute(
            select(flows.c.name, flow_versions.c.version)
            .join(flows, flows.c.id == flow_versions.c.flow_id)
            .where(flow_versions.c.id == row.flow_version_id)
        ).one()
        return f"flows:/{found.name}/{found.version}"
    if row.prompt_version_id is not None:
        found = conn.execute(
            select(prompts_table.c.name, prompt_versions.c.version)
            .join(prompts_table, prompts_table.c.id == prompt_versions.c.prompt_id)
            .where(prompt_versions.c.id == row.prompt_version_id)
        ).one()
        return f"prompts:/{found.name}/{found.version}"
    name = conn.execute(
        select(connections.c.name).where(connections.c.id == row.connection_id)
    ).scalar_one()
    return f"connections:/{name}"


def _version_uri(conn: Connection, version_id: str) -> str:
    found = conn.execute(
        select(models.c.name, model_versions.c.version)
        .join(models, models.c.id == model_versions.c.model_id)
        .where(model_versions.c.id == version_id)
    ).one()
    return f"models:/{found.name}/{found.version}"


# -- reads ------------------------------------------------------------------------------------


@operation("GET /endpoints")
def list_endpoints(*, workspace: Workspace | None = None) -> list[Endpoint]:
    """Every endpoint with its deployments, by name."""
    ws = workspace or current()
    with ws.store.read() as conn:
        rows = conn.execute(select(endpoints).order_by(endpoints.c.name)).all()
        return [_endpoint(conn, row) for row in rows]


@operation("GET /endpoints/{name}")
def get_endpoint(name: str, *, workspace: Workspace | None = None) -> Endpoint:
    """One endpoint with its deployments; NotFound names the known endpoints."""
    ws = workspace or current()
    with ws.store.read() as conn:
        return read_endpoint(conn, name)


def read_endpoint(conn: Connection, name: str) -> Endpoint:
    """One endpoint with its deployments, read in the caller's transaction."""
    return _endpoint(conn, _endpoint_row(conn, name))


@operation("GET /endpoints/{endpoint}/deployments/{name}")
def get_deployment(endpoint: str, name: str, *, workspace: Workspace | None = None) -> Deployment:
    """One deployment of an endpoint."""
    return get_endpoint(endpoint, workspace=workspace).deployment(name)


@operation("GET /endpoints/{name}/revision")
def endpoint_revision(name: str, *, workspace: Workspace | None = None) -> int:
    """The endpoint's change counter: a router reloads when it moves."""
    ws = workspace or current()
    with ws.store.read() as conn:
        revision = conn.execute(
            select(endpoints.c.revision).where(endpoints.c.name == name)
        ).scalar()
    if revision is None:
        raise NotFound(f"endpoint {name!r} does not exist")
    return int(revision)


@operation("GET /endpoints/{name}/traffic-history")
def traffic_changes(name: str, *, workspace: Workspace | None = None) -> list[dict[str, Any]]:
    """Every traffic and mirror change of an endpoint, oldest first, with who and why."""
    ws = workspace or current()
    with ws.store.read() as conn:
        endpoint = _endpoint_row(conn, name)
        rows = conn.execute(
            select(traffic_history)
            .where(traffic_history.c.endpoint_id == endpoint.id)
            .order_by(traffic_history.c.id)
        ).all()
    return [
        {"at": r.at, "traffic": r.traffic, "mirror": r.mirror, "reason": r.reason, "actor": r.actor}
        for r in rows
    ]


# -- changes ----------------------------------------------------------------------------------


@operation("POST /endpoints/{name}/traffic")
def set_traffic(
    name: str,
    traffic: dict[str, int],
    *,
    mirror: dict[str, int] | None = None,
    reason: str = "set by hand",
    workspace: Workspace | None = None,
) -> Endpoint:
    """Move live traffic (and, when given, the mirror); the change is audited and kept."""
    return _move(name, traffic, mirror, reason, workspace)


@operation("POST /endpoints/{name}/mirror")
def set_mirror(
    name: str,
    mirror: dict[str, int],
    *,
    reason: str = "set by hand",
    workspace: Workspace | None = None,
) -> Endpoint:
    """Mirror a percentage of live requests to one deployment (``{}`` stops mirroring)."""
    return _move(name, None, mirror, reason, workspace)


def _move(
    name: str,
    traffic: dict[str, int] | None,
    mirror: dict[str, int] | None,
    reason: str,
    workspace: Workspace | None,
) -> Endpoint:
    """Set traffic and mirror (None: as they are), checked, in one transaction."""
    ws = workspace or current()
    with ws.store.write() as conn:
        row = _endpoint_row(conn, name, lock=True)
        write_traffic(
            conn,
            ws,
            row,
            row.traffic if traffic is None else traffic,
            row.mirror if mirror is None else mirror,
            reason,
            check=True,
        )
        return _endpoint(conn, _endpoint_row(conn, name))


def write_traffic(
    conn: Connection,
    ws: Workspace,
    row: Any,
    traffic: dict[str, int],
    mirror: dict[str, int],
    reason: str,
    *,
    check: bool = False,
    actor: str | None = None,
) -> None:
    """Move an endpoint's traffic inside the caller's transaction: history, audit, revision.
    ``actor``: who moved it (the rollout controller), when not the workspace's user."""
    actor = actor or ws.user
    if check:
        _check_split(conn, row, traffic, mirror)
    traffic = {k: int(v) for k, v in traffic.items()}
    mirror = {k: int(v) for k, v in mirror.items() if int(v) > 0}
    now = now_ms()
    conn.execute(
        endpoints.update()
        .where(endpoints.c.id == row.id)
        .values(traffic=traffic, mirror=mirror, revision=endpoints.c.revision + 1, updated_at=now)
    )
    conn.execute(
        traffic_history.insert().values(
            endpoint_id=row.id, traffic=traffic, mirror=mirror, reason=reason, actor=actor, at=now
        )
    )
    audit.record(
        conn,
        actor,
        "endpoint.traffic",
        "endpoint",
        row.id,
        before={"traffic": row.traffic, "mirror": row.mirror},
        after={"traffic": traffic, "mirror": mirror, "reason": reason},
    )


def _check_split(
    conn: Connection, row: Any, traffic: dict[str, int], mirror: dict[str, int]
) -> None:
    names = _deployment_names(conn, row.name)
    for field, split in (("traffic", traffic), ("mirror", mirror)):
        for deployment, percent in split.items():
            if deployment not in names:
                raise NotFound(
                    f"endpoint {row.name!r} has no deployment {deployment!r}",
                    hint=f"its deployments: {', '.join(sorted(names)) or 'none'}",
                    details={"field": f"{field}.{deployment}"},
                )
            if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100:
                raise InvalidInput(
                    f"{field} for {deployment!r} must be a whole percent from 0 to 100; "
                    f"got {percent!r}",
                    details={"field": f"{field}.{deployment}"},
                )
    try:
        check_traffic(traffic)
        check_mirror(mirror)
        check_mirror_not_live(traffic, mirror)
    except ValueError as exc:
        raise InvalidInput(str(exc), details={"field": "traffic"}) from None


# Not retried: a delete that went through and is sent again would answer NotFound.
@operation("DELETE /endpoints/{endpoint}/deployments/{name}", idempotent=False)
def delete_deployment(endpoint: str, name: str, *, workspace: Workspace | None = None) -> None:
    """Delete a deployment that takes no live or mirrored traffic and no running rollout uses."""
    ws = workspace or current()
    with ws.store.write() as conn:
        row = _endpoint_row(conn, endpoint, lock=True)
        target = conn.execute(
            select(deployments).where(
                deployments.c.endpoint_id == row.id, deployments.c.name == name
            )
        ).first()
        if target is None:
            raise NotFound(f"endpoint {endpoint!r} has no deployment {name!r}")
        if row.traffic.get(name, 0) > 0 or row.mirror.get(name, 0) > 0:
            raise Conflict(
                f"deployment {endpoint}/{name} takes {row.traffic.get(name, 0)}% of live traffic "
                f"and {row.mirror.get(name, 0)}% mirrored; move its traffic first",
                hint=f"cauce endpoints traffic {endpoint} OTHER=100",
            )
        _refuse_during_rollout(conn, row, name)
        conn.execute(delete(deployments).where(deployments.c.id == target.id))
        traffic = {k: v for k, v in row.traffic.items() if k != name}
        if traffic != row.traffic:
            conn.execute(endpoints.update().where(endpoints.c.id == row.id).values(traffic=traffic))
        _bump(conn, row.id)
        audit.record(
            conn,
            ws.user,
            "deployment.delete",
            "deployment",
            target.id,
            before={**target.spec, "model_version_id": target.model_version_id},
        )


@operation("DELETE /endpoints/{name}", idempotent=False)
def delete_endpoint(name: str, *, workspace: Workspace | None = None) -> None:
    """Delete an endpoint that has no deployments left."""
    ws = workspace or current()
    with ws.store.write() as conn:
        row = _endpoint_row(conn, name, lock=True)
        left = _deployment_names(conn, name)
        if left:
            raise Conflict(
                f"endpoint {name!r} still has deployments: {', '.join(sorted(left))}",
                hint="delete its deployments first (cauce deployments delete)",
            )
        active = conn.execute(select(rollouts.c.id).where(rollouts.c.endpoint_id == row.id)).first()
        if active is not None:
            # Rollouts and stats keep their history: an endpoint with any is kept too.
            raise Conflict(
                f"endpoint {name!r} has rollout history; set its traffic to 0 instead",
            )
        conn.execute(delete(traffic_history).where(traffic_history.c.endpoint_id == row.id))
        conn.execute(delete(deployment_stats).where(deployment_stats.c.endpoint_id == row.id))
        # Its API keys go with it: a key is a key of one endpoint.
        keys = select(api_keys.c.id).where(api_keys.c.endpoint_id == row.id)
        conn.execute(delete(api_key_usage).where(api_key_usage.c.key_id.in_(keys)))
        conn.execute(
            delete(api_key_usage_reports).where(api_key_usage_reports.c.endpoint_id == row.id)
        )
        conn.execute(delete(api_keys).where(api_keys.c.endpoint_id == row.id))
        conn.execute(delete(endpoints).where(endpoints.c.id == row.id))
        audit.record(conn, ws.user, "endpoint.delete", "endpoint", row.id, before=row.spec)


def _refuse_during_rollout(conn: Connection, row: Any, name: str) -> None:
    active = conn.execute(
        select(rollouts.c.id).where(
            rollouts.c.endpoint_id == row.id,
            rollouts.c.state.in_(("running", "paused")),
            (rollouts.c.candidate == name) | (rollouts.c.stable == name),
        )
    ).first()
    if active is not None:
        raise Conflict(
            f"deployment {row.name}/{name} is part of a rollout in progress",
            hint=f"cauce rollouts abort {row.name}",
        )


# -- helpers ----------------------------------------------------------------------------------


def _bump(conn: Connection, endpoint_id: str) -> None:
    conn.execute(
        endpoints.update()
        .where(endpoints.c.id == endpoint_id)
        .values(revision=endpoints.c.revision + 1, updated_at=now_ms())
    )


def _endpoint_row(conn: Connection, name: str, *, lock: bool = False) -> Any:
    check_name(name, "endpoint name")
    query = select(endpoints).where(endpoints.c.name == name)
    if lock:
        query = query.with_for_update()
    row = conn.execute(query).first()
    if row is None:
        known = conn.execute(select(endpoints.c.name).order_by(endpoints.c.name)).scalars().all()
        raise NotFound(
            f"endpoint {name!r} does not exist",
            hint=f"known endpoints: {', '.join(known)}" if known else "apply an Endpoint spec",
        )
    return row


def _deployment_names(conn: Connection, endpoint: str) -> set[str]:
    return set(
        conn.execute(
            select(deployments.c.name)
            .join(endpoints, endpoints.c.id == deployments.c.endpoint_id)
            .where(endpoints.c.name == endpoint)
        ).scalars()
    )


def _endpoint(conn: Connection, row: Any) -> Endpoint:
    found = conn.execute(
        select(
            deployments,
            models.c.name.label("model_name"),
            model_versions.c.version,
            model_versions.c.signature,
            flows.c.name.label("flow_name"),
            flow_versions.c.version.label("flow_version"),
            prompts_table.c.name.label("prompt_name"),
            prompt_versions.c.version.label("prompt_version"),
            connections.c.name.label("connection_name"),
        )
        .outerjoin(model_versions, model_versions.c.id == deployments.c.model_version_id)
        .outerjoin(models, models.c.id == model_versions.c.model_id)
        .outerjoin(flow_versions, flow_versions.c.id == deployments.c.flow_version_id)
        .outerjoin(flows, flows.c.id == flow_versions.c.flow_id)
        .outerjoin(prompt_versions, prompt_versions.c.id == deployments.c.prompt_version_id)
        .outerjoin(prompts_table, prompts_table.c.id == prompt_versions.c.prompt_id)
        .outerjoin(connections, connections.c.id == deployments.c.connection_id)
        .where(deployments.c.endpoint_id == row.id)
        .order_by(deployments.c.name)
    ).all()
    return Endpoint(
        name=row.name,
        id=row.id,
        description=row.spec.get("description", ""),
        traffic=dict(row.traffic),
        mirror=dict(row.mirror),
        max_request_bytes=int(row.spec["max_request_bytes"]),
        timeout_ms=int(row.spec["timeout"]),
        revision=int(row.revision),
        deployments=[_deployment(row.name, d) for d in found],
        spec=row.spec,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _deployment(endpoint: str, d: Any) -> Deployment:
    kind = d.target_kind
    if kind == "model":
        target, target_id = f"models:/{d.model_name}/{d.version}", d.model_version_id
    elif kind == "flow":
        target, target_id = f"flows:/{d.flow_name}/{d.flow_version}", d.flow_version_id
    elif kind == "prompt":
        target, target_id = f"prompts:/{d.prompt_name}/{d.prompt_version}", d.prompt_version_id
    else:
        target, target_id = f"connections:/{d.connection_name}", d.connection_id
    pins = d.spec.get("indexes") or {}
    if pins:  # another index version is another thing served
        target_id += "+" + ",".join(f"{k}={v}" for k, v in sorted(pins.items()))
    return Deployment(
        endpoint=endpoint,
        name=d.name,
        id=d.id,
        target_kind=kind,
        target=target,
        target_id=target_id,
        connection=d.connection_name,
        model_uri=d.spec.get("model"),
        model_name=d.model_name,
        model_version=None if d.version is None else int(d.version),
        model_version_id=d.model_version_id,
        signature=d.signature,
        workers=int(d.spec.get("workers", 1)),
        batching=d.spec.get("batching"),
        collect=d.spec.get("collect"),
        spec=d.spec,
        created_at=d.created_at,
        updated_at=d.updated_at,
    )
