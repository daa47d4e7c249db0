"""Model cards: a Markdown page generated from a version's metadata, run, data and lineage."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from cauce.operations import operation
from cauce.registry import models as registry
from cauce.workspace import Workspace, current


def _when(ms: int | None) -> str:
    if ms is None:
        return "—"
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# What Markdown would read as markup in a value: emphasis, code, links, HTML, entities, a
# table's edge. An underscore inside a word never is (``roc_auc`` stays readable as written).
_MARKUP = re.compile(r"[\\`*\[\]<>&~|]|(?<![^\W_])_|_(?![^\W_])")


def _text(value: Any) -> str:
    """A value as literal Markdown text on one line: ``-m pytest.__main__`` stays as it is."""
    return _MARKUP.sub(lambda m: "\\" + m.group(), str(value)).replace("\n", " ")


def _table(headers: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_text(v) for v in row) + " |" for row in rows]
    return lines


def model_card(uri: str, *, workspace: Workspace | None = None) -> str:
    """The Markdown model card of the version ``uri`` names."""
    version = registry.resolve(uri, workspace=workspace)
    return version_card(version.name, version.version, workspace=workspace)


@operation("GET /models/{name}/versions/{version}/card")
def version_card(name: str, version: int, *, workspace: Workspace | None = None) -> str:
    """The Markdown model card of one version of a model."""
    return _card(workspace or current(), registry.get_version(name, version, workspace=workspace))


def _evaluations(ws: Workspace, version: registry.ModelVersion) -> list[str]:
    """How the version scored on held-out data, and the gates that judged it: the card's
    quantitative analysis."""
    from cauce.lineage.audit import events
    from cauce.registry.evaluations import evaluations

    out = ["## Evaluations", ""]
    scored = evaluations(version.uri, workspace=ws)
    out += (
        _table(
            ["Dataset", "Label", "Rows", "Metrics", "When"],
            [
                [
                    e.dataset,
                    e.label,
                    e.rows,
                    ", ".join(f"{k} {v:.4g}" for k, v in sorted(e.metrics.items())),
                    _when(e.created_at),
                ]
                for e in scored
            ],
        )
        if scored
        else [f"Not evaluated: `cauce models evaluate {version.uri} --data DATA --label COLUMN`."]
    )
    checks = events(ws, entity_kind="model_version", entity_id=version.id, action="gate.check")
    if checks:
        out += ["", "### Gate checks", ""]
        out += _table(
            ["When", "Policy", "Verdict", "By"],
            [
                [
                    _when(c.at),
                    (c.after or {}).get("policy"),
                    "passed"
                    if (c.after or {}).get("passed")
                    else f"failed: {(c.after or {}).get('reason')}",
                    c.actor,
                ]
                for c in reversed(checks)
            ],
        )
    return [*out, ""]


def _card(ws: Workspace, version: registry.ModelVersion) -> str:
    import yaml

    from cauce.lineage.graph import walk
    from cauce.tracking.runs import get_run

    model = registry.get_model(version.name, workspace=ws)
    spec = yaml.safe_load(ws.artifacts.read_bytes(version.spec_sha256))
    run = get_run(version.run_id, workspace=ws) if version.run_id else None

    out = [f"# Model card: {version.name} v{version.version}", ""]
    if model.description or version.description:
        out += [version.description or model.description or "", ""]
    out += ["## Overview", ""]
    out += _table(
        ["Field", "Value"],
        [
            ["Model", version.name],
            ["Version", version.version],
            ["URI", version.uri],
            ["Aliases", ", ".join(version.aliases) or "—"],
            ["Flavor", version.flavor],
            ["Registered", _when(version.created_at)],
            ["Registered by", version.user],
            ["Source run", f"{run.info.run_name} ({run.info.run_id})" if run else "—"],
            ["Spec sha256", version.spec_sha256],
        ],
    )
    out.append("")
    if run is not None:
        info = run.info
        commit = info.source_commit or "not in a git repository"
        if info.source_dirty:
            commit += " (with uncommitted changes)"
        out += ["## Training run", ""]
        out += _table(
            ["Field", "Value"],
            [
                ["Run", f"{info.run_name} ({info.run_id})"],
                ["Status", info.status],
                ["Started", _when(info.start_time)],
                ["Ended", _when(info.end_time)],
                ["User", info.user_id],
                ["Code version", commit],
                ["Entry point", info.entry_point or "—"],
                ["Python", info.python_version or "—"],
                ["Packages sha256", info.packages_hash or "—"],
            ],
        )
        out.append("")
        out += ["### Metrics", ""]
        out += (
            _table(
                ["Metric", "Value"], [[k, f"{v:.6g}"] for k, v in sorted(run.data.metrics.items())]
            )
            if run.data.metrics
            else ["No metrics were logged."]
        )
        out += ["", "### Parameters", ""]
        out += (
            _table(["Parameter", "Value"], sorted(map(list, run.data.params.items())))
            if run.data.params
            else ["No parameters were logged."]
        )
        out += ["", "## Data", ""]
        inputs = run.inputs.dataset_inputs
        out += (
            _table(
                ["Dataset", "Version", "Context", "Rows", "Content sha256"],
                [[d.dataset, d.version, d.context, d.row_count, d.content_hash] for d in inputs],
            )
            if inputs
            else ["The run recorded no dataset inputs."]
        )
        out.append("")
    out += _evaluations(ws, version)
    out += ["## Signature", ""]
    signature = version.signature or {}
    inputs_schema = signature.get("inputs")
    if inputs_schema and inputs_schema.get("type") == "dataframe":
        out += _table(
            ["Input column", "Type"], [[c["name"], c["type"]] for c in inputs_schema["columns"]]
        )
    elif inputs_schema:
        out.append(f"Input tensor: dtype {inputs_schema['dtype']}, shape {inputs_schema['shape']}")
    else:
        out.append("No signature: the model was logged without an input example.")
    outputs = signature.get("outputs")
    if outputs:
        out += [
            "",
            f"Output: {outputs.get('type')} "
            f"{outputs.get('dtype', '')} {outputs.get('shape', '')}".rstrip(),
        ]
    out += ["", "## Lineage", ""]
    graph = walk(ws, "model_version", version.id, "upstream")
    # The blobs (artifact nodes) are listed, with their sha256, under Files below.
    edges = [e for e in graph.edges if "artifact" not in (e.src.kind, e.dst.kind)]
    out += (
        [f"- {_text(e.src.label)} → {_text(e.dst.label)} ({e.relation})" for e in edges]
        if edges
        else ["No upstream lineage is recorded."]
    )
    out += ["", "## Requirements", ""]
    out += [f"- `{r}`" for r in spec.get("requirements", [])] or ["None recorded."]
    out += ["", "## Files", ""]
    out += _table(
        ["File", "sha256", "Bytes"],
        [[name, meta["sha256"], meta["size"]] for name, meta in sorted(spec["files"].items())],
    )
    if version.tags or model.tags:
        out += ["", "## Tags", ""]
        out += _table(["Tag", "Value"], sorted(map(list, {**model.tags, **version.tags}.items())))
    history = registry.alias_history(version.name, workspace=ws)
    if history:
        out += ["", "## Alias history", ""]
        out += _table(
            ["When", "Alias", "From", "To", "By"],
            [
                [
                    _when(h["at"]),
                    h["alias"],
                    h["from_version"] or "—",
                    h["to_version"] or "—",
                    h["user"],
                ]
                for h in history
            ],
        )
    return "\n".join(out) + "\n"
