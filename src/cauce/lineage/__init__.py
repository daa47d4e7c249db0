"""Lineage graph and audit log over every entity in the metadata store.

Example::

    ws = cauce.workspace.current()
    graph = cauce.lineage.walk(ws, "model_version", version.id, "upstream")
    for event in cauce.lineage.events(ws, action="model.alias.*", limit=20): ...
"""

from cauce.lineage.audit import AuditEvent, events
from cauce.lineage.graph import Edge, Graph, Node, walk

__all__ = ["AuditEvent", "Edge", "Graph", "Node", "events", "walk"]
