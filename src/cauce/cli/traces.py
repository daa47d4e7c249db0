"""``cauce traces``: GenAI traces, as a list and as a span tree."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import typer

from cauce.cli.output import (
    JSON_OPTION_HELP,
    console,
    number,
    print_json,
    table,
    tag_values,
    tags_text,
    took,
    when,
)
from cauce.errors import InvalidInput

if TYPE_CHECKING:
    from cauce.genai.tracing import SessionSummary, UserSummary

app = typer.Typer(help="GenAI traces: flow runs, LLM calls, retrievals.", no_args_is_help=True)


@app.command("list")
def list_(
    name: str = typer.Option(None, "--name", help="Only traces whose root span has this name."),
    status: str = typer.Option(None, "--status", help="ok or error."),
    session_id: str = typer.Option(None, "--session", help="Only the traces of this session."),
    user_id: str = typer.Option(None, "--user", help="Only the traces of this user."),
    tag: str = typer.Option(None, "--tag", help="Only traces with this tag: KEY or KEY=VALUE."),
    run: str = typer.Option(
        None, "--run", help="Only the traces made in this run (its id, or the start of one)."
    ),
    experiment: str = typer.Option(
        None, "--experiment", help="Only the traces filed under this experiment."
    ),
    since: str = typer.Option(None, "--since", help="Only traces this recent: 30m, 1h, 2d."),
    before: str = typer.Option(
        None, "--before", help="Only traces older than this one (the last of a page)."
    ),
    limit: int = typer.Option(50, "-n", "--max", help="How many, newest first."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """List recent traces with their session, user, tokens, latency, cost and tags.

    Example:
        cauce traces list --status error -n 20
        cauce traces list --session chat-42
        cauce traces list --tag env=prod
        cauce traces list --run 3f2a
    """
    from cauce.cli.runs import full_run_id
    from cauce.genai.tracing import list_traces

    found = list_traces(
        name=name,
        status=status,
        session_id=session_id,
        user_id=user_id,
        tag=tag,
        run_id=full_run_id(run) if run is not None else None,
        experiment=experiment,
        since_ms=_since_ms(since),
        before=before,
        limit=limit,
    )
    if as_json:
        print_json([t.to_dict() for t in found])
        return
    columns = [
        "Trace ID",
        "Name",
        "Started",
        "Duration",
        "Status",
        "Spans",
        "Tokens in/out",
        "Cost",
    ]
    grouped = any(t.session_id or t.user_id for t in found)
    scored = any(t.scores for t in found)
    tagged = any(t.tags for t in found)
    columns += [
        *(["Session", "User"] if grouped else []),
        *(["Scores"] if scored else []),
        *(["Tags"] if tagged else []),
    ]
    table(
        "Traces",
        columns,
        [
            [
                t.id,
                t.name,
                when(t.started_at),
                took(t.duration_ms),
                t.status,
                t.span_count,
                f"{t.input_tokens}/{t.output_tokens}",
                _cost(t.cost),
                *([t.session_id, t.user_id] if grouped else []),
                *([_scores(t.scores)] if scored else []),
                *([tags_text(t.tags)] if tagged else []),
            ]
            for t in found
        ],
        empty="No traces match."
        if name or status or session_id or user_id or tag or since or before
        else "No traces yet: a flow run, a traced function or a GenAI endpoint records them.",
        short_ids=True,
        optional=len(columns) - 5,  # all but id, name, start, duration and status
    )
    if found and len(found) == limit:
        console.print(f"Older ones: the same command with --before {found[-1].id}")


@app.command("sessions")
def sessions(
    user_id: str = typer.Option(None, "--user", help="Only the sessions of this user."),
    since: str = typer.Option(
        None, "--since", help="Only the traces this recent, summed by session: 30m, 1h, 2d."
    ),
    before: str = typer.Option(
        None, "--before", help="Only the sessions after this one (the last of a page)."
    ),
    limit: int = typer.Option(50, "-n", "--max", help="How many, latest first."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """List sessions (conversations): their traces, users, tokens and cost.

    Traces belong to a session when they are made in cauce.tracing.session(...), or
    through a GenAI endpoint with a cauce-session header.

    Example:
        cauce traces sessions --user ana --since 7d
        cauce traces list --session chat-42
    """
    from cauce.genai.tracing import list_sessions

    found = list_sessions(user_id=user_id, since_ms=_since_ms(since), before=before, limit=limit)
    if as_json:
        print_json([s.to_dict() for s in found])
        return
    table(
        "Sessions",
        ["Session", "Users", *_TOTALS],
        [[s.id, ", ".join(s.user_ids), *_totals(s)] for s in found],
        empty="No sessions match."
        if user_id or since or before
        else "No sessions yet: traces made in cauce.tracing.session(...) belong to one.",
        optional=2,  # tokens and cost
    )
    _next_page(found, limit)


@app.command("users")
def users(
    since: str = typer.Option(
        None, "--since", help="Only the traces this recent, summed by user: 30m, 1h, 2d."
    ),
    before: str = typer.Option(
        None, "--before", help="Only the users after this one (the last of a page)."
    ),
    limit: int = typer.Option(50, "-n", "--max", help="How many, latest first."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """List users: their sessions, traces, tokens and cost.

    Traces belong to a user when they are made in cauce.tracing.session(user_id=...), or
    through a GenAI endpoint with OpenAI's user field.

    Example:
        cauce traces users --since 30d
        cauce traces list --user ana
    """
    from cauce.genai.tracing import list_users

    found = list_users(since_ms=_since_ms(since), before=before, limit=limit)
    if as_json:
        print_json([u.to_dict() for u in found])
        return
    table(
        "Users",
        ["User", "Sessions", *_TOTALS],
        [[u.id, u.sessions, *_totals(u)] for u in found],
        empty="No users match."
        if since or before
        else "No users yet: traces made in cauce.tracing.session(user_id=...) belong to one.",
        optional=2,  # tokens and cost
    )
    _next_page(found, limit)


def _next_page(found: list[SessionSummary] | list[UserSummary], limit: int) -> None:
    if found and len(found) == limit:
        console.print(f"Older ones: the same command with --before {found[-1].id}")


_TOTALS = ["Traces", "Errors", "First", "Last", "Tokens in/out", "Cost"]


def _totals(summed: SessionSummary | UserSummary) -> list[Any]:
    return [
        summed.traces,
        summed.errors,
        when(summed.first_at),
        when(summed.last_at),
        f"{summed.input_tokens}/{summed.output_tokens}",
        _cost(summed.cost),
    ]


@app.command("show")
def show(
    trace_id: str = typer.Argument(
        ..., help="A trace id, or the start of one (4 or more hex characters)."
    ),
    attributes: bool = typer.Option(False, "--attributes", "-a", help="Show every attribute."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Show a trace as a tree of spans: operation, latency, tokens, cost, status.

    Example:
        cauce traces show 4bf92f35
    """
    from rich.text import Text
    from rich.tree import Tree

    from cauce.genai.tracing import SpanRecord, get_trace
    from cauce.genai.tracing.reading import latest_expectations

    found = get_trace(trace_id)
    if as_json:
        print_json(found.to_dict())
        return
    summary = found.summary
    belongs = [
        f"{what} {value}"
        for what, value in (("session", summary.session_id), ("user", summary.user_id))
        if value is not None
    ]
    root = Tree(
        Text(
            " · ".join(
                [
                    f"trace {summary.id}",
                    took(summary.duration_ms),
                    f"tokens {summary.input_tokens}/{summary.output_tokens}",
                    f"cost {_cost(summary.cost)}",
                    *belongs,
                ]
            )
        )
    )

    def label(span: SpanRecord) -> Text:
        parts = [span.name, took(span.duration_ms)]
        if span.input_tokens is not None or span.output_tokens is not None:
            parts.append(f"tokens {span.input_tokens or 0}/{span.output_tokens or 0}")
        if span.cost is not None:
            parts.append(f"cost {_cost(span.cost)}")
        if span.status == "error":
            parts.append(f"ERROR {span.status_message or ''}".strip())
        for event in span.events:
            if event["name"] == "gen_ai.evaluation.result":
                a = event["attributes"]
                score = a.get("gen_ai.evaluation.score.value")
                if score is None:
                    score = a.get("gen_ai.evaluation.score.label")
                parts.append(f"{a.get('gen_ai.evaluation.name')}={score}")
        text = Text(" · ".join(parts), style="red" if span.status == "error" else "")
        if attributes:
            for key, value in sorted(span.attributes.items()):
                text.append(f"\n  {key} = {str(value)[:300]}", style="dim")
        return text

    def grow(node: Tree, parent: str | None) -> None:
        for child in found.children(parent):
            grow(node.add(label(child)), child.span_id)

    ids = {s.span_id for s in found.spans}
    for span in found.spans:
        if span.parent_id is None or span.parent_id not in ids:
            grow(root.add(label(span)), span.span_id)
    console.print(root)
    if summary.tags:
        console.print(f"tags: {tags_text(summary.tags)}")
    if found.prompts:
        console.print(f"prompts: {', '.join(found.prompts)}")
    if found.run_id:
        console.print(f"run: {found.run_id}")
    roots = [s for s in found.spans if s.parent_id is None]
    expected = latest_expectations(roots[0].events) if roots else {}
    if expected:
        shown = " ".join(f"{k}={json.dumps(v)}" for k, v in expected.items())
        console.print(f"expected: {shown}")


@app.command("feedback")
def feedback(
    trace_id: str = typer.Argument(
        ..., help="A trace id, or the start of one (4 or more hex characters)."
    ),
    name: str = typer.Argument(..., help="What is judged: helpful, thumbs, correct..."),
    score: float = typer.Option(None, "--score", help="A number: 1 or 0, a rating."),
    label: str = typer.Option(None, "--label", help="A word: good, wrong, unsafe..."),
    explanation: str = typer.Option(None, "--explanation", help="Why, in a sentence."),
) -> None:
    """Record feedback on a trace: a score or a label on its root span.

    Traces turned into a dataset carry each score as the column eval.NAME, each label as
    eval.NAME.label.

    Example:
        cauce traces feedback 4bf92f3577b34da6a3ce929d0e0e4736 helpful --score 0 --label wrong
    """
    from cauce.genai.tracing import log_feedback, read_trace

    if len(trace_id) < 32:  # the start of one, as the lists print it
        trace_id = read_trace(trace_id, with_spans=False).summary.id
    log_feedback(trace_id, name, score, label, explanation)
    console.print(f"Recorded {name} on trace {trace_id}")


@app.command("expect")
def expect(
    trace_id: str = typer.Argument(
        ..., help="A trace id, or the start of one (4 or more hex characters)."
    ),
    name: str = typer.Argument(..., help="What is expected: expected_response, expected_ids..."),
    value: str = typer.Argument(..., help="The expected value: JSON, or else a text."),
) -> None:
    """Record what a trace should have answered (ground truth) on its root span.

    Traces turned into a dataset carry it as the column expectations.NAME, which an
    evaluation reads as the reference (expectations.expected_response).

    Example:
        cauce traces expect 4bf92f35 expected_response "It ships on Monday."
        cauce traces expect 4bf92f35 expected_ids '["doc-3", "doc-7"]'
    """
    from cauce.genai.tracing import log_expectation, read_trace

    summary = read_trace(trace_id, with_spans=False).summary
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = value
    log_expectation(summary.id, name, parsed)
    console.print(f"Recorded {name} on trace {summary.id}")


@app.command("tag")
def tag(
    trace_id: str = typer.Argument(
        ..., help="A trace id, or the start of one (4 or more hex characters)."
    ),
    values: list[str] = typer.Argument(None, help="Tags to set, each KEY=VALUE (or KEY)."),
    remove: list[str] = typer.Option([], "--remove", "-r", help="A tag key to take off."),
) -> None:
    """Set or remove a trace's tags (a reviewer's verdict, the environment it ran in).

    Example:
        cauce traces tag 4bf92f35 reviewed=yes golden
        cauce traces tag 4bf92f35 --remove golden
    """
    from cauce.genai.tracing import delete_trace_tag, read_trace, set_trace_tags

    given = tag_values(values, remove, bare=True)
    if given:
        set_trace_tags(trace_id, given)
    for key in remove:
        delete_trace_tag(trace_id, key)
    summary = read_trace(trace_id, with_spans=False).summary
    console.print(f"Trace {summary.id}'s tags: {tags_text(summary.tags) or 'none'}")


@app.command("delete")
def delete(
    trace_ids: list[str] = typer.Argument(
        None, help="Traces to delete: ids, or the start of one (4 or more hex characters)."
    ),
    older_than: str = typer.Option(
        None, "--older-than", help="The traces started longer ago than this: 30d, 12h."
    ),
    session_id: str = typer.Option(None, "--session", help="The traces of this session."),
    user_id: str = typer.Option(None, "--user", help="The traces of this user."),
    experiment: str = typer.Option(
        None, "--experiment", help="Only the traces filed under this experiment."
    ),
) -> None:
    """Delete traces for good, with their spans, tags and feedback: those named, those older
    than a retention window, a session's or a user's (a request to erase them).

    Example:
        cauce traces delete --older-than 30d
        cauce traces delete --user ana
        cauce traces delete 4bf92f35 9c1d0e77
    """
    from cauce.genai.tracing import delete_traces, read_trace

    ids = [read_trace(given, with_spans=False).summary.id for given in trace_ids or []]
    deleted = delete_traces(
        ids or None,
        before_ms=_since_ms(older_than, "--older-than"),
        session_id=session_id,
        user_id=user_id,
        experiment=experiment,
    )
    console.print(f"Deleted {deleted} trace{'' if deleted == 1 else 's'}.")


@app.command("scores")
def scores(
    name: str = typer.Option(None, "--name", help="Only traces whose root span has this name."),
    session_id: str = typer.Option(None, "--session", help="Only the traces of this session."),
    user_id: str = typer.Option(None, "--user", help="Only the traces of this user."),
    tag: str = typer.Option(None, "--tag", help="Only traces with this tag: KEY or KEY=VALUE."),
    since: str = typer.Option(None, "--since", help="Only traces this recent: 30m, 1h, 7d."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """What evaluations and feedback said of the traces, by name: how many traces, the
    mean, least and most score, and each label's count (a trace's latest result counts).

    Example:
        cauce traces scores --since 7d
        cauce traces scores --user ana
        cauce traces scores --tag arm=b
    """
    from cauce.genai.tracing import list_scores

    found = list_scores(
        name=name, session_id=session_id, user_id=user_id, tag=tag, since_ms=_since_ms(since)
    )
    if as_json:
        print_json([s.to_dict() for s in found])
        return
    table(
        "Scores",
        ["Score", "Traces", "Scored", "Mean", "Min", "Max", "Labels"],
        [
            [
                s.name,
                s.traces,
                s.scored,
                number(s.mean),
                number(s.min),
                number(s.max),
                ", ".join(f"{label} {count}" for label, count in s.labels.items()),
            ]
            for s in found
        ],
        empty="No scores match."
        if name or session_id or user_id or since
        else "No scores yet: evaluations and cauce traces feedback put them on traces.",
    )


def _since_ms(since: str | None, option: str = "--since") -> int | None:
    """``--since 1h`` as the time (ms) an hour ago."""
    from cauce.config import duration_ms

    if since is None:
        return None
    try:
        return int(time.time() * 1000) - duration_ms(since)
    except ValueError as exc:
        raise InvalidInput(f"{option}: {exc}", details={"field": option[2:]}) from None


def _scores(scores: dict[str, float | str]) -> str:
    return " ".join(f"{name}={number(value)}" for name, value in scores.items())


def _cost(value: float | None) -> str:
    return "—" if value is None else f"{value:.6f}"


@app.command("to-dataset")
def to_dataset(
    dataset: str = typer.Argument(..., help="The dataset the traces are registered as."),
    name: str = typer.Option(None, "--name", help="Only traces whose root span has this name."),
    status: str = typer.Option(None, "--status", help="ok or error."),
    session_id: str = typer.Option(None, "--session", help="Only the traces of this session."),
    tag: str = typer.Option(None, "--tag", help="Only traces with this tag: KEY or KEY=VALUE."),
    run: str = typer.Option(
        None, "--run", help="Only the traces made in this run (its id, or the start of one)."
    ),
    since: str = typer.Option(None, "--since", help="Only traces this recent: 30m, 1h, 2d."),
    limit: int = typer.Option(10_000, "-n", "--max", help="At most this many, oldest first."),
) -> None:
    """Register recorded traces as a dataset version, one row per trace.

    An evaluation dataset made of real traffic, or of the traces a reviewer tagged.

    Example:
        cauce traces to-dataset qa-traffic --name "invoke_agent rag-answer" --status ok
        cauce traces to-dataset qa-golden --tag golden
    """
    from cauce.genai.tracing import to_dataset as traces_to_dataset

    version = traces_to_dataset(
        dataset,
        trace_name=name,
        status=status,
        since_ms=_since_ms(since),
        session_id=session_id,
        tag=tag,
        limit=limit,
    )
    console.print(f"Registered {version.row_count} traces as {version.ref}")
