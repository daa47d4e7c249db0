"""Graphs drawn on the server as SVG: nodes in columns (one per depth), edges as curves from
the right side of one node to the left side of the next. Lineage and a pipeline run's steps
are drawn this way; each says what a node's depth is."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

K = TypeVar("K", bound=Hashable)

NODE_WIDTH, NODE_HEIGHT, COLUMN_GAP, ROW_GAP = 200, 44, 70, 16


def drawn(
    depth: dict[K, int], edges: list[tuple[K, K, str]], order: Callable[[K], Any]
) -> dict[str, Any]:
    """Where each node (``depth``'s keys) and edge goes: ``nodes`` (x, y, key), ``edges``
    (path, relation), and the drawing's size. Nodes of one column are ordered by ``order``."""
    columns: dict[int, list[K]] = defaultdict(list)
    for key, column in depth.items():
        columns[column].append(key)
    first = min(columns, default=0)
    placed: dict[K, tuple[int, int]] = {}
    nodes: list[dict[str, Any]] = []
    for column, members in sorted(columns.items()):
        for row, key in enumerate(sorted(members, key=order)):
            x, y = (column - first) * (NODE_WIDTH + COLUMN_GAP), row * (NODE_HEIGHT + ROW_GAP)
            placed[key] = (x, y)
            nodes.append({"x": x, "y": y, "key": key})
    lines: list[dict[str, str]] = []
    dips = False
    for src, dst, relation in edges:
        a, b = placed.get(src), placed.get(dst)
        if a is None or b is None:
            continue
        x1, y1 = a[0] + NODE_WIDTH, a[1] + NODE_HEIGHT // 2
        x2, y2 = b[0], b[1] + NODE_HEIGHT // 2
        middle = (x1 + x2) // 2
        path = f"M{x1},{y1} C{middle},{y1} {middle},{y2} {x2},{y2}"
        if x2 - x1 > COLUMN_GAP:  # it skips a column: pass under the nodes between
            dip = max(y1, y2) + NODE_HEIGHT
            path = f"M{x1},{y1} C{x1 + COLUMN_GAP},{dip} {x2 - COLUMN_GAP},{dip} {x2},{y2}"
            dips = True
        lines.append({"path": path, "relation": relation})
    return {
        "nodes": nodes,
        "edges": lines,
        "width": max((x for x, _ in placed.values()), default=0) + NODE_WIDTH,
        # Room under the last row only when an edge passes under it (a curve dips 3/4 of the
        # way to its control points, a node's height below the row's middle).
        "height": max((y for _, y in placed.values()), default=0)
        + (NODE_HEIGHT * 3 // 2 if dips else NODE_HEIGHT),
        "node_width": NODE_WIDTH,
        "node_height": NODE_HEIGHT,
    }
