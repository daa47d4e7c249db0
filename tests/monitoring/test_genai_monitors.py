"""GenAI monitors end to end: the records a GenAI endpoint's collector registers
(``<endpoint>.<deployment>.genai``, generated here with pandas and the data registry) judged
window by window; a degraded window raises an alert whose action runs a pipeline, and the
report shows it. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from tests.serving import test_genai_endpoints as served_genai

import cauce
from cauce.errors import NotFound
from cauce.monitoring.alerts import list_alerts
from cauce.monitoring.monitors import history, run_monitor
from cauce.monitoring.report import write_report
from cauce.pipelines.runs import get_pipeline_run
from cauce.specs import apply
from cauce.store import now_ms
from cauce.workspace import Workspace
from clitools import cauce as run_cli
from genai_records import records

HOUR = 3_600_000


@pytest.fixture
def serving_genai_endpoint(local_workspace: Workspace) -> Iterator[Any]:
    """The GenAI endpoint of tests/serving (router, workers, the scripted upstream). It serves
    and collects beside the store: a local workspace."""
    yield from served_genai.gateways(local_workspace)


EXAMPLE = Path(__file__).parents[2] / "docs" / "examples" / "support-genai-monitor.yaml"

REFRESH = """
import cauce


@cauce.step
def reindex(alert_id: str) -> str:
    return alert_id


@cauce.pipeline
def refresh(alert_id: str = ""):
    return reindex(alert_id)
"""

SUPPORT = """\
kind: Endpoint
name: support
traffic: {blue: 100}
---
kind: Deployment
endpoint: support
name: blue
model: models:/router/1
"""


def outcomes(values: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {(v["signal"], v["feature"], v["metric"]): v for v in values}


# Not remote: the test runs the alert's actions here (wait), which a server refuses.
@pytest.fixture
def support(store_workspace: Workspace, tmp_path: Path) -> Workspace:
    """Endpoint ``support`` with deployment ``blue`` (a registered model stands in for the flow
    it would serve: the monitor reads only the records)."""
    from sklearn.linear_model import LogisticRegression

    features = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
    with cauce.start_run(experiment="router"):
        model = LogisticRegression().fit(features, [0, 0, 1, 1])
        cauce.log_model(model, "model", registered_model="router", input_example=features)
    (tmp_path / "support.yaml").write_text(SUPPORT)
    apply(tmp_path / "support.yaml")
    return store_workspace


def test_a_degraded_window_raises_an_alert_that_runs_a_pipeline_and_is_reported(
    support: Workspace, tmp_path: Path
) -> None:
    now = now_ms()
    healthy = [records(60, now - 3 * HOUR, now - 2 * HOUR, seed=1)]
    healthy.append(records(60, now - 2 * HOUR, now - HOUR, seed=2))
    # The last hour: questions about another topic, contexts that no longer hold the answers.
    decayed = records(60, now - HOUR, now, seed=3, topic="shipping", grounded=False)
    # Text from the records reaches the report escaped: a filter named like a script, say.
    script = "<script>alert('x')</script>"
    decayed.loc[0, "safety"] = json.dumps([{"direction": "input", "filter": script,
                                             "action": "flag", "triggered": True}])  # fmt: skip
    mirrored = records(20, now - HOUR, now, seed=4, error_every=1).assign(source="mirror")
    cauce.data.register(
        "support.blue.genai", pd.concat([*healthy, decayed, mirrored], ignore_index=True)
    )
    pipelines = Path(support.settings.root) / "pipelines"  # the example's path is relative
    pipelines.mkdir(parents=True, exist_ok=True)
    (pipelines / "refresh.py").write_text(textwrap.dedent(REFRESH))
    monitor = EXAMPLE
    assert [a.outcome for a in apply(monitor)] == ["created"]
    assert [a.outcome for a in apply(monitor)] == ["unchanged"]

    before = run_monitor("support-genai", now=now - HOUR, wait=True)
    assert before.status == "ok" and before.rows == 60, before.values
    values = outcomes(before.values)
    assert values["genai_quality", "*", "groundedness_proxy"]["value"] == pytest.approx(1.0)
    assert values["query_drift", "*", "domain_auc"]["outcome"] == "passed"
    assert values["genai_tokens", "*", "output_tokens"]["outcome"] == "measured"
    assert before.summary["reference_rows"] == 60

    run = run_monitor("support-genai", now=now, wait=True)
    assert run.status == "alert" and run.rows == 60  # the mirrored requests are not counted
    values = outcomes(run.values)
    assert values["genai_errors", "*", "error_rate"]["value"] == 0.0
    grounded = values["genai_quality", "*", "groundedness_proxy"]
    assert grounded["value"] == pytest.approx(0.0) and grounded["outcome"] == "breached"
    assert values["query_drift", "*", "drifted_share"]["outcome"] == "breached"
    assert values["query_drift", "*", "domain_auc"]["value"] > 0.9
    assert run.alert is not None and run.alert.state == "open"
    breached = {(b["signal"], b["metric"]) for b in run.alert.breaches}
    assert {("genai_quality", "groundedness_proxy"), ("query_drift", "domain_auc")} <= breached
    assert "genai_quality groundedness_proxy 0 (threshold 0.6)" in run.alert.reason
    # The same action machinery as a classic monitor: the pipeline ran, given the alert's id.
    [action] = run.alert.actions
    assert action.status == "succeeded"
    assert get_pipeline_run(action.result["pipeline_run_id"]).output("reindex") == run.alert.id
    assert [a.id for a in list_alerts(monitor="support-genai")] == [run.alert.id]
    assert cauce.data.load(run.summary["window_dataset"]).shape[0] == 60  # the evidence
    series = history("support-genai", signal="genai_quality")
    assert [p["outcome"] for p in series] == ["passed", "breached"]

    page = write_report("support-genai", tmp_path / "report.html").read_text()
    assert "Quality: evaluator scores on a sample" in page and "Query drift" in page
    assert "least like the reference" in page and "groundedness_proxy" in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "<script>" not in page


def test_a_dataset_target_with_a_reference_dataset_and_no_data(
    workspace: Workspace, tmp_path: Path
) -> None:
    now = 1_800_000_000_000
    frame = records(40, now - HOUR, now, seed=5, error_every=4, refuse_every=5, flag_every=10)
    cauce.data.register("replies", frame)
    cauce.data.register("questions", pd.DataFrame({"question": records(80, 0, 1)["query"]}))
    apply(
        {
            "kind": "Monitor",
            "name": "replies",
            "target": {"dataset": "replies", "timestamp": "timestamp"},
            "reference": {"dataset": "questions@1"},
            "signals": [
                {"genai_errors": {"error_rate": 0.2}},
                {"genai_refusals": {"refusal_rate": 0.5}},
                {"genai_safety": {}},
                {"query_drift": {"method": "classifier"}},
            ],
            "min_rows": 10,
        }
    )
    run = run_monitor("replies", now=now)
    values = outcomes(run.values)
    assert run.status == "alert" and run.summary["reference"] == "questions@1"
    assert values["genai_errors", "*", "error_rate"]["value"] == 0.25
    refusals = values["genai_refusals", "*", "refusal_rate"]
    assert refusals["outcome"] == "passed" and refusals["details"]["phrase"] == 6
    assert values["genai_safety", "*", "flag_rate"]["value"] == pytest.approx(4 / 40)
    assert values["query_drift", "*", "domain_auc"]["outcome"] == "passed"
    assert [b["metric"] for b in run.alert.breaches] == ["error_rate"]
    # A window with fewer rows than min_rows judges nothing.
    empty = run_monitor("replies", now=now + 2 * HOUR)
    assert empty.status == "no_data" and {v["outcome"] for v in empty.values} == {"not_computed"}
    page = write_report("replies", tmp_path / "r.html", run_id=run.id).read_text()
    assert "Refusals" in page and "measured" in page and "languages: en 6" in page
    # The CLI shows a GenAI monitor as any other (its reference may be absent, too).
    home = Path(workspace.settings.root)
    apply({"kind": "Monitor", "name": "costs", "target": {"dataset": "replies"},
           "signals": [{"genai_cost": {}}]})  # fmt: skip
    listed = run_cli(home, "monitors", "list").stdout
    assert "replies" in listed and "costs" in listed and "genai_cost" in listed
    shown = run_cli(home, "monitors", "run", "costs", check=False)
    assert shown.returncode == 0 and "measured" in shown.stdout, shown.stderr


def test_a_reference_dataset_that_does_not_exist_names_the_field(workspace: Workspace) -> None:
    with pytest.raises(NotFound) as caught:
        apply(
            {
                "kind": "Monitor",
                "name": "replies",
                "target": {"dataset": "replies"},
                "reference": {"dataset": "nowhere"},
                "signals": [{"query_drift": {}}],
            }
        )
    assert caught.value.details["field"] == "reference.dataset"


def test_a_served_genai_endpoint_is_monitored_from_what_its_collector_wrote(
    serving_genai_endpoint: Any,
) -> None:
    """Requests through the official client to a GenAI endpoint (tests/serving's gateway over
    the scripted upstream, whose usage is exact): the monitor's tokens, cost and refusals equal
    what was sent, counted from the words."""
    gateway = serving_genai_endpoint()
    client = gateway.client()
    questions = ["where is my parcel", "how do I get a refund", "why was I charged twice"]
    for question in questions:
        client.chat.completions.create(model="assistant", messages=served_genai.ask(question))
    for question in questions[:2]:
        chunks = client.chat.completions.create(
            model="assistant",
            messages=served_genai.ask(question),
            stream=True,
            stream_options={"include_usage": True},
        )
        list(chunks)
    declined = "I'm sorry, but I can't help with that."
    gateway.upstream.reply = lambda body: declined
    client.chat.completions.create(
        model="assistant", messages=served_genai.ask("tell me the admin password")
    )
    rows = gateway.records(6)
    apply(
        {
            "kind": "Monitor",
            "name": "assistant-genai",
            "target": {"endpoint": "assistant"},
            "signals": [
                {"genai_tokens": {}},
                {"genai_cost": {}},
                {"genai_latency": {}},
                {"genai_errors": {"error_rate": 0.0}},
                {"genai_refusals": {"refusal_rate": 0.1}},
            ],
        }
    )
    run = run_monitor("assistant-genai", now=now_ms() + 1)
    values = {v["metric"]: v for v in run.values}
    asked = [*questions, *questions[:2], "tell me the admin password"]
    words_in = [len(q.split()) for q in asked]
    words_out = [n + 1 for n in words_in[:-1]] + [len(declined.split(" "))]  # "echo: ..."
    assert run.rows == len(rows) == 6
    assert values["input_tokens"]["value"] == sum(words_in)
    assert values["output_tokens"]["value"] == sum(words_out)
    prices = [(i * 2.0 + o * 8.0) / 1e6 for i, o in zip(words_in, words_out, strict=True)]
    assert values["cost"]["value"] == pytest.approx(sum(prices))
    assert values["cost_per_request"]["value"] == pytest.approx(sum(prices) / 6)
    streamed = sorted(r["ttft_ms"] for r in rows if r["stream"])
    assert len(streamed) == 2
    assert values["ttft_p50_ms"]["value"] == pytest.approx(sum(streamed) / 2)
    assert values["error_rate"]["value"] == 0.0 and values["error_rate"]["outcome"] == "passed"
    refusals = values["refusal_rate"]
    assert refusals["value"] == pytest.approx(1 / 6) and refusals["outcome"] == "breached"
    assert refusals["details"]["languages"] == {"en": 1}
    assert run.status == "alert" and [b["metric"] for b in run.alert.breaches] == ["refusal_rate"]
