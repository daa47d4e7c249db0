"""The prompt registry: immutable versions, typed variables, sandboxed rendering, labels."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
from tests.clitools import assert_one_line_error
from tests.clitools import cauce as run_cli

import cauce
from cauce.errors import Conflict, InvalidInput, NotFound
from cauce.genai import prompts
from cauce.lineage import audit
from cauce.lineage.graph import walk
from cauce.workspace import Workspace
from together import at_once


@pytest.fixture
def workspace(seam_workspace: Workspace) -> Workspace:
    """Local, then through a server."""
    return seam_workspace


@pytest.fixture
def any_workspace(seam_any_workspace: Workspace) -> Workspace:
    """SQLite, PostgreSQL, then through a server."""
    return seam_any_workspace


ANSWER = [
    {"role": "system", "content": "You answer questions about {{ product }}. Be brief."},
    {"role": "user", "content": "Question: {{ question }}"},
]


def test_versions_are_immutable_numbered_and_identical_content_registers_nothing(
    any_workspace: Workspace,
) -> None:
    first = prompts.register("answer", ANSWER, commit_message="first")
    again = prompts.register("answer", ANSWER, commit_message="same content")
    changed = [ANSWER[0], {"role": "user", "content": "Q: {{ question }}"}]
    second = prompts.register(
        "answer", changed, model_parameters={"temperature": 0, "max_tokens": 64}
    )
    assert (first.version, again.version, second.version) == (1, 1, 2)
    assert again.id == first.id and again.commit_message == "first"
    assert second.model_parameters == {"temperature": 0.0, "max_tokens": 64}
    assert prompts.load("prompts:/answer/1").messages == ANSWER
    assert prompts.load("answer").version == 2
    assert prompts.load("prompts:/answer@latest").version == 2
    assert [v.labels for v in prompts.versions("answer")] == [[], ["latest"]]
    assert prompts.get_prompt("answer").latest_version == 2


def test_variables_are_typed_and_a_missing_or_extra_one_is_a_clear_error(
    workspace: Workspace,
) -> None:
    version = prompts.register(
        "count",
        "Say {{ word }} {{ times }} times{% if loud %}, loudly{% endif %}.",
        variables={
            "word": "string",
            "times": "integer",
            "loud": {"type": "boolean", "default": False},
        },
    )
    assert version.render(word="hi", times=3) == [{"role": "user", "content": "Say hi 3 times."}]
    assert prompts.render("prompts:/count/1", word="hi", times=2, loud=True)[0]["content"] == (
        "Say hi 2 times, loudly."
    )
    with pytest.raises(InvalidInput, match="needs variable 'times'"):
        version.render(word="hi")
    with pytest.raises(InvalidInput, match="has no variable 'colour'"):
        version.render(word="hi", times=1, colour="red")
    with pytest.raises(InvalidInput, match="variable 'times' must be integer, not str"):
        version.render(word="hi", times="3")
    with pytest.raises(InvalidInput, match="must be integer, not bool"):
        version.render(word="hi", times=True)


def test_variables_left_out_are_read_from_the_templates(workspace: Workspace) -> None:
    version = prompts.register("answer", ANSWER)
    assert version.variables == {"product": {"type": "string"}, "question": {"type": "string"}}


def test_declared_variables_must_match_the_templates(workspace: Workspace) -> None:
    with pytest.raises(InvalidInput, match="use question, which variables does not declare"):
        prompts.register("p", ANSWER, variables={"product": "string"})
    with pytest.raises(InvalidInput, match="declares extra, which no message uses"):
        prompts.register(
            "p", ANSWER, variables={"product": "string", "question": "string", "extra": "string"}
        )
    with pytest.raises(InvalidInput, match=r"messages\.0\.content is not a valid template"):
        prompts.register("p", "Hello {{ name ")
    with pytest.raises(InvalidInput, match=r"messages\.0\.role"):
        prompts.register("p", [{"role": "tool", "content": "x"}])
    with pytest.raises(InvalidInput, match="the default of variable 'n' must be integer"):
        prompts.register("p", "{{ n }}", variables={"n": {"type": "integer", "default": "two"}})
    with pytest.raises(NotFound):
        prompts.load("p")


def test_a_value_carrying_template_syntax_renders_as_text(workspace: Workspace) -> None:
    version = prompts.register("echo", "User said: {{ text }}")
    hostile = "{{ 7 * 7 }} {% for x in range(3) %}x{% endfor %} {{ ''.__class__.__mro__ }}"
    assert version.render(text=hostile)[0]["content"] == f"User said: {hostile}"


def test_templates_run_in_the_sandbox(workspace: Workspace) -> None:
    version = prompts.register("escape", "{{ text.__class__.__mro__[1].__subclasses__() }}")
    with pytest.raises(InvalidInput, match="the sandbox forbids"):
        version.render(text="x")


def test_labels_move_with_history_reason_and_actor_and_roll_back(any_workspace: Workspace) -> None:
    prompts.register("answer", ANSWER)
    prompts.register("answer", [ANSWER[0], {"role": "user", "content": "Q: {{ question }}"}])
    prompts.set_label("answer", "production", 1, reason="reviewed")
    prompts.set_label("answer", "production", 2, reason="better F1", actor="ci-gate")
    prompts.set_label("answer", "production", 2, reason="no move")
    assert prompts.load("prompts:/answer@production").version == 2
    prompts.set_label("answer", "production", 1, reason="rollback: complaints")
    assert prompts.load("prompts:/answer@production").version == 1
    history = prompts.label_history("answer", "production")
    # Through a server the named actor is recorded beside the authenticated principal.
    actor = "tester (as ci-gate)" if any_workspace.remote else "ci-gate"
    assert [(h["from_version"], h["to_version"], h["reason"], h["user"]) for h in history] == [
        (None, 1, "reviewed", "tester"),
        (1, 2, "better F1", actor),
        (2, 1, "rollback: complaints", "tester"),
    ]
    prompts.delete_label("answer", "production", reason="retired")
    with pytest.raises(NotFound, match="no label 'production'"):
        prompts.load("prompts:/answer@production")
    assert prompts.label_history("answer")[-1]["to_version"] is None
    events = audit.events(any_workspace, action="prompt.label*")
    assert len(events) == 4
    assert {e.action for e in events} == {"prompt.label.set", "prompt.label.delete"}
    with pytest.raises(InvalidInput, match="reads as a version"):
        prompts.set_label("answer", "latest", 1)
    with pytest.raises(NotFound, match="no version 9"):
        prompts.set_label("answer", "staging", 9)


def test_listing_by_label(workspace: Workspace) -> None:
    prompts.register("a", "A {{ x }}", labels=["production"])
    prompts.register("b", "B {{ x }}")
    assert [p.name for p in prompts.list_prompts()] == ["a", "b"]
    assert [p.name for p in prompts.list_prompts(label="production")] == ["a"]
    assert prompts.get_prompt("a").labels == {"production": 1}


def test_diff_names_what_changed(workspace: Workspace) -> None:
    prompts.register("answer", ANSWER, labels=["production"])
    prompts.register(
        "answer",
        [ANSWER[0], {"role": "user", "content": "Q: {{ question }}"}],
        model_parameters={"temperature": 0.2},
    )
    text = prompts.diff("answer", "production", 2)
    assert "--- prompts:/answer/1" in text and "+++ prompts:/answer/2" in text
    assert "-Question: {{ question }}" in text and "+Q: {{ question }}" in text
    assert "+temperature: 0.2" in text
    assert prompts.diff("answer", 1, 1) == ""


def test_every_change_is_audited_and_versions_are_lineage_nodes(
    any_workspace: Workspace,
) -> None:
    v1 = prompts.register("answer", ANSWER)
    v2 = prompts.register("answer", "Just {{ question }}", description="shorter")
    assert [e.action for e in reversed(audit.events(any_workspace, action="prompt*"))] == [
        "prompt.create",
        "prompt.version.create",
        "prompt.update",
        "prompt.version.create",
    ]
    graph = walk(any_workspace, "prompt_version", v1.id, direction="downstream")
    assert [(e.src.label, e.dst.label, e.relation) for e in graph.edges] == [
        ("prompt answer v1", "prompt answer v2", "revised")
    ]
    assert graph.edges[0].dst.id == v2.id


def test_tags_on_a_prompt_and_on_a_version_are_set_replaced_removed_and_audited(
    any_workspace: Workspace,
) -> None:
    v1 = prompts.register("answer", ANSWER, tags={"reviewed": "no"})
    assert v1.tags == {"reviewed": "no"}
    assert prompts.set_prompt_tags("answer", {"task": "qa", "team": "support"}).tags == {
        "task": "qa",
        "team": "support",
    }
    assert prompts.set_version_tags("answer", 1, {"reviewed": "yes"}).tags == {"reviewed": "yes"}
    # The same content registers nothing; its tags land on the version it returns.
    again = prompts.register("answer", ANSWER, tags={"source": "notebook"})
    assert (again.version, again.tags) == (1, {"reviewed": "yes", "source": "notebook"})
    assert prompts.delete_prompt_tag("answer", "team").tags == {"task": "qa"}
    assert prompts.delete_version_tag("answer", 1, "source").tags == {"reviewed": "yes"}
    assert prompts.get_prompt("answer").tags == {"task": "qa"}
    assert prompts.load("answer").tags == {"reviewed": "yes"}
    with pytest.raises(NotFound, match="no tag 'team'"):
        prompts.delete_prompt_tag("answer", "team")
    with pytest.raises(NotFound, match="no version 4"):
        prompts.set_version_tags("answer", 4, {"a": "b"})
    with pytest.raises(InvalidInput):
        prompts.set_prompt_tags("answer", {"": "empty key"})
    actions = [e.action for e in audit.events(any_workspace, action="prompt*tag")]
    assert actions.count("prompt.tag") == 1 and actions.count("prompt_version.tag") == 3
    assert actions.count("prompt.untag") == 1 and actions.count("prompt_version.untag") == 1


def test_a_prompt_created_empty_gets_versions_and_only_an_empty_one_is_deleted(
    any_workspace: Workspace,
) -> None:
    made = prompts.create_prompt("greet", description="greetings", tags={"task": "greeting"})
    assert (made.latest_version, made.description, made.tags) == (
        0,
        "greetings",
        {"task": "greeting"},
    )
    with pytest.raises(NotFound, match="has no version yet"):
        prompts.load("greet")
    with pytest.raises(Conflict, match="already exists"):
        prompts.create_prompt("greet")
    assert prompts.update_prompt("greet", description="warm greetings").description == (
        "warm greetings"
    )
    prompts.delete_prompt("greet")
    assert [p.name for p in prompts.list_prompts()] == []
    prompts.create_prompt("greet")
    assert prompts.register("greet", "Hello {{ name }}").version == 1
    with pytest.raises(Conflict, match="has versions"):
        prompts.delete_prompt("greet")
    assert prompts.get_prompt("greet").latest_version == 1
    assert [e.action for e in reversed(audit.events(any_workspace, action="prompt*"))][:4] == [
        "prompt.create",
        "prompt.tag",
        "prompt.update",
        "prompt.delete",
    ]


def test_concurrent_registrations_get_consecutive_numbers(any_workspace: Workspace) -> None:
    at_once([partial(prompts.register, "p", f"variant {n}: {{{{ q }}}}") for n in range(4)])
    assert [v.version for v in prompts.versions("p")] == [1, 2, 3, 4]


def test_bad_references(workspace: Workspace) -> None:
    for ref in ("prompts:/", "prompts:/a/b/c", "prompts:/a/x", "models:/a/1", "a/b"):
        with pytest.raises(InvalidInput):
            prompts.load(ref)


SPEC = """
kind: Prompt
name: answer
description: Answers questions about Cauce.
messages:
  - role: system
    content: "You answer questions about {{ product }}."
  - role: user
    content: "{{ question }}"
variables:
  product: {type: string, default: Cauce}
  question: string
model_parameters: {model: smollm2, temperature: 0, max_tokens: 64, stop: "\\n\\n"}
commit_message: first cut
labels: [staging]
"""


def test_apply_creates_then_leaves_unchanged_then_versions_and_moves_labels(
    local_workspace: Workspace,
) -> None:
    [created] = cauce.apply(SPEC)
    [same] = cauce.apply(SPEC)
    assert (created.outcome, same.outcome) == ("created", "unchanged")
    version = prompts.load("prompts:/answer@staging")
    assert version.model_parameters == {
        "model": "smollm2",
        "temperature": 0.0,
        "max_tokens": 64,
        "stop": ["\n\n"],
    }
    assert version.render(question="Why?")[0]["content"] == "You answer questions about Cauce."
    [planned] = cauce.apply(SPEC.replace("temperature: 0", "temperature: 0.5"), dry_run=True)
    assert planned.outcome == "updated"
    assert [c.field for c in planned.changes] == ["version", "labels.staging"]
    assert len(prompts.versions("answer")) == 1
    [updated] = cauce.apply(SPEC.replace("temperature: 0", "temperature: 0.5"))
    assert [(c.field, c.old, c.new) for c in updated.changes] == [
        ("version", 1, 2),
        ("labels.staging", 1, 2),
    ]


def test_a_bad_prompt_spec_after_a_good_one_applies_nothing(local_workspace: Workspace) -> None:
    bad = SPEC.replace("name: answer", "name: other").replace("question: string", "")
    with pytest.raises(InvalidInput, match=r"document 2: .*question, which variables does not"):
        cauce.apply(SPEC + "---\n" + bad)
    assert prompts.list_prompts() == []


def test_cli_lists_shows_diffs_and_labels(local_workspace: Workspace, tmp_path: Path) -> None:
    home = Path(local_workspace.settings.root)
    spec = tmp_path / "prompt.yaml"
    spec.write_text(SPEC)
    run_cli(home, "apply", "-f", str(spec))
    spec.write_text(SPEC.replace("max_tokens: 64", "max_tokens: 32"))
    run_cli(home, "apply", "-f", str(spec))
    listed = run_cli(home, "prompts", "list").stdout
    assert "answer" in listed and "staging→v2" in listed
    shown = run_cli(home, "prompts", "show", "prompts:/answer/1").stdout
    assert "first cut" in shown and "You answer questions" in shown
    diffed = run_cli(home, "prompts", "diff", "answer", "1", "2").stdout
    assert "-max_tokens: 64\n+max_tokens: 32" in diffed
    moved = run_cli(home, "prompts", "label", "answer", "production", "1", "-r", "rollback")
    assert "answer@production → version 1" in moved.stdout
    history = run_cli(home, "prompts", "label", "answer", "production", "--history", "--json")
    assert '"reason": "rollback"' in history.stdout
    assert "prompt answer v1" in run_cli(home, "lineage", "prompts:/answer@production").stdout
    assert_one_line_error(
        run_cli(home, "prompts", "show", "prompts:/answer@nope", check=False), "nope"
    )
    # Without a version: where the label points now; a label the prompt lacks is one line.
    pointed = run_cli(home, "prompts", "label", "answer", "production").stdout
    assert pointed.strip() == "answer@production → version 1"
    assert_one_line_error(
        run_cli(home, "prompts", "label", "answer", "nope", check=False), "has no label 'nope'"
    )
    tagged = run_cli(home, "prompts", "tag", "answer", "task=qa", "team=support").stdout
    assert "Prompt answer's tags: task=qa team=support" in tagged
    assert "task=qa team=support" in run_cli(home, "prompts", "list").stdout
    assert "team" not in run_cli(home, "prompts", "tag", "answer", "--remove", "team").stdout
    run_cli(home, "prompts", "tag", "answer", "reviewed=yes", "--version", "1")
    assert "reviewed=yes" in run_cli(home, "prompts", "show", "prompts:/answer/1").stdout
    assert_one_line_error(run_cli(home, "prompts", "tag", "answer", "x", check=False), "KEY=VALUE")


def test_a_prompt_registered_here_is_held_by_the_server(remote_workspace: Workspace) -> None:
    import httpx

    from remote import server_side

    version = prompts.register("answer", ANSWER, labels=["production"], commit_message="first")
    url = f"{remote_workspace.settings.server_url}/api/v1/prompts"
    answer = httpx.get(f"{url}/answer/labels/production")
    assert answer.status_code == 200
    assert answer.json()["messages"] == ANSWER and answer.json()["labels"] == [
        "production",
        "latest",
    ]
    assert [p["name"] for p in httpx.get(url).json()["items"]] == ["answer"]
    held = prompts.load("prompts:/answer@production", workspace=server_side(remote_workspace))
    assert (held.id, held.commit_message) == (version.id, "first")
    missing = httpx.get(f"{url}/answer/versions/7")
    assert missing.status_code == 404 and "no version 7" in missing.json()["error"]["message"]
