"""The lineage graph: typed edges between entities (dataset version → run → model version …).

A node is ``(kind, id)``: an entity's 32-hex id, or for kind ``artifact`` a blob's sha256.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import Connection, and_, select, text

from cauce.errors import InvalidInput
from cauce.operations import operation
from cauce.store import insert_ignore, now_ms
from cauce.store.schema import (
    dataset_versions,
    datasets,
    deployments,
    endpoints,
    lineage_edges,
    model_versions,
    models,
    runs,
)

if TYPE_CHECKING:
    from cauce.workspace import Workspace

Direction = Literal["upstream", "downstream", "both"]


@dataclass(frozen=True)
class Node:
    """An entity in the graph."""

    kind: str
    id: str
    label: str = ""

    def to_dict(self) -> dict[str, str]:
        """A JSON-able view."""
        return {"kind": self.kind, "id": self.id, "label": self.label}


@dataclass(frozen=True)
class Edge:
    """``src`` → ``dst``, with what the relation means (``input``, ``produced``, …)."""

    src: Node
    dst: Node
    relation: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view."""
        return {"src": self.src.to_dict(), "dst": self.dst.to_dict(), "relation": self.relation}


@dataclass
class Graph:
    """The part of the lineage graph reachable from one entity."""

    root: Node
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view."""
        return {
            "root": self.root.to_dict(),
            "nodes": [n.to_dict() for n in self.nodes],
            "edges": [e.to_dict() for e in self.edges],
        }


def add_edge(conn: Connection, src: tuple[str, str], dst: tuple[str, str], relation: str) -> None:
    """Record ``src → dst`` inside the caller's transaction; recording it twice is harmless."""
    insert_ignore(
        conn,
        lineage_edges,
        {
            "src_kind": src[0],
            "src_id": src[1],
            "dst_kind": dst[0],
            "dst_id": dst[1],
            "relation": relation,
            "created_at": now_ms(),
        },
    )


@operation("GET /lineage/{kind}/{entity_id}")
def walk(
    workspace: Workspace,
    kind: str,
    entity_id: str,
    direction: Direction = "both",
    max_depth: int = 50,
) -> Graph:
    """Every entity reachable from ``(kind, entity_id)`` along edges in ``direction``."""
    if direction not in ("upstream", "downstream", "both"):
        raise InvalidInput(f"direction must be upstream, downstream or both, not {direction!r}")
    e = lineage_edges.c
    seen: set[tuple[str, str]] = {(kind, entity_id)}
    raw_edges: set[tuple[str, str, str, str, str]] = set()
    with workspace.store.read() as conn:
        for towards in ("upstream", "downstream"):
            if direction not in (towards, "both"):
                continue
            queue = deque([((kind, entity_id), 0)])
            visited = {(kind, entity_id)}
            while queue:
                (k, i), depth = queue.popleft()
                if depth >= max_depth:
                    continue
                if towards == "upstream":
                    query = select(e.src_kind, e.src_id, e.relation).where(
                        and_(e.dst_kind == k, e.dst_id == i)
                    )
                else:
                    query = select(e.dst_kind, e.dst_id, e.relation).where(
                        and_(e.src_kind == k, e.src_id == i)
                    )
                for other_kind, other_id, relation in conn.execute(query):
                    if towards == "upstream":
                        raw_edges.add((other_kind, other_id, k, i, relation))
                    else:
                        raw_edges.add((k, i, other_kind, other_id, relation))
                    if (other_kind, other_id) not in visited:
                        visited.add((other_kind, other_id))
                        queue.append(((other_kind, other_id), depth + 1))
            seen |= visited
        labels = {key: label_of(conn, *key) for key in seen}
    nodes = {key: Node(key[0], key[1], labels[key]) for key in seen}
    graph = Graph(root=nodes[(kind, entity_id)])
    graph.nodes = sorted(nodes.values(), key=lambda n: (n.kind, n.label))
    edges = [Edge(nodes[(sk, si)], nodes[(dk, di)], rel) for sk, si, dk, di, rel in raw_edges]
    rank = _ranks(edges)
    graph.edges = sorted(
        edges,
        key=lambda e: (rank[e.src], rank[e.dst], e.src.label, e.dst.label, e.relation),
    )
    return graph


def _ranks(edges: list[Edge]) -> dict[Node, int]:
    """Each node's place in the flow: the longest path that leads to it (0 for a source), so
    that edges read upstream first, as the data flowed."""
    from graphlib import CycleError, TopologicalSorter

    before: dict[Node, set[Node]] = {}
    for edge in edges:
        before.setdefault(edge.dst, set()).add(edge.src)
        before.setdefault(edge.src, set())
    rank = dict.fromkeys(before, 0)
    try:
        for node in TopologicalSorter(before).static_order():
            rank[node] = max((rank[n] + 1 for n in before[node]), default=0)
    except CycleError:  # recorded edges never loop; if they did, labels order them
        rank = dict.fromkeys(before, 0)
    return rank


def label_of(conn: Connection, kind: str, entity_id: str) -> str:
    """A readable name for an entity: ``dataset customers v2``, ``model churn v3``, …"""
    row: Any
    if kind == "dataset_version":
        row = conn.execute(
            select(datasets.c.name, dataset_versions.c.version)
            .join(datasets, datasets.c.id == dataset_versions.c.dataset_id)
            .where(dataset_versions.c.id == entity_id)
        ).first()
        return f"dataset {row.name} v{row.version}" if row else f"dataset_version {entity_id}"
    if kind == "run":
        row = conn.execute(select(runs.c.name).where(runs.c.id == entity_id)).first()
        return f"run {row.name} ({entity_id[:8]})" if row else f"run {entity_id}"
    if kind == "model_version":
        row = conn.execute(
            select(models.c.name, model_versions.c.version)
            .join(models, models.c.id == model_versions.c.model_id)
            .where(model_versions.c.id == entity_id)
        ).first()
        return f"model {row.name} v{row.version}" if row else f"model_version {entity_id}"
    if kind == "deployment":
        row = conn.execute(
            select(endpoints.c.name.label("endpoint"), deployments.c.name)
            .join(endpoints, endpoints.c.id == deployments.c.endpoint_id)
            .where(deployments.c.id == entity_id)
        ).first()
        return f"deployment {row.endpoint}/{row.name}" if row else f"deployment {entity_id}"
    if kind == "artifact":
        # A blob may be logged under several paths: the first one names it.
        row = conn.execute(_ARTIFACT_LABEL, {"id": entity_id}).first()
        if row is None:
            return f"artifact {entity_id}"
        return f"artifact {row.path or row.media_type} (sha256:{entity_id[:12]})"
    if kind in _LABELS:
        query, template = _LABELS[kind]
        row = conn.execute(query, {"id": entity_id}).first()
        return template.format(*row, short=entity_id[:8]) if row else f"{kind} {entity_id}"
    return f"{kind} {entity_id}"


_ARTIFACT_LABEL = text(
    "SELECT a.media_type, (SELECT min(r.path) FROM run_artifacts r WHERE r.sha256 = a.sha256) "
    "AS path FROM artifacts a WHERE a.sha256 = :id"
)

_LABELS: dict[str, tuple[Any, str]] = {
    "prompt_version": (
        text(
            "SELECT p.name, v.version FROM prompt_versions v JOIN prompts p ON p.id = v.prompt_id "
            "WHERE v.id = :id"
        ),
        "prompt {0} v{1}",
    ),
    "index_version": (
        text(
            "SELECT i.name, v.version FROM index_versions v JOIN indexes i ON i.id = v.index_id "
            "WHERE v.id = :id"
        ),
        "index {0} v{1}",
    ),
    # A document is its content's sha256; the first path it was indexed under names it.
    "document": (
        text("SELECT min(document_id) FROM index_documents WHERE sha256 = :id HAVING count(*) > 0"),
        "document {0} ({short})",
    ),
    "trace": (text("SELECT name FROM traces WHERE id = :id"), "trace {0} ({short})"),
    "flow_version": (
        text(
            "SELECT f.name, v.version FROM flow_versions v JOIN flows f ON f.id = v.flow_id "
            "WHERE v.id = :id"
        ),
        "flow {0} v{1}",
    ),
    "pipeline_run": (
        text(
            "SELECT p.name FROM pipeline_runs r JOIN pipelines p ON p.id = r.pipeline_id "
            "WHERE r.id = :id"
        ),
        "pipeline run {0} ({short})",
    ),
    # A step run's id starts with its pipeline run's: the pipeline run tells them apart.
    "step_run": (text("SELECT step FROM step_runs WHERE id = :id"), "step run {0}"),
    "monitor_run": (
        text(
            "SELECT m.name, r.status FROM monitor_runs r JOIN monitors m ON m.id = r.monitor_id "
            "WHERE r.id = :id"
        ),
        "monitor run {0}: {1} ({short})",
    ),
    "alert": (
        text("SELECT m.name FROM alerts a JOIN monitors m ON m.id = a.monitor_id WHERE a.id = :id"),
        "alert of {0} ({short})",
    ),
}
