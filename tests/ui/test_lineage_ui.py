"""Lineage and GenAI in a real browser: from a model version to the data it was trained on, a
trace opened as its tree of spans, a prompt's change as a diff."""

from __future__ import annotations

from typing import Any

import pytest

import cauce
from cauce.workspace import Workspace

pytestmark = pytest.mark.slow


def test_lineage_is_followed_from_a_model_to_its_data(ui: Any, remote_workspace: Workspace) -> None:
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    data = cauce.data.register("customers", pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]}))
    with cauce.start_run(experiment="churn"):
        cauce.log_input(data.ref, context="training")
        model = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
        cauce.log_model(model, "model", registered_model="churn")
    ui.goto(ui.at("/ui/models/churn/versions/1"))
    ui.get_by_role("link", name="where it came from, what serves it").click()
    ui.wait_for_selector("a.node.model_version.root")
    ui.shot("lineage-model")
    ui.locator("a.node.run").click()  # centre on the run that made it
    ui.wait_for_selector("a.node.run.root")
    ui.locator("a.node.dataset_version").click()  # then on its training data
    ui.wait_for_selector("a.node.dataset_version.root")
    assert "customers" in ui.locator("h1").inner_text()
    assert ui.locator("a.node.run").count() == 1  # downstream of the data: the run

    # In a window narrower than the graph, it opens on the node it is about (the model, right).
    ui.set_viewport_size({"width": 500, "height": 800})
    ui.goto(ui.at("/ui/models/churn/versions/1"))
    ui.get_by_role("link", name="where it came from, what serves it").click()
    ui.wait_for_load_state()  # measured with the stylesheet: a slow one arrives after the DOM
    box = ui.locator(".graph").bounding_box()
    node = ui.locator("a.node.model_version.root rect").bounding_box()
    assert box["x"] <= node["x"] and node["x"] + node["width"] <= box["x"] + box["width"]


def test_a_trace_opens_as_a_tree_of_spans(ui: Any, remote_workspace: Workspace) -> None:
    from cauce.genai import tracing

    with (
        tracing.span("answer", operation="invoke_agent") as root,
        tracing.span("retrieval docs", operation="retrieval"),
        tracing.span("embed query", operation="embeddings"),
    ):
        pass
    with tracing.span("answer", operation="invoke_agent"), tracing.span("chat", operation="chat"):
        pass
    tracing.flush(remote_workspace)
    ui.goto(ui.at("/ui/traces"))
    assert ui.get_by_role("link", name="answer").count() == 2
    ui.locator(f'a[href$="/ui/traces/{root.trace_id}"]').click()
    ui.wait_for_selector("table.spans")
    assert root.trace_id in ui.locator("dl.facts").inner_text()
    levels = [ui.locator("tr.span").nth(i).get_attribute("aria-level") for i in range(3)]
    assert levels == ["1", "2", "3"]
    ui.locator("tr.span summary").nth(2).click()  # a span's attributes, on demand
    assert "gen_ai.operation.name" in ui.locator("tr.span").nth(2).inner_text()
    ui.shot("trace")


def test_a_sessions_traces_are_one_click_from_the_sessions_page(
    ui: Any, remote_workspace: Workspace
) -> None:
    from cauce.genai import tracing

    with tracing.session("chat-42", user_id="ana"):
        for question in ("Where is my parcel?", "When does it arrive?"):
            with tracing.span("answer", operation="invoke_agent") as turn, tracing.span("chat"):
                turn.content("cauce.input", {"question": question})
                turn.content("cauce.output", {"answer": f"About {question.lower()} ..."})
    tracing.log_feedback(turn.trace_id, "helpful", 0, "wrong")
    with tracing.span("answer", operation="invoke_agent"):
        pass
    tracing.flush(remote_workspace)
    ui.goto(ui.at("/ui/traces"))
    assert ui.locator("table.traces tbody tr").count() == 3
    ui.get_by_role("link", name="Sessions").click()
    ui.wait_for_selector("table.sessions")
    assert "ana" in ui.locator("table.sessions tbody tr").inner_text()
    ui.shot("sessions")
    ui.get_by_role("link", name="chat-42").click()
    ui.wait_for_selector("table.conversation")
    turns = ui.locator("table.conversation tbody tr")
    assert "Where is my parcel?" in turns.nth(0).inner_text()
    assert "When does it arrive?" in turns.nth(1).inner_text()
    ui.shot("session")
    ui.get_by_role("link", name="summed by name").click()
    ui.wait_for_selector("table.scores")
    assert "wrong 1" in ui.locator("table.scores tbody tr").nth(0).inner_text()
    ui.shot("scores")
    ui.go_back()
    ui.wait_for_selector("table.conversation")
    ui.locator("dl.facts").get_by_role("link", name="2").click()
    ui.wait_for_selector("table.traces")
    assert ui.locator("table.traces tbody tr").count() == 2
    assert ui.get_by_label("Session", exact=True).input_value() == "chat-42"
    ui.shot("traces-of-a-session")


def test_a_prompts_change_is_shown_as_a_diff(ui: Any, remote_workspace: Workspace) -> None:
    from cauce.specs import apply

    for text in ("Answer in one line.", "Answer in one line, citing the document."):
        apply([{"kind": "Prompt", "name": "support",
                "messages": [{"role": "system", "content": text}]}])  # fmt: skip
    ui.goto(ui.at("/ui/prompts"))
    ui.get_by_role("link", name="support").click()
    ui.wait_for_load_state()  # the lines are laid out by the stylesheet, which may come late
    assert "citing the document" in ui.locator("pre.diff .add").last.inner_text()
    removed, added = (
        ui.locator("pre.diff .del").last.bounding_box(),
        ui.locator("pre.diff .add").last.bounding_box(),
    )
    assert abs(removed["y"] + removed["height"] - added["y"]) < 1  # line under line, no blank
    ui.shot("prompt")
