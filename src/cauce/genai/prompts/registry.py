"""The prompt registry: prompts, their immutable versions, labels that move with history,
tags; and reading them by reference (``prompts:/name/3``, ``prompts:/name@production``,
``prompts:/name``)."""

from __future__ import annotations

import difflib
import json
import re
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, func, select

from cauce.errors import Conflict, InvalidInput, NotFound
from cauce.genai.prompts.spec import (
    Prompt,
    PromptSpec,
    PromptVersion,
    compile_messages,
    digest,
    variables_of,
)
from cauce.lineage import audit
from cauce.lineage.graph import add_edge
from cauce.lineage.tags import delete_tag, read_tags, set_tags
from cauce.operations import operation
from cauce.store import insert_ignore, new_id, now_ms, upsert
from cauce.store.schema import (
    prompt_label_history,
    prompt_labels,
    prompt_tags,
    prompt_version_tags,
    prompt_versions,
    prompts,
)
from cauce.validation import check_alias, check_int, check_name, check_tags
from cauce.workspace import Workspace, current

if TYPE_CHECKING:
    from cauce.specs import Applied

_REF = re.compile(r"^prompts:/(?P<name>[^/@]+)(?:/(?P<version>[^/@]+)|@(?P<label>[^/@]+))?/?$")


# -- registering --------------------------------------------------------------------------------


@operation("POST /prompts/{name}/versions")
def register(
    name: str,
    messages: list[dict[str, str]] | str,
    *,
    variables: dict[str, Any] | None = None,
    model_parameters: dict[str, Any] | None = None,
    commit_message: str | None = None,
    description: str | None = None,
    labels: list[str] | tuple[str, ...] = (),
    tags: dict[str, Any] | None = None,
    workspace: Workspace | None = None,
) -> PromptVersion:
    """Register a new version of prompt ``name`` (creating the prompt on first use).

    ``messages`` is a list of ``{"role", "content"}`` or one string (a single user message).
    ``variables`` maps each variable to its type (``"string"``) or ``{"type", "default",
    "description"}``; left out, the variables are read from the templates as strings. The same
    content as the newest version registers nothing and returns that version. ``labels`` are
    pointed at the version and ``tags`` set on it.
    """
    from pydantic import ValidationError

    from cauce.specs import validation_error

    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    body: dict[str, Any] = {
        "name": name,
        "messages": messages,
        "model_parameters": model_parameters or {},
        "labels": list(labels),
    }
    if variables is not None:
        body["variables"] = variables
    if commit_message is not None:
        body["commit_message"] = commit_message
    if description is not None:
        body["description"] = description
    try:
        spec = PromptSpec.model_validate(body)
    except ValidationError as exc:
        raise validation_error("Prompt", exc, PromptSpec) from None
    checked = check_tags(tags or {})
    ws = workspace or current()
    with ws.store.write() as conn:
        row, _ = _save(conn, ws.user, spec)
        _set_version_tags(conn, ws.user, row.id, checked)
        return _version(conn, spec.name, row)


@operation("POST /prompts")
def create_prompt(
    name: str,
    *,
    description: str | None = None,
    tags: dict[str, Any] | None = None,
    workspace: Workspace | None = None,
) -> Prompt:
    """Create prompt ``name`` with no version yet (:func:`register` adds them); MLflow's
    prompt registry creates a prompt before its first version."""
    check_name(name, "prompt name")
    checked = check_tags(tags or {})
    ws = workspace or current()
    now = now_ms()
    prompt_id = new_id()
    values = {"id": prompt_id, "name": name, "description": description}
    with ws.store.write() as conn:
        if not insert_ignore(conn, prompts, {**values, "created_at": now, "updated_at": now}):
            raise Conflict(f"prompt {name!r} already exists")
        audit.record(conn, ws.user, "prompt.create", "prompt", prompt_id, after={"name": name})
        set_tags(conn, ws.user, prompt_tags, ("prompt_id", prompt_id), "prompt", checked)
        return _prompt(conn, _require_prompt(conn, name))


@operation("PATCH /prompts/{name}")
def update_prompt(
    name: str, *, description: str | None = None, workspace: Workspace | None = None
) -> Prompt:
    """Change a prompt's description (its versions stay as they are); audited."""
    ws = workspace or current()
    with ws.store.write() as conn:
        _describe(conn, ws.user, _require_prompt(conn, name), description)
        return _prompt(conn, _require_prompt(conn, name))


def _describe(conn: Connection, actor: str, prompt: Any, description: str | None) -> None:
    """Set a prompt's description (``None`` leaves it); audited when it changes."""
    if description is None or description == prompt.description:
        return
    conn.execute(
        prompts.update()
        .where(prompts.c.id == prompt.id)
        .values(description=description, updated_at=now_ms())
    )
    audit.record(
        conn,
        actor,
        "prompt.update",
        "prompt",
        prompt.id,
        before={"description": prompt.description},
        after={"description": description},
    )


@operation("DELETE /prompts/{name}")
def delete_prompt(name: str, *, workspace: Workspace | None = None) -> None:
    """Delete a prompt that has no version yet; a prompt with versions is kept, as every
    version is (evaluations, flows and traces refer to them)."""
    ws = workspace or current()
    with ws.store.write() as conn:
        prompt = _require_prompt(conn, name)
        if _latest_row(conn, name) is not None:
            raise Conflict(
                f"prompt {name!r} has versions and cannot be deleted",
                hint="Cauce keeps every version; move or delete its labels instead",
            )
        conn.execute(prompt_tags.delete().where(prompt_tags.c.prompt_id == prompt.id))
        conn.execute(prompts.delete().where(prompts.c.id == prompt.id))
        audit.record(conn, ws.user, "prompt.delete", "prompt", prompt.id, before={"name": name})


@operation("POST /prompts/{name}/tags")
def set_prompt_tags(
    name: str, values: dict[str, Any], *, workspace: Workspace | None = None
) -> Prompt:
    """Set tags on a prompt (its task, its team), replacing earlier values; audited."""
    checked = check_tags(values)
    ws = workspace or current()
    with ws.store.write() as conn:
        prompt = _require_prompt(conn, name)
        set_tags(conn, ws.user, prompt_tags, ("prompt_id", prompt.id), "prompt", checked)
        return _prompt(conn, prompt)


@operation("DELETE /prompts/{name}/tags")
def delete_prompt_tag(name: str, key: str, *, workspace: Workspace | None = None) -> Prompt:
    """Remove a tag from a prompt."""
    ws = workspace or current()
    with ws.store.write() as conn:
        prompt = _require_prompt(conn, name)
        owner = ("prompt_id", prompt.id)
        delete_tag(conn, ws.user, prompt_tags, owner, "prompt", key, f"prompt {name!r}")
        return _prompt(conn, prompt)


@operation("POST /prompts/{name}/versions/{version}/tags")
def set_version_tags(
    name: str, version: int, values: dict[str, Any], *, workspace: Workspace | None = None
) -> PromptVersion:
    """Set tags on a prompt version, replacing earlier values (its content stays as it is)."""
    checked = check_tags(values)
    ws = workspace or current()
    with ws.store.write() as conn:
        row = _require_version(conn, name, version)
        _set_version_tags(conn, ws.user, row.id, checked)
        return _version(conn, name, row)


@operation("DELETE /prompts/{name}/versions/{version}/tags")
def delete_version_tag(
    name: str, version: int, key: str, *, workspace: Workspace | None = None
) -> PromptVersion:
    """Remove a tag from a prompt version."""
    ws = workspace or current()
    with ws.store.write() as conn:
        row = _require_version(conn, name, version)
        owner = ("prompt_version_id", row.id)
        delete_tag(
            conn, ws.user, prompt_version_tags, owner, "prompt_version", key, f"{name} v{version}"
        )
        return _version(conn, name, row)


def save_prompt(conn: Connection, ws: Workspace, spec: PromptSpec) -> Applied:
    """Apply a ``kind: Prompt`` document in the caller's transaction (``cauce apply``)."""
    from cauce.specs import Applied, Change

    existed = _prompt_row(conn, spec.name) is not None
    before = _latest_row(conn, spec.name) if existed else None
    before_labels = _labels_of(conn, spec.name) if existed else {}
    before_description = _prompt_row(conn, spec.name).description if existed else None
    row, _ = _save(conn, ws.user, spec)
    if not existed:
        return Applied("Prompt", spec.name, "created")
    found: list[Change] = []
    if before is None or before.id != row.id:
        found.append(Change("version", before.version if before else None, row.version))
    after_labels = _labels_of(conn, spec.name)
    for label in spec.labels:
        if before_labels.get(label) != after_labels.get(label):
            found.append(Change(f"labels.{label}", before_labels.get(label), after_labels[label]))
    if spec.description is not None and spec.description != before_description:
        found.append(Change("description", before_description, spec.description))
    return Applied("Prompt", spec.name, "updated" if found else "unchanged", tuple(found))


def _save(conn: Connection, actor: str, spec: PromptSpec) -> tuple[Any, bool]:
    """The version holding ``spec``'s content (new when it differs from the newest one), with
    the spec's labels moved to it; and whether a version was created."""
    variables = variables_of(spec)
    messages = [m.model_dump() for m in spec.messages]
    parameters = spec.model_parameters.model_dump(exclude_none=True)
    compile_messages(spec)
    content_sha256 = digest(messages, variables, parameters)
    now = now_ms()
    prompt_id = new_id()
    values = {"id": prompt_id, "name": spec.name, "description": spec.description}
    # Concurrent registrations of one prompt take turns on its row (PostgreSQL), so that each
    # reads the newest version number before it adds the next.
    if insert_ignore(conn, prompts, {**values, "created_at": now, "updated_at": now}):
        audit.record(conn, actor, "prompt.create", "prompt", prompt_id, after={"name": spec.name})
    else:
        prompt = conn.execute(
            select(prompts).where(prompts.c.name == spec.name).with_for_update()
        ).one()
        prompt_id = prompt.id
        _describe(conn, actor, prompt, spec.description)
    latest = _latest_row(conn, spec.name)
    created = latest is None or latest.content_sha256 != content_sha256
    if created:
        version = (latest.version if latest else 0) + 1
        version_id = new_id()
        conn.execute(
            prompt_versions.insert().values(
                id=version_id,
                prompt_id=prompt_id,
                version=version,
                messages=messages,
                variables=variables,
                model_parameters=parameters,
                commit_message=spec.commit_message,
                content_sha256=content_sha256,
                created_at=now,
                user=actor,
            )
        )
        conn.execute(prompts.update().where(prompts.c.id == prompt_id).values(updated_at=now))
        audit.record(
            conn,
            actor,
            "prompt.version.create",
            "prompt_version",
            version_id,
            after={"prompt": spec.name, "version": version, "content_sha256": content_sha256},
        )
        if latest is not None:
            add_edge(conn, ("prompt_version", latest.id), ("prompt_version", version_id), "revised")
    row = _require_version(conn, spec.name, None) if created else latest
    for label in spec.labels:
        move_label(conn, spec.name, label, row.version, actor=actor, reason=spec.commit_message)
    return row, created


def render(ref: str | PromptVersion, **values: Any) -> list[dict[str, str]]:
    """The messages of a prompt version (a reference or a loaded version) with ``values``."""
    version = ref if isinstance(ref, PromptVersion) else load(ref)
    return version.render(**values)


# -- reading -----------------------------------------------------------------------------------


def load(ref: str, *, workspace: Workspace | None = None) -> PromptVersion:
    """The version a reference names: ``prompts:/name/3``, ``prompts:/name@label``,
    ``prompts:/name`` or a bare ``name`` (the newest version)."""
    name, version, label = parse_ref(ref)
    if label is not None:
        return version_by_label(name, label, workspace=workspace)
    if version is not None:
        return get_version(name, version, workspace=workspace)
    return latest_version(name, workspace=workspace)


@operation("GET /prompts/{name}/versions/{version}")
def get_version(name: str, version: int, *, workspace: Workspace | None = None) -> PromptVersion:
    """One version of a prompt."""
    ws = workspace or current()
    with ws.store.read() as conn:
        return _version(conn, name, _require_version(conn, name, version))


@operation("GET /prompts/{name}/labels/{label}")
def version_by_label(name: str, label: str, *, workspace: Workspace | None = None) -> PromptVersion:
    """The version a label of the prompt points at (``latest``: the newest)."""
    ws = workspace or current()
    with ws.store.read() as conn:
        row = (
            _require_version(conn, name, None)
            if label == "latest"
            else _labelled(conn, name, label)
        )
        return _version(conn, name, row)


@operation("GET /prompts/{name}/latest")
def latest_version(name: str, *, workspace: Workspace | None = None) -> PromptVersion:
    """The prompt's newest version."""
    ws = workspace or current()
    with ws.store.read() as conn:
        return _version(conn, name, _require_version(conn, name, None))


def version_row(conn: Connection, ref: str) -> Any:
    """The stored row of the version a reference names, in the caller's transaction (a flow
    being applied sees the prompts declared beside it); NotFound when it names none."""
    name, version, label = parse_ref(ref)
    if label is None:
        return _require_version(conn, name, version)
    return _labelled(conn, name, label)


def _labelled(conn: Connection, name: str, label: str) -> Any:
    prompt = _require_prompt(conn, name)
    row = conn.execute(
        select(prompt_versions)
        .join(prompt_labels, prompt_labels.c.prompt_version_id == prompt_versions.c.id)
        .where(prompt_labels.c.prompt_id == prompt.id, prompt_labels.c.label == label)
    ).first()
    if row is None:
        raise NotFound(f"prompt {name!r} has no label {label!r}")
    return row


def parse_ref(ref: str) -> tuple[str, int | None, str | None]:
    """``(name, version, label)`` of a prompt reference; neither means the newest version."""
    if not isinstance(ref, str) or not ref:
        raise InvalidInput(f"a prompt reference must be a non-empty string, got {ref!r}")
    if not ref.startswith("prompts:/"):
        if "/" in ref or "@" in ref:
            raise InvalidInput(
                f"not a prompt reference: {ref!r}",
                hint="use prompts:/NAME/VERSION, prompts:/NAME@LABEL or prompts:/NAME",
            )
        return ref, None, None
    match = _REF.match(ref)
    if match is None:
        raise InvalidInput(
            f"not a prompt reference: {ref!r}",
            hint="use prompts:/NAME/VERSION, prompts:/NAME@LABEL or prompts:/NAME",
        )
    version, label = match["version"], match["label"]
    if version is not None and version != "latest":
        if not version.isdigit():
            raise InvalidInput(f"prompt version must be a number in {ref!r}")
        return match["name"], int(version), None
    return match["name"], None, None if label in (None, "latest") else label


@operation("GET /prompts/{name}")
def get_prompt(name: str, *, workspace: Workspace | None = None) -> Prompt:
    """A prompt with its newest version and its labels."""
    ws = workspace or current()
    with ws.store.read() as conn:
        return _prompt(conn, _require_prompt(conn, name))


@operation("GET /prompts")
def list_prompts(*, label: str | None = None, workspace: Workspace | None = None) -> list[Prompt]:
    """Every prompt, by name; with ``label``, only the prompts that have that label."""
    ws = workspace or current()
    with ws.store.read() as conn:
        query = select(prompts).order_by(prompts.c.name)
        if label is not None:
            query = query.where(
                prompts.c.id.in_(
                    select(prompt_labels.c.prompt_id).where(prompt_labels.c.label == label)
                )
            )
        return [_prompt(conn, row) for row in conn.execute(query)]


@operation("GET /prompts/{name}/versions")
def versions(name: str, *, workspace: Workspace | None = None) -> list[PromptVersion]:
    """Every version of a prompt, oldest first."""
    ws = workspace or current()
    with ws.store.read() as conn:
        prompt = _require_prompt(conn, name)
        rows = conn.execute(
            select(prompt_versions)
            .where(prompt_versions.c.prompt_id == prompt.id)
            .order_by(prompt_versions.c.version)
        ).all()
        labels = _labels_by_version(conn, prompt.id)
        newest = rows[-1].version if rows else None
        return [_version(conn, name, row, labels, newest) for row in rows]


def diff(name: str, a: int | str, b: int | str, *, workspace: Workspace | None = None) -> str:
    """A unified diff between two versions of a prompt (each a number or a label): messages,
    variables and model parameters, as text."""
    ws = workspace or current()
    first, second = (load(_ref(name, x), workspace=ws) for x in (a, b))
    return "".join(
        difflib.unified_diff(
            _as_text(first).splitlines(keepends=True),
            _as_text(second).splitlines(keepends=True),
            fromfile=first.uri,
            tofile=second.uri,
        )
    )


def _ref(name: str, which: int | str) -> str:
    text = str(which)
    return f"prompts:/{name}/{text}" if text.isdigit() else f"prompts:/{name}@{text}"


def _as_text(version: PromptVersion) -> str:
    lines = []
    for message in version.messages:
        lines.append(f"[{message['role']}]\n")
        lines.append(message["content"].rstrip("\n") + "\n")
    lines.append("[variables]\n")
    lines += [f"{k}: {json.dumps(v, sort_keys=True)}\n" for k, v in version.variables.items()]
    lines.append("[model_parameters]\n")
    lines += [f"{k}: {json.dumps(v)}\n" for k, v in sorted(version.model_parameters.items())]
    return "".join(lines)


# -- labels ------------------------------------------------------------------------------------


@operation("PUT /prompts/{name}/labels/{label}")
def set_label(
    name: str,
    label: str,
    version: int,
    *,
    reason: str | None = None,
    actor: str | None = None,
    workspace: Workspace | None = None,
) -> PromptVersion:
    """Point ``label`` at a version; the move is kept in the label history with its reason and
    actor, and audited. Rolling back is moving the label to an older version."""
    ws = workspace or current()
    check_alias(label)
    with ws.store.write() as conn:
        row = move_label(conn, name, label, version, actor=actor or ws.user, reason=reason)
        return _version(conn, name, row)


@operation("DELETE /prompts/{name}/labels/{label}", idempotent=False)
def delete_label(
    name: str, label: str, *, reason: str | None = None, workspace: Workspace | None = None
) -> None:
    """Remove a label; the history keeps where it pointed."""
    ws = workspace or current()
    with ws.store.write() as conn:
        prompt = _require_prompt(conn, name)
        old = _labels_of(conn, name).get(label)
        if old is None:
            raise NotFound(f"prompt {name!r} has no label {label!r}")
        conn.execute(
            prompt_labels.delete().where(
                prompt_labels.c.prompt_id == prompt.id, prompt_labels.c.label == label
            )
        )
        _record_move(conn, prompt.id, label, old, None, ws.user, reason)


@operation("GET /prompts/{name}/label-history")
def label_history(
    name: str, label: str | None = None, *, workspace: Workspace | None = None
) -> list[dict[str, Any]]:
    """Every move of the prompt's labels, oldest first."""
    ws = workspace or current()
    h = prompt_label_history.c
    with ws.store.read() as conn:
        prompt = _require_prompt(conn, name)
        query = select(prompt_label_history).where(h.prompt_id == prompt.id).order_by(h.id)
        if label is not None:
            query = query.where(h.label == label)
        return [
            {
                "label": r.label,
                "from_version": r.from_version,
                "to_version": r.to_version,
                "reason": r.reason,
                "at": r.at,
                "user": r.user,
            }
            for r in conn.execute(query)
        ]


def move_label(
    conn: Connection, name: str, label: str, version: int, *, actor: str, reason: str | None
) -> Any:
    """:func:`set_label` in the caller's transaction (a rollout's promotion); a label already
    there is left as it is. Returns the version's row."""
    check_alias(label)
    target = _require_version(conn, name, version)
    old = _labels_of(conn, name).get(label)
    if old == target.version:
        return target
    upsert(
        conn,
        prompt_labels,
        {
            "prompt_id": target.prompt_id,
            "label": label,
            "prompt_version_id": target.id,
            "updated_at": now_ms(),
        },
        ("prompt_id", "label"),
    )
    _record_move(conn, target.prompt_id, label, old, target.version, actor, reason)
    return target


def _record_move(
    conn: Connection,
    prompt_id: str,
    label: str,
    old: int | None,
    new: int | None,
    actor: str,
    reason: str | None,
) -> None:
    conn.execute(
        prompt_label_history.insert().values(
            prompt_id=prompt_id,
            label=label,
            from_version=old,
            to_version=new,
            reason=reason,
            at=now_ms(),
            user=actor,
        )
    )
    after: dict[str, Any] | None = None
    if new is not None:
        after = {"label": label, "version": new}
        if reason is not None:
            after["reason"] = reason
    audit.record(
        conn,
        actor,
        "prompt.label.set" if new is not None else "prompt.label.delete",
        "prompt",
        prompt_id,
        before={"label": label, "version": old},
        after=after,
    )


# -- rows --------------------------------------------------------------------------------------


def _prompt_row(conn: Connection, name: str) -> Any:
    return conn.execute(select(prompts).where(prompts.c.name == name)).first()


def _require_prompt(conn: Connection, name: str) -> Any:
    row = _prompt_row(conn, name)
    if row is None:
        raise NotFound(f"no prompt named {name!r}", hint="cauce prompts list shows them")
    return row


def _latest_row(conn: Connection, name: str) -> Any:
    return conn.execute(
        select(prompt_versions)
        .join(prompts, prompts.c.id == prompt_versions.c.prompt_id)
        .where(prompts.c.name == name)
        .order_by(prompt_versions.c.version.desc())
        .limit(1)
    ).first()


def _set_version_tags(conn: Connection, user: str, version_id: str, tags: dict[str, str]) -> None:
    set_tags(
        conn, user, prompt_version_tags, ("prompt_version_id", version_id), "prompt_version", tags
    )


def _require_version(conn: Connection, name: str, version: int | None) -> Any:
    if version is not None:
        check_int(version, "prompt version")
    prompt = _require_prompt(conn, name)
    query = select(prompt_versions).where(prompt_versions.c.prompt_id == prompt.id)
    if version is None:
        row = conn.execute(query.order_by(prompt_versions.c.version.desc()).limit(1)).first()
    else:
        row = conn.execute(query.where(prompt_versions.c.version == version)).first()
    if row is None:
        if version is None:
            raise NotFound(
                f"prompt {name!r} has no version yet", hint="cauce.prompts.register adds one"
            )
        raise NotFound(f"prompt {name!r} has no version {version}")
    return row


def _labels_of(conn: Connection, name: str) -> dict[str, int]:
    rows = conn.execute(
        select(prompt_labels.c.label, prompt_versions.c.version)
        .join(prompt_versions, prompt_versions.c.id == prompt_labels.c.prompt_version_id)
        .join(prompts, prompts.c.id == prompt_labels.c.prompt_id)
        .where(prompts.c.name == name)
        .order_by(prompt_labels.c.label)
    )
    return {r.label: r.version for r in rows}


def _labels_by_version(conn: Connection, prompt_id: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    rows = conn.execute(
        select(prompt_labels.c.label, prompt_labels.c.prompt_version_id)
        .where(prompt_labels.c.prompt_id == prompt_id)
        .order_by(prompt_labels.c.label)
    )
    for r in rows:
        found.setdefault(r.prompt_version_id, []).append(r.label)
    return found


def _prompt(conn: Connection, row: Any) -> Prompt:
    latest = conn.execute(
        select(func.max(prompt_versions.c.version)).where(prompt_versions.c.prompt_id == row.id)
    ).scalar()
    return Prompt(
        name=row.name,
        id=row.id,
        description=row.description,
        latest_version=int(latest or 0),
        labels=_labels_of(conn, row.name),
        created_at=row.created_at,
        updated_at=row.updated_at,
        tags=read_tags(conn, prompt_tags, ("prompt_id", row.id)),
    )


def _version(
    conn: Connection,
    name: str,
    row: Any,
    labels: dict[str, list[str]] | None = None,
    newest: int | None = None,
) -> PromptVersion:
    if labels is None:
        labels = _labels_by_version(conn, row.prompt_id)
    found = list(labels.get(row.id, []))
    if newest is None:
        newest = conn.execute(
            select(func.max(prompt_versions.c.version)).where(
                prompt_versions.c.prompt_id == row.prompt_id
            )
        ).scalar()
    if row.version == newest:
        found.append("latest")
    return PromptVersion(
        name=name,
        version=row.version,
        id=row.id,
        messages=list(row.messages),
        variables=dict(row.variables),
        model_parameters=dict(row.model_parameters),
        commit_message=row.commit_message,
        content_sha256=row.content_sha256,
        created_at=row.created_at,
        user=row.user,
        labels=found,
        tags=read_tags(conn, prompt_version_tags, ("prompt_version_id", row.id)),
    )
