"""The UI's pages as HTTP answers (no browser): what each shows, how errors read, sign-in by
cookie and the rule that keeps other sites from writing with it. The browser tests are in
tests/ui."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import cauce
from builders import ASSISTANT, assistant_rollout
from cauce.server.app import create_app
from cauce.server.tokens import create_token
from cauce.server.ui import TOKEN_COOKIE
from cauce.workspace import Workspace


def _log(ws: Workspace) -> list[str]:
    ids = []
    for i in range(3):
        with cauce.start_run(experiment="churn", run_name=f"trial-{i}") as run:
            cauce.log_params({"lr": 0.1 * (i + 1), "model": "forest" if i else "linear"})
            cauce.log_metric("auc", 0.7 + 0.1 * i)
            for step in range(50):
                cauce.log_metric("loss", 1 / (step + 1 + i), step=step)
        ids.append(run.info.run_id)
    return ids


@pytest.fixture
def client(local_workspace: Workspace) -> Iterator[TestClient]:
    """The app over a local workspace with no token: authentication off, as ``cauce ui``."""
    with TestClient(create_app(local_workspace), base_url="http://t") as found:
        yield found


def test_the_pages_show_experiments_runs_a_run_and_a_comparison(
    client: TestClient, local_workspace: Workspace
) -> None:
    ids = _log(local_workspace)
    assert client.get("/ui", follow_redirects=False).headers["location"] == "/ui/experiments"
    cauce.set_experiment_tags("churn", {"team": "growth"})
    page = client.get("/ui/experiments").text
    assert 'href="/ui/runs?experiment=churn"' in page
    assert '<span class="chip">team=growth</span>' in page
    table = client.get("/ui/runs", params={"experiment": "churn", "order": "metrics.auc DESC"})
    assert table.status_code == 200
    text = table.text
    assert text.index("trial-2") < text.index("trial-1") < text.index("trial-0")
    assert 'aria-sort="descending"' in text and "auc ↓" in text
    filtered = client.get("/ui/runs", params={"filter": "metrics.auc > 0.75"}).text
    assert "trial-2" in filtered and "trial-1" in filtered and "trial-0" not in filtered
    # htmx asks for the table alone; the page's own filter box is not in it.
    part = client.get("/ui/runs", params={"filter": "params.model = 'linear'"},
                      headers={"HX-Request": "true"}).text  # fmt: skip
    assert "trial-0" in part and "trial-1" not in part and 'id="filter"' not in part
    chosen = client.get("/ui/runs", params={"col": "params.model"}).text
    assert ">model</a>" in chosen and ">lr</a>" not in chosen
    run = client.get(f"/ui/runs/{ids[0]}").text
    assert "trial-0" in run and 'data-key="loss"' in run and "forest" not in run
    # auc was logged once: a score in a table, not a chart of one point.
    assert 'data-key="auc"' not in run
    assert re.search(r'<th scope="row">auc</th><td class="num">0.7</td>', run)
    compare = client.get("/ui/compare", params=[("run", ids[0]), ("run", ids[2])]).text
    assert 'data-key="loss"' in compare and 'data-key="auc"' not in compare
    assert '<tr class="differs"><th scope="row">lr</th>' in compare
    assert '<tr class="differs"><th scope="row">model</th>' in compare
    # The sweep: an axis per differing param and per metric, a line per run.
    every = client.get("/ui/compare", params=[("run", i) for i in ids]).text
    assert every.count("<polyline") == 3 and every.count('class="axis') == 4  # lr, model, auc, loss
    assert "<title>trial-1</title>" in every
    # Coloured blue (low loss) through violet to red (high), never the charts' run colours.
    hues = [int(h) for h in re.findall(r"--hue: (\d+)", every)]
    assert len(hues) == 3 and hues[0] != hues[2]
    assert all(h >= 220 or h <= 20 for h in hues)


def test_a_pages_unexpected_failure_reads_as_a_page(
    local_workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    import cauce.data.assets
    import cauce.tracking.series

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug's own words")

    monkeypatch.setattr(cauce.data.assets, "list_datasets", broken)
    monkeypatch.setattr(cauce.tracking.series, "metric_series", broken)
    app = create_app(local_workspace)
    with TestClient(app, base_url="http://t", raise_server_exceptions=False) as client:
        page = client.get("/ui/datasets")
        assert page.status_code == 500 and page.headers["content-type"].startswith("text/html")
        assert "Something went wrong on the server" in page.text and 'role="alert"' in page.text
        assert "a bug's own words" not in page.text  # what went wrong is in the server's log
        data = client.get("/ui/series", params={"run": "x", "key": "loss"})  # a chart's JSON
        assert data.status_code == 500 and data.json()["error"]["code"] == "internal-error"


def test_errors_read_as_messages_never_as_a_blank_page(client: TestClient) -> None:
    bad = client.get("/ui/runs", params={"filter": "metrics.auc >>> 1"})
    assert bad.status_code == 200 and 'role="alert"' in bad.text and "filter" in bad.text
    missing = client.get("/ui/runs/0123456789abcdef0123456789abcdef")
    assert (
        missing.status_code == 404 and "does not exist" in missing.text and "<h1>" in missing.text
    )
    assert client.get("/ui/nowhere").status_code == 404
    one = client.get("/ui/compare", params={"run": "x"})
    assert one.status_code == 422 and "two runs or more" in one.text
    # The error page still says who is looking and what they may do (here a laptop's admin).
    assert re.search(r'title="signed in as">\w', one.text) and ">viewer<" not in one.text
    # The charts' data route answers JSON, errors included.
    series = client.get("/ui/series", params={"run": "x", "key": "loss", "points": "1"})
    assert series.status_code == 422 and series.json()["error"]["details"]["field"] == "points"
    assert client.get("/ui/static/../app.py").status_code == 404
    assert (
        client.get("/ui/static/vendor/htmx-2.0.11.min.js")
        .headers["cache-control"]
        .endswith("immutable")
    )


def test_a_browser_signs_in_with_a_cookie_that_cannot_write_from_elsewhere(
    local_workspace: Workspace,
) -> None:
    _, viewer = create_token("vera", "viewer", home=local_workspace)
    _, editor = create_token("eddie", "editor", home=local_workspace)
    with TestClient(create_app(local_workspace), base_url="http://t") as client:
        answer = client.get("/ui/experiments", follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"] == "/ui/login"
        assert client.get("/ui/login").status_code == 200  # open, as are the assets
        assert client.get("/ui/static/cauce.css").status_code == 200
        wrong = client.post("/ui/login", data={"token": "ct-wrong"}, follow_redirects=False)
        assert wrong.status_code == 401 and "ct-wrong" not in wrong.text
        signed = client.post("/ui/login", data={"token": viewer}, follow_redirects=False)
        assert signed.status_code == 303
        cookie = signed.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and TOKEN_COOKIE in cookie
        page = client.get("/ui/experiments")
        assert page.status_code == 200 and "vera" in page.text and ">viewer</span>" in page.text

        client.cookies.clear()
        client.cookies.set(TOKEN_COOKIE, editor)
        assert ">viewer</span>" not in client.get("/ui/experiments").text
        # A write on the cookie alone, as a form on another site would send it: refused.
        forged = client.post("/api/v1/experiments", json={"name": "forged"})
        assert forged.status_code == 403
        assert "must come from the UI" in forged.json()["error"]["message"]
        made = client.post("/api/v1/experiments", json={"name": "made"},
                           headers={"HX-Request": "true"})  # fmt: skip
        assert made.status_code == 200, made.text
        assert client.post("/ui/logout", headers={"HX-Request": "true"},
                           follow_redirects=False).status_code == 303  # fmt: skip


def _models(versions: int = 2) -> None:
    from sklearn.linear_model import LogisticRegression

    for c in (1.0, 0.1, 0.01)[:versions]:
        model = LogisticRegression(C=c).fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
        with cauce.start_run(experiment="churn"):
            cauce.log_model(model, "model", registered_model="churn")


def test_the_registry_pages_and_an_alias_moved_from_the_page(
    client: TestClient, local_workspace: Workspace
) -> None:
    from cauce.registry.models import get_model

    _models()
    listed = client.get("/ui/models").text
    assert 'href="/ui/models/churn"' in listed and "v2" in listed
    page = client.get("/ui/models/churn").text
    assert "No alias has moved yet." in page and 'hx-post="/ui/models/churn/aliases"' in page
    form = {"alias": "champion", "version": "1", "reason": "best auc"}
    moved = client.post("/ui/models/churn/aliases", headers={"HX-Request": "true"}, data=form)
    assert moved.status_code == 200 and '<section id="aliases"' in moved.text
    assert get_model("churn").aliases == {"champion": 1}
    assert "<td>champion</td><td>—</td><td>v1</td>" in moved.text
    refused = client.post("/ui/models/churn/aliases", headers={"HX-Request": "true"},
                          data={"alias": "latest", "version": "2"})  # fmt: skip
    assert refused.status_code == 422 and "cannot be an alias" in refused.text
    assert refused.headers["hx-retarget"] == "#flash"  # the form stays as typed
    assert get_model("churn").aliases == {"champion": 1}
    version = client.get("/ui/models/churn/versions/1").text
    assert "champion" in version and "Model card" in version and "model.skops" in version
    assert client.get("/ui/models/churn/versions/9").status_code == 404
    assert client.get("/ui/models/nope").status_code == 404


def test_a_viewer_sees_no_write_form_and_cannot_post_one(local_workspace: Workspace) -> None:
    _models(1)
    _, viewer = create_token("vera", "viewer", home=local_workspace)
    with TestClient(create_app(local_workspace), base_url="http://t") as client:
        client.cookies.set(TOKEN_COOKIE, viewer)
        page = client.get("/ui/models/churn").text
        assert "Move alias" not in page and "hx-post" not in page.split('id="aliases"')[1]
        refused = client.post("/ui/models/churn/aliases", headers={"HX-Request": "true"},
                              data={"alias": "champion", "version": "1"})  # fmt: skip
        assert refused.status_code == 403


def test_the_data_pages_show_versions_profiles_and_failing_rows(
    client: TestClient, local_workspace: Workspace
) -> None:
    import pandas as pd

    from cauce.data.checks import validate

    frame = pd.DataFrame({"amount": [1.0, 2.0, 3.0, -1.0], "currency": ["EUR", None, "USD", "EUR"],
                          "placed": pd.to_datetime(["2026-01-02", "2026-03-04"] * 2)})  # fmt: skip
    cauce.data.register("orders", frame)
    cauce.data.register("orders", frame.assign(amount=frame.amount * 2))
    suite = {"kind": "CheckSuite", "name": "orders-bar",
             "checks": [{"not_null": {"column": "currency"}}]}  # fmt: skip
    validate("orders@2", suite, raise_on_failure=False)
    listed = client.get("/ui/datasets").text
    assert 'href="/ui/datasets/orders"' in listed and "v2" in listed
    page = client.get("/ui/datasets/orders").text
    assert "orders@2" in page and 'class="histogram"' in page and "EUR" in page
    assert "2026-01-02T00:00:00 … 2026-03-04T00:00:00" in page  # a time's range, and no mean
    assert "orders-bar" in page and "Rows that failed" in page and "failed" in page
    assert '<th scope="col">Row</th>' in page and ">_row<" not in page
    older = client.get("/ui/datasets/orders", params={"version": "1"}).text
    assert "orders@1" in older and "No check suite has run on this version" in older
    assert client.get("/ui/datasets/orders", params={"version": "7"}).status_code == 404
    assert client.get("/ui/datasets/orders", params={"version": "x"}).status_code == 422
    assert client.get("/ui/datasets/nope").status_code == 404


def measured(ws: Workspace, deployment: str, at: int, requests: int = 20) -> None:
    """What the endpoint's router would store for ``deployment`` in the second before ``at``."""
    from cauce.serving.endpoints import get_endpoint
    from cauce.serving.metrics import Window, store_windows

    window = Window()
    for _ in range(requests):
        window.observe(12.0, False)
    endpoint_id = get_endpoint("assistant", workspace=ws).id
    store_windows(ws, "assistant", endpoint_id, at - 1000, at, {(deployment, "live"): window})


def test_the_endpoint_page_shows_traffic_measurements_and_the_rollouts_decisions(
    client: TestClient, local_workspace: Workspace
) -> None:
    from cauce.serving import rollouts
    from cauce.specs import apply
    from cauce.store import now_ms

    apply(ASSISTANT)
    assert 'href="/ui/endpoints/assistant"' in client.get("/ui/endpoints").text
    page = client.get("/ui/endpoints/assistant").text
    assert "blue 100%" in page and "No rollout yet" in page
    started = rollouts.start(
        assistant_rollout(steps=[{"weight": 20, "pause": "1s"}, {"weight": 100}])
    )
    measured(local_workspace, "green", now_ms(), requests=30)
    page = client.get("/ui/endpoints/assistant").text
    assert "blue 80%" in page and "green 20%" in page
    assert '<td class="num">30</td>' in page  # green's requests, as the router stored them
    assert 'hx-trigger="every 2s"' in page and ">start</strong>" in page
    assert started.next_analysis_at is not None
    rollouts.tick(now=started.next_analysis_at + 1)
    part = client.get("/ui/endpoints/assistant/rollout", headers={"HX-Request": "true"}).text
    assert ">pass</strong>" in part and "error_rate 0 ≤ 0.05" in part
    htmx = {"HX-Request": "true"}
    aborted = client.post(
        "/ui/endpoints/assistant/rollout/abort", headers=htmx, data={"reason": "seen in the UI"}
    )
    assert aborted.status_code == 200 and "aborted" in aborted.text
    assert aborted.headers["hx-refresh"] == "true"  # the traffic moved back: the whole page
    assert "seen in the UI" in aborted.text and "every 2s" not in aborted.text
    assert rollouts.status("assistant").state == "aborted"
    again = client.post("/ui/endpoints/assistant/rollout/abort", headers={"HX-Request": "true"})
    assert again.status_code == 409 and again.headers["hx-retarget"] == "#flash"
    assert client.post("/ui/endpoints/assistant/rollout/nope",
                       headers={"HX-Request": "true"}).status_code == 404  # fmt: skip
    # A failed measurement reads as what it is: above its bound.
    again_started = rollouts.start(assistant_rollout(steps=[{"weight": 20}, {"weight": 100}]))
    bad = {"value": 0.5, "max": 0.05, "ok": False, "why": "error_rate 0.5 > max 0.05"}
    rollouts.judge(again_started.id, {"error_rate": bad}, now_ms())
    part = client.get("/ui/endpoints/assistant/rollout", headers={"HX-Request": "true"}).text
    assert ">fail</strong>" in part and "error_rate 0.5 &gt; 0.05" in part  # not "0.5 ≤ 0.05"


def _drifting(ws: Workspace) -> str:
    """Monitor churn-drift run twice, on production as trained then drifted; the alert's id."""
    from builders import customers, drift_monitor
    from cauce.monitoring.monitors import run_monitor
    from cauce.specs import apply

    cauce.data.register("training", customers(600, 0))
    cauce.data.register("production", customers(300, 1))
    apply(drift_monitor([{"log": {"level": "info"}}]))
    run_monitor("churn-drift", now=1_800_000_000_000)
    cauce.data.register("production", customers(300, 2, shift=25.0))
    drifted = run_monitor("churn-drift", now=1_800_003_600_000, wait=True)
    assert drifted.alert is not None
    return drifted.alert.id


def test_the_monitor_pages_show_values_over_time_alerts_and_actions(
    client: TestClient, local_workspace: Workspace
) -> None:
    alert_id = _drifting(local_workspace)
    listed = client.get("/ui/monitors").text
    assert 'href="/ui/monitors/churn-drift"' in listed and "production" in listed
    page = client.get("/ui/monitors/churn-drift").text
    assert page.count('class="chart inline breached"') >= 1
    assert 'data-feature="charges"' in page and "threshold" in page
    assert f'href="/ui/alerts/{alert_id}"' in page and "log: succeeded" in page
    # A run over too small a window says why; its signal, never computed, draws no chart.
    from builders import drift_monitor
    from cauce.monitoring.monitors import run_monitor
    from cauce.specs import apply

    apply(drift_monitor(name="too-few", min_rows=1000))
    assert run_monitor("too-few", now=1_800_000_000_000).status == "no_data"
    page = client.get("/ui/monitors/too-few").text
    assert "<td>the window has 300 rows, fewer than min_rows 1000</td>" in page
    assert "chart inline" not in page and "No value computed yet" in page
    shown = client.get(f"/ui/alerts/{alert_id}").text
    assert "charges" in shown and "succeeded" in shown and "logged" in shown
    assert "<h3>log <span" in shown  # a log action acts on nothing else: not "log log"
    assert client.get("/ui/alerts/zzzz").status_code == 404


def test_lineage_audit_and_a_trace_tree(client: TestClient, local_workspace: Workspace) -> None:
    import pandas as pd

    from cauce.genai import tracing
    from cauce.registry.models import get_version

    version = cauce.data.register("customers", pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]}))
    from sklearn.linear_model import LogisticRegression

    with cauce.start_run(experiment="churn"):
        cauce.log_input(version.ref, context="training")
        model = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
        cauce.log_model(model, "model", registered_model="churn")
    model_version = get_version("churn", 1)
    graph = client.get(f"/ui/lineage/model_version/{model_version.id}").text
    assert f'href="/ui/lineage/dataset_version/{version.id}"' in graph  # its data, upstream
    assert 'class="node run"' in graph and 'class="node model_version root"' in graph
    unknown = client.get("/ui/lineage/model_version/nope").text
    assert "Nothing is recorded as made from it or read by it." in unknown

    log = client.get("/ui/audit", params={"action": "model.*"}).text
    shown = re.findall(r"<td>([a-z_]+\.[a-z_.]+)</td>", log.split("<tbody>")[1])
    assert "model.create" in shown and all(a.startswith("model.") for a in shown)

    with (
        tracing.span("answer", operation="invoke_agent") as root,
        tracing.span("retrieval docs", operation="retrieval"),
        tracing.span("embed query", operation="embeddings"),
    ):
        pass
    tracing.flush(local_workspace)
    assert "answer" in client.get("/ui/traces").text
    tree = client.get(f"/ui/traces/{root.trace_id}").text
    assert tree.index("answer") < tree.index("retrieval docs") < tree.index("embed query")
    assert 'aria-level="3"' in tree
    took = re.search(r"<dt>Took</dt><dd>([\d.]+) ms</dd>", tree)  # the root span's, not "0 ms"
    assert took is not None and 0 < float(took.group(1)) < 1000
    assert client.get("/ui/traces/abc").status_code == 422
    assert client.get(f"/ui/traces/{root.trace_id[:4]}").text == tree  # a start, as in the CLI
    cauce.prompts.register("greet", "Hello {{ name }}")
    tracing.link_prompts(root.trace_id, ["prompts:/greet/1"])
    linked = client.get(f"/ui/traces/{root.trace_id}").text
    assert '<dt>Prompts</dt><dd><a href="/ui/prompts/greet?b=1">greet v1</a></dd>' in linked
    tracing.log_expectation(root.trace_id, "expected_response", "It ships Monday.")
    expected = client.get(f"/ui/traces/{root.trace_id}").text
    assert "<h2>Expected</h2>" in expected
    assert "<td>expected_response</td><td><code>&#34;It ships Monday.&#34;</code></td>" in expected
    tracing.set_trace_tags(root.trace_id, {"verdict": "good", "golden": ""})
    tagged = client.get(f"/ui/traces/{root.trace_id}").text
    assert '<a class="chip" href="/ui/traces?tag=verdict%3Dgood">verdict=good</a>' in tagged
    assert '<a class="chip" href="/ui/traces?tag=golden">golden</a>' in tagged
    # The list is filtered by name and status, from what is stored.
    with pytest.raises(RuntimeError), tracing.span("lookup", operation="invoke_agent"):
        raise RuntimeError("no index")
    tracing.flush(local_workspace)
    listed = client.get("/ui/traces").text
    assert "<option>answer</option>" in listed and "<option>lookup</option>" in listed
    failed = client.get("/ui/traces", params={"status": "error"}).text.split("<tbody>")[1]
    assert ">lookup</a>" in failed and ">answer</a>" not in failed
    none = client.get("/ui/traces", params={"status": "error", "name": "answer"}).text
    assert "No error trace of answer is stored." in none
    by_tag = client.get("/ui/traces", params={"tag": "verdict=good"}).text.split("<tbody>")[1]
    assert ">answer</a>" in by_tag and ">lookup</a>" not in by_tag
    assert 'name="tag" value="verdict=good"' in client.get("/ui/traces?tag=verdict%3Dgood").text
    bad = client.get("/ui/traces", params={"status": "failed"})
    assert bad.status_code == 422 and "status is ok or error" in bad.text
    # A trace made in a run links to it, and to the run's other traces.
    with cauce.start_run(experiment="churn") as run, tracing.span("in a run"):
        pass
    tracing.flush(local_workspace)
    [made] = tracing.list_traces(run_id=run.run_id)
    page = client.get(f"/ui/traces/{made.id}").text
    assert f'<a href="/ui/runs/{run.run_id}">{run.run_id[:8]}</a>' in page
    of_run = client.get("/ui/traces", params={"run": run.run_id}).text.split("<tbody>")[1]
    assert ">in a run</a>" in of_run and ">answer</a>" not in of_run


def test_traces_are_paged_and_grouped_by_session_and_user(
    client: TestClient, local_workspace: Workspace
) -> None:
    from cauce.genai import tracing
    from cauce.server.ui.lineage import TRACES_SHOWN

    with tracing.session("chat-1", user_id="ana"), tracing.span("turn") as first:
        pass
    time.sleep(0.002)  # older than the others by a clear millisecond
    with tracing.session("chat-2", user_id="bo"):
        for _ in range(TRACES_SHOWN):
            with tracing.span("turn"):
                pass
    tracing.flush(local_workspace)
    page = client.get("/ui/traces").text
    assert page.count('href="/ui/traces?session=chat-2"') == TRACES_SHOWN
    older = re.search(r'<a href="(/ui/traces\?before=[0-9a-f]{32})" rel="next">Older</a>', page)
    assert older is not None
    last = client.get(older.group(1)).text
    assert f"/ui/traces/{first.trace_id}" in last and 'rel="next"' not in last
    assert '<a href="/ui/traces?">Newest</a>' in last
    of_ana = client.get("/ui/traces", params={"user": "ana"}).text
    assert "Traces of user ana" in of_ana and f"/ui/traces/{first.trace_id}" in of_ana
    assert 'href="/ui/traces?session=chat-2"' not in of_ana
    tracing.log_feedback(first.trace_id, "helpful", 0, "wrong", "asked for the parcel")
    tree = client.get(f"/ui/traces/{first.trace_id}").text
    assert '<dt>Session</dt><dd><a href="/ui/traces?session=chat-1">chat-1</a>' in tree
    feedback = tree.split("<h2>Evaluations and feedback</h2>")[1].split("</table>")[0]
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", feedback)
    assert cells == ["helpful", "0", "wrong", "asked for the parcel", "turn"]
    of_ana = client.get("/ui/traces", params={"user": "ana"}).text
    assert '<span class="score">helpful 0</span>' in of_ana
    sessions = client.get("/ui/sessions").text.split("<tbody>")[1]
    assert sessions.index("chat-2") < sessions.index("chat-1")
    row = (
        rf">chat-2</a></td>\s*<td><a [^>]*>bo</a></td>\s*<td class=\"num\"><a [^>]*>{TRACES_SHOWN}<"
    )
    assert re.search(row, sessions)
    people = client.get("/ui/users").text.split("<tbody>")[1]
    assert people.index(">bo</a>") < people.index(">ana</a>")
    assert '<a href="/ui/sessions?user=ana">1</a>' in people
    none = client.get("/ui/sessions", params={"user": "cy"}).text
    assert "No session of user cy is stored." in none
    empty = client.get("/ui/traces", params={"session": "nope"}).text
    assert "No trace in session nope is stored." in empty
    recent = client.get("/ui/traces", params={"since": "1h", "user": "ana"}).text
    assert f"/ui/traces/{first.trace_id}" in recent
    assert '<option value="1h" selected>the last 1h</option>' in recent
    bad = client.get("/ui/traces", params={"since": "2h"})
    assert bad.status_code == 422 and "since is one of 1h, 24h, 7d, 30d" in bad.text


def test_sessions_and_users_pages_are_paged_and_summed_over_a_window(
    client: TestClient, local_workspace: Workspace
) -> None:
    from cauce.genai import tracing
    from cauce.server.ui.lineage import TRACES_SHOWN

    now = int(time.time() * 1000)
    spans, summaries = [], []
    # One session a day old (ana's), then TRACES_SHOWN sessions of bo's, a ms apart.
    for n, (session, user, at) in enumerate(
        [("yesterday", "ana", now - 86_400_000 - 60_000)]
        + [(f"s-{k:03d}", "bo", now - 1000 + k) for k in range(TRACES_SHOWN)]
    ):
        trace_id, span_id = f"{n + 1:032x}", f"{n + 1:016x}"
        spans.append(
            tracing.FinishedSpan(
                trace_id=trace_id, span_id=span_id, parent_id=None, name="turn",
                kind="internal", operation=None, started_ns=at * 10**6,
                ended_ns=at * 10**6 + 1, status="ok", status_message=None, input_tokens=None,
                output_tokens=None, cost=None, attributes={}, events=[],
            )
        )  # fmt: skip
        summaries.append(
            tracing.FinishedTrace(
                id=trace_id, name="turn", root_span_id=span_id, started_at=at, ended_at=at,
                status="ok", span_count=1, input_tokens=3, output_tokens=4, cost=None,
                session_id=session, user_id=user,
            )
        )  # fmt: skip
    tracing.record_spans(spans, summaries, workspace=local_workspace)

    first = client.get("/ui/sessions").text
    assert "s-099" in first and "yesterday" not in first
    older = re.search(r'<a href="(/ui/sessions\?before=s-000)" rel="next">Older</a>', first)
    assert older is not None
    last = client.get(older.group(1)).text
    assert ">yesterday</a>" in last and 'rel="next"' not in last
    assert '<a href="/ui/sessions?">Latest</a>' in last
    recent = client.get("/ui/sessions", params={"since": "24h", "user": "bo"}).text
    assert "s-099" in recent and "yesterday" not in recent
    assert re.search(
        r'href="/ui/sessions\?user=bo&amp;since=24h&amp;before=s-000" rel="next"', recent
    )
    assert 'href="/ui/traces?session=s-099&amp;since=24h">1</a>' in recent
    none = client.get("/ui/sessions", params={"since": "1h", "user": "ana"}).text
    assert "No session of user ana is stored with a trace from the last 1h." in none
    people = client.get("/ui/users", params={"since": "24h"}).text.split("<tbody>")[1]
    assert ">bo</a>" in people and ">ana</a>" not in people
    assert f'href="/ui/sessions?user=bo&amp;since=24h">{TRACES_SHOWN}</a>' in people
    everyone = client.get("/ui/users").text.split("<tbody>")[1]
    assert everyone.index(">bo</a>") < everyone.index(">ana</a>")
    bad = client.get("/ui/users", params={"since": "2h"})
    assert bad.status_code == 422 and "since is one of 1h, 24h, 7d, 30d" in bad.text


def test_the_scores_page_sums_what_evaluations_and_feedback_said(
    client: TestClient, local_workspace: Workspace
) -> None:
    from cauce.genai import tracing

    made = []
    for session, user in (("chat-1", "ana"), ("chat-1", "ana"), ("chat-2", "bo")):
        with tracing.session(session, user_id=user), tracing.span("qa") as root:
            pass
        made.append(root.trace_id)
    tracing.log_feedback(made[0], "helpful", 1, "right")
    tracing.log_feedback(made[1], "helpful", 0, "wrong")
    tracing.log_feedback(made[2], "tone", None, "curt")
    page = client.get("/ui/scores").text
    rows = page.split("<tbody>")[1].split("</tr>")
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", row, re.S) for row in rows[:2]]
    assert cells[0][:6] == ["helpful", "2", "2", "0.5", "0", "1"]
    assert '<span class="score">right 1</span>' in cells[0][6]
    assert cells[1][:6] == ["tone", "1", "0", "—", "—", "—"]
    of_bo = client.get("/ui/scores", params={"user": "bo", "since": "1h"}).text
    assert ">tone</td>" in of_bo and ">helpful</td>" not in of_bo
    assert '<a href="/ui/traces?user=bo&amp;since=1h">these traces</a>' in of_bo
    none = client.get("/ui/scores", params={"session": "chat-3"}).text
    assert "No trace in session chat-3 has a score." in none
    tracing.set_trace_tags(made[0], {"arm": "b"})
    arm_b = client.get("/ui/scores", params={"tag": "arm=b"}).text
    assert ">helpful</td>" in arm_b and ">tone</td>" not in arm_b
    assert 'name="tag" value="arm=b"' in arm_b
    by_tag = client.get("/ui/traces", params={"tag": "arm=b"}).text
    assert '<a href="/ui/scores?tag=arm%3Db">Scores</a>' in by_tag
    listed = client.get("/ui/traces", params={"user": "ana", "status": "ok"}).text
    assert '<a href="/ui/scores?user=ana">Scores</a>' in listed
    conversation = client.get("/ui/sessions/chat-1").text
    assert 'href="/ui/scores?session=chat-1">summed by name</a>' in conversation


def test_a_session_reads_as_its_conversation(
    client: TestClient, local_workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cauce.genai import tracing

    with tracing.session("chat/42", user_id="ana"):
        with tracing.span("qa", operation="invoke_agent") as first:
            first.content("cauce.input", {"question": "where is my parcel?"})
            first.content("cauce.output", {"answer": "On its way:\nit left Madrid today."})
        time.sleep(0.002)
        with pytest.raises(RuntimeError), tracing.span("qa", operation="invoke_agent") as second:
            second.content("cauce.input", {"question": "and <b>when</b> does it arrive?"})
            raise RuntimeError("the model is down")
    tracing.log_feedback(first.trace_id, "helpful", 1)
    tracing.log_feedback(second.trace_id, "tone", None, "curt")
    page = client.get("/ui/sessions/chat/42").text
    assert "<h1>Session chat/42</h1>" in page and 'href="/ui/traces?user=ana">ana</a>' in page
    rows = page.split("<tbody>")[1].split("</tr>")
    assert "where is my parcel?" in rows[0] and "On its way:\nit left Madrid today." in rows[0]
    assert '<span class="score">helpful 1</span>' in rows[0]
    assert 'class="failed"' in rows[1] and "and &lt;b&gt;when&lt;/b&gt; does it arrive?" in rows[1]
    assert f'href="/ui/traces/{second.trace_id}"' in rows[1]
    assert '<span class="score">tone curt</span>' in rows[1]
    listed = client.get("/ui/sessions").text
    assert 'href="/ui/sessions/chat/42">chat/42</a>' in listed
    missing = client.get("/ui/sessions/nope")
    assert missing.status_code == 404 and "no session nope" in missing.text
    # A session longer than the page shows its first turns with their own scores.
    monkeypatch.setattr("cauce.server.ui.lineage.SESSION_TURNS", 1)
    first_only = client.get("/ui/sessions/chat/42").text
    assert "The first 1 traces of the session." in first_only
    assert '<span class="score">helpful 1</span>' in first_only and "curt" not in first_only


@cauce.step
def _load(n: int) -> list[int]:
    return list(range(n))


@cauce.step
def _double(xs: list[int]) -> list[int]:
    return [x * 2 for x in xs]


@cauce.step
def _total(xs: list[int], ys: list[int]) -> int:
    return sum(xs) + sum(ys)


@cauce.pipeline
def sums(n: int = 3) -> int:
    xs = _load(n)
    return _total(xs, _double(xs))


def test_a_pipeline_run_is_drawn_as_its_dag(client: TestClient, local_workspace: Workspace) -> None:
    sums.run(n=4)
    again = sums.run(n=4)  # every step from the cache
    listed = client.get("/ui/pipelines").text
    assert listed.count("sums</a>") == 2 and f'href="/ui/pipelines/{again.id}"' in listed
    # Each run counts its steps, and those the cache answered: 3 and 3, then 3 and 0.
    counts = re.findall(r'<td class="num">(\d+)</td>\s*<td class="num">(\d+)</td>', listed)
    assert counts == [("3", "3"), ("3", "0")]
    page = client.get(f"/ui/pipelines/{again.id}").text
    assert page.count('class="step succeeded cached"') == 3
    assert page.index('data-step="_load"') < page.index('data-step="_double"')
    assert page.count('class="edge"') == 3  # load → double, load → total, double → total
    assert "xs ← _load, ys ← _double" in page
    took = re.search(r"<dt>Took</dt><dd>(<1|\d+) ms</dd>", page)  # a quick run, in ms, not "0.0 s"
    assert took is not None and (took.group(1) == "<1" or int(took.group(1)) < 1000)
    assert client.get("/ui/pipelines/nope").status_code == 404


def test_a_prompts_versions_diff_and_labels(client: TestClient, local_workspace: Workspace) -> None:
    from cauce.genai import prompts
    from cauce.genai.prompts import set_label
    from cauce.specs import apply

    for text in ("Be brief.", "Be brief and kind."):
        apply([{"kind": "Prompt", "name": "support",
                "messages": [{"role": "system", "content": text}]}])  # fmt: skip
    set_label("support", "production", 1)
    assert "production → v1" in client.get("/ui/prompts").text
    page = client.get("/ui/prompts/support").text
    assert '<span class="del">-' in page and "Be brief.</span>" in page
    assert '<span class="add">+' in page and "Be brief and kind.</span>" in page
    assert "<td>production</td><td>—</td><td>v1</td>" in page
    labelled = client.get("/ui/prompts/support", params={"a": "production", "b": "2"}).text
    assert "Be brief and kind." in labelled
    assert "The same version." in client.get("/ui/prompts/support", params={"a": "2"}).text
    assert client.get("/ui/prompts/support", params={"a": "../x"}).status_code == 422
    assert client.get("/ui/prompts/nope").status_code == 404
    prompts.set_prompt_tags("support", {"team": "care"})
    prompts.set_version_tags("support", 2, {"reviewed": "yes"})
    page = client.get("/ui/prompts/support").text
    assert '<span class="chip">team=care</span>' in client.get("/ui/prompts").text
    assert '<span class="chip">team=care</span>' in page
    assert '<span class="chip">reviewed=yes</span>' in page
    # A prompt MLflow created before its first version: an empty state, not an error.
    prompts.create_prompt("draft", description="not written yet")
    empty = client.get("/ui/prompts/draft")
    assert empty.status_code == 200 and "No version yet" in empty.text


def test_artifacts_are_previewed_as_text_tables_and_images(
    client: TestClient, local_workspace: Workspace, tmp_path: Path
) -> None:
    import pandas as pd

    files = tmp_path / "out"
    files.mkdir()
    (files / "notes.txt").write_text("<b>not bold</b>\nsecond line")
    pd.DataFrame({"x": range(80), "y": ["a"] * 80}).to_csv(files / "scores.csv", index=False)
    pd.DataFrame({"z": [1.5, None]}).to_parquet(files / "table.parquet")
    (files / "plot.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(32))
    (files / "weights.bin").write_bytes(bytes(64))
    (files / "chart.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"></svg>')
    with cauce.start_run(experiment="churn") as run:
        cauce.log_artifacts(files, "out")
    run_id = run.info.run_id
    page = client.get(f"/ui/runs/{run_id}").text
    assert f'href="/ui/runs/{run_id}/artifacts/out/notes.txt"' in page
    text = client.get(f"/ui/runs/{run_id}/artifacts/out/notes.txt").text
    assert "&lt;b&gt;not bold&lt;/b&gt;" in text and "second line" in text  # escaped, not run
    table = client.get(f"/ui/runs/{run_id}/artifacts/out/scores.csv").text
    assert "The first 50 of 80 rows." in table and '<th scope="col">y</th>' in table
    parquet = client.get(f"/ui/runs/{run_id}/artifacts/out/table.parquet").text
    assert "1.5" in parquet and "The first 2 of 2 rows." in parquet
    image = client.get(f"/ui/runs/{run_id}/artifacts/out/plot.png").text
    assert '<img class="artifact" src="/api/v1/blobs/' in image
    binary = client.get(f"/ui/runs/{run_id}/artifacts/out/weights.bin").text
    assert "No preview for" in binary and "download" in binary
    # Blobs are served as bytes: a browser draws a PNG from them, never an SVG.
    svg = client.get(f"/ui/runs/{run_id}/artifacts/out/chart.svg").text
    assert "No preview for image/svg+xml" in svg and "<img" not in svg
    assert client.get(f"/ui/runs/{run_id}/artifacts/out/missing.txt").status_code == 404


def test_a_parent_runs_children_are_listed_and_compared(
    client: TestClient, local_workspace: Workspace
) -> None:
    with cauce.start_run(experiment="evals", run_name="rag compare") as parent:
        for variant, score in (("short", 0.6), ("cited", 0.8)):
            with cauce.start_run(experiment="evals", run_name=variant, nested=True):
                cauce.log_params({"variant": variant})
                cauce.log_metric("faithfulness", score)
    page = client.get(f"/ui/runs/{parent.info.run_id}").text
    assert "Child runs" in page and "faithfulness <strong>0.8</strong>" in page
    link = page.split("Compare them side by side")[0].rsplit('href="', 1)[1].split('"')[0]
    compared = client.get(link.replace("&amp;", "&")).text
    assert "2 runs compared" in compared and "<title>cited</title>" in compared
    with (
        cauce.start_run(experiment="evals", run_name="one variant") as lone,
        cauce.start_run(experiment="evals", run_name="only", nested=True),
    ):
        pass
    page = client.get(f"/ui/runs/{lone.info.run_id}").text
    assert "Child runs" in page and "Compare them" not in page  # one run compares to nothing


def test_flows_and_indexes_are_listed_with_their_versions(
    client: TestClient, local_workspace: Workspace, tmp_path: Path
) -> None:
    from cauce.specs import apply

    @cauce.flow(name="lookup")
    def lookup(question: str) -> dict[str, str]:
        return {"answer": question.upper()}

    lookup.register()
    lookup.run({"question": "when"})
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Parcels ship on Monday.")
    apply([{"kind": "Connection", "name": "llm", "base_url": "http://127.0.0.1:9/v1",
            "models": {"embeddings": "e"}},
           {"kind": "Index", "name": "docs", "source": {"path": str(docs)},
            "embeddings": {"connection": "llm"}}])  # fmt: skip
    assert 'href="/ui/flows/lookup"' in client.get("/ui/flows").text
    page = client.get("/ui/flows/lookup").text
    assert "v1 ·" in page and "/ui/traces/" in page  # its version, and its run's trace
    assert 'href="/ui/indexes/docs"' in client.get("/ui/indexes").text
    index = client.get("/ui/indexes/docs").text
    assert "Not built yet" in index and f"source:\n  path: {docs}\n" in index  # as applied
    assert client.get("/ui/flows/nope").status_code == 404
    assert client.get("/ui/indexes/nope").status_code == 404


def test_an_endpoint_shows_what_each_deployment_serves_and_its_latency_readably(
    client: TestClient, local_workspace: Workspace, tmp_path: Path
) -> None:
    from tests.genai.upstream import Upstream

    from cauce.genai.indexes import registry as indexes
    from cauce.serving.endpoints import get_endpoint
    from cauce.serving.metrics import Window, store_windows
    from cauce.specs import apply
    from cauce.store import now_ms

    @cauce.flow(name="lookup")
    def lookup(question: str) -> dict[str, str]:
        return {"answer": question}

    lookup.register()
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Parcels ship on Monday.")
    upstream = Upstream()
    try:
        apply([{"kind": "Connection", "name": "echo", "base_url": upstream.url,
                "models": {"embeddings": "echo-embed"}},
               {"kind": "Index", "name": "docs", "source": {"path": str(docs)},
                "embeddings": {"connection": "echo"}}])  # fmt: skip
        indexes.refresh("docs")
    finally:
        upstream.close()
    apply([{"kind": "Endpoint", "name": "assistant", "traffic": {"blue": 100}},
           {"kind": "Deployment", "endpoint": "assistant", "name": "blue",
            "flow": "flows:/lookup", "indexes": {"docs": 1}}])  # fmt: skip
    slow = Window()
    for _ in range(3):
        slow.observe(12_730.0, False)  # a small model on a laptop: 13 s an answer
    endpoint_id = get_endpoint("assistant").id
    at = now_ms()
    store_windows(
        local_workspace, "assistant", endpoint_id, at - 1000, at, {("blue", "live"): slow}
    )
    page = client.get("/ui/endpoints/assistant").text
    # Both deployments would read "flows:/lookup/1": which index version each pins tells them
    # apart, each a link.
    assert 'href="/ui/flows/lookup">flows:/lookup/1</a> · index ' in page
    assert '<a href="/ui/indexes/docs">docs@1</a>' in page
    # The index says which deployment reads which of its versions, and every current move.
    index = client.get("/ui/indexes/docs").text
    pinned = index.split('id="pins-h"')[1].split("</table>")[0]
    assert 'href="/ui/endpoints/assistant">assistant</a></td><td>blue</td><td>v1</td>' in pinned
    moved = index.split('id="history-h"')[1].split("</table>")[0]
    assert re.search(r"<td>—</td><td>v1</td><td>[^<]*</td><td>\w+</td>", moved), moved
    p99 = re.findall(r'<td class="num">([^<]*)</td>\s*</tr>', page)[0]
    assert re.fullmatch(r"\d\d,\d{3}", p99), p99  # a slow p99 in ms, not 1.273e+04


@cauce.step
def _broken(xs: list[int]) -> list[int]:
    raise ValueError("no data")


@cauce.pipeline
def broken_sums(n: int = 3) -> int:
    xs = _load(n)
    return _total(xs, _broken(xs))


def test_a_skipped_step_shows_no_time_it_never_took(
    client: TestClient, local_workspace: Workspace
) -> None:
    run = broken_sums.run(n=2)
    assert run.steps["_total"].status == "SKIPPED"
    page = client.get(f"/ui/pipelines/{run.id}").text
    row = page.split("<tr><td>_total</td>", 1)[1].split("</tr>", 1)[0]
    assert '<td class="num">0</td><td class="num"></td>' in row  # no attempt, so no "0 ms"
    assert ">skipped</text>" in page  # the DAG's node names no time either


def test_numbers_and_times_read_as_a_person_reads_them() -> None:
    from cauce.server.formats import took
    from cauce.server.ui.pages import number

    assert [number(v) for v in (0.003356, 0.72, 4162.0, 12_730.4, 2e15)] == [
        "0.003356", "0.72", "4162", "12,730", "2e+15",
    ]  # fmt: skip
    assert [number(v) for v in (float("nan"), float("inf"), True)] == ["NaN", "∞", "True"]
    # A span, a flow run, a monitor run or a pipeline step: ms while short, then seconds.
    assert [took(v) for v in (26.68, 38, 0, 0.0, 11_720.3, 185_000, None)] == [
        "26.68 ms", "38 ms", "<1 ms", "0 ms", "11.7 s", "3 min 5 s", "",
    ]  # fmt: skip


def test_a_graph_is_as_tall_as_its_rows_and_the_edges_that_pass_under_them() -> None:
    from cauce.server.ui.graphs import NODE_HEIGHT, drawn

    chain = drawn({"a": 0, "b": 1, "c": 2}, [("a", "b", "input"), ("b", "c", "input")], str)
    assert chain["height"] == NODE_HEIGHT  # one row, nothing under it: no blank band
    skipping = drawn({"a": 0, "b": 1, "c": 2}, [("a", "b", "x"), ("b", "c", "x"), ("a", "c", "x")],
                     str)  # fmt: skip
    assert skipping["height"] == NODE_HEIGHT * 3 // 2  # a -> c passes under b
