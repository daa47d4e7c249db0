"""The docs name every CLI command and every setting."""

from __future__ import annotations

import ast
import re
import types
import typing
from pathlib import Path
from typing import Any

import typer.main
from pydantic import BaseModel
from typer.testing import CliRunner

from cauce import specs
from cauce.cli.main import app, reflowed
from cauce.config import SETTINGS, load_object

DOCS = Path(__file__).parents[1] / "docs"
TESTS = Path(__file__).parent


def _commands(group: typer.Typer, prefix: str) -> list[str]:
    click_group = typer.main.get_command(group)
    found = []

    def walk(command: object, path: str) -> None:
        children = getattr(command, "commands", None)
        if children:
            for name, child in children.items():
                walk(child, f"{path} {name}")
        else:
            found.append(path)

    walk(click_group, prefix)
    return found


def test_every_cli_command_is_documented() -> None:
    text = (DOCS / "cli.md").read_text()
    commands = _commands(app, "cauce")
    assert len(commands) >= 15
    missing = [c for c in commands if f"`{c}" not in text]
    assert not missing, f"commands missing from docs/cli.md: {missing}"


def test_every_command_help_has_an_example() -> None:
    click_group = typer.main.get_command(app)

    def walk(command: object, path: str) -> list[str]:
        children = getattr(command, "commands", None)
        if children:
            return [m for n, c in children.items() for m in walk(c, f"{path} {n}")]
        return [] if "Example:" in (getattr(command, "help", "") or "") else [path]

    assert walk(click_group, "cauce") == []


def test_every_command_summary_is_one_line_and_no_help_shows_rest_markup() -> None:
    """The first paragraph of a command's help is what its group lists; typer keeps the line
    breaks there, so a summary over two source lines broke the list mid-sentence."""
    click_group = typer.main.get_command(app)

    def walk(command: object, path: str) -> list[str]:
        children = getattr(command, "commands", None) or {}
        broken = [m for n, c in children.items() for m in walk(c, f"{path} {n}")]
        text = (getattr(command, "help", "") or "").strip()
        summary = text.split("\n\n")[0]
        # reST's ``literal`` prints as it is written in a terminal.
        return broken + ([path] if "\n" in summary or "``" in text else [])

    assert walk(click_group, "cauce") == []


def test_help_paragraphs_wrap_to_the_terminal_and_examples_keep_their_lines() -> None:
    """typer keeps a docstring's line breaks: a paragraph over three source lines printed as
    three ragged lines, and an example that came right after the summary lost its indent."""
    runner = CliRunner()
    shown = runner.invoke(app, ["demo", "--help"], env={"COLUMNS": "300"}).output
    assert (
        "classic: data to a served, monitored, retrained model. genai: documents to an index, two "
        "prompt variants of a RAG flow"
    ) in shown
    assert "\n     cauce demo --fast" in shown and "\n     cauce demo genai" in shown
    shown = runner.invoke(app, ["runs", "list", "--help"], env={"COLUMNS": "300"}).output
    assert '\n     cauce runs list -e churn -f "metrics.auc > 0.8"' in shown
    assert reflowed("A.\n\nOne\nsentence:\n- a\n- b\n\nExample:\n    x\n    y") == (
        "A.\n\n\nOne sentence:\n- a\n- b\n\nExample:\n    x\n    y"
    )


def test_apply_names_every_spec_kind() -> None:
    shown = CliRunner().invoke(app, ["apply", "--help"], env={"COLUMNS": "300"}).output
    listed = (DOCS / "cli.md").read_text().split("| `cauce apply", 1)[1].split("\n", 1)[0]
    for kind in specs.KINDS:
        assert kind.name in shown and kind.name in listed, kind.name


def test_every_setting_is_documented() -> None:
    text = (DOCS / "configuration.md").read_text()
    missing = [s.env for s in SETTINGS if f"`{s.env}`" not in text]
    assert not missing, f"settings missing from docs/configuration.md: {missing}"


# -- spec field tables ------------------------------------------------------------------------

FIELDS_MARK = re.compile(r"<!-- fields: (\w+)(?: (\S+))? -->")


def _cells(row: str) -> list[str]:
    return [c.strip() for c in re.split(r"(?<!\\)\|", row.strip().strip("|"))]


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _field_tables() -> dict[str, set[str]]:
    """Per kind, the dotted field paths its marked tables name.

    A table follows ``<!-- fields: KIND [PREFIX] -->``; each row's first cell names one or more
    fields in backticks (``min`` / ``max``), under PREFIX. A ``Fields`` column lists the fields
    of the row's mapping (``url``, ``headers`` (``{}``)...: what is in brackets is a default).
    """
    found: dict[str, set[str]] = {}
    for page in sorted(DOCS.glob("*.md")):
        lines = page.read_text().splitlines()
        for number, line in enumerate(lines):
            mark = FIELDS_MARK.fullmatch(line.strip())
            if mark is None:
                continue
            kind, prefix = mark.group(1), mark.group(2) or ""
            rest = lines[number + 1 :]
            table = rest[: next((i for i, r in enumerate(rest) if not r.strip()), len(rest))]
            assert table and table[0].startswith("|"), f"{page.name}:{number + 1}: no table"
            header = _cells(table[0])
            extra = next((i for i, h in enumerate(header) if h.startswith("Fields")), None)
            for row in table[2:]:
                cells = _cells(row)
                subfields = []
                if extra is not None:
                    unbracketed = re.sub(r"\([^()]*\)", "", cells[extra])
                    subfields = re.findall(r"`([^`]+)`", unbracketed)
                for name in re.findall(r"`([^`]+)`", cells[0]):
                    path = _join(prefix, name)
                    found.setdefault(kind, set()).add(path)
                    found[kind].update(_join(path, s) for s in subfields)
    return found


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """The type inside Optional/list/Annotated, and whether it is a list item."""
    many = False
    while True:
        origin, args = typing.get_origin(annotation), typing.get_args(annotation)
        if origin in (typing.Union, types.UnionType):
            rest = [a for a in args if a is not type(None)]
            if len(rest) != 1:
                return annotation, many
            annotation = rest[0]
        elif origin is list:
            many, annotation = True, args[0]
        elif origin is typing.Annotated:
            annotation = args[0]
        else:
            return annotation, many


def _model_fields(model: type[BaseModel], prefix: str = "") -> tuple[set[str], set[str]]:
    """The leaf field paths of a spec model (to document) and the paths of nested mappings
    (which a table may name too); ``[]`` marks the items of a list."""
    leaves: set[str] = set()
    nested: set[str] = set()
    for name, info in model.model_fields.items():
        if not prefix and name == "kind":
            continue
        path = _join(prefix, name)
        inner, many = _unwrap(info.annotation)
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            nested.add(path)
            sub_leaves, sub_nested = _model_fields(inner, path + ("[]" if many else ""))
            leaves |= sub_leaves
            nested |= sub_nested
        else:
            leaves.add(path)
    return leaves, nested


def test_every_spec_field_is_documented_and_every_documented_field_exists() -> None:
    tables = _field_tables()
    assert set(tables) <= {k.name for k in specs.KINDS}, "a field table names an unknown kind"
    for kind in specs.KINDS:
        model = load_object(kind.spec)
        leaves, nested = _model_fields(model)
        documented = tables.get(kind.name, set())
        missing = sorted(leaves - documented)
        unknown = sorted(documented - leaves - nested)
        assert not missing, f"{kind.name} fields missing from the docs' field tables: {missing}"
        assert not unknown, f"{kind.name} fields documented but not in {kind.spec}: {unknown}"


def test_the_field_table_check_sees_a_missing_and_an_unknown_field() -> None:
    """The check above reads nested mappings and list items: the Rollout model has both."""
    leaves, nested = _model_fields(load_object(specs.get_kind("Rollout").spec))
    assert {"steps[].weight", "analysis.metrics[].query", "mirror.duration"} <= leaves
    assert {"steps", "analysis", "analysis.metrics", "mirror"} <= nested
    monitor = _field_tables()["Monitor"]
    assert {"on_alert[].webhook.retries", "signals[].model_performance.labels.label"} <= monitor
    assert "on_alert[].webhook.3" not in monitor  # a default in brackets is no field


# -- docs/examples ----------------------------------------------------------------------------

# Each file of docs/examples and the test that applies, validates, checks or runs it.
EXAMPLE_TESTS = {
    "churn-gate.yaml": "registry/test_gates.py::test_the_example_policy_passes_a_good_challenger",
    "churn-monitor.yaml": "test_specs.py::test_the_spec_examples_apply",
    "churn-serving.yaml": "test_specs.py::test_the_spec_examples_apply",
    "customers-checks.yaml": "data/test_checks.py::test_the_example_suite_on_the_demo_data",
    "pipeline_example.py": "pipelines/test_pipeline_runs.py::test_docs_example_runs",
    "support-genai-monitor.yaml": "monitoring/test_genai_monitors.py::"
    "test_a_degraded_window_raises_an_alert_that_runs_a_pipeline_and_is_reported",
}


def test_every_example_is_exercised_by_a_test() -> None:
    examples = sorted(p.name for p in (DOCS / "examples").iterdir())
    uncovered = sorted(set(examples) - set(EXAMPLE_TESTS))
    assert not uncovered, f"docs/examples files no test applies or runs: {uncovered}"
    assert sorted(EXAMPLE_TESTS) == examples, "EXAMPLE_TESTS names files that are gone"
    for name, target in EXAMPLE_TESTS.items():
        path, function = target.split("::")
        tree = ast.parse((TESTS / path).read_text())
        found = [
            node
            for node in tree.body
            if isinstance(node, ast.FunctionDef) and node.name == function
        ]
        assert found, f"{target} does not exist"
        # The test names the file itself, or through a module constant that does.
        used = {n.id for n in ast.walk(found[0]) if isinstance(n, ast.Name)}
        used |= {n.value for n in ast.walk(found[0]) if isinstance(n, ast.Constant)}
        constants = {
            target.id
            for node in tree.body
            if isinstance(node, ast.Assign) and name in ast.unparse(node.value)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        assert name in ast.unparse(found[0]) or used & constants, f"{target} never names {name}"
