"""MLflow's scoring protocol: ``POST /invocations``.

The body is a JSON object with exactly one of ``dataframe_split`` (``{"columns", "data",
"index"?}``), ``dataframe_records`` (a list of row objects), ``instances`` or ``inputs`` (rows,
records, a dict of columns or a tensor), plus optional ``params``; or a ``text/csv`` body whose
first line names the columns. The answer is ``{"predictions": [...]}``. Values are read into
model input by :mod:`cauce.serving.codec`, with its errors.

Example::

    scoring = parse_invocations(body, "application/json", signature["inputs"])
    predictions = model.flavor.predict(model.native, scoring.data)
    return encode_invocations(predictions)
"""

from __future__ import annotations

import csv
import io
from typing import Any

from cauce.errors import BadRequest, InvalidInput, UnsupportedMediaType
from cauce.registry.signature import Schema
from cauce.serving.codec import (
    CSV_TYPE,
    JSON_TYPE,
    ScoringInput,
    columns_to_input,
    dump_json,
    is_table_schema,
    json_type,
    jsonable,
    pandas_call,
    parse_content_type,
    prediction_columns,
    read_csv,
    row_count,
    tensor_input,
)
from cauce.validation import load_json

__all__ = ["answer_rows", "encode_invocations", "parse_invocations", "request_rows"]

FORMAT_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")


def parse_invocations(body: bytes, content_type: str | None, schema: Schema | None) -> ScoringInput:
    """Read an MLflow ``/invocations`` body (JSON or CSV) into validated model input."""
    key, value, params = _request(body, content_type)
    if key == CSV_TYPE:
        data = read_csv(body, schema)
        return ScoringInput(data, None, None, len(data))
    if key == "dataframe_split":
        data = _from_split(value, schema)
    elif key == "dataframe_records":
        data = _from_records(value, schema, key)
    else:
        data = _from_tensor_format(value, schema, key)
    return ScoringInput(data, params, None, row_count(data))


def request_rows(
    body: bytes, content_type: str | None, columns: list[str] | None = None
) -> list[dict[str, Any]]:
    """The rows of an ``/invocations`` request as sent, every field kept: what the data
    collector records.

    The body is read as :func:`parse_invocations` reads it (the same formats and errors), but
    into plain rows, without a signature check or pandas: the collector runs beside the router,
    where a DataFrame per request would cost some 40 times more. Rows sent as lists are named
    by ``columns`` (the signature's) when they have as many values, else ``"0"``, ``"1"``…; a
    bare value is ``input``. CSV values stay text.
    """
    key, value, _ = _request(body, content_type)
    if key == CSV_TYPE:
        return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    if key == "dataframe_split":
        names = value.get("columns") or columns
        return [_named(row, names) for row in value["data"]]
    if isinstance(value, dict):  # inputs as columns of values
        names = list(value)
        lists = [v if isinstance(v, list) else [v] for v in value.values()]
        return [dict(zip(names, row, strict=True)) for row in zip(*lists, strict=True)]
    return [_named(row, columns) for row in value]


def answer_rows(body: bytes) -> list[dict[str, Any]]:
    """The predictions of an ``/invocations`` answer, one dict per input row.

    A table's rows keep their names; columns of values give one column each; anything else is
    named by :func:`~cauce.serving.codec.prediction_columns` (``prediction``, or
    ``prediction_<i>`` for each value of a row).
    """
    predictions = load_json(body)["predictions"]
    if isinstance(predictions, dict):
        names = list(predictions)
        lists = [v if isinstance(v, list) else [v] for v in predictions.values()]
        return [
            {k: v for name, value in zip(names, row, strict=True)
             for k, v in prediction_columns(name, value).items()}
            for row in zip(*lists, strict=True)
        ]  # fmt: skip
    if not isinstance(predictions, list):
        return [prediction_columns(None, predictions)]
    return [
        dict(value) if isinstance(value, dict) else prediction_columns(None, value)
        for value in predictions
    ]


def _request(body: bytes, content_type: str | None) -> tuple[str, Any, dict[str, Any] | None]:
    """The body's format key and value, and its ``params``; ``text/csv`` for a CSV body."""
    mime, parameters = parse_content_type(content_type)
    if mime == CSV_TYPE:
        return CSV_TYPE, None, None
    if mime != JSON_TYPE:
        raise UnsupportedMediaType(
            f"content type {mime!r} is not supported; send {JSON_TYPE} or {CSV_TYPE}",
            details={"field": "content-type", "supported": [JSON_TYPE, CSV_TYPE]},
        )
    request = load_json(body)
    legacy = parameters.get("format")
    if legacy is not None and not (isinstance(request, dict) and _format_keys(request)):
        # MLflow 1.x clients sent the bare frame and named its orient in the content type.
        request = {_legacy_key(legacy): request}
    if not isinstance(request, dict):
        raise BadRequest(
            f"the body must be a JSON object with one of {', '.join(FORMAT_KEYS)}; "
            f"got a {json_type(request)}",
            details={"field": "body"},
        )
    keys = _format_keys(request)
    if len(keys) != 1:
        got = f"got {', '.join(keys)}" if keys else f"got keys {sorted(request)}"
        raise BadRequest(
            f"the body must have exactly one of {', '.join(FORMAT_KEYS)}; {got}",
            details={"field": keys[1] if keys else "body", "expected": list(FORMAT_KEYS)},
        )
    params = request.get("params")
    if params is not None and not isinstance(params, dict):
        raise BadRequest(
            f"params must be a JSON object; got a {json_type(params)}",
            details={"field": "params"},
        )
    return keys[0], request[keys[0]], params


def encode_invocations(predictions: Any) -> bytes:
    """The ``{"predictions": ...}`` answer for a model's output, as JSON bytes.

    Arrays become (nested) lists, a Series a list, a DataFrame a list of records, a dict a dict
    of lists.
    """
    return dump_json({"predictions": jsonable(predictions)})


def _named(row: Any, columns: list[Any] | None) -> dict[str, Any]:
    """One row sent as a record, a list of values or a bare value, as a dict."""
    if isinstance(row, dict):
        return dict(row)
    if isinstance(row, list):
        names = columns if columns and len(columns) == len(row) else range(len(row))
        return {str(name): value for name, value in zip(names, row, strict=True)}
    return {str(columns[0]) if columns and len(columns) == 1 else "input": row}


def _legacy_key(orient: str) -> str:
    key = {"pandas-split": "dataframe_split", "pandas-records": "dataframe_records"}.get(orient)
    if key is None:
        raise UnsupportedMediaType(
            f"content type format {orient!r} is not supported; use pandas-split or "
            "pandas-records, or wrap the body in dataframe_split / dataframe_records",
            details={"field": "content-type"},
        )
    return key


def _format_keys(request: dict[str, Any]) -> list[str]:
    return [k for k in FORMAT_KEYS if k in request]


def _from_split(value: Any, schema: Schema | None) -> Any:
    field = "dataframe_split"
    if not isinstance(value, dict):
        raise BadRequest(
            f"{field} must be an object {{columns, data}}; got a {json_type(value)}",
            details={"field": field},
        )
    rows = value.get("data")
    columns = value.get("columns")
    if not isinstance(rows, list):
        raise BadRequest(f"{field}.data must be a list of rows", details={"field": f"{field}.data"})
    if columns is None:
        columns = list(range(len(rows[0]))) if rows and isinstance(rows[0], list) else []
    if not isinstance(columns, list) or not all(isinstance(c, (str, int)) for c in columns):
        raise BadRequest(
            f"{field}.columns must be a list of column names", details={"field": f"{field}.columns"}
        )
    width = len(columns)
    if width == 1 and rows and not isinstance(rows[0], list):
        rows = [[v] for v in rows]  # a single column may be sent as a flat list
    if rows and not (set(map(type, rows)) == {list} and set(map(len, rows)) == {width}):
        i = next(i for i, r in enumerate(rows) if type(r) is not list or len(r) != width)
        raise BadRequest(
            f"{field}.data row {i} must be a list of {width} values (one per column)",
            details={"field": f"{field}.data", "row": i},
        )
    index = value.get("index")
    if index is not None and (not isinstance(index, list) or len(index) != len(rows)):
        raise BadRequest(
            f"{field}.index must be a list with one label per row",
            details={"field": f"{field}.index"},
        )
    by_name = dict(zip(columns, zip(*rows, strict=True), strict=False)) if rows else None
    if by_name is None:
        by_name = {c: () for c in columns}
    data = columns_to_input(by_name, len(rows), schema, field)
    if index is not None and _is_frame(data):
        data.index = _index(index)
    return data


def _from_records(value: Any, schema: Schema | None, field: str) -> Any:
    if not isinstance(value, list):
        raise BadRequest(
            f"{field} must be a list of row objects; got a {json_type(value)}",
            details={"field": field},
        )
    for i, record in enumerate(value):
        if type(record) is not dict:
            raise BadRequest(
                f"{field} row {i} must be a JSON object; got a {json_type(record)}",
                details={"field": field, "row": i},
            )
    if is_table_schema(schema):
        first = value[0] if value else {}
        by_name: dict[Any, Any] = {}
        for column in schema["columns"]:
            name = column["name"]
            if name in first or any(name in r for r in value):
                by_name[name] = [r.get(name) for r in value]
        return columns_to_input(by_name, len(value), schema, field)
    return pandas_call(lambda pd: pd.DataFrame.from_records(value), field)


def _from_tensor_format(value: Any, schema: Schema | None, field: str) -> Any:
    """``instances`` / ``inputs``: records, a dict of columns, or a (nested) list tensor."""
    if isinstance(value, dict):
        if field == "instances":
            raise BadRequest(
                "instances must be a list (rows, or records); send a dict of columns as inputs",
                details={"field": field},
            )
        return _from_column_dict(value, schema, field)
    if not isinstance(value, list):
        raise BadRequest(
            f"{field} must be a list or an object of columns; got a {json_type(value)}",
            details={"field": field},
        )
    if value and all(type(v) is dict for v in value):
        return _from_records(value, schema, field)
    if is_table_schema(schema):
        columns = schema["columns"]
        if len(columns) == 1 and not any(isinstance(v, list) for v in value):
            return columns_to_input({columns[0]["name"]: value}, len(value), schema, field)
        for i, row in enumerate(value):
            if type(row) is not list or len(row) != len(columns):
                raise InvalidInput(
                    f"{field} row {i} must be a list of {len(columns)} values, one per column "
                    f"({', '.join(str(c['name']) for c in columns)})",
                    details={"field": field, "row": i},
                )
        names = [c["name"] for c in columns]
        by_name = dict(zip(names, zip(*value, strict=True), strict=True)) if value else {}
        return columns_to_input(by_name or {n: () for n in names}, len(value), schema, field)
    return tensor_input(value, schema, field)


def _from_column_dict(value: dict[str, Any], schema: Schema | None, field: str) -> Any:
    if schema and schema.get("type") == "tensor":
        raise InvalidInput(
            f"the model takes one tensor; send {field} as a (nested) list, not an object",
            details={"field": field},
        )
    lengths = {len(v) if isinstance(v, list) else -1 for v in value.values()}
    if lengths == {-1}:  # one row of scalars
        value = {k: [v] for k, v in value.items()}
        lengths = {1}
    if -1 in lengths or len(lengths) > 1:
        raise BadRequest(
            f"{field} must map each column to a list, all of the same length",
            details={"field": field},
        )
    rows = lengths.pop() if lengths else 0
    if is_table_schema(schema):
        return columns_to_input(value, rows, schema, field)
    return pandas_call(lambda pd: pd.DataFrame(value), field)


def _index(labels: list[Any]) -> Any:
    import pandas as pd

    if not all(isinstance(v, (str, int, float)) or v is None for v in labels):
        raise BadRequest(
            "dataframe_split.index labels must be strings or numbers",
            details={"field": "dataframe_split.index"},
        )
    return pd.Index(labels)


def _is_frame(data: Any) -> bool:
    return type(data).__name__ == "DataFrame"
