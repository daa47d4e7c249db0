"""Indexes in the workspace: kind Index, versions that re-embed only what changed, the store's
embedding cache, queries recorded as retrievals with lineage, the agent's refreshes, flows."""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select
from tests.clitools import cauce as run_cli
from tests.genai.indexes_helpers import make_pdf

import cauce
from cauce.automation.agent import Agent
from cauce.errors import InvalidInput, NotFound
from cauce.genai import flows, tracing
from cauce.genai.indexes import records, registry
from cauce.lineage.graph import walk
from cauce.store.schema import index_chunks, index_documents
from cauce.workspace import Workspace
from together import at_once


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    shutil.copytree(Path(str(resources.files("cauce.demo") / "data" / "genai" / "docs")), folder)
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 this is not a pdf")
    (folder / "notes.pdf").write_bytes(make_pdf(["Rollbacks restore the stable deployment."]))
    return folder


def spec(folder: Path, **fields: object) -> dict[str, object]:
    return {
        "kind": "Index",
        "name": "docs",
        "source": {"path": str(folder)},
        "chunker": {"method": "markdown", "size": 64, "overlap": 8},
        **fields,
    }


def test_versions_lineage_and_refreshes_that_embed_only_what_changed(
    workspace: Workspace, corpus: Path
) -> None:
    cauce.apply(spec(corpus))
    first = registry.refresh("docs")
    assert first.created and first.version.version == 1
    assert first.version.document_count == 9
    assert [s["document"] for s in first.version.skipped] == ["broken.pdf"]
    assert first.version.stats["embedded"] == first.version.chunk_count
    same = registry.refresh("docs")
    assert not same.created and same.version.id == first.version.id
    (corpus / "serving.md").write_text(
        "# Serving\n\nEndpoints split traffic between deployments.\n"
    )
    (corpus / "pipelines.md").unlink()
    second = registry.refresh("docs")
    assert second.created and second.version.version == 2
    assert second.changes["changed"] == ["serving.md"] and second.changes["deleted"] == [
        "pipelines.md"
    ]
    assert second.version.stats["embedded"] <= 2  # only the changed document's chunks
    assert second.version.stats["reused_chunks"] > 10
    assert [v.version for v in records.versions("docs")] == [1, 2]
    # Chunk text and metadata are in the store, each chunk once, shared by the versions.
    old, new = records.chunks("docs", version=1), records.chunks("docs")
    assert (len(old), len(new)) == (first.version.chunk_count, second.version.chunk_count)
    assert {c["document_id"] for c in new} == set(registry_documents(workspace, second))
    serving = [c for c in new if c["document_id"] == "serving.md"]
    assert serving[0]["text"].startswith("# Serving") or "Endpoints split" in serving[0]["text"]
    with workspace.store.read() as conn:
        stored = conn.execute(select(func.count()).select_from(index_chunks)).scalar()
    assert stored == len(old) + len(serving)
    graph = walk(workspace, "index_version", second.version.id, direction="upstream")
    labels = {
        e.src.label
        for e in graph.edges
        if e.relation == "indexed" and e.dst.id == second.version.id
    }
    assert any(label.startswith("document serving.md") for label in labels)
    assert len(labels) == 8


def test_queries_are_traced_recorded_and_answer_which_used_a_document(
    workspace: Workspace, corpus: Path
) -> None:
    cauce.apply(spec(corpus))
    registry.refresh("docs")
    hits = registry.query("docs", "what happens when a canary metric crosses its threshold", k=3)
    assert hits[0].document_id == "canary-rollouts.md"
    text_only = registry.query("docs", "DuckDB Parquet", k=2, mode="text")
    assert text_only[0].document_id == "data-quality.md"
    used = records.retrievals_of("canary-rollouts.md")
    assert used and used[0]["index"] == "docs@1" and used[0]["rank"] == 1
    trace = tracing.get_trace(used[-1]["trace_id"])
    span = trace.spans[0]
    assert span.name == "retrieval docs" and span.operation == "retrieval"
    assert span.attributes["gen_ai.data_source.id"] == "docs@1"
    documents = json.loads(span.attributes["gen_ai.retrieval.documents"])
    assert documents[0]["id"] == hits[0].chunk_id
    version = records.versions("docs")[0]
    graph = walk(workspace, "index_version", version.id, direction="downstream")
    assert {e.dst.kind for e in graph.edges} == {"trace"}
    with pytest.raises(NotFound, match="no index named 'nope'"):
        registry.query("nope", "x")


def registry_documents(workspace: Workspace, refreshed: registry.Refreshed) -> list[str]:
    with workspace.store.read() as conn:
        return list(
            conn.execute(
                select(index_documents.c.document_id).where(
                    index_documents.c.index_version_id == refreshed.version.id
                )
            ).scalars()
        )


class OtherModel:
    model_id = "another-model"
    dimensions = 384

    def embed(self, texts: list[str]) -> np.ndarray:
        return np.ones((len(texts), 384), dtype=np.float32)


def test_a_query_with_another_embedding_model_is_refused(
    workspace: Workspace, corpus: Path
) -> None:
    cauce.apply(spec(corpus))
    registry.refresh("docs")
    with pytest.raises(InvalidInput, match="another-model"):
        registry.query("docs", "canary", embedder=OtherModel())


def test_a_dataset_source_is_refreshed_by_the_agent_when_it_changes(
    workspace: Workspace,
) -> None:
    faq = pd.DataFrame({"id": ["a", "b"], "answer": ["Aliases move.", "Runs record metrics."]})
    cauce.data.register("faq", faq)
    cauce.apply(
        {
            "kind": "Index",
            "name": "faq",
            "source": {"dataset": "faq", "text": "answer", "id": "id"},
            "max_age": "1h",
        }
    )
    agent = Agent()
    [built] = agent.run_indexes()
    assert built.created and built.version.document_count == 2
    assert agent.run_indexes() == []  # not due again yet
    cauce.data.register("faq", pd.concat([faq, pd.DataFrame({"id": ["c"], "answer": ["New."]})]))
    [again] = agent.run_indexes()
    assert again.created and again.version.document_count == 3
    info = records.get_index("faq")
    assert info.next_refresh_at == info.refreshed_at + 3_600_000
    [stale] = agent.run_indexes(now=info.refreshed_at + 3_600_001)
    assert not stale.created  # due by max_age; nothing changed, so no new version
    with pytest.raises(InvalidInput, match="no column 'text'"):
        cauce.apply({"kind": "Index", "name": "bad", "source": {"dataset": "faq", "text": "text"}})
        registry.refresh("bad")


def test_a_due_refresh_is_claimed_once_in_one_operation(
    seam_any_workspace: Workspace, tmp_path: Path
) -> None:
    """The agent's claim is one compare-and-set where the store is (on the server through
    one): of four claims of the same refresh one wins, and it is not due again for a lease."""

    cauce.apply(spec(tmp_path, max_age="1h"))
    due = records.get_index("docs").next_refresh_at
    assert due is not None  # never built: due now
    claims = at_once([lambda: registry.claim_due(seam_any_workspace, now=due)] * 4)
    assert sorted(claims) == [[], [], [], ["docs"]]
    assert registry.claim_due(seam_any_workspace, now=due + 599_999) == []
    assert registry.claim_due(seam_any_workspace, now=due + 600_000) == ["docs"]  # lease over
    assert registry.claim_due_indexes() == ()  # the server's clock: the next lease is ahead


def test_a_flow_retrieves_then_answers(
    workspace: Workspace, corpus: Path, upstream: object
) -> None:
    url = upstream.url  # type: ignore[attr-defined]
    cauce.apply(
        [
            spec(corpus),
            {"kind": "Connection", "name": "echo", "base_url": url, "models": {"chat": "echo"}},
            {
                "kind": "Prompt",
                "name": "rag",
                "messages": [{"role": "user", "content": "{{ context }} || {{ question }}"}],
            },
            {
                "kind": "Flow",
                "name": "rag",
                "inputs": {"question": {}},
                "nodes": [
                    {
                        "name": "find",
                        "type": "retrieve",
                        "index": "docs",
                        "query": "${inputs.question}",
                        "top_k": 2,
                    },
                    {
                        "name": "answer",
                        "type": "llm",
                        "prompt": "prompts:/rag",
                        "connection": "echo",
                        "inputs": {
                            "context": "${find.output.0.text}",
                            "question": "${inputs.question}",
                        },
                    },
                ],
                "outputs": {"answer": "${answer.output}", "contexts": "${find.output}"},
            },
        ]
    )
    registry.refresh("docs")
    line = flows.load("rag").run({"question": "What does an alias point at?"})
    assert line.status == "ok", line.error
    assert line.outputs["contexts"][0]["document"] == "model-registry.md"
    assert "|| What does an alias point at?" in line.outputs["answer"]
    names = [s.name for s in tracing.get_trace(str(line.trace_id)).spans]
    assert names[:3] == ["invoke_agent rag", "node find", "retrieval docs"]
    cauce.apply({**flows.load("rag").spec.model_dump(exclude_none=True), "description": "v2"})
    cauce.data.register("qs", pd.DataFrame({"question": ["What is mirrored traffic?"]}))
    batch = cauce.batches.run("rag", "qs")
    version = records.versions("docs")[0]
    downstream = walk(workspace, "index_version", version.id, direction="downstream")
    used = {(e.dst.kind, e.relation) for e in downstream.edges}
    assert ("flow_version", "used_by") in used and ("run", "used_by") in used
    assert batch.metrics["succeeded"] == 1


def test_cli_applies_lists_shows_and_queries(
    workspace: Workspace, corpus: Path, tmp_path: Path
) -> None:
    home = Path(workspace.settings.root)
    path = tmp_path / "index.yaml"
    path.write_text(
        f"kind: Index\nname: docs\nsource: {{path: {corpus}}}\nchunker: {{size: 64, overlap: 8}}\n"
    )
    printed = run_cli(home, "indexes", "apply", "-f", str(path)).stdout
    assert "docs@1: new version · 9 documents" in printed and "skipped 1" in printed
    assert "docs" in run_cli(home, "indexes", "list").stdout
    shown = run_cli(home, "indexes", "show", "docs").stdout
    assert "broken.pdf" in shown
    hits = json.loads(
        run_cli(home, "indexes", "query", "docs", "mirrored traffic", "-k", "2", "--json").stdout
    )
    assert hits[0]["document_id"] == "serving.md"
    again = run_cli(home, "indexes", "refresh", "docs").stdout
    assert "docs@1: unchanged" in again
    # The current version by hand, and its history with the refresh's move first.
    moved = run_cli(home, "indexes", "current", "docs", "1", "--reason", "pinned by hand").stdout
    assert "docs: searches read version 1" in moved
    history = json.loads(run_cli(home, "indexes", "history", "docs", "--json").stdout)
    assert [(h["from_version"], h["to_version"], h["reason"]) for h in history] == [
        (None, 1, "refreshed")
    ]  # making v1 current again moved nothing, so nothing is recorded
    assert "refreshed" in run_cli(home, "indexes", "history", "docs").stdout
    refused = run_cli(home, "indexes", "current", "docs", "9", check=False)
    assert refused.returncode == 1 and "no version 9" in refused.stderr
    # A staged version is built, and searches keep reading the current one until it is put out.
    (corpus / "staging.md").write_text("# Staging\n\nA staged index version waits.\n")
    staged = run_cli(home, "indexes", "refresh", "docs", "--stage").stdout
    assert "docs@2: new version" in staged and "cauce indexes current docs 2" in staged
    listed = json.loads(run_cli(home, "indexes", "list", "--json").stdout)
    assert listed[0]["current_version"] == 1
    run_cli(home, "indexes", "current", "docs", "2", "--reason", "canary passed")
    history = json.loads(run_cli(home, "indexes", "history", "docs", "--json").stdout)
    assert [(h["to_version"], h["reason"]) for h in history] == [
        (1, "refreshed"),
        (2, "canary passed"),
    ]


def test_an_index_built_here_is_recorded_by_the_server(
    remote_workspace: Workspace, tmp_path: Path
) -> None:
    """Parsing, chunking and embedding run here; the file is uploaded and the version, its
    chunks, cached vectors and retrievals are records on the server."""
    from cauce.artifacts import Blob
    from cauce.errors import Conflict
    from cauce.genai.indexes.build import version_id
    from remote import server_side

    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "canary.md").write_text("# Canary\n\nA canary takes a small share of traffic.\n")
    (folder / "rollback.md").write_text("# Rollback\n\nA rollback restores the stable one.\n")
    cauce.apply(spec(folder))
    on_server = server_side(remote_workspace)
    first = registry.refresh("docs")
    assert first.created and first.version.document_count == 2
    assert not registry.refresh("docs").created
    (folder / "rollback.md").write_text("# Rollback\n\nA rollback restores the stable build.\n")
    second = registry.refresh("docs")
    assert second.version.version == 2 and second.changes["changed"] == ["rollback.md"]
    assert second.version.stats["reused_chunks"] == 1
    held = records.versions("docs", workspace=on_server)
    assert [v.id for v in held] == [first.version.id, second.version.id]
    assert on_server.artifacts.exists(held[-1].artifact_sha256)
    stored = records.chunks("docs", workspace=on_server)
    assert [c["document_id"] for c in stored] == ["canary.md", "rollback.md"]
    assert "stable build" in stored[1]["text"]
    [hit] = registry.query("docs", "what restores the stable build?", k=1)
    assert hit.document_id == "rollback.md"
    [used] = records.retrievals_of("rollback.md", workspace=on_server)
    assert used["index"] == "docs@2"
    assert tracing.get_trace(used["trace_id"]).spans[0].name == "retrieval docs"
    assert registry.set_current("docs", 1, reason="rollback").version == 1
    assert records.get_index("docs").current_version == 1
    # Every move of the current version, a refresh's and a person's alike, oldest first.
    moves = [
        (h["from_version"], h["to_version"], h["reason"]) for h in registry.current_history("docs")
    ]
    assert moves == [(None, 1, "refreshed"), (1, 2, "refreshed"), (2, 1, "rollback")]
    # A record is checked where it is kept: the file must be there, and built on the newest.
    stale = records.BuiltVersion(
        after=1, content_id=version_id({}, {}, "m"), embedding_model="m", chunker={},
        blob=Blob("0" * 64, 1, "", "application/vnd.cauce.index"), documents={},
        media_types={}, chunk_count=0, chunks=[], stats={},
    )  # fmt: skip
    with pytest.raises(NotFound, match="not in the artifact store"):
        records.record_version("docs", stale)
    blob = Blob(held[0].artifact_sha256, 1, "", "application/vnd.cauce.index")
    with pytest.raises(Conflict, match="got version 2 while this one was built from version 1"):
        records.record_version("docs", records.BuiltVersion(**{**stale.__dict__, "blob": blob}))
    assert len(records.versions("docs")) == 2


def test_the_embedding_cache_keeps_vectors_and_refuses_what_is_not_one(
    seam_workspace: Workspace,
) -> None:
    """The cache that spares a refresh its embeddings, through a server too: a vector is a
    text's sha256 and float32 bytes in base64; anything else is a 422 naming it."""
    import base64
    import hashlib

    import numpy as np

    from cauce.errors import InvalidInput

    sha = hashlib.sha256(b"a chunk").hexdigest()
    vector = base64.b64encode(np.arange(4, dtype=np.float32).tobytes()).decode()
    records.cache_vectors("minilm", {sha: vector})
    records.cache_vectors("minilm", {sha: base64.b64encode(b"\0" * 16).decode()})  # kept first
    assert records.cached_vectors("minilm", [sha, "0" * 64]) == {sha: vector}
    for bad in ({sha: "àé_"}, {sha: "not base64!"}, {sha: "AAA="}, {"A" * 64: vector}):
        with pytest.raises(InvalidInput) as caught:
            records.cache_vectors("minilm", bad)
        assert caught.value.details["field"].startswith("vectors.")
    assert records.cached_vectors("minilm", [sha]) == {sha: vector}
