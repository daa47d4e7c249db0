"""The scoring codec: request bodies read into model input, predictions written as JSON.

What every scoring protocol shares: JSON and CSV reading and writing, columns of request
values checked against a model's input schema into the DataFrame or NumPy array the model
takes, the error body each scoring path answers, and the names both HTTP hops pass along (the
binary data header, its media type). The protocols themselves
(:mod:`cauce.serving.invocations` for MLflow's ``/invocations``, :mod:`cauce.serving.v2` for
the Open Inference Protocol) say which part of a body holds which values; this module turns
values into model input. Everything here is a pure
function over bytes and Python values, so that any HTTP framework can call it.

Values are checked against the schema while they are read (they are already in Python lists,
so this is cheaper than checking a DataFrame afterwards). A bad request raises
:class:`~cauce.errors.BadRequest` (400: the body cannot be read),
:class:`~cauce.errors.UnsupportedMediaType` (415) or :class:`~cauce.errors.InvalidInput`
(422: it does not fit the signature), with ``details["field"]`` naming the field.

Example::

    by_name = {"age": [25, 61], "charges": [80.5, 20.0]}
    frame = validated_frame(signature["inputs"], by_name, rows=2)
    body = dump_json({"predictions": jsonable(model.predict(frame))})
"""

from __future__ import annotations

import base64
import datetime as _dt
import json
from dataclasses import dataclass
from typing import Any, TypeGuard

from cauce.errors import BadRequest, CauceError, InvalidInput, UnsupportedMediaType
from cauce.registry.signature import Schema, check_column, column_arrays, validate_tensor

__all__ = [
    "CSV_TYPE",
    "HEADER_LENGTH",
    "JSON_TYPE",
    "OCTET_STREAM",
    "ScoringInput",
    "check_tensor",
    "columns_to_input",
    "dump_json",
    "error_body",
    "frame_from_arrays",
    "is_table_schema",
    "json_type",
    "jsonable",
    "object_array",
    "pandas_call",
    "parse_content_type",
    "prediction_columns",
    "prediction_names",
    "read_csv",
    "row_count",
    "tensor_input",
    "validated_frame",
]

JSON_TYPE = "application/json"
CSV_TYPE = "text/csv"
# The Open Inference Protocol's binary tensor data: the length of a body's JSON part (request
# and answer), and the media type of such a body. The router forwards both untouched.
HEADER_LENGTH = "inference-header-content-length"
OCTET_STREAM = "application/octet-stream"


@dataclass(frozen=True)
class ScoringInput:
    """A parsed, validated scoring request.

    ``data`` is a pandas DataFrame (column signature, or a table without a signature) or a
    NumPy array (tensor signature, or a tensor without a signature).
    """

    data: Any
    params: dict[str, Any] | None
    request_id: str | None
    rows: int
    outputs: tuple[str, ...] | None = None  # v2: the output names the caller asked for
    # v2: outputs to answer as binary data; True for all of them (``binary_data_output``)
    binary: bool | frozenset[str] = False


def parse_content_type(content_type: str | None) -> tuple[str, dict[str, str]]:
    """The media type (lower case) and parameters of a Content-Type; only UTF-8 is read."""
    if not content_type:
        return JSON_TYPE, {}
    mime, _, rest = content_type.partition(";")
    parameters: dict[str, str] = {}
    if rest:
        for pair in rest.split(";"):
            key, _, value = pair.partition("=")
            if key.strip():
                parameters[key.strip().lower()] = value.strip().strip('"')
    charset = parameters.get("charset", "utf-8").lower()
    if charset not in ("utf-8", "utf8"):
        raise UnsupportedMediaType(
            f"charset {charset!r} is not supported; send utf-8",
            details={"field": "content-type"},
        )
    return mime.strip().lower(), parameters


def error_body(error: CauceError, path: str) -> dict[str, Any]:
    """The JSON body of an error answered on ``path``: Cauce's ``{"error": {"code",
    "message", "details"}}``, or on the Open Inference Protocol's ``/v2`` paths its shape,
    ``{"error": "<message>"}``, with Cauce's code and details beside it."""
    if path == "/v2" or path.startswith("/v2/"):
        return {"error": str(error), "code": error.code, "details": error.details}
    return error.to_dict()


def json_type(value: Any) -> str:
    """What a JSON value is, in words, for error messages."""
    if isinstance(value, dict):
        return "JSON object"
    if isinstance(value, list):
        return "JSON list"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    return "number" if not isinstance(value, bool) else "boolean"


def dump_json(payload: Any) -> bytes:
    """Predictions as compact JSON bytes; NumPy, pandas, dates and bytes included."""
    try:
        return json.dumps(payload, default=_default, separators=(",", ":")).encode()
    except (TypeError, ValueError) as exc:
        raise CauceError(
            f"the predictions cannot be written as JSON: {exc}",
            code="bad-prediction",
            details={"field": "predictions"},
        ) from None


def jsonable(value: Any) -> Any:
    """Predictions as JSON-ready Python values (lists, dicts, scalars)."""
    import numpy as np
    import pandas as pd

    if isinstance(value, np.ndarray):
        return _array_list(value)
    if isinstance(value, pd.DataFrame):
        names = [str(c) for c in value.columns]
        columns = [_array_list(_plain(a)) for a in column_arrays(value)]
        return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]
    if isinstance(value, pd.Series):
        return _array_list(_plain(value.array))
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return value  # numpy values inside are handled by _default
    return value


def _plain(array: Any) -> Any:
    """A NumPy array for a column; pandas' missing values (NA, NaT) become None."""
    import numpy as np

    if isinstance(array, np.ndarray):
        return array
    if array.dtype.kind not in "mM" and array.isna().any():
        return array.to_numpy(dtype=object, na_value=None)
    return np.asarray(array)


def _array_list(array: Any) -> Any:
    import numpy as np

    if array.dtype.kind in "mM":
        return (
            np.datetime_as_string(array).tolist()
            if array.dtype.kind == "M"
            else array.astype(str).tolist()
        )
    return array.tolist()


def _default(value: Any) -> Any:
    """JSON for what ``json`` does not know: NumPy and pandas values, dates, bytes."""
    import numpy as np

    if isinstance(value, np.generic):
        if isinstance(value, np.datetime64):
            return str(value)
        return value.item()
    if isinstance(value, (np.ndarray,)) or type(value).__name__ in ("DataFrame", "Series"):
        return jsonable(value)
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"a {type(value).__name__} prediction cannot be written as JSON")


def prediction_names(name: str | None, width: int | None) -> list[str]:
    """The columns of one answer: ``name`` when each row gets one value (``width`` None),
    ``<name>_<i>`` for each of ``width`` values per row; an answer the model did not name is
    ``prediction`` (``prediction_0``…).

    How the data collector names what either protocol answered, so that monitors and rollout
    analysis find a model's predictions under one name whichever protocol was used.
    """
    base = name or "prediction"
    return [base] if width is None else [f"{base}_{i}" for i in range(width)]


def prediction_columns(name: str | None, value: Any) -> dict[str, Any]:
    """One row's answer as columns named by :func:`prediction_names` (a list: one per value)."""
    if isinstance(value, list):
        return dict(zip(prediction_names(name, len(value)), value, strict=True))
    return {prediction_names(name, None)[0]: value}


def columns_to_input(by_name: dict[Any, Any], rows: int, schema: Schema | None, field: str) -> Any:
    """Columns of values (lists, tuples or arrays) as a validated DataFrame or tensor."""
    if is_table_schema(schema):
        return validated_frame(schema, by_name, rows)
    if schema and schema.get("type") == "tensor":
        frame = pandas_call(lambda pd: pd.DataFrame(dict(by_name)), field)
        return tensor_input(frame.to_numpy(), schema, field)
    return pandas_call(lambda pd: pd.DataFrame(dict(by_name)), field)


def tensor_input(value: Any, schema: Schema | None, field: str) -> Any:
    """A (nested) list as a NumPy array, checked against a tensor schema when there is one."""
    import numpy as np

    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(
            f"{field} is not a rectangular array: {exc}", details={"field": field}
        ) from None
    if array.dtype.kind == "U":
        array = array.astype(object)
    if schema and schema.get("type") == "tensor":
        check_tensor(schema, array, field)
    return array


def check_tensor(schema: Schema, array: Any, field: str) -> None:
    """InvalidInput naming ``field`` when ``array`` does not fit the tensor schema."""
    try:
        validate_tensor(schema, array)
    except InvalidInput as exc:
        exc.details["field"] = field
        raise


def is_table_schema(schema: Schema | None) -> TypeGuard[Schema]:
    """Whether the model takes a table (a column schema)."""
    return schema is not None and schema.get("type") == "dataframe"


def pandas_call(build: Any, field: str) -> Any:
    """Run a pandas constructor on request data; its errors become a BadRequest naming field."""
    import pandas as pd

    try:
        frame = build(pd)
    except (ValueError, TypeError, KeyError) as exc:
        raise BadRequest(
            f"{field} cannot be read as a table: {exc}", details={"field": field}
        ) from None
    return frame


def row_count(data: Any) -> int:
    """Rows in model input: a DataFrame's or an array's first dimension."""
    shape = getattr(data, "shape", None)
    if shape is not None:
        return int(shape[0]) if len(shape) else 1
    return len(data)


@dataclass(frozen=True)
class _Plan:
    """What a column schema needs at parse time, worked out once per schema."""

    schema: Schema  # held so that the id it is cached under stays taken
    names: list[Any]
    columns: Any  # pandas Index of the names
    longs: tuple[int, ...]  # positions of long columns, read together as one int64 block
    doubles: tuple[int, ...]  # positions of double columns, read together as one float64 block
    others: tuple[int, ...]  # every other column, read one by one
    required: tuple[bool, ...]


_PLANS: dict[int, _Plan] = {}


def _plan(schema: Schema) -> _Plan:
    plan = _PLANS.get(id(schema))
    if plan is not None and plan.schema is schema:
        return plan
    columns = schema["columns"]
    kinds = [c["type"] for c in columns]
    names = [c["name"] for c in columns]
    plan = _Plan(
        schema=schema,
        names=names,
        columns=_columns_index(names),
        longs=tuple(i for i, k in enumerate(kinds) if k == "long"),
        doubles=tuple(i for i, k in enumerate(kinds) if k == "double"),
        others=tuple(i for i, k in enumerate(kinds) if k not in ("long", "double")),
        required=tuple(c.get("required", True) is not False for c in columns),
    )
    if len(_PLANS) > 64:
        _PLANS.clear()
    _PLANS[id(schema)] = plan
    return plan


def validated_frame(schema: Schema, by_name: dict[Any, Any], rows: int) -> Any:
    """Columns of JSON values (or arrays) checked against a column schema, as a DataFrame.

    Numeric columns of one type are read together into one block, the layout pandas keeps
    them in anyway; a block that does not read cleanly falls back to one column at a time,
    where :func:`check_column` names the column and the value at fault.
    """
    import numpy as np

    plan = _plan(schema)
    columns = schema["columns"]
    names = plan.names
    missing = [n for n in names if n not in by_name]
    if missing:
        raise InvalidInput(
            f"input is missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}",
            details={"field": missing[0], "missing": missing},
        )
    blocks: list[tuple[Any, Any]] = []
    singles = list(plan.others)
    for positions, dtype in ((plan.longs, None), (plan.doubles, np.float64)):
        if not positions:
            continue
        block = _numeric_block([by_name[names[i]] for i in positions], dtype, rows)
        if block is None:
            singles.extend(positions)
            continue
        if block.dtype.kind == "f" and np.isnan(block).any():
            for i, position in enumerate(positions):  # raises for a NaN in a required column
                check_column(columns[position], block[i])
        blocks.append((block, np.array(positions, dtype=np.intp)))
    for position in singles:
        column = columns[position]
        array = _column_array(column, by_name[column["name"]], plan.required[position])
        if isinstance(array, np.ndarray):
            array = array.reshape(1, -1)
        blocks.append((array, np.array([position], dtype=np.intp)))
    return _frame_from_blocks(plan.columns, blocks, rows)


def _numeric_block(values: list[Any], dtype: Any, rows: int) -> Any:
    """Several numeric columns as one 2-D block (columns x rows), or None if one is unusual."""
    import numpy as np

    try:
        block = np.array(values, dtype=dtype)
    except (ValueError, TypeError, OverflowError):
        return None
    if block.shape != (len(values), rows):
        return None
    if dtype is None and block.dtype.kind not in "iu":  # a long block: integers only
        return None
    return block


_EMPTY_DTYPES = {"long": "int64", "double": "float64", "boolean": "bool", "datetime": "M8[ns]"}


def _column_array(column: dict[str, Any], values: Any, required: bool) -> Any:
    import numpy as np

    kind = column["type"]
    if isinstance(values, np.ndarray):
        array = values
    elif len(values) == 0:
        return np.empty(0, dtype=_EMPTY_DTYPES.get(kind, object))
    elif kind in ("long", "double", "boolean"):
        try:
            array = np.array(values)
        except (ValueError, TypeError):  # ragged nested lists
            array = np.empty((0, 0))
        if array.ndim != 1 or array.dtype.kind not in "biufO":
            array = object_array(values)  # nested lists or text: let check_column explain
        elif kind == "boolean" and array.dtype.kind == "b":
            return array
    else:
        array = object_array(values)
        if kind == "string" and (not required or set(map(type, values)) <= {str}):
            return array
    if kind == "binary":
        array = _decode_binary(column["name"], array)
    return check_column(column, array)


def object_array(values: Any) -> Any:
    """A 1-D object array of ``values``, even when they are lists themselves."""
    import numpy as np

    array = np.empty(len(values), dtype=object)
    try:
        array[:] = values if not isinstance(values, tuple) else list(values)
    except ValueError:  # values that are lists themselves: numpy would read them as a 2nd axis
        for i, value in enumerate(values):
            array[i] = value
    return array


def _decode_binary(name: str, array: Any) -> Any:
    """Binary columns travel as base64 text in JSON, as MLflow sends them."""
    if array.dtype.kind != "O" or not any(isinstance(v, str) for v in array):
        return array
    out = array.copy()
    for i, v in enumerate(array):
        if isinstance(v, str):
            try:
                out[i] = base64.b64decode(v, validate=True)
            except ValueError:
                raise InvalidInput(
                    f"column {name!r} must be base64-encoded binary; row {i} is not",
                    details={"field": name, "expected": "binary", "row": i},
                ) from None
    return out


def _columns_index(names: list[Any]) -> Any:
    import pandas as pd

    return pd.Index(names, dtype=object)


def frame_from_arrays(names: list[Any], arrays: list[Any], rows: int) -> Any:
    """A DataFrame from validated 1-D arrays, one block each."""
    import numpy as np

    blocks = [
        (a.reshape(1, -1) if isinstance(a, np.ndarray) else a, np.array([i], dtype=np.intp))
        for i, a in enumerate(arrays)
    ]
    return _frame_from_blocks(_columns_index(names), blocks, rows)


def _frame_from_blocks(columns: Any, blocks: list[tuple[Any, Any]], rows: int) -> Any:
    """A DataFrame from (2-D block or extension array, column positions) pairs, as they are.

    pandas' constructors infer types and copy column by column, which costs more than the
    whole rest of a small scoring request; the arrays here are already checked.
    """
    import numpy as np
    import pandas as pd

    index = pd.RangeIndex(rows)
    try:
        from pandas.api.internals import create_dataframe_from_blocks
    except ImportError:  # pandas < 3: one array per column
        arrays: list[Any] = [None] * len(columns)
        for block, positions in blocks:
            for j, position in enumerate(positions):
                arrays[position] = block[j] if isinstance(block, np.ndarray) else block
        return pd.DataFrame(dict(zip(columns, arrays, strict=True)), index=index, copy=False)
    return create_dataframe_from_blocks(blocks, index=index, columns=columns)


def read_csv(body: bytes, schema: Schema | None) -> Any:
    """A CSV body whose first line names the columns, as validated model input."""
    import csv
    import io

    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"the CSV body is not UTF-8: {exc}", details={"field": "body"}) from None
    if not is_table_schema(schema):
        import pandas as pd

        try:
            frame = pd.read_csv(io.StringIO(text))
        except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise BadRequest(
                f"the CSV body cannot be read: {exc}", details={"field": "body"}
            ) from None
        if schema and schema.get("type") == "tensor":
            return tensor_input(frame.to_numpy(), schema, "body")
        return frame
    assert schema is not None
    try:
        records = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise BadRequest(f"the CSV body cannot be read: {exc}", details={"field": "body"}) from None
    if not records:
        raise BadRequest("the CSV body is empty: it needs a header row", details={"field": "body"})
    header, rows = records[0], [r for r in records[1:] if r]
    width = len(header)
    for i, row in enumerate(rows):
        if len(row) != width:
            raise BadRequest(
                f"CSV row {i + 1} has {len(row)} values; the header has {width}",
                details={"field": "body", "row": i + 1},
            )
    text_columns = dict(zip(header, zip(*rows, strict=True), strict=True)) if rows else {}
    if not rows:
        text_columns = {h: () for h in header}
    by_name = {
        c["name"]: _csv_values(c, text_columns[c["name"]])
        for c in schema["columns"]
        if c["name"] in text_columns
    }
    return validated_frame(schema, by_name, len(rows))


def _csv_values(column: dict[str, Any], texts: tuple[str, ...]) -> Any:
    """CSV text as typed values: numbers for long/double, booleans, None for an empty cell."""
    import numpy as np

    kind = column["type"]
    if kind in ("long", "double"):
        if "" not in texts:
            for dtype in ("int64", "float64") if kind == "long" else ("float64",):
                try:
                    return np.array(texts, dtype=dtype)
                except (ValueError, OverflowError):
                    continue
        return [None if t == "" else t for t in texts]  # check_column names a bad value
    if kind == "boolean":
        return [_BOOLEANS.get(t.lower(), t) if t != "" else None for t in texts]
    return [None if t == "" else t for t in texts]


_BOOLEANS = {"true": True, "false": False, "1": True, "0": False}
