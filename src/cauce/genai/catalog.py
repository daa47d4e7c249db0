"""The model catalog: the models a team may call, with what they cost, and how they compare.

A ``kind: CatalogModel`` entry names a model reachable through a Cauce connection (its
``connection`` and the upstream ``model`` id sent to it), with its provider, context length,
price per million tokens in and out, licence and modalities. A call through that connection to
that model is charged at the catalog's price unless the connection prices the model itself
(:meth:`cauce.genai.connections.calls.LLMClient.cost` gives the whole order).

:func:`compare` runs one evaluation dataset over every catalog model x prompt version, through
the batch and evaluation runs of :mod:`cauce.genai.batches` and :mod:`cauce.genai.evals`: one
comparison run (experiment ``catalog``) whose children are each cell's runs, and one table of
quality, latency, tokens, cost and errors per cell.

Example::

    cauce.apply({"kind": "CatalogModel", "name": "gpt-4o-mini", "provider": "openai",
                 "connection": "openai", "price": {"input": 0.15, "output": 0.60}})
    result = cauce.catalog.compare("qa@1", models=["gpt-4o-mini", "smollm2"],
                                   prompts=["answer@production", "answer@2"], evaluators=["f1"])
    result.cells[0].quality["f1"], result.cells[0].cost_per_request
"""

from __future__ import annotations

import re
import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import Connection, select

from cauce.errors import Conflict, InvalidInput, NotFound
from cauce.genai.connections import Price
from cauce.lineage import audit
from cauce.operations import operation
from cauce.store.schema import catalog_models
from cauce.validation import check_name
from cauce.workspace import Workspace, current

if TYPE_CHECKING:
    from cauce.genai.evals.runs import Evaluator
    from cauce.genai.prompts import PromptVersion
    from cauce.specs import Applied

__all__ = [
    "CatalogModel",
    "CatalogModelSpec",
    "Cell",
    "Comparison",
    "catalog_price",
    "compare",
    "delete",
    "delete_model",
    "get",
    "list_models",
    "prompt_ref",
]

Modality = Literal["text", "image", "audio", "embeddings"]
# The flow each comparison registers (one version per set of models x prompts): its versions
# are what the cells' batch runs ran, so their lineage holds.
FLOW = "catalog-compare"
NODE = "generate"
# How long a process trusts the catalog's prices it read; an apply in this process is seen at
# once, one in another process within this many seconds.
PRICES_TTL_S = 2.0
_COLUMN = re.compile(r"^[\w-]+$")
_TEXT_ONLY: list[Modality] = ["text"]


# -- the spec ----------------------------------------------------------------------------------


class CatalogModelSpec(BaseModel):
    """A ``kind: CatalogModel`` document."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["CatalogModel"] = "CatalogModel"
    name: str
    provider: str = Field(min_length=1)
    connection: str
    model: str | None = None
    context_length: int | None = Field(default=None, gt=0)
    price: Price | None = None
    licence: str | None = None
    modality: list[Modality] = Field(default_factory=lambda: _TEXT_ONLY.copy(), min_length=1)
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)

    @field_validator("name", "connection")
    @classmethod
    def _name(cls, value: str) -> str:
        try:
            return check_name(value)
        except InvalidInput as exc:  # as a field error, so that the message names the field
            raise ValueError(exc.message) from None

    @field_validator("provider", "model")
    @classmethod
    def _text(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be blank")
        return value

    @field_validator("modality")
    @classmethod
    def _modality(cls, value: list[str]) -> list[str]:
        repeated = sorted({m for m in value if value.count(m) > 1})
        if repeated:
            raise ValueError(f"{repeated[0]!r} is listed twice")
        return value

    @model_validator(mode="after")
    def _model(self) -> CatalogModelSpec:
        if self.model is None:
            self.model = self.name
        return self


@dataclass(frozen=True)
class CatalogModel:
    """A stored catalog entry."""

    name: str
    id: str
    provider: str
    connection: str
    model: str
    context_length: int | None
    price: dict[str, float] | None
    licence: str | None
    modality: list[str]
    description: str | None
    tags: dict[str, str]
    created_at: int
    updated_at: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view."""
        return asdict(self)


# -- applying ----------------------------------------------------------------------------------


def check_catalog_model(ws: Workspace, spec: CatalogModelSpec, declared: Any) -> None:
    """Refuse an entry whose connection neither exists nor is declared beside it."""
    from cauce.genai import connections

    if ("Connection", spec.connection) not in declared:
        try:
            connections.get(spec.connection, workspace=ws)
        except NotFound as exc:
            raise NotFound(
                f"catalog model {spec.name!r}: connection: {exc.message}",
                hint=exc.hint,
                details={"field": "connection"},
            ) from None


def save_catalog_model(conn: Connection, ws: Workspace, spec: CatalogModelSpec) -> Applied:
    """Apply a ``kind: CatalogModel`` document in the caller's transaction (``cauce apply``);
    two entries may not name the same connection and model (which price would hold?)."""
    from cauce.specs import save_spec

    body = spec.model_dump(mode="json", exclude={"kind"}, exclude_none=True)
    others = conn.execute(
        select(catalog_models.c.name, catalog_models.c.spec).where(
            catalog_models.c.name != spec.name
        )
    )
    for other in others:
        if (other.spec.get("connection"), other.spec.get("model")) == (spec.connection, spec.model):
            raise Conflict(
                f"catalog model {other.name!r} already names model {spec.model!r} on "
                f"connection {spec.connection!r}",
                hint="one catalog entry per connection and model: its price is what calls cost",
                details={"field": "model"},
            )
    applied = save_spec(conn, ws, catalog_models, "CatalogModel", body, {}, entity="catalog_model")
    _forget_prices()
    return applied


# -- reading -----------------------------------------------------------------------------------


@operation("GET /catalog/{name}")
def get(name: str, *, workspace: Workspace | None = None) -> CatalogModel:
    """A catalog entry by name."""
    ws = workspace or current()
    with ws.store.read() as conn:
        return _entry(_require(conn, name))


@operation("GET /catalog")
def list_models(*, workspace: Workspace | None = None) -> list[CatalogModel]:
    """Every catalog entry, by name."""
    ws = workspace or current()
    with ws.store.read() as conn:
        rows = conn.execute(select(catalog_models).order_by(catalog_models.c.name))
        return [_entry(r) for r in rows]


def delete(name: str, *, workspace: Workspace | None = None) -> None:
    """Delete a catalog entry (audited); calls to its model are no longer priced by it (in this
    process at once)."""
    delete_model(name, workspace=workspace)
    _forget_prices()


@operation("DELETE /catalog/{name}", idempotent=False)
def delete_model(name: str, *, workspace: Workspace | None = None) -> None:
    """Delete a catalog entry from the store (audited)."""
    ws = workspace or current()
    with ws.store.write() as conn:
        row = _require(conn, name)
        conn.execute(catalog_models.delete().where(catalog_models.c.id == row.id))
        audit.record(
            conn, ws.user, "catalog_model.delete", "catalog_model", row.id, before=row.spec
        )


def _require(conn: Connection, name: str) -> Any:
    row = conn.execute(select(catalog_models).where(catalog_models.c.name == name)).first()
    if row is None:
        raise NotFound(f"no catalog model named {name!r}", hint="cauce catalog list shows them")
    return row


def _entry(row: Any) -> CatalogModel:
    spec = dict(row.spec)
    return CatalogModel(
        name=row.name,
        id=row.id,
        provider=spec["provider"],
        connection=spec["connection"],
        model=spec.get("model") or row.name,
        context_length=spec.get("context_length"),
        price=spec.get("price"),
        licence=spec.get("licence"),
        modality=list(spec.get("modality") or ["text"]),
        description=spec.get("description"),
        tags=dict(spec.get("tags") or {}),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


# -- prices ------------------------------------------------------------------------------------

# Per workspace (held weakly: a closed workspace is forgotten): when read, at which generation,
# and (connection, model) -> price.
_prices: weakref.WeakKeyDictionary[Workspace, tuple[float, int, dict[tuple[str, str], Price]]] = (
    weakref.WeakKeyDictionary()
)
_prices_lock = threading.Lock()
_generation = 0


def catalog_price(
    connection: str, model: str, *, workspace: Workspace | None = None
) -> Price | None:
    """The price of the catalog entry for ``model`` on ``connection``, or None.

    The catalog is read at most every :data:`PRICES_TTL_S` seconds per workspace (at once
    after an apply or delete in this process): a call's cost does not cost a query.
    """
    ws = workspace or current()
    with _prices_lock:
        cached, generation = _prices.get(ws), _generation
    fresh = (
        cached is not None
        and cached[1] == generation
        and time.monotonic() - cached[0] < PRICES_TTL_S
    )
    if not fresh:
        table = {
            (entry.connection, entry.model): Price.model_validate(entry.price)
            for entry in list_models(workspace=ws)
            if entry.price is not None
        }
        cached = (time.monotonic(), generation, table)
        with _prices_lock:
            _prices[ws] = cached
    assert cached is not None
    return cached[2].get((connection, model))


def _forget_prices() -> None:
    global _generation
    with _prices_lock:
        _generation += 1


# -- comparing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """One model x prompt version of a comparison: what it scored, how fast, what it cost.

    Latencies are over the lines answered; token and cost means are per line answered
    (``requests``); ``cost`` is None ("unknown") when nothing prices the model.
    """

    model: str
    prompt: str
    prompt_version: str
    connection: str
    upstream_model: str
    variant: str
    run_id: str
    answers: str
    lines: int
    requests: int
    errors: int
    error_rate: float
    quality: dict[str, float]
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    input_tokens: int
    output_tokens: int
    input_tokens_mean: float | None
    output_tokens_mean: float | None
    cost: float | None
    cost_per_request: float | None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view."""
        return asdict(self)


@dataclass(frozen=True)
class Comparison:
    """A comparison run: its cells in the order models x prompts were given."""

    run_id: str
    dataset: str
    flow: str
    evaluators: list[str]
    cells: list[Cell]
    models: list[CatalogModel] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view."""
        return {
            "run_id": self.run_id,
            "dataset": self.dataset,
            "flow": self.flow,
            "evaluators": self.evaluators,
            "cells": [c.to_dict() for c in self.cells],
            "models": [m.to_dict() for m in self.models],
        }

    def columns(self) -> list[str]:
        """The headings of :meth:`rows`."""
        return [
            "Model",
            "Prompt",
            *self.evaluators,
            "p50 ms",
            "p95 ms",
            "Tokens in mean/total",
            "Tokens out mean/total",
            "Cost",
            "Cost/request",
            "Errors",
        ]

    def rows(self) -> list[list[str]]:
        """One row of display text per cell, as the CLI and the HTML page show it."""
        return [
            [
                c.model,
                f"{c.prompt} (v{c.prompt_version.rsplit('/', 1)[-1]})",
                *[_number(c.quality.get(name)) for name in self.evaluators],
                _number(c.latency_p50_ms, "{:.1f}"),
                _number(c.latency_p95_ms, "{:.1f}"),
                f"{_number(c.input_tokens_mean, '{:.1f}')} / {c.input_tokens}",
                f"{_number(c.output_tokens_mean, '{:.1f}')} / {c.output_tokens}",
                _cost(c.cost),
                _cost(c.cost_per_request),
                f"{c.errors}/{c.lines}",
            ]
            for c in self.cells
        ]

    def html(self) -> str:
        """The comparison as one self-contained HTML page."""
        from cauce.genai.catalog_report import render

        return render(self)

    def write_html(self, path: str | Path) -> Path:
        """Write :meth:`html` to ``path`` (atomically); the path written."""
        from cauce.genai.catalog_report import write

        return write(self, Path(path))


def _number(value: float | None, form: str = "{:.4g}") -> str:
    if value is None or value != value:
        return "—"
    return form.format(value)


def _cost(value: float | None) -> str:
    """A cost in plain decimals (0.000011, not 1.1e-05): it is read beside others."""
    return "unknown" if value is None else (f"{value:.8f}".rstrip("0").rstrip(".") or "0")


def prompt_ref(text: str) -> str:
    """A prompt reference from the short forms ``NAME@LABEL``, ``NAME@VERSION`` and ``NAME``
    (a full ``prompts:/…`` reference is kept as it is)."""
    from cauce.genai.prompts.registry import parse_ref

    if not isinstance(text, str) or not text.strip():
        raise InvalidInput(f"a prompt is NAME@LABEL, NAME@VERSION or NAME, not {text!r}")
    text = text.strip()
    if text.startswith("prompts:/"):
        parse_ref(text)
        return text
    name, at, which = text.partition("@")
    check_name(name, "prompt name")
    if not at:
        return f"prompts:/{name}"
    if not which:
        raise InvalidInput(f"a prompt is NAME@LABEL or NAME@VERSION, not {text!r}")
    ref = f"prompts:/{name}/{which}" if which.isdigit() else f"prompts:/{name}@{which}"
    parse_ref(ref)
    return ref


def _shown(ref: str) -> str:
    from cauce.genai.prompts.registry import parse_ref

    name, version, label = parse_ref(ref)
    return f"{name}@{label or version or 'latest'}"


def compare(
    dataset: str,
    models: Sequence[str],
    prompts: Sequence[str],
    evaluators: Sequence[str | dict[str, Any] | Evaluator] | None = None,
    *,
    variables: dict[str, str] | None = None,
    mapping: dict[str, str] | None = None,
    parameters: dict[str, Any] | None = None,
    judge: str | None = None,
    judge_model: str | None = None,
    judge_params: dict[str, Any] | None = None,
    concurrency: int = 4,
    timeout: str | float = "60s",
    workspace: Workspace | None = None,
) -> Comparison:
    """Run a dataset version over every catalog model x prompt version, scored by
    ``evaluators`` (any of :func:`cauce.genai.evals.run`'s; None: not scored).

    ``prompts`` are ``NAME@LABEL``, ``NAME@VERSION``, ``NAME`` or ``prompts:/…``, each resolved
    once, when the comparison starts. Each prompt variable is read from the dataset column of
    the same name, or the one ``variables`` maps it to (``{"question": "q"}``); a variable with
    a default may have no column. ``mapping`` maps evaluator inputs to columns, as in
    :func:`cauce.genai.evals.run` (the answer is ``outputs.answer``); ``parameters``
    (``temperature``, ``max_tokens``, ``top_p``, ``stop``, ``seed``) go with every call, over
    the prompt's own. Returns the comparison run and one :class:`Cell` per model x prompt.
    """
    from cauce.data.assets import get_version
    from cauce.genai import batches, connections, flows
    from cauce.genai import evals as evaluations
    from cauce.tracking import runs

    ws = workspace or current()
    entries = _entries(models, ws)
    versions = _versions(prompts, ws)
    chosen = [evaluations.evaluator(e) for e in evaluators or []]
    names = [e.name for e in chosen]
    if len(set(names)) != len(names):
        raise InvalidInput(
            f"evaluators: one is named twice in {names}", details={"field": "evaluators"}
        )
    judged = [e.name for e in chosen if e.judge is not None]
    if judged and judge is None:
        raise InvalidInput(
            f"evaluators: {', '.join(judged)} need a judge: give the connection of the judge model",
            details={"field": "judge"},
        )
    version = get_version(dataset, workspace=ws)
    inputs = _variable_columns(versions, set(version.schema), variables or {})
    spec = _flow(entries, versions, inputs, parameters or {})
    body = spec.model_dump(mode="json", exclude={"kind", "name"}, exclude_none=True)
    flows.register(FLOW, body, workspace=ws)
    flow = flows.load(FLOW, workspace=ws)
    if flow.spec != spec:
        raise Conflict(f"another comparison registered flow {FLOW!r} at the same time: run again")
    keys = [_key(e, shown) for e in entries for shown, _ in versions]
    connections.warm({e.connection for e in entries}, workspace=ws)
    cells: list[Cell] = []
    title = f"catalog compare {version.ref}"
    with batches.comparison(ws, "catalog", title, FLOW, version.ref, keys) as parent:
        runs.log_params(
            parent,
            {
                "models": ",".join(e.name for e in entries),
                "prompts": ",".join(shown for shown, _ in versions),
                "evaluators": ",".join(names) or "none",
                "flow_version": flow.version,
            },
            workspace=ws,
        )
        options: dict[str, Any] = {
            "mapping": mapping,
            "judge": judge,
            "judge_model": judge_model,
            "judge_params": judge_params,
            "concurrency": concurrency,
            "timeout": timeout,
        }
        for entry in entries:
            for shown, prompt in versions:
                key = _key(entry, shown)
                tags = {"cauce.catalog_model": entry.name, "cauce.prompt": shown}
                ran = _run_cell(flow, version.ref, key, chosen, options, tags, parent, ws)
                cells.append(_cell(entry, shown, prompt, key, *ran))
    return Comparison(
        run_id=parent,
        dataset=version.ref,
        flow=flow.uri,
        evaluators=names,
        cells=cells,
        models=entries,
    )


def _run_cell(
    flow: Any,
    data: str,
    key: str,
    chosen: list[Evaluator],
    options: dict[str, Any],
    tags: dict[str, str],
    parent: str,
    ws: Workspace,
) -> tuple[str, str, dict[str, float], dict[str, float]]:
    """One cell: an evaluation run of the flow's answers (or, unscored, its batch run), a child
    of the comparison; its run id, the dataset version of its lines or scores, the batch's
    totals and each evaluator's mean."""
    from cauce.genai import batches
    from cauce.genai import evals as evaluations

    variant = {NODE: key}
    if not chosen:
        batch = batches.run(
            flow,
            data,
            variant=variant,
            concurrency=options["concurrency"],
            timeout=options["timeout"],
            parent_run_id=parent,
            workspace=ws,
        )
        return batch.run_id, batch.lines.ref, batch.metrics, {}
    scored = evaluations.run(
        data,
        chosen,
        flow=flow,
        variant=variant,
        tags=tags,
        parent_run_id=parent,
        workspace=ws,
        **options,
    )
    totals = {k[len("flow.") :]: v for k, v in scored.metrics.items() if k.startswith("flow.")}
    quality = {name: scored.metrics[name] for name in scored.evaluators}
    return scored.run_id, scored.scores.ref, totals, quality


def _entries(models: Sequence[str], ws: Workspace) -> list[CatalogModel]:
    if isinstance(models, str) or not models:
        raise InvalidInput(
            "models: name at least one catalog model, as a list", details={"field": "models"}
        )
    repeated = sorted({m for m in models if list(models).count(m) > 1})
    if repeated:
        raise InvalidInput(f"models: {repeated[0]!r} is named twice", details={"field": "models"})
    entries = []
    for name in models:
        entry = get(name, workspace=ws)
        if "text" not in entry.modality:
            raise InvalidInput(
                f"models: catalog model {name!r} takes no text ({', '.join(entry.modality)}): "
                "a comparison asks each model for chat answers",
                details={"field": "models"},
            )
        entries.append(entry)
    return entries


def _versions(prompts: Sequence[str], ws: Workspace) -> list[tuple[str, PromptVersion]]:
    from cauce.genai.prompts import load

    if isinstance(prompts, str) or not prompts:
        raise InvalidInput(
            "prompts: name at least one prompt version, as a list", details={"field": "prompts"}
        )
    found: list[tuple[str, PromptVersion]] = []
    for given in prompts:
        ref = prompt_ref(given)
        shown = _shown(ref)
        if any(shown == s for s, _ in found):
            raise InvalidInput(f"prompts: {shown!r} is named twice", details={"field": "prompts"})
        found.append((shown, load(ref, workspace=ws)))
    return found


def _key(entry: CatalogModel, shown: str) -> str:
    """The cell's variant name (neither ``,`` nor ``=``, which variants are written with)."""
    return f"{entry.name} {shown}"


def _variable_columns(
    versions: list[tuple[str, PromptVersion]], columns: set[str], variables: dict[str, str]
) -> dict[str, dict[str, str]]:
    """Per prompt (as shown), each variable it takes → the dataset column it is read from."""
    used = {v for _, p in versions for v in p.variables}
    unknown = sorted(set(variables) - used)
    if unknown:
        raise InvalidInput(
            f"variables: no prompt takes {unknown[0]!r}", details={"field": "variables"}
        )
    found: dict[str, dict[str, str]] = {}
    for shown, prompt in versions:
        found[shown] = {}
        for name, variable in prompt.variables.items():
            column = variables.get(name, name)
            if column in columns:
                if not _COLUMN.match(column):
                    raise InvalidInput(
                        f"variables: column {column!r} needs a name of letters, digits, _ or -",
                        details={"field": "variables"},
                    )
                found[shown][name] = column
            elif "default" not in variable:
                raise InvalidInput(
                    f"{prompt.uri} takes {name!r} and the dataset has no column {column!r}",
                    hint=f"map it: {name}=COLUMN (columns: {', '.join(sorted(columns))})",
                    details={"field": "variables"},
                )
    return found


def _flow(
    entries: list[CatalogModel],
    versions: list[tuple[str, PromptVersion]],
    inputs: dict[str, dict[str, str]],
    parameters: dict[str, Any],
) -> Any:
    """One LLM node whose variants are the cells: each a prompt version pinned, a connection
    and a model."""
    from pydantic import ValidationError

    from cauce.genai.flows import FlowSpec

    variants = {
        _key(entry, shown): {
            "prompt": prompt.uri,
            "connection": entry.connection,
            "model": entry.model,
            "inputs": {v: f"${{inputs.{c}}}" for v, c in inputs[shown].items()},
        }
        for entry in entries
        for shown, prompt in versions
    }
    first = next(iter(variants.values()))
    columns = sorted({c for found in inputs.values() for c in found.values()})
    body = {
        "kind": "Flow",
        "name": FLOW,
        "description": "catalog models x prompt versions, run by cauce catalog compare",
        "inputs": {c: {"type": "string"} for c in columns},
        "nodes": [
            {"name": NODE, "type": "llm", **first, "parameters": parameters, "variants": variants}
        ],
        "outputs": {"answer": f"${{{NODE}.output}}"},
    }
    try:
        return FlowSpec.model_validate(body)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise InvalidInput(f"parameters: {error['msg']}", details={"field": "parameters"}) from None


def _cell(
    entry: CatalogModel,
    shown: str,
    prompt: PromptVersion,
    key: str,
    run_id: str,
    answers: str,
    totals: dict[str, float],
    quality: dict[str, float],
) -> Cell:
    lines = int(totals["lines"])
    answered = int(totals["succeeded"])
    cost = totals.get("cost")
    inputs, outputs = int(totals["input_tokens"]), int(totals["output_tokens"])
    return Cell(
        model=entry.name,
        prompt=shown,
        prompt_version=prompt.uri,
        connection=entry.connection,
        upstream_model=entry.model,
        variant=key,
        run_id=run_id,
        answers=answers,
        lines=lines,
        requests=answered,
        errors=lines - answered,
        error_rate=totals["error_rate"],
        quality=quality,
        latency_p50_ms=totals["latency_p50_ms"] if answered else None,
        latency_p95_ms=totals["latency_p95_ms"] if answered else None,
        input_tokens=inputs,
        output_tokens=outputs,
        input_tokens_mean=inputs / answered if answered else None,
        output_tokens_mean=outputs / answered if answered else None,
        cost=cost,
        cost_per_request=cost / answered if cost is not None and answered else None,
    )
