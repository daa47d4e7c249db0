"""The model catalog: entries applied, audited and read on SQLite and PostgreSQL; the price a
call is charged at; models x prompt versions compared on a real loopback server, with exact
tokens and costs, tracked runs, a CLI table and an escaped HTML page."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from tests.clitools import assert_one_line_error
from tests.clitools import cauce as run_cli
from tests.genai.upstream import Upstream

import cauce
from cauce.errors import Conflict, InvalidInput, NotFound
from cauce.genai import catalog, connections
from cauce.lineage import audit
from cauce.workspace import Workspace

QUESTION = [{"role": "user", "content": "what is a canary"}]  # 4 tokens in, 5 out


@pytest.fixture
def workspace(seam_workspace: Workspace) -> Workspace:
    """Local, then through a server (the tests of comparisons: lines and calls run here)."""
    return seam_workspace


def _apply(documents: Any) -> None:
    cauce.apply(documents)


def connection(url: str, **fields: Any) -> dict[str, Any]:
    return {
        "kind": "Connection",
        "name": "llm",
        "base_url": url,
        "models": {"chat": "echo"},
        "max_retries": 0,
        **fields,
    }


def entry(name: str, **fields: Any) -> dict[str, Any]:
    return {
        "kind": "CatalogModel",
        "name": name,
        "provider": "local",
        "connection": "llm",
        **fields,
    }


# -- entries -----------------------------------------------------------------------------------


def test_an_entry_is_applied_audited_listed_shown_and_deleted(
    any_workspace: Workspace, upstream: Upstream
) -> None:
    described = entry(
        "small",
        model="small-v1",
        context_length=8192,
        price={"input": 0.5, "output": 1.5},
        licence="Apache-2.0",
        modality=["text", "image"],
        description="the small one",
        tags={"tier": "cheap"},
    )
    applied = cauce.apply([connection(upstream.url), described])
    assert [(a.kind, a.outcome) for a in applied] == [
        ("Connection", "created"),
        ("CatalogModel", "created"),
    ]
    [same] = cauce.apply(described)
    assert same.outcome == "unchanged"
    [changed] = cauce.apply({**described, "context_length": 16384})
    assert changed.outcome == "updated"
    assert [(c.field, c.old, c.new) for c in changed.changes] == [("context_length", 8192, 16384)]
    found = catalog.get("small")
    assert (found.provider, found.connection, found.model) == ("local", "llm", "small-v1")
    assert found.price == {"input": 0.5, "output": 1.5}
    assert (found.licence, found.modality, found.tags) == (
        "Apache-2.0",
        ["text", "image"],
        {"tier": "cheap"},
    )
    cauce.apply(entry("plain"))
    assert [m.name for m in catalog.list_models()] == ["plain", "small"]
    plain = catalog.get("plain")
    assert (plain.model, plain.modality, plain.price) == ("plain", ["text"], None)  # defaults
    catalog.delete("small")
    with pytest.raises(NotFound, match="no catalog model named 'small'"):
        catalog.get("small")
    actions = [e.action for e in audit.events(any_workspace, entity_kind="catalog_model")]
    assert actions == [
        "catalog_model.delete",
        "catalog_model.create",
        "catalog_model.update",
        "catalog_model.create",
    ]


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"licence": "MIT", "license": "MIT"}, "license"),
        ({"provider": " "}, "provider"),
        ({"context_length": 0}, "context_length"),
        ({"modality": ["text", "video"]}, "modality"),
        ({"modality": ["text", "text"]}, "modality"),
        ({"modality": []}, "modality"),
        ({"price": {"input": 1}}, "price.output"),
        ({"price": {"input": -1, "output": 1}}, "price.input"),
        ({"connection": "a/b"}, "connection"),
        ({"name": "x/y"}, "name"),
    ],
)
def test_a_bad_entry_is_refused_naming_its_field(
    local_workspace: Workspace, upstream: Upstream, fields: dict[str, Any], named: str
) -> None:
    cauce.apply(connection(upstream.url))
    with pytest.raises(InvalidInput, match=f"CatalogModel spec: {named}") as caught:
        cauce.apply({**entry("small"), **fields})
    assert caught.value.details["field"].startswith(named)
    assert catalog.list_models() == []


def test_the_connection_must_exist_or_be_declared_beside_and_a_model_is_priced_once(
    local_workspace: Workspace, upstream: Upstream
) -> None:
    with pytest.raises(NotFound, match="catalog model 'small': connection: no connection named"):
        cauce.apply(entry("small"))
    cauce.apply([entry("small", model="m1"), connection(upstream.url)])  # declared beside it
    with pytest.raises(Conflict, match="'small' already names model 'm1' on connection 'llm'"):
        cauce.apply(entry("other", model="m1"))
    with pytest.raises(Conflict):  # the same within one apply: nothing of it is written
        cauce.apply([entry("a", model="m2"), entry("b", model="m2")])
    assert [m.name for m in catalog.list_models()] == ["small"]


# -- prices ------------------------------------------------------------------------------------


def test_the_catalog_prices_the_model_asked_for_unless_the_connection_prices_it(
    any_workspace: Workspace, upstream: Upstream
) -> None:
    # The server answers every model as "echo": the catalog is found by the model asked for.
    cauce.apply(
        [
            connection(upstream.url, prices={"priced-v1": {"input": 3.0, "output": 4.0}}),
            entry("small", model="small-v1", price={"input": 1.0, "output": 2.0}),
            entry("priced", model="priced-v1", price={"input": 100.0, "output": 100.0}),
            entry("free", model="free-v1"),
        ]
    )
    llm = connections.client("llm")
    answer = llm.chat(QUESTION, model="small-v1")
    assert (answer.model, answer.usage.input_tokens, answer.usage.output_tokens) == ("echo", 4, 5)
    assert answer.cost == pytest.approx((4 * 1.0 + 5 * 2.0) / 1e6)
    stream = llm.stream(QUESTION, model="small-v1")
    stream.text()
    assert stream.result is not None and stream.result.cost == pytest.approx(14e-6)
    assert llm.chat(QUESTION, model="priced-v1").cost == pytest.approx((4 * 3 + 5 * 4) / 1e6)
    assert llm.chat(QUESTION, model="free-v1").cost is None  # an entry without a price
    assert llm.chat(QUESTION, model="unlisted").cost is None
    # An entry changed or deleted in this process prices the next call at once.
    cauce.apply(entry("small", model="small-v1", price={"input": 2.0, "output": 2.0}))
    assert llm.chat(QUESTION, model="small-v1").cost == pytest.approx(18e-6)
    catalog.delete("small")
    assert llm.chat(QUESTION, model="small-v1").cost is None


# -- comparing ---------------------------------------------------------------------------------


def prompts_and_data() -> list[dict[str, Any]]:
    cauce.data.register(
        "qa",
        pd.DataFrame(
            {
                "question": ["what is a canary", "why drift"],
                "reference": ["echo: what is a canary", "echo: why"],
            }
        ),
    )
    return [
        {
            "kind": "Prompt",
            "name": "short",
            "messages": [{"role": "user", "content": "{{ question }}"}],
            "labels": ["production"],
        },
        {
            "kind": "Prompt",
            "name": "polite",
            "messages": [
                {"role": "system", "content": "Be kind."},
                {"role": "user", "content": "Please {{ question }}"},
            ],
        },
    ]


def apply_catalog(url: str) -> None:
    _apply(
        [
            connection(url, prices={"large-v1": {"input": 3.0, "output": 4.0}}),
            entry("small", model="small-v1", price={"input": 1.0, "output": 2.0}),
            entry("large", model="large-v1", price={"input": 10.0, "output": 10.0}),
            entry("free", model="free-v1", description="<script>alert('x')</script>"),
            *prompts_and_data(),
        ]
    )


@pytest.fixture
def compared(workspace: Workspace, upstream: Upstream) -> Workspace:
    apply_catalog(upstream.url)
    return workspace


def test_models_by_prompt_versions_side_by_side_with_exact_tokens_and_costs(
    any_workspace: Workspace, upstream: Upstream, tmp_path: Path
) -> None:
    apply_catalog(upstream.url)
    result = cauce.catalog.compare(
        "qa",
        models=["small", "large"],
        prompts=["short@production", "polite"],
        evaluators=["exact_match", "f1"],
    )
    cells = {(c.model, c.prompt): c for c in result.cells}
    assert list(cells) == [
        ("small", "short@production"),
        ("small", "polite@latest"),
        ("large", "short@production"),
        ("large", "polite@latest"),
    ]
    # The server saw each model asked for, with each prompt rendered.
    asked = [(r["body"]["model"], r["body"]["messages"][-1]["content"]) for r in upstream.requests]
    assert sorted(asked) == sorted(
        (model, text)
        for model in ("small-v1", "large-v1")
        for text in ("what is a canary", "why drift", "Please what is a canary", "Please why drift")
    )
    short = cells["small", "short@production"]
    # "echo: what is a canary" (4 in, 5 out) and "echo: why drift" (2 in, 3 out).
    assert (short.input_tokens, short.output_tokens) == (6, 8)
    assert (short.input_tokens_mean, short.output_tokens_mean) == (3.0, 4.0)
    assert short.cost == pytest.approx((6 * 1.0 + 8 * 2.0) / 1e6)  # the catalog's price
    assert short.cost_per_request == pytest.approx(11e-6)
    assert short.quality["exact_match"] == 0.5 and (short.errors, short.lines) == (0, 2)
    assert short.prompt_version == "prompts:/short/1" and short.upstream_model == "small-v1"
    polite = cells["small", "polite@latest"]
    # "Be kind." + "Please what is a canary" (7 in, 6 out); 2 + 3 in, 4 out.
    assert (polite.input_tokens, polite.output_tokens) == (12, 10)
    assert polite.cost == pytest.approx((12 + 20) / 1e6) and polite.quality["exact_match"] == 0.0
    large = cells["large", "short@production"]
    assert large.cost == pytest.approx((6 * 3.0 + 8 * 4.0) / 1e6)  # the connection's price wins
    assert large.latency_p50_ms is not None and large.latency_p95_ms >= large.latency_p50_ms
    # One comparison run; each cell's batch run and evaluation run are its children.
    parent = cauce.get_run(result.run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.params["models"] == "small,large"
    assert parent.data.params["prompts"] == "short@production,polite@latest"
    children = cauce.search_runs(filter=f"parent_run_id = '{result.run_id}'")
    assert len(children) == 8
    assert sorted({c.info.experiment_id for c in children}) == sorted(
        {cauce.get_experiment(e).experiment_id for e in ("flows", "evals")}
    )
    evaluation = cauce.get_run(short.run_id)
    assert evaluation.data.tags["cauce.catalog_model"] == "small"
    assert evaluation.data.metrics["flow.cost"] == pytest.approx(22e-6)
    page = result.write_html(tmp_path / "out" / "compare.html").read_text()
    assert "<script>" not in page and "&lt;script&gt;" not in page  # free was not compared
    assert "short@production (v1)" in page and "0.000011" in page


def test_a_comparison_without_evaluators_counts_errors_and_says_what_it_cannot_price(
    compared: Workspace, upstream: Upstream
) -> None:
    upstream.script = [(500, {})]  # the first call fails: "what is a canary" to small
    result = cauce.catalog.compare("qa@1", ["small", "free"], ["prompts:/short/1"], concurrency=1)
    failing, cell = result.cells
    assert (failing.errors, failing.lines, failing.requests, failing.error_rate) == (1, 2, 1, 0.5)
    # Only "why drift" was answered: 2 tokens in, 3 out; means and cost per answered line.
    assert (failing.input_tokens, failing.output_tokens) == (2, 3)
    assert (failing.input_tokens_mean, failing.output_tokens_mean) == (2.0, 3.0)
    assert failing.cost == failing.cost_per_request == pytest.approx((2 * 1.0 + 3 * 2.0) / 1e6)
    assert result.rows()[0][-3:] == ["0.000008", "0.000008", "1/2"]
    assert (cell.cost, cell.cost_per_request, cell.quality) == (None, None, {})
    assert (cell.input_tokens, cell.output_tokens) == (6, 8)
    assert result.rows()[1][-3:] == ["unknown", "unknown", "0/2"]
    batch = cauce.get_run(cell.run_id)
    assert batch.info.parent_run_id == result.run_id
    assert batch.data.params["variant"] == "generate=free short@1"
    page = result.html()
    assert "<script>" not in page and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page


def test_a_comparison_refuses_bad_input_naming_the_field(compared: Workspace) -> None:
    def refused(error: type[Exception], match: str, **options: Any) -> None:
        arguments = {"dataset": "qa", "models": ["small"], "prompts": ["short"], **options}
        with pytest.raises(error, match=match):
            catalog.compare(**arguments)

    refused(NotFound, "no catalog model named 'nope'", models=["nope"])
    refused(InvalidInput, "models: 'small' is named twice", models=["small", "small"])
    refused(InvalidInput, "models: name at least one", models=[])
    refused(
        InvalidInput, "prompts: 'short@1' is named twice", prompts=["short@1", "prompts:/short/1"]
    )
    refused(NotFound, "prompt 'short' has no label 'staging'", prompts=["short@staging"])
    refused(InvalidInput, "variables: no prompt takes 'topic'", variables={"topic": "question"})
    refused(InvalidInput, "has no column 'q'", variables={"question": "q"})
    refused(InvalidInput, "parameters: .*unknown parameter 'temp'", parameters={"temp": 1})
    refused(InvalidInput, "unknown evaluator 'nonsense'", evaluators=["nonsense"])
    refused(InvalidInput, "evaluators: relevance need a judge", evaluators=["f1", "relevance"])
    _apply(entry("embedder", model="embed-v1", modality=["embeddings"]))
    refused(InvalidInput, "'embedder' takes no text", models=["embedder"])
    assert cauce.search_runs() == []  # refused before any run began


def test_the_cli_lists_shows_compares_and_deletes(compared: Workspace, tmp_path: Path) -> None:
    home = Path(compared.settings.root)
    listed = json.loads(run_cli(home, "catalog", "list", "--json").stdout)
    assert [m["name"] for m in listed] == ["free", "large", "small"]
    assert "small-v1" in run_cli(home, "catalog", "show", "small").stdout
    page = tmp_path / "compare.html"
    compare = ("catalog", "compare", "-d", "qa", "--prompt", "short@production")
    shown = json.loads(
        run_cli(
            home,
            *compare,
            "--models",
            "small",
            "--param",
            "max_tokens=3",
            "--html",
            str(page),
            "--json",
        ).stdout
    )
    [cell] = shown["cells"]
    # Three words at most per answer: 3 + 3 tokens out.
    assert (cell["input_tokens"], cell["output_tokens"]) == (6, 6)
    assert cell["cost"] == pytest.approx((6 + 12) / 1e6)
    assert shown["html"] == str(page) and page.read_text().startswith("<!doctype html>")
    out = run_cli(home, *compare, "-m", "small,free", "-e", "exact_match").stdout
    comparisons = json.loads(run_cli(home, "runs", "list", "-e", "catalog", "--json").stdout)
    assert len(comparisons) == 2 and comparisons[0]["info"]["status"] == "FINISHED"
    parent = comparisons[0]["info"]["run_id"]
    cells = run_cli(home, "runs", "list", "-f", f"parent_run_id = '{parent}'", "--json").stdout
    assert len(json.loads(cells)) == 4  # two cells, each a batch run and an evaluation run
    assert "exact_match" in out and "unknown" in out and "0.000022" in out
    assert_one_line_error(run_cli(home, *compare, "-m", "nope", check=False), "nope")
    assert_one_line_error(
        run_cli(home, *compare, "-m", "small", "--param", "x", check=False), "--param"
    )
    run_cli(home, "catalog", "delete", "free")
    assert_one_line_error(run_cli(home, "catalog", "show", "free", check=False), "free")
