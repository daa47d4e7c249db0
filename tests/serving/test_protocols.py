"""Scoring protocols: MLflow /invocations and Open Inference Protocol v2, parsed and encoded."""

from __future__ import annotations

import contextlib
import json
import math
import re
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression

from cauce.errors import BadRequest, CauceError, InvalidInput, UnsupportedMediaType
from cauce.registry.signature import infer_schema
from cauce.serving.batching import concat_inputs, split_predictions
from cauce.serving.codec import ScoringInput
from cauce.serving.invocations import encode_invocations, parse_invocations
from cauce.serving.v2 import encode_v2, header_length, json_view, parse_v2_infer, v2_metadata

SCHEMA = {
    "type": "dataframe",
    "columns": [
        {"name": "age", "type": "long"},
        {"name": "charges", "type": "double"},
        {"name": "plan", "type": "string"},
        {"name": "senior", "type": "boolean"},
        {"name": "note", "type": "string", "required": False},
    ],
}
TENSOR = {"type": "tensor", "dtype": "float32", "shape": [-1, 3]}
ROWS = [[30, 70.5, "basic", False, None], [45, 99.0, "pro", True, "vip"]]
NAMES = [c["name"] for c in SCHEMA["columns"]]
EXPECTED = pd.DataFrame(ROWS, columns=NAMES)


def body(payload: Any) -> bytes:
    return json.dumps(payload).encode()


def invocations(payload: Any, schema: Any = SCHEMA, content_type: str = "application/json") -> Any:
    return parse_invocations(body(payload), content_type, schema)


def assert_expected(frame: pd.DataFrame) -> None:
    assert frame.columns.tolist() == NAMES
    assert frame["age"].dtype == np.int64
    assert frame["charges"].dtype == np.float64
    assert frame["senior"].dtype == bool
    assert frame.astype(object).where(frame.notna(), None).values.tolist() == ROWS


# -- MLflow /invocations formats ------------------------------------------------------------------


def test_dataframe_split_is_read_in_signature_order_with_params() -> None:
    shuffled = [NAMES[i] for i in (4, 2, 0, 3, 1)]
    rows = [[r[i] for i in (4, 2, 0, 3, 1)] for r in ROWS]
    scoring = invocations(
        {
            "dataframe_split": {"columns": [*shuffled, "extra"], "data": [[*r, 1] for r in rows]},
            "params": {"threshold": 0.3},
        }
    )
    assert isinstance(scoring, ScoringInput)
    assert_expected(scoring.data)
    assert scoring.params == {"threshold": 0.3}
    assert (scoring.rows, scoring.request_id) == (2, None)


def test_dataframe_split_keeps_an_index_when_sent() -> None:
    scoring = invocations({"dataframe_split": {"columns": NAMES, "data": ROWS, "index": [7, 9]}})
    assert scoring.data.index.tolist() == [7, 9]


def test_dataframe_records_and_a_missing_optional_key() -> None:
    records = [dict(zip(NAMES, r, strict=True)) for r in ROWS]
    del records[0]["note"]
    assert_expected(invocations({"dataframe_records": records}).data)


@pytest.mark.parametrize("key", ["instances", "inputs"])
def test_instances_and_inputs_as_records_and_rows(key: str) -> None:
    records = [dict(zip(NAMES, r, strict=True)) for r in ROWS]
    assert_expected(invocations({key: records}).data)
    assert_expected(invocations({key: ROWS}).data)


def test_inputs_as_a_dict_of_columns_and_as_one_row_of_scalars() -> None:
    columns = {n: [r[i] for r in ROWS] for i, n in enumerate(NAMES)}
    assert_expected(invocations({"inputs": columns}).data)
    one = invocations({"inputs": dict(zip(NAMES, ROWS[1], strict=True))})
    assert one.rows == 1 and one.data["plan"].tolist() == ["pro"]


def test_tensor_signature_takes_inputs_and_instances_as_arrays() -> None:
    for key in ("inputs", "instances"):
        scoring = invocations({key: [[1, 2, 3], [4, 5, 6]]}, TENSOR)
        assert isinstance(scoring.data, np.ndarray)
        assert scoring.data.shape == (2, 3) and scoring.rows == 2
    with pytest.raises(InvalidInput, match=r"shape \[-1, 3\]") as caught:
        invocations({"inputs": [[1, 2]]}, TENSOR)
    assert caught.value.details["field"] == "inputs"
    with pytest.raises(InvalidInput, match="one tensor") as caught:
        invocations({"inputs": {"x": [1]}}, TENSOR)
    assert caught.value.details["field"] == "inputs"


def test_without_a_signature_tables_stay_tables_and_lists_become_arrays() -> None:
    split = invocations({"dataframe_split": {"columns": ["a", "b"], "data": [[1, "x"]]}}, None)
    assert isinstance(split.data, pd.DataFrame) and split.data["a"].tolist() == [1]
    records = invocations({"dataframe_records": [{"a": 1}, {"a": 2}]}, None)
    assert records.data["a"].tolist() == [1, 2]
    tensor = invocations({"inputs": [[1.0, 2.0]]}, None)
    assert isinstance(tensor.data, np.ndarray) and tensor.data.shape == (1, 2)
    columns = invocations({"inputs": {"a": [1, 2], "b": [3, 4]}}, None)
    assert columns.data.shape == (2, 2)


def test_a_single_column_may_be_sent_flat() -> None:
    schema = {"type": "dataframe", "columns": [{"name": "x", "type": "double"}]}
    assert invocations({"inputs": [1.5, 2.5]}, schema).data["x"].tolist() == [1.5, 2.5]
    split = invocations({"dataframe_split": {"columns": ["x"], "data": [1.5, 2.5]}}, schema)
    assert split.data["x"].tolist() == [1.5, 2.5]


def test_numbers_sent_as_text_are_read_and_ints_in_double_columns_pass() -> None:
    scoring = invocations(
        {"dataframe_split": {"columns": NAMES, "data": [["30", 70, "b", True, None]]}}
    )
    assert scoring.data["age"].tolist() == [30] and scoring.data["charges"].tolist() == [70]


def test_csv_body_with_and_without_a_signature() -> None:
    csv = b"age,charges,plan,senior,note\n30,70.5,basic,false,\n45,99,pro,true,vip\n"
    for content_type in ("text/csv", "text/csv; charset=utf-8", "TEXT/CSV"):
        assert_expected(parse_invocations(csv, content_type, SCHEMA).data)
    plain = parse_invocations(csv, "text/csv", None).data
    assert plain["charges"].tolist() == [70.5, 99.0] and len(plain) == 2
    header_only = parse_invocations(b"age,charges,plan,senior,note\n", "text/csv", SCHEMA)
    assert header_only.rows == 0
    with pytest.raises(InvalidInput, match="'age' must be long; got 'old'") as caught:
        parse_invocations(b"age,charges,plan,senior,note\nold,1,a,true,\n", "text/csv", SCHEMA)
    assert caught.value.details["field"] == "age"
    with pytest.raises(InvalidInput, match="'charges' is required") as caught:
        parse_invocations(b"age,charges,plan,senior,note\n1,,a,true,\n", "text/csv", SCHEMA)
    assert caught.value.details["field"] == "charges"
    with pytest.raises(BadRequest, match="row 1 has 2 values") as caught:
        parse_invocations(b"age,charges,plan,senior,note\n1,2\n", "text/csv", SCHEMA)
    with pytest.raises(BadRequest, match="empty"):
        parse_invocations(b"", "text/csv", SCHEMA)


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "application/json;charset=UTF-8",
        'Application/JSON; charset="utf-8"',
        None,
    ],
)
def test_json_content_types_with_parameters(content_type: str | None) -> None:
    payload = body({"dataframe_split": {"columns": NAMES, "data": ROWS}})
    assert_expected(parse_invocations(payload, content_type, SCHEMA).data)


def test_legacy_format_parameter_reads_bare_frames() -> None:
    split = body({"columns": NAMES, "data": ROWS})
    assert_expected(parse_invocations(split, "application/json; format=pandas-split", SCHEMA).data)
    records = body([dict(zip(NAMES, r, strict=True)) for r in ROWS])
    ct = "application/json; format=pandas-records"
    assert_expected(parse_invocations(records, ct, SCHEMA).data)
    with pytest.raises(UnsupportedMediaType, match="format 'tf-serving'"):
        parse_invocations(split, "application/json; format=tf-serving", SCHEMA)


# -- MLflow /invocations errors -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "match"),
    [
        ("text/plain", "'text/plain' is not supported"),
        ("application/x-www-form-urlencoded", "not supported"),
        ("application/json; charset=latin-1", "charset 'latin-1'"),
    ],
)
def test_unsupported_media_types_are_415(content_type: str, match: str) -> None:
    with pytest.raises(UnsupportedMediaType, match=match) as caught:
        parse_invocations(b"{}", content_type, SCHEMA)
    assert caught.value.http_status == 415
    assert caught.value.code == "unsupported-media-type"
    assert caught.value.details["field"] == "content-type"


@pytest.mark.parametrize(
    ("raw", "match", "field"),
    [
        (b"{not json", "not valid JSON", "body"),
        (b"\xff\xfe\x00", "not valid JSON", "body"),
        (b"[1, 2]", "got a JSON list", "body"),
        (b'"text"', "got a string", "body"),
        (b'{"data": []}', "exactly one of", "body"),
        (b'{"inputs": [1], "instances": [1]}', "got instances, inputs", "inputs"),
        (b'{"inputs": [[1]], "params": [1]}', "params must be a JSON object", "params"),
        (b'{"dataframe_split": [1]}', "must be an object", "dataframe_split"),
        (b'{"dataframe_split": {"columns": ["a"]}}', "list of rows", "dataframe_split.data"),
        (
            b'{"dataframe_split": {"columns": "a", "data": []}}',
            "list of column names",
            "dataframe_split.columns",
        ),
        (
            b'{"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2], [3]]}}',
            "row 1 must be a list of 2 values",
            "dataframe_split.data",
        ),
        (
            b'{"dataframe_split": {"columns": ["a"], "data": [[1]], "index": [1, 2]}}',
            "one label per row",
            "dataframe_split.index",
        ),
        (b'{"dataframe_records": {"a": 1}}', "list of row objects", "dataframe_records"),
        (
            b'{"dataframe_records": [{"a": 1}, 2]}',
            "row 1 must be a JSON object",
            "dataframe_records",
        ),
        (b'{"instances": {"a": [1]}}', "instances must be a list", "instances"),
        (b'{"inputs": "x"}', "must be a list or an object", "inputs"),
        (b'{"inputs": {"a": [1], "b": [1, 2]}}', "same length", "inputs"),
    ],
)
def test_malformed_bodies_are_400_naming_the_field(raw: bytes, match: str, field: str) -> None:
    with pytest.raises(BadRequest, match=match) as caught:
        parse_invocations(raw, "application/json", SCHEMA)
    assert caught.value.http_status == 400
    assert caught.value.code == "bad-request"
    assert caught.value.details["field"] == field


@pytest.mark.parametrize(
    ("row", "match", "field"),
    [
        ([30, 70.5, "basic"], "missing columns senior, note", "senior"),
        (["old", 70.5, "basic", False, None], "'age' must be long; got 'old'", "age"),
        ([30, "cheap", "basic", False, None], "'charges' must be double; got 'cheap'", "charges"),
        ([30, [1, 2], "basic", False, None], "'charges' must be double", "charges"),
        ([30, {"a": 1}, "basic", False, None], "'charges' must be double", "charges"),
        ([30, 70.5, "basic", "yes", None], "'senior' must be boolean; got 'yes'", "senior"),
        ([None, 70.5, "basic", False, None], "'age' is required", "age"),
        ([30, float("nan"), "basic", False, None], "'charges' is required", "charges"),
        ([30, None, "basic", False, None], "'charges' is required", "charges"),
        ([30, 70.5, None, False, None], "'plan' is required", "plan"),
        ([30, 70.5, float("nan"), False, None], "'plan' is required", "plan"),
        ([30, 70.5, "basic", None, None], "'senior' is required", "senior"),
    ],
)
def test_signature_mismatches_are_422_naming_the_column(
    row: list[Any], match: str, field: str
) -> None:
    names = NAMES[: len(row)]
    for payload in (
        {"dataframe_split": {"columns": names, "data": [ROWS[0][: len(row)], row]}},
        {"dataframe_records": [dict(zip(names, row, strict=True))]},
        {"inputs": {n: [v] for n, v in zip(names, row, strict=True)}},
    ):
        with pytest.raises(InvalidInput, match=match) as caught:
            invocations(payload)
        assert type(caught.value) is InvalidInput
        assert caught.value.http_status == 422
        assert caught.value.details["field"] == field


def test_rows_of_the_wrong_width_for_a_table_are_422() -> None:
    with pytest.raises(InvalidInput, match="row 0 must be a list of 5 values") as caught:
        invocations({"inputs": [[1, 2]]})
    assert caught.value.details["field"] == "inputs"


def test_json_nan_in_a_required_column_is_refused_and_allowed_in_an_optional_one() -> None:
    raw = b'{"dataframe_split": {"columns": ["age","charges","plan","senior","note"],'
    ok = raw + b'"data": [[1, 2.5, "a", true, NaN]]}}'
    assert parse_invocations(ok, "application/json", SCHEMA).rows == 1
    bad = raw + b'"data": [[1, NaN, "a", true, null]]}}'
    with pytest.raises(InvalidInput, match="row 0 has no value") as caught:
        parse_invocations(bad, "application/json", SCHEMA)
    assert caught.value.details == {
        "field": "charges",
        "expected": "double",
        "row": 0,
        "reason": "null",
    }


def test_binary_columns_are_base64_and_datetimes_are_parsed() -> None:
    schema = {
        "type": "dataframe",
        "columns": [{"name": "blob", "type": "binary"}, {"name": "at", "type": "datetime"}],
    }
    scoring = invocations(
        {"dataframe_records": [{"blob": "aGk=", "at": "2026-11-25T10:00:00"}]}, schema
    )
    assert scoring.data["blob"].tolist() == [b"hi"]
    assert scoring.data["at"].iloc[0] == pd.Timestamp("2026-11-25T10:00:00")
    with pytest.raises(InvalidInput, match="base64") as caught:
        invocations({"dataframe_records": [{"blob": "%%%", "at": "2026-11-25"}]}, schema)
    assert caught.value.details["field"] == "blob"
    with pytest.raises(InvalidInput, match="'at' must be datetime") as caught:
        invocations({"dataframe_records": [{"blob": "aGk=", "at": "soon"}]}, schema)
    assert caught.value.details["field"] == "at"


# -- encoding predictions -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("predictions", "expected"),
    [
        (np.array([1, 0, 1]), [1, 0, 1]),
        (np.array([[0.25, 0.75], [0.5, 0.5]]), [[0.25, 0.75], [0.5, 0.5]]),
        (np.array(["yes", "no"], dtype=object), ["yes", "no"]),
        (pd.Series([1.5, 2.5], name="p"), [1.5, 2.5]),
        (
            pd.DataFrame({"label": ["a", "b"], "score": [0.1, 0.9]}),
            [{"label": "a", "score": 0.1}, {"label": "b", "score": 0.9}],
        ),
        ([np.int64(1), np.float32(0.5), "x"], [1, 0.5, "x"]),
        ({"a": np.array([1, 2]), "b": [3]}, {"a": [1, 2], "b": [3]}),
        (np.array(["2026-01-01"], dtype="datetime64[D]"), ["2026-01-01"]),
        (pd.Series([1, None], dtype="Int64"), [1, None]),
    ],
)
def test_encode_invocations_writes_json_lists(predictions: Any, expected: Any) -> None:
    assert json.loads(encode_invocations(predictions)) == {"predictions": expected}


def test_encode_refuses_what_json_cannot_hold_with_a_cauce_error() -> None:
    with pytest.raises(CauceError, match="cannot be written as JSON"):
        encode_invocations([object()])


def test_sklearn_round_trip_through_every_format() -> None:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {"age": rng.integers(18, 80, 50), "charges": rng.normal(60, 10, 50).round(2)}
    )
    labels = (frame["charges"] > 60).astype(int)
    model = LogisticRegression().fit(frame, labels)
    schema = infer_schema(frame)
    expected = model.predict(frame.head(5)).tolist()
    payloads = [
        {"dataframe_split": json.loads(frame.head(5).to_json(orient="split"))},
        {"dataframe_records": json.loads(frame.head(5).to_json(orient="records"))},
        {"inputs": frame.head(5).to_dict(orient="list")},
        {"instances": frame.head(5).values.tolist()},
    ]
    for payload in payloads:
        scoring = invocations(payload, schema)
        answer = json.loads(encode_invocations(model.predict(scoring.data)))
        assert answer == {"predictions": expected}
    proba = model.predict_proba(invocations(payloads[0], schema).data)
    assert json.loads(encode_invocations(proba))["predictions"] == proba.tolist()
    v2 = parse_v2_infer(
        body(
            {
                "inputs": [
                    {
                        "name": "age",
                        "shape": [5],
                        "datatype": "INT64",
                        "data": frame["age"].head(5).tolist(),
                    },
                    {
                        "name": "charges",
                        "shape": [5, 1],
                        "datatype": "FP64",
                        "data": frame["charges"].head(5).tolist(),
                    },
                ]
            }
        ),
        schema,
    )
    response = json.loads(
        encode_v2(
            model.predict(v2.data), model_name="churn", model_version="3", request_id="r1"
        ).body
    )
    assert response == {
        "model_name": "churn",
        "model_version": "3",
        "id": "r1",
        "outputs": [{"name": "predict", "datatype": "INT64", "shape": [5], "data": expected}],
    }


# -- Open Inference Protocol v2 --------------------------------------------------------------------


def v2_column(name: str, datatype: str, data: list[Any], shape: list[int] | None = None) -> dict:
    return {"name": name, "datatype": datatype, "shape": shape or [len(data)], "data": data}


def v2_body(*inputs: dict[str, Any], **extra: Any) -> bytes:
    return body({"inputs": list(inputs), **extra})


def test_v2_one_input_per_column_with_id_and_parameters() -> None:
    raw = v2_body(
        v2_column("note", "BYTES", ["", "vip"]),
        v2_column("age", "INT64", [30, 45]),
        v2_column("charges", "FP64", [70.5, 99.0], [2, 1]),
        v2_column("plan", "BYTES", ["basic", "pro"]),
        v2_column("senior", "BOOL", [False, True]),
        v2_column("ignored", "FP32", [1.0, 2.0]),
        id="req-1",
        parameters={"threshold": 0.5},
        outputs=[{"name": "predict"}],
    )
    scoring = parse_v2_infer(raw, SCHEMA)
    assert scoring.data.columns.tolist() == NAMES
    assert scoring.data["age"].tolist() == [30, 45]
    assert scoring.data["charges"].tolist() == [70.5, 99.0]
    assert scoring.data["senior"].tolist() == [False, True]
    assert (scoring.request_id, scoring.params, scoring.rows) == ("req-1", {"threshold": 0.5}, 2)
    assert scoring.outputs == ("predict",)


def test_v2_one_2d_input_in_signature_order() -> None:
    schema = {
        "type": "dataframe",
        "columns": [{"name": "a", "type": "double"}, {"name": "b", "type": "long"}],
    }
    scoring = parse_v2_infer(v2_body(v2_column("x", "FP32", [1, 2, 3, 4], [2, 2])), schema)
    assert scoring.data.columns.tolist() == ["a", "b"]
    assert scoring.data["a"].tolist() == [1.0, 3.0]
    nested = parse_v2_infer(v2_body(v2_column("x", "INT32", [[1, 2], [3, 4]], [2, 2])), schema)
    assert nested.data["b"].tolist() == [2, 4]
    with pytest.raises(InvalidInput, match="missing b") as caught:
        parse_v2_infer(v2_body(v2_column("a", "FP32", [1, 2, 3], [1, 3])), schema)
    assert caught.value.details["field"] == "b"


@pytest.mark.parametrize(
    ("datatype", "data", "dtype"),
    [
        ("BOOL", [True, False], np.bool_),
        ("INT8", [-128, 127], np.int8),
        ("INT16", [-3, 3], np.int16),
        ("INT32", [-3, 3], np.int32),
        ("INT64", [-(2**62), 2**62], np.int64),
        ("UINT8", [0, 255], np.uint8),
        ("UINT16", [0, 65535], np.uint16),
        ("UINT32", [0, 2**32 - 1], np.uint32),
        ("UINT64", [0, 2**64 - 1], np.uint64),
        ("FP16", [0.5, 1.5], np.float16),
        ("FP32", [0.5, 1], np.float32),
        ("FP64", [0.5, None], np.float64),
        ("BYTES", ["a", "b"], np.object_),
    ],
)
def test_v2_every_datatype(datatype: str, data: list[Any], dtype: Any) -> None:
    scoring = parse_v2_infer(v2_body(v2_column("x", datatype, data, [2, 1])), None)
    assert scoring.data.dtype == dtype and scoring.data.shape == (2, 1)
    expected = [math.nan if v is None else v for v in data]
    got = scoring.data.ravel().tolist()
    assert [g if g == g else math.nan for g in got] == pytest.approx(expected, nan_ok=True)
    encoded = json.loads(
        encode_v2(scoring.data, model_name="m", model_version="1", request_id="i").body
    )
    output = encoded["outputs"][0]
    assert (output["datatype"], output["shape"]) == (datatype, [2, 1])


@pytest.mark.parametrize(
    ("datatype", "data", "match"),
    [
        ("INT8", [1, 300], "does not fit in INT8"),
        ("UINT8", [1, -1], "does not fit in UINT8"),
        ("INT32", [1.5, 2], "must be integers"),
        ("FP32", ["a", "b"], "must be numbers"),
        ("BOOL", [1, 0], "true or false"),
        ("BYTES", [1, 2], "must be strings"),
    ],
)
def test_v2_data_that_does_not_match_its_datatype_is_422(
    datatype: str, data: list[Any], match: str
) -> None:
    with pytest.raises(InvalidInput, match=match) as caught:
        parse_v2_infer(v2_body(v2_column("x", datatype, data)), None)
    assert caught.value.http_status == 422
    assert caught.value.details["field"] == "inputs[x].data"


@pytest.mark.parametrize(
    ("raw", "match", "field"),
    [
        (b"nope", "not valid JSON", "body"),
        (b"[]", "JSON object", "body"),
        (b'{"inputs": []}', "non-empty list", "inputs"),
        (b'{"inputs": [1]}', "must be an object", "inputs[0]"),
        (
            b'{"inputs": [{"shape": [1], "datatype": "FP32", "data": [1]}]}',
            "name",
            "inputs[0].name",
        ),
        (
            b'{"inputs": [{"name": "x", "shape": [-1], "datatype": "FP32", "data": [1]}]}',
            "shape",
            "inputs[x].shape",
        ),
        (
            b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FLOAT", "data": [1]}]}',
            "datatype must be one of",
            "inputs[x].datatype",
        ),
        (
            b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": 1}]}',
            "data must be a list",
            "inputs[x].data",
        ),
        (
            b'{"inputs": [{"name": "x", "shape": [3], "datatype": "FP32", "data": [1, 2]}]}',
            r"has 2 values; shape \[3\] needs 3",
            "inputs[x].data",
        ),
        (
            b'{"inputs": [{"name": "x", "shape": [2], "datatype": "FP32", "data": [[1], [2, 3]]}]}',
            "not a rectangular array",
            "inputs[x].data",
        ),
        (
            b'{"id": 5, "inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}]}',
            "id must be a string",
            "id",
        ),
        (
            b'{"parameters": 1, "inputs": [{"name": "x", "shape": [1], "datatype": "FP32", '
            b'"data": [1]}]}',
            "parameters",
            "parameters",
        ),
        (
            b'{"outputs": [1], "inputs": [{"name": "x", "shape": [1], "datatype": "FP32", '
            b'"data": [1]}]}',
            "outputs",
            "outputs",
        ),
    ],
)
def test_v2_malformed_requests_are_400(raw: bytes, match: str, field: str) -> None:
    with pytest.raises(BadRequest, match=match) as caught:
        parse_v2_infer(raw, SCHEMA)
    assert caught.value.details["field"] == field


def test_v2_column_errors_name_the_column() -> None:
    good = [
        v2_column("age", "INT64", [30]),
        v2_column("charges", "FP64", [1.0]),
        v2_column("plan", "BYTES", ["a"]),
        v2_column("senior", "BOOL", [True]),
        v2_column("note", "BYTES", ["n"]),
    ]
    with pytest.raises(InvalidInput, match="missing plan") as caught:
        parse_v2_infer(v2_body(*good[:2], *good[3:]), SCHEMA)
    assert caught.value.details["field"] == "plan"
    with pytest.raises(InvalidInput, match=r"shape \[n\] or \[n, 1\]") as caught:
        parse_v2_infer(
            v2_body(good[0], v2_column("charges", "FP64", [1, 2], [1, 2]), *good[2:]), SCHEMA
        )
    assert caught.value.details["field"] == "charges"
    with pytest.raises(InvalidInput, match="has 2 rows") as caught:
        parse_v2_infer(v2_body(*good[:4], v2_column("note", "BYTES", ["a", "b"])), SCHEMA)
    assert caught.value.details["field"] == "note"
    with pytest.raises(InvalidInput, match="'charges' is required") as caught:
        parse_v2_infer(v2_body(good[0], v2_column("charges", "FP64", [None]), *good[2:]), SCHEMA)
    assert caught.value.details["field"] == "charges"
    with pytest.raises(InvalidInput, match="'senior' must be boolean") as caught:
        parse_v2_infer(v2_body(*good[:3], v2_column("senior", "BYTES", ["x"]), good[4]), SCHEMA)
    assert caught.value.details["field"] == "senior"


def test_v2_tensor_signature_takes_the_first_input() -> None:
    scoring = parse_v2_infer(v2_body(v2_column("X", "FP32", [1, 2, 3, 4, 5, 6], [2, 3])), TENSOR)
    assert scoring.data.shape == (2, 3) and scoring.data.dtype == np.float32
    with pytest.raises(InvalidInput, match=r"got \[3\]") as caught:
        parse_v2_infer(v2_body(v2_column("X", "FP32", [1, 2, 3])), TENSOR)
    assert caught.value.details["field"] == "inputs[X]"
    with pytest.raises(InvalidInput, match="float32 numbers"):
        parse_v2_infer(v2_body(v2_column("X", "BYTES", ["a", "b", "c"], [1, 3])), TENSOR)


def test_v2_without_a_signature_several_inputs_make_a_table() -> None:
    scoring = parse_v2_infer(
        v2_body(v2_column("a", "INT64", [1, 2]), v2_column("b", "BYTES", ["x", "y"])), None
    )
    assert scoring.data.to_dict(orient="list") == {"a": [1, 2], "b": ["x", "y"]}


def test_encode_v2_outputs_per_column_and_filtered() -> None:
    frame = pd.DataFrame({"label": ["a", "b"], "score": np.array([0.25, 0.5], dtype=np.float32)})
    response = json.loads(encode_v2(frame, model_name="m", model_version="2", request_id=None).body)
    assert len(response["id"]) == 32  # a generated id when the request had none
    assert response["outputs"] == [
        {"name": "label", "datatype": "BYTES", "shape": [2], "data": ["a", "b"]},
        {"name": "score", "datatype": "FP32", "shape": [2], "data": [0.25, 0.5]},
    ]
    only = json.loads(
        encode_v2(frame, model_name="m", model_version="2", request_id="x", outputs=["score"]).body
    )
    assert [o["name"] for o in only["outputs"]] == ["score"]
    with pytest.raises(BadRequest, match="no output 'nope'") as caught:
        encode_v2(frame, model_name="m", model_version="2", request_id="x", outputs=["nope"])
    assert caught.value.details["field"] == "outputs"
    matrix = json.loads(
        encode_v2(
            np.array([[1, 2], [3, 4]]), model_name="m", model_version="1", request_id="r"
        ).body
    )
    assert matrix["outputs"] == [
        {"name": "predict", "datatype": "INT64", "shape": [2, 2], "data": [1, 2, 3, 4]}
    ]
    listed = json.loads(
        encode_v2([0.5, 1.5], model_name="m", model_version="1", request_id="r").body
    )
    assert listed["outputs"][0]["datatype"] == "FP64"
    keyed = json.loads(
        encode_v2({"p": np.array([True])}, model_name="m", model_version="1", request_id="r").body
    )
    assert keyed["outputs"] == [{"name": "p", "datatype": "BOOL", "shape": [1], "data": [True]}]


def test_v2_metadata_describes_the_signature() -> None:
    signature = {"inputs": SCHEMA, "outputs": {"type": "tensor", "dtype": "int64", "shape": [-1]}}
    meta = v2_metadata("churn", ["1", "2"], signature, "cauce-sklearn")
    assert meta == {
        "name": "churn",
        "versions": ["1", "2"],
        "platform": "cauce-sklearn",
        "inputs": [
            {"name": "age", "datatype": "INT64", "shape": [-1]},
            {"name": "charges", "datatype": "FP64", "shape": [-1]},
            {"name": "plan", "datatype": "BYTES", "shape": [-1]},
            {"name": "senior", "datatype": "BOOL", "shape": [-1]},
            {"name": "note", "datatype": "BYTES", "shape": [-1]},
        ],
        "outputs": [{"name": "predict", "datatype": "INT64", "shape": [-1]}],
    }
    tensor = v2_metadata("lin", ["1"], {"inputs": TENSOR, "outputs": None}, "cauce-onnx")
    assert tensor["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 3]}]
    assert tensor["outputs"] == []
    assert v2_metadata("f", [], None, "cauce-python")["inputs"] == []


# -- batching -------------------------------------------------------------------------------------


def test_concat_and_split_for_tables_and_tensors() -> None:
    first = invocations({"dataframe_split": {"columns": NAMES, "data": ROWS}})
    second = invocations({"dataframe_records": [dict(zip(NAMES, ROWS[1], strict=True))]})
    batch = concat_inputs([first, second])
    assert batch.columns.tolist() == NAMES and len(batch) == 3
    assert batch["age"].tolist() == [30, 45, 45] and batch["age"].dtype == np.int64
    assert concat_inputs([first]) is first.data
    pieces = split_predictions(np.array([1, 2, 3]), [2, 1])
    assert [p.tolist() for p in pieces] == [[1, 2], [3]]
    frames = split_predictions(pd.DataFrame({"p": [1, 2, 3]}), [1, 2])
    assert [f["p"].tolist() for f in frames] == [[1], [2, 3]]
    assert split_predictions([1, 2, 3], [0, 3]) == [[], [1, 2, 3]]
    assert split_predictions({"a": np.array([1, 2])}, [1, 1])[1]["a"].tolist() == [2]
    tensors = [invocations({"inputs": [[1, 2, 3]] * k}, TENSOR) for k in (1, 2)]
    assert concat_inputs(tensors).shape == (3, 3)
    with pytest.raises(CauceError, match="returned 2 predictions for a batch of 3"):
        split_predictions(np.array([1, 2]), [2, 1])
    with pytest.raises(InvalidInput, match="mix tables and tensors"):
        concat_inputs([first, tensors[0]])
    with pytest.raises(InvalidInput, match="nothing to batch"):
        concat_inputs([])


def test_concat_of_frames_with_different_columns_falls_back_to_pandas() -> None:
    a = ScoringInput(pd.DataFrame({"x": [1]}), None, None, 1)
    b = ScoringInput(pd.DataFrame({"x": [2], "y": [3]}), None, None, 1)
    assert concat_inputs([a, b])["x"].tolist() == [1, 2]


# -- properties -----------------------------------------------------------------------------------

cell = {
    "long": st.integers(-(2**53), 2**53),
    "double": st.floats(allow_nan=False, allow_infinity=False, width=64),
    "string": st.text(max_size=8),
    "boolean": st.booleans(),
}


@st.composite
def tables(draw: st.DrawFn) -> tuple[dict[str, Any], list[str], list[list[Any]]]:
    kinds = draw(st.lists(st.sampled_from(sorted(cell)), min_size=1, max_size=6))
    names = [f"c{i}" for i in range(len(kinds))]
    rows = draw(st.lists(st.tuples(*[cell[k] for k in kinds]).map(list), min_size=0, max_size=12))
    schema = {
        "type": "dataframe",
        "columns": [{"name": n, "type": k} for n, k in zip(names, kinds, strict=True)],
    }
    return schema, names, rows


@settings(max_examples=60, deadline=None)
@given(tables())
def test_split_records_inputs_and_v2_give_the_same_frame(table: Any) -> None:
    schema, names, rows = table
    split = invocations({"dataframe_split": {"columns": names, "data": rows}}, schema).data
    records = [dict(zip(names, r, strict=True)) for r in rows]
    if rows:
        pd.testing.assert_frame_equal(
            invocations({"dataframe_records": records}, schema).data, split
        )
    columns = {n: [r[i] for r in rows] for i, n in enumerate(names)}
    pd.testing.assert_frame_equal(invocations({"inputs": columns}, schema).data, split)
    datatypes = {"long": "INT64", "double": "FP64", "string": "BYTES", "boolean": "BOOL"}
    tensors = [
        v2_column(n, datatypes[c["type"]], columns[n], [len(rows)])
        for n, c in zip(names, schema["columns"], strict=True)
    ]
    pd.testing.assert_frame_equal(parse_v2_infer(v2_body(*tensors), schema).data, split)
    assert split.values.tolist() == [list(r) for r in rows]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=1, max_size=6), st.booleans())
def test_split_predictions_undoes_concat_inputs(sizes: list[int], as_frame: bool) -> None:
    inputs = []
    start = 0
    for size in sizes:
        values = np.arange(start, start + size, dtype=np.float64)
        data = pd.DataFrame({"x": values}) if as_frame else values.reshape(-1, 1)
        inputs.append(ScoringInput(data, None, None, size))
        start += size
    batch = concat_inputs(inputs)
    pieces = split_predictions(batch, sizes)
    assert len(pieces) == len(sizes)
    for piece, original in zip(pieces, inputs, strict=True):
        assert type(piece) is type(original.data)
        np.testing.assert_array_equal(
            np.asarray(piece).reshape(-1), np.asarray(original.data).reshape(-1)
        )


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=20), st.integers(1, 3))
def test_encode_v2_data_is_row_major_and_reshapes_back(values: list[float], width: int) -> None:
    array = np.array(values[: len(values) - len(values) % width]).reshape(-1, width)
    output = json.loads(encode_v2(array, model_name="m", model_version="1", request_id="r").body)
    tensor = output["outputs"][0]
    np.testing.assert_array_equal(np.array(tensor["data"]).reshape(tensor["shape"]), array)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=4),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["dataframe_split", "dataframe_records", "instances", "inputs", "params"]),
    json_values,
    st.sampled_from([SCHEMA, TENSOR, None]),
)
def test_any_json_body_gives_input_or_a_cauce_error(key: str, value: Any, schema: Any) -> None:
    split = {"columns": NAMES, "data": [ROWS[0]], "index": [value]}
    for payload in ({key: value}, {key: {"columns": NAMES, "data": value}}, {key: split}):
        with contextlib.suppress(InvalidInput):
            invocations(payload, schema)


scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=4)


@st.composite
def v2_inputs(draw: st.DrawFn) -> dict[str, Any]:
    data = draw(st.lists(scalars, max_size=6))
    shape = [len(data)] if draw(st.booleans()) or len(data) % 2 else [len(data) // 2, 2]
    return {
        "name": draw(st.sampled_from([*NAMES, "x"])),
        "shape": shape,
        "datatype": draw(
            st.sampled_from(["BOOL", "INT8", "UINT64", "FP16", "FP64", "BYTES"]) | json_values
        ),
        "data": draw(st.one_of(st.just(data), json_values)),
    }


@settings(max_examples=300, deadline=None)
@given(st.lists(v2_inputs(), min_size=1, max_size=3), st.sampled_from([SCHEMA, TENSOR, None]))
def test_any_v2_body_gives_input_or_a_cauce_error(inputs: list[Any], schema: Any) -> None:
    with contextlib.suppress(InvalidInput):
        parse_v2_infer(body({"inputs": inputs}), schema)
    request = {"id": "", "parameters": {}, "inputs": inputs, "outputs": [None, None]}
    with pytest.raises(InvalidInput):  # outputs of nulls are refused, if the inputs are not
        parse_v2_infer(body(request), schema)


def test_v2_a_datatype_that_is_not_a_string_is_a_bad_request() -> None:
    raw = b'{"inputs": [{"name": "", "shape": [], "datatype": {}, "data": [null, null]}]}'
    with pytest.raises(BadRequest, match="datatype must be one of") as caught:
        parse_v2_infer(raw, SCHEMA)
    assert caught.value.details["field"] == "inputs[].datatype"


# -- v2 binary tensor data ------------------------------------------------------------------------


def binary_request(
    tensors: list[tuple[dict[str, Any], bytes]], **request: Any
) -> tuple[bytes, int]:
    """A v2 body with binary tensor data: the JSON, then each tensor's bytes; and the JSON's
    length (the Inference-Header-Content-Length)."""
    inputs = [{**t, "parameters": {"binary_data_size": len(raw)}} for t, raw in tensors]
    header = body({**request, "inputs": inputs})
    return header + b"".join(raw for _, raw in tensors), len(header)


def length_prefixed(*values: bytes) -> bytes:
    return b"".join(len(v).to_bytes(4, "little") + v for v in values)


def test_v2_binary_inputs_read_like_json_ones() -> None:
    ages = np.array([30, 45], dtype="<i8")
    charges = np.array([70.5, 99.0], dtype="<f8")
    tensors = [
        ({"name": "age", "shape": [2], "datatype": "INT64"}, ages.tobytes()),
        ({"name": "charges", "shape": [2, 1], "datatype": "FP64"}, charges.tobytes()),
        ({"name": "plan", "shape": [2], "datatype": "BYTES"}, length_prefixed(b"basic", b"pro")),
        ({"name": "senior", "shape": [2], "datatype": "BOOL"}, bytes([0, 1])),
        ({"name": "note", "shape": [2], "datatype": "BYTES"}, length_prefixed("é".encode(), b"")),
    ]
    raw, length = binary_request(tensors, id="b-1")
    scoring = parse_v2_infer(raw, SCHEMA, length)
    assert scoring.request_id == "b-1" and scoring.rows == 2
    assert scoring.data["plan"].tolist() == ["basic", "pro"]  # text, not bytes
    assert scoring.data["note"].tolist() == ["é", ""]
    assert scoring.data["age"].tolist() == [30, 45] and scoring.data["senior"].tolist() == [
        False,
        True,
    ]
    assert scoring.data["charges"].dtype == np.float64


def test_v2_binary_2d_input_and_a_tensor_signature() -> None:
    matrix = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype="<f4")
    raw, length = binary_request(
        [({"name": "x", "shape": [2, 3], "datatype": "FP32"}, matrix.tobytes())]
    )
    array = parse_v2_infer(raw, TENSOR, length).data
    assert array.dtype == np.float32 and array.tolist() == matrix.tolist()
    assert array.flags.writeable  # a copy: the model may write into its input


@pytest.mark.parametrize(
    ("datatype", "values"),
    [
        ("UINT64", np.array([0, 2**64 - 1], dtype="<u8")),
        ("INT8", np.array([-128, 127], dtype="i1")),
        ("FP16", np.array([0.5, -2.0], dtype="<f2")),
        ("UINT16", np.array([1, 65535], dtype="<u2")),
    ],
)
def test_v2_binary_datatypes_keep_their_values(datatype: str, values: Any) -> None:
    raw, length = binary_request(
        [({"name": "x", "shape": [2], "datatype": datatype}, values.tobytes())]
    )
    array = parse_v2_infer(raw, None, length).data
    assert array.dtype == values.dtype.newbyteorder("=") and array.tolist() == values.tolist()


@pytest.mark.parametrize(
    ("mangle", "error", "match"),
    [
        (lambda raw, n: (raw, n + 1000), BadRequest, "says .* bytes of JSON; the body has"),
        (lambda raw, n: (raw + b"\0", n), BadRequest, "1 bytes of binary data follow"),
        (lambda raw, n: (raw[:-1], n), BadRequest, "goes past the end of the body"),
        (lambda raw, n: (raw, None), BadRequest, "needs the inference-header-content-length"),
    ],
)
def test_v2_binary_framing_errors_are_400(mangle: Any, error: type, match: str) -> None:
    ages = np.array([30, 45], dtype="<i8")
    raw, length = binary_request(
        [({"name": "age", "shape": [2], "datatype": "INT64"}, ages.tobytes())]
    )
    raw, length = mangle(raw, length)
    with pytest.raises(error) as caught:
        parse_v2_infer(raw, None, length)
    assert re.search(match, str(caught.value)), caught.value


@pytest.mark.parametrize(
    ("tensor", "raw", "match"),
    [
        (
            {"datatype": "INT64", "shape": [3]},
            bytes(16),
            "16 bytes of INT64 data; its shape needs 24",
        ),
        ({"datatype": "BOOL", "shape": [2]}, bytes([1, 7]), "BOOL data must be bytes 0 or 1"),
        ({"datatype": "BYTES", "shape": [2]}, length_prefixed(b"a"), "length-prefixed elements"),
        ({"datatype": "BYTES", "shape": [1]}, b"\x09\0\0\0ab", "length-prefixed elements"),
        ({"datatype": "BYTES", "shape": [1]}, length_prefixed(b"a") + b"z", "length-prefixed"),
    ],
)
def test_v2_binary_data_that_does_not_fit_is_422(
    tensor: dict[str, Any], raw: bytes, match: str
) -> None:
    request, length = binary_request([({"name": "x", **tensor}, raw)])
    with pytest.raises(InvalidInput, match=match) as caught:
        parse_v2_infer(request, None, length)
    assert caught.value.details["field"] == "inputs[x].binary_data"


def test_v2_binary_inputs_refuse_data_beside_the_size_and_bad_sizes() -> None:
    header = body({"inputs": [{"name": "x", "shape": [1], "datatype": "INT64", "data": [1],
                               "parameters": {"binary_data_size": 8}}]})  # fmt: skip
    with pytest.raises(BadRequest, match="both data and binary_data_size"):
        parse_v2_infer(header + bytes(8), None, len(header))
    header = body({"inputs": [{"name": "x", "shape": [1], "datatype": "INT64",
                               "parameters": {"binary_data_size": -1}}]})  # fmt: skip
    with pytest.raises(BadRequest, match="non-negative integer"):
        parse_v2_infer(header, None, len(header))
    # "²" and "٣" are digits to str.isdigit(); int() refuses the one and reads the other.
    for bad in (b"12x", b"\xb2", "\u0663".encode(), b"-1", b"", b" ", b"1" * 19, b"4 2"):
        with pytest.raises(BadRequest, match="inference-header-content-length header must be"):
            header_length(bad)
    assert header_length(b"42") == 42 and header_length(b" 7 ") == 7
    assert header_length(None) is None


def test_v2_binary_bytes_for_a_binary_column_stay_bytes_and_bad_utf8_text_is_422() -> None:
    schema = {"type": "dataframe", "columns": [{"name": "blob", "type": "binary"}]}
    raw, length = binary_request(
        [({"name": "blob", "shape": [2], "datatype": "BYTES"}, length_prefixed(b"\xff\0", b"ok"))]
    )
    assert parse_v2_infer(raw, schema, length).data["blob"].tolist() == [b"\xff\0", b"ok"]
    text = {"type": "dataframe", "columns": [{"name": "blob", "type": "string"}]}
    with pytest.raises(InvalidInput, match="not UTF-8 text"):
        parse_v2_infer(raw, text, length)


def test_encode_v2_binary_outputs_as_asked() -> None:
    frame = pd.DataFrame({"label": ["a", "bé"], "score": np.array([0.25, 0.5], dtype=np.float32),
                          "hit": [True, False]})  # fmt: skip
    every = encode_v2(frame, model_name="m", model_version="1", request_id="r", binary=True)
    assert every.header_length is not None
    header = json.loads(every.body[: every.header_length])
    sizes = [o["parameters"]["binary_data_size"] for o in header["outputs"]]
    assert sizes == [4 + 1 + 4 + 3, 8, 2]
    assert all("data" not in o for o in header["outputs"])
    tail = every.body[every.header_length :]
    assert tail == length_prefixed(b"a", "bé".encode()) + np.array(
        [0.25, 0.5], dtype="<f4"
    ).tobytes() + bytes([1, 0])

    some = encode_v2(frame, model_name="m", model_version="1", request_id="r",
                     binary=frozenset({"score"}))  # fmt: skip
    assert some.header_length is not None
    outputs = json.loads(some.body[: some.header_length])["outputs"]
    assert [("data" in o) for o in outputs] == [True, False, True]
    assert encode_v2(frame, model_name="m", model_version="1", request_id="r").header_length is None


def test_v2_binary_output_flags_from_the_request() -> None:
    ages = np.array([30], dtype="<i8").tobytes()
    tensors = [({"name": "x", "shape": [1], "datatype": "INT64"}, ages)]
    raw, length = binary_request(tensors, parameters={"binary_data_output": True})
    assert parse_v2_infer(raw, None, length).binary is True
    raw, length = binary_request(
        tensors,
        parameters={"binary_data_output": True},
        outputs=[{"name": "a", "parameters": {"binary_data": False}}, {"name": "b"}],
    )
    scoring = parse_v2_infer(raw, None, length)
    assert scoring.outputs == ("a", "b") and scoring.binary == frozenset({"b"})
    raw, length = binary_request(tensors, parameters={"binary_data_output": 1})
    with pytest.raises(BadRequest, match="binary_data_output must be true or false"):
        parse_v2_infer(raw, None, length)


def test_json_view_puts_binary_tensors_back_as_data() -> None:
    raw, length = binary_request(
        [
            ({"name": "n", "shape": [2], "datatype": "INT32"}, np.array([1, 2], "<i4").tobytes()),
            ({"name": "s", "shape": [2], "datatype": "BYTES"}, length_prefixed(b"x", b"\xff")),
        ]
    )
    view = json_view(raw, length)
    assert [t["data"] for t in view["inputs"]] == [[1, 2], ["x", b"\xff"]]
    assert json_view(body({"inputs": []}), None) == {"inputs": []}


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([*NAMES, "x"]),
            st.lists(st.integers(0, 3), max_size=2),
            st.sampled_from(["BOOL", "INT8", "UINT64", "FP16", "FP64", "BYTES", "INT64"]),
            st.binary(max_size=40),
        ),
        min_size=1,
        max_size=3,
    ),
    st.sampled_from([SCHEMA, TENSOR, None]),
    st.one_of(
        st.integers(-2, 2),  # off by a few from the real length, sent as digits
        st.binary(max_size=6),  # any header value at all, "²" and friends included
        st.text(max_size=6).map(lambda t: t.encode("utf-8")),
    ),
)
@example([("x", [1], "INT64", bytes(8))], None, b"\xb2")  # "²" in latin-1: isdigit() is True
@example([("x", [1], "INT64", bytes(8))], None, "\u0663".encode())  # Arabic-Indic three
def test_any_binary_v2_body_gives_input_or_a_cauce_error(
    tensors: list[tuple[str, list[int], str, bytes]], schema: Any, header: int | bytes
) -> None:
    """Whatever the body and its Inference-Header-Content-Length, the worker's two calls give
    model input or a CauceError (a 4xx), never another exception (a 500)."""
    raw, length = binary_request(
        [({"name": n, "shape": shape, "datatype": d}, data) for n, shape, d, data in tensors]
    )
    if isinstance(header, int):
        header = str(max(0, length + header)).encode()
    with contextlib.suppress(InvalidInput):  # BadRequest is one
        parse_v2_infer(raw, schema, header_length(header))
