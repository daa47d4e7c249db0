"""Signatures: inferred schemas, required and optional columns, and fast validation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cauce.errors import InvalidInput
from cauce.registry.signature import infer_schema, validate_frame, validate_input


def test_a_column_with_nulls_in_the_example_is_optional() -> None:
    example = pd.DataFrame(
        {
            "age": [30, 40],
            "charges": [1.5, np.nan],
            "plan": ["a", None],
            "at": pd.to_datetime(["2026-01-01", None]),
            "senior": [True, False],
        }
    )
    schema = infer_schema(example)
    assert schema == {
        "type": "dataframe",
        "columns": [
            {"name": "age", "type": "long"},
            {"name": "charges", "type": "double", "required": False},
            {"name": "plan", "type": "string", "required": False},
            {"name": "at", "type": "datetime", "required": False},
            {"name": "senior", "type": "boolean"},
        ],
    }
    # Records with a missing key count as nulls too.
    records = infer_schema([{"a": 1, "b": "x"}, {"a": 2}])
    assert records["columns"][1] == {"name": "b", "type": "string", "required": False}


@pytest.mark.parametrize(
    ("column", "bad"),
    [
        ({"name": "x", "type": "double"}, [1.0, np.nan]),
        ({"name": "x", "type": "double"}, [1.0, None]),
        ({"name": "x", "type": "long"}, pd.array([1, None], dtype="Int64")),
        ({"name": "x", "type": "string"}, ["a", None]),
        ({"name": "x", "type": "string"}, pd.array(["a", None], dtype="string")),
        ({"name": "x", "type": "datetime"}, pd.to_datetime(["2026-01-01", None])),
        ({"name": "x", "type": "boolean"}, [True, None]),
    ],
)
def test_a_null_in_a_required_column_names_the_column_and_row(
    column: dict[str, str], bad: object
) -> None:
    schema = {"type": "dataframe", "columns": [column]}
    with pytest.raises(InvalidInput, match="'x' is required but row 1 has no value") as caught:
        validate_input(schema, pd.DataFrame({"x": bad}))
    assert caught.value.details == {
        "field": "x",
        "expected": column["type"],
        "row": 1,
        "reason": "null",
    }
    optional = {"type": "dataframe", "columns": [{**column, "required": False}]}
    assert len(validate_input(optional, pd.DataFrame({"x": bad}))) == 2


def test_old_signatures_without_the_key_treat_columns_as_required() -> None:
    schema = {"type": "dataframe", "columns": [{"name": "x", "type": "double"}]}
    with pytest.raises(InvalidInput, match="required"):
        validate_frame(schema, pd.DataFrame({"x": [np.nan]}))


def test_a_frame_that_already_fits_is_returned_without_a_copy() -> None:
    frame = pd.DataFrame({"a": [1, 2], "b": [0.5, 1.5], "c": ["x", "y"], "d": [True, False]})
    schema = infer_schema(frame)
    assert validate_frame(schema, frame) is frame


def test_conversion_leaves_the_callers_frame_alone() -> None:
    frame = pd.DataFrame({"b": ["1.5", "2"], "a": [1, 2]})
    schema = {
        "type": "dataframe",
        "columns": [{"name": "a", "type": "long"}, {"name": "b", "type": "double"}],
    }
    out = validate_frame(schema, frame)
    assert out.columns.tolist() == ["a", "b"]
    assert out["b"].tolist() == [1.5, 2.0]
    assert frame["b"].tolist() == ["1.5", "2"] and frame.columns.tolist() == ["b", "a"]


def test_type_errors_name_the_column() -> None:
    schema = {
        "type": "dataframe",
        "columns": [{"name": "n", "type": "long"}, {"name": "ok", "type": "boolean"}],
    }
    with pytest.raises(InvalidInput, match="'n' must be long; got 'many'") as caught:
        validate_frame(schema, pd.DataFrame({"n": ["many"], "ok": [True]}))
    assert caught.value.details["field"] == "n"
    with pytest.raises(InvalidInput, match="'ok' must be boolean; got 'yes'") as caught:
        validate_frame(schema, pd.DataFrame({"n": [1], "ok": ["yes"]}, dtype=object))
    assert caught.value.details["field"] == "ok"
    with pytest.raises(InvalidInput, match="'ok' must be boolean; got float64"):
        validate_frame(schema, pd.DataFrame({"n": [1], "ok": [0.5]}))
    # Booleans count as numbers, as before.
    assert validate_frame(schema, pd.DataFrame({"n": [True], "ok": [True]}))["n"].tolist() == [1]


def test_datetime_columns_read_text() -> None:
    schema = {"type": "dataframe", "columns": [{"name": "at", "type": "datetime"}]}
    out = validate_frame(schema, pd.DataFrame({"at": ["2026-11-25 10:00"]}))
    assert out["at"].iloc[0] == pd.Timestamp("2026-11-25 10:00")
    with pytest.raises(InvalidInput, match="'at' must be datetime; got 'later'"):
        validate_frame(schema, pd.DataFrame({"at": ["later"]}))


def test_duplicate_columns_are_refused_by_name() -> None:
    schema = {"type": "dataframe", "columns": [{"name": "a", "type": "long"}]}
    frame = pd.DataFrame([[1, 2, 3]], columns=["a", "a", "b"])
    with pytest.raises(InvalidInput, match="duplicate columns a") as caught:
        validate_frame(schema, frame)
    assert caught.value.details["field"] == "a"
