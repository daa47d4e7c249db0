"""DAG inference from calls, and bad pipeline input."""

from __future__ import annotations

import pytest

import cauce
from cauce.errors import InvalidInput
from cauce.pipelines.decorators import Pipeline, Step
from cauce.pipelines.graph import Placeholder, trace
from cauce.workspace import Workspace
from remote import server_side
from stored import row_count


@cauce.step
def source(n: int) -> int:
    return n


@cauce.step(retries=1)
def double(x: int) -> int:
    return 2 * x


@cauce.step
def square(x: int) -> int:
    return x * x


@cauce.step()
def add(a: int, b: int, offset: int = 0) -> int:
    return a + b + offset


@cauce.pipeline
def diamond(n: int = 3):
    root = source(n)
    return add(double(root), square(root))


@cauce.pipeline(name="fan")
def fan_out(n: int):
    root = source(n)
    return [double(root), square(root), double(root)]


def test_decorators_with_and_without_options() -> None:
    assert isinstance(source, Step) and isinstance(double, Step) and isinstance(add, Step)
    assert double.retries == 1 and source.retries == 0
    assert isinstance(diamond, Pipeline) and fan_out.name == "fan"
    assert cauce.step is cauce.pipelines.decorators.step  # exported from cauce


def test_a_step_outside_a_pipeline_is_a_plain_call() -> None:
    assert add(1, 2, offset=3) == 6
    assert double(square(3)) == 18


def test_diamond() -> None:
    graph = trace(diamond, diamond.bind({"n": 4}))
    assert list(graph.nodes) == ["source", "double", "square", "add"]
    assert graph.nodes["source"].deps == []
    assert graph.nodes["double"].deps == ["source"]
    assert graph.nodes["add"].deps == ["double", "square"]
    assert graph.nodes["add"].arguments == {
        "a": Placeholder("double"),
        "b": Placeholder("square"),
        "offset": 0,
    }
    assert graph.nodes["source"].arguments == {"n": 4}
    assert graph.result == Placeholder("add")
    assert graph.dependents("source") == {"double", "square", "add"}
    assert graph.dependents("double") == {"add"}


def test_fan_out_names_repeated_calls() -> None:
    graph = trace(fan_out, fan_out.bind({"n": 2}))
    assert list(graph.nodes) == ["source", "double", "square", "double_2"]
    assert all(graph.nodes[n].deps == ["source"] for n in ("double", "square", "double_2"))
    assert graph.result == [Placeholder("double"), Placeholder("square"), Placeholder("double_2")]


def test_unknown_pipeline_parameter_is_named(workspace: Workspace) -> None:
    with pytest.raises(InvalidInput, match="takes no parameter 'bogus'") as info:
        diamond.run(bogus=1)
    assert info.value.code == "unknown-parameter"
    with pytest.raises(InvalidInput, match="missing a required argument: 'n'"):
        fan_out.run()
    assert row_count(server_side(workspace), "pipeline_runs") == 0  # nothing was stored


def test_unknown_step_argument_is_named(workspace: Workspace) -> None:
    @cauce.pipeline
    def typo(n: int):
        return add(source(n), 1, offst=2)

    with pytest.raises(InvalidInput, match="step 'add' takes no argument 'offst'"):
        typo.run(n=1)

    @cauce.pipeline
    def too_many(n: int):
        return double(source(n), 2)

    with pytest.raises(InvalidInput, match="step 'double'"):
        too_many.run(n=1)


def test_other_bad_declarations(workspace: Workspace) -> None:
    @cauce.pipeline
    def nested(n: int):
        return add(0, [source(n)])

    with pytest.raises(InvalidInput, match="pass step outputs directly"):
        nested.run(n=1)

    @cauce.pipeline
    def branching(n: int):
        return double(n) if source(n) else square(n)

    with pytest.raises(InvalidInput, match="not known while the pipeline is declared"):
        branching.run(n=1)

    @cauce.pipeline
    def empty(n: int):
        return n

    with pytest.raises(InvalidInput, match="calls no step"):
        empty.run(n=1)
    with pytest.raises(InvalidInput, match="unknown executor 'dask'"):
        diamond.run(executor="dask")
    with pytest.raises(InvalidInput, match="retries"):
        cauce.step(retries=-1)(lambda: 1)
    with pytest.raises(InvalidInput, match="timeout"):
        cauce.step(timeout=0)(lambda: 1)
    with pytest.raises(InvalidInput, match="env"):
        cauce.step(env="numpy")(lambda: 1)  # type: ignore[arg-type]
