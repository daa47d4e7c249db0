"""The operations registry: every operation's parameters and result have a JSON form."""

from __future__ import annotations

import pytest

from cauce.operations import Operation
from cauce.server.app import operations


@pytest.mark.parametrize("op", list(operations().values()), ids=lambda op: op.name)
def test_every_operation_resolves_its_types(op: Operation) -> None:
    for name in op.params:
        op.adapter(name)  # a TypeAdapter for each parameter: the annotation resolves
    if op.returns is not None:
        op.adapter("return")
    assert op.func.__doc__, f"{op.name} has no docstring (the route's summary)"
