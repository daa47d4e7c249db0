"""The chromadb side of retrieval_vs_chromadb.py; runs in chromadb's own venv.

It reads the vectors, their metadata and the queries written by the main script (.npy / JSON),
loads them into a chromadb collection (or reuses the collection a previous run left in the same
folder), prints ``ready``, then runs one pass over every query for each ``go`` line on stdin
(printing ``done`` after each) and finally writes its timings and result ids as JSON.

Client and settings: ``chromadb.PersistentClient(path)`` (the embedded, in-process client; the
HNSW graph is held in memory once loaded), telemetry off, a collection configured like Cauce's
index (``--hnsw``, Cauce's settings): cosine space, ``max_neighbors`` = connectivity,
``ef_construction`` = expansion_add, ``ef_search`` = expansion_search (chromadb stores float32;
it has no half-precision option). A
query is ``collection.query(query_embeddings=[q], n_results=10, include=...)`` with
``include=["distances", "metadatas"]`` (what Cauce's hits carry: ids, scores, metadata) and,
as a second figure, ``include=[]`` (ids only: chromadb's lightest query).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

INCLUDES = {"full": ["distances", "metadatas"], "ids": []}


def collection(
    client: Any, name: str, hnsw: dict[str, Any], vectors: Any, metadata: list[dict[str, Any]]
) -> Any:
    """The collection ``name`` holding every vector, built unless a previous run left it."""
    existing = [c.name if hasattr(c, "name") else c for c in client.list_collections()]
    if name in existing:
        found = client.get_collection(name)
        if found.count() == len(vectors):
            return found, None
        client.delete_collection(name)
    started = time.perf_counter()
    coll = client.create_collection(name, configuration={"hnsw": hnsw})
    batch = client.get_max_batch_size()
    for i in range(0, len(vectors), batch):
        stop = min(i + batch, len(vectors))
        coll.add(
            ids=[f"c{j}" for j in range(i, stop)],
            embeddings=vectors[i:stop],
            metadatas=metadata[i:stop],
        )
    return coll, time.perf_counter() - started


def one_pass(coll: Any, queries: Any, include: list[str], where: Any) -> tuple[list, list]:
    """Per-query seconds and the ids found, for every query."""
    samples, ids = [], []
    for query in queries:
        started = time.perf_counter()
        result = coll.query(query_embeddings=[query], n_results=10, include=include, where=where)
        samples.append(time.perf_counter() - started)
        ids.append(result["ids"][0])
    return samples, ids


def main() -> None:
    """Build or reuse, then answer turns."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True, help="the folder with vectors.npy etc.")
    parser.add_argument("--store", required=True, help="chromadb's folder")
    parser.add_argument("--out", required=True)
    parser.add_argument("--filter", required=True, help="JSON: the filtered query's where")
    parser.add_argument("--hnsw", required=True, help="JSON: Cauce's HNSW settings")
    args = parser.parse_args()

    import chromadb
    import numpy as np
    from chromadb.config import Settings

    data = Path(args.data)
    vectors = np.load(data / "vectors.npy")
    queries = np.load(data / "queries.npy")
    metadata = json.loads((data / "metadata.json").read_text())
    client = chromadb.PersistentClient(
        path=args.store, settings=Settings(anonymized_telemetry=False)
    )
    cauce = json.loads(args.hnsw)
    hnsw = {
        "space": "cosine",
        "max_neighbors": cauce["connectivity"],
        "ef_construction": cauce["expansion_add"],
        "ef_search": cauce["expansion_search"],
    }
    name = f"{data.name}-m{hnsw['max_neighbors']}-efc{hnsw['ef_construction']}"
    name += f"-ef{hnsw['ef_search']}"
    coll, build_s = collection(client, name, hnsw, vectors, metadata)
    where = json.loads(args.filter)
    for query in queries[:50]:  # warm-up: loads the graph, fills caches
        coll.query(query_embeddings=[query], n_results=10, include=INCLUDES["full"])
    print("ready", flush=True)

    result: dict[str, Any] = {
        "chromadb_version": chromadb.__version__,
        "numpy_version": np.__version__,
        "python": sys.version.split()[0],
        "hnsw": hnsw,
        "build_s": build_s,
        "count": coll.count(),
        "samples_s": {name: [] for name in INCLUDES},
        "filtered_samples_s": [],
        "ids": {},
    }
    for line in sys.stdin:
        if line.strip() != "go":
            continue
        for name, include in INCLUDES.items():
            samples, ids = one_pass(coll, queries, include, None)
            result["samples_s"][name].extend(samples)
            result["ids"].setdefault(name, ids)
        samples, ids = one_pass(coll, queries, INCLUDES["full"], where)
        result["filtered_samples_s"].extend(samples)
        result["ids"].setdefault("filtered", ids)
        print("done", flush=True)
    Path(args.out).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
