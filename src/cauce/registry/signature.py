"""Model signatures: the input and output schema inferred from an input example.

A DataFrame example gives a column schema (``{"type": "dataframe", "columns": [{"name",
"type"}]}``); an array gives a tensor schema (``{"type": "tensor", "dtype", "shape"}``, with -1
for the batch dimension). A column that has nulls in the example is optional and records
``"required": false``; a column without the key is required, so a null (``None``, NaN, NaT) in
it is refused. Scoring validates requests against the input schema (:func:`validate_input`): a
bad request is an InvalidInput naming the column or the shape, never an error from deep inside
the model's library.
"""

from __future__ import annotations

from typing import Any

from cauce.errors import InvalidInput

Schema = dict[str, Any]


def column_type(dtype: Any) -> str:
    """The signature type of a pandas/NumPy dtype: long, double, boolean, string, datetime."""
    import numpy as np
    import pandas as pd

    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(dtype):
        return "long"
    if pd.api.types.is_float_dtype(dtype):
        return "double"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if isinstance(dtype, np.dtype) and dtype.kind == "V":
        return "binary"
    return "string"


def infer_schema(example: Any) -> Schema:
    """The schema of an example: DataFrame, Series, NumPy array, list of records or dict."""
    import numpy as np
    import pandas as pd

    if isinstance(example, pd.Series):
        example = example.to_frame()
    if isinstance(example, dict):
        example = pd.DataFrame(example if _all_lists(example) else [example])
    if isinstance(example, list) and example and all(isinstance(r, dict) for r in example):
        example = pd.DataFrame(example)
    if isinstance(example, pd.DataFrame):
        nulls = example.isna().any()
        columns: list[dict[str, Any]] = []
        for position, (name, dtype) in enumerate(example.dtypes.items()):
            column: dict[str, Any] = {"name": str(name), "type": column_type(dtype)}
            if nulls.iloc[position]:
                column["required"] = False
            columns.append(column)
        return {"type": "dataframe", "columns": columns}
    if isinstance(example, list):
        example = np.asarray(example)
    if isinstance(example, np.ndarray):
        return {"type": "tensor", "dtype": str(example.dtype), "shape": [-1, *example.shape[1:]]}
    raise InvalidInput(
        f"cannot infer a signature from a {type(example).__name__}",
        hint="pass a DataFrame, a NumPy array or a list of records as input_example",
    )


def _all_lists(mapping: dict[str, Any]) -> bool:
    return all(isinstance(v, (list, tuple)) for v in mapping.values())


def validate_frame(schema: Schema | None, frame: Any) -> Any:
    """Check a DataFrame against a column schema; return it with the schema's column order.

    A missing column, a value that cannot be read as its type or a null in a required column
    raises InvalidInput naming the column. A frame whose columns are already in order and of the
    right types comes back as it is, without a copy.
    """
    import numpy as np
    import pandas as pd

    if not schema or schema.get("type") != "dataframe" or not isinstance(frame, pd.DataFrame):
        return frame
    columns = schema["columns"]
    names = [c["name"] for c in columns]
    if frame.columns.tolist() == names:
        out = frame
    else:
        present = set(frame.columns)
        missing = [n for n in names if n not in present]
        if missing:
            raise InvalidInput(
                f"input is missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}",
                details={"field": missing[0], "missing": missing},
            )
        out = frame[names]
        if out.shape[1] != len(names):
            twice = sorted({str(c) for c in frame.columns if list(frame.columns).count(c) > 1})
            raise InvalidInput(
                f"input has duplicate columns {', '.join(twice)}",
                details={"field": twice[0] if twice else "input", "duplicates": twice},
            )
    converted = {}
    floats = []  # required float columns: one NaN check for all of them
    for column, values in zip(columns, column_arrays(out), strict=True):
        if type(values) is np.ndarray and _fits(column, values.dtype.kind):
            if values.dtype.kind == "f" and column.get("required", True) is not False:
                floats.append((column, values))
            continue
        checked = check_column(column, values)
        if checked is not values:
            converted[column["name"]] = checked
    if floats and np.isnan(np.concatenate([v for _, v in floats])).any():
        for column, values in floats:
            check_column(column, values)  # raises, naming the column and the row
    if converted:
        out = out.copy(deep=False)
        for name, values in converted.items():
            out[name] = values
    return out


def _fits(column: dict[str, Any], dtype_kind: str) -> bool:
    """Whether a NumPy column of this kind needs no conversion (nulls aside) for its type."""
    kind = column["type"]
    if kind in ("long", "double"):
        return dtype_kind in "iuf"
    return kind == "boolean" and dtype_kind == "b"


def column_arrays(frame: Any) -> list[Any]:
    """The columns of a DataFrame as arrays (NumPy or pandas extension arrays), in order."""
    iterate = getattr(frame, "_iter_column_arrays", None)
    if iterate is not None:  # pandas' own column walk: 20x faster than building each Series
        return list(iterate())
    return [frame.iloc[:, i].array for i in range(frame.shape[1])]  # pragma: no cover


def check_column(column: dict[str, Any], values: Any) -> Any:
    """Check one column's values against its schema entry; return them, converted if needed.

    ``values`` is a 1-D NumPy or pandas array. Numbers in a ``long`` or ``double`` column pass
    unchanged; text is read as numbers; a value that is not a number, a non-boolean in a
    ``boolean`` column or a null in a required column raises InvalidInput naming the column.
    """
    import numpy as np

    name, kind = column["name"], column["type"]
    required = column.get("required", True) is not False
    dtype_kind = getattr(values.dtype, "kind", "O")
    if kind in ("long", "double"):
        if dtype_kind == "b":
            numpy_bools = isinstance(values, np.ndarray)  # else pandas' nullable booleans
            target = {"long": "int64", "double": "float64"}[kind]
            values = values.astype(target if numpy_bools else target.capitalize())
        elif dtype_kind not in "iuf":
            values = _to_numbers(name, kind, values)
    elif kind == "boolean":
        if dtype_kind != "b":
            _check_booleans(name, values)
    elif kind == "datetime" and dtype_kind != "M":
        values = _to_datetimes(name, values)
    if required:
        _check_no_nulls(name, kind, values)
    return values


def _check_no_nulls(name: str, kind: str, values: Any) -> None:
    import numpy as np
    import pandas as pd

    if isinstance(values, np.ndarray):
        if values.dtype.kind in "iub":
            return
        nulls = np.isnan(values) if values.dtype.kind == "f" else pd.isna(values)
    else:
        nulls = np.asarray(pd.isna(values), dtype=bool)
    if not nulls.any():
        return
    row = int(np.argmax(nulls))
    raise InvalidInput(
        f"column {name!r} is required but row {row} has no value (null or NaN)",
        hint="send a value, or log the model with an input example that has nulls in "
        "this column to make it optional",
        details={"field": name, "expected": kind, "row": row, "reason": "null"},
    )


def _to_numbers(name: str, kind: str, values: Any) -> Any:
    import numpy as np
    import pandas as pd

    if getattr(values, "ndim", 1) != 1:
        raise InvalidInput(
            f"column {name!r} must be {kind}; got nested values",
            details={"field": name, "expected": kind},
        )
    try:
        converted = pd.to_numeric(values, errors="coerce")
    except (TypeError, ValueError):
        converted = None
    if converted is None or getattr(converted, "ndim", 1) != 1:
        bad_value = next((v for v in values if isinstance(v, (list, dict, tuple))), values)
        raise InvalidInput(
            f"column {name!r} must be {kind}; got {bad_value!r}",
            details={"field": name, "expected": kind},
        )
    bad = np.asarray(pd.isna(converted), dtype=bool) & ~np.asarray(pd.isna(values), dtype=bool)
    if bad.any():
        raise InvalidInput(
            f"column {name!r} must be {kind}; got {values[int(np.argmax(bad))]!r}",
            details={"field": name, "expected": kind},
        )
    return np.asarray(converted) if isinstance(converted, np.ndarray) else converted


def _check_booleans(name: str, values: Any) -> None:
    import pandas as pd

    if getattr(values.dtype, "kind", "O") == "O" and getattr(values, "ndim", 1) == 1:
        bad = [v for v in values if not isinstance(v, bool) and not _is_null(v, pd)]
        if not bad:
            return
        got = f"; got {bad[0]!r}"
    else:
        got = f"; got {values.dtype} values"
    raise InvalidInput(
        f"column {name!r} must be boolean{got}", details={"field": name, "expected": "boolean"}
    )


def _to_datetimes(name: str, values: Any) -> Any:
    import numpy as np
    import pandas as pd

    try:
        converted = pd.to_datetime(pd.Series(values, copy=False), errors="coerce")
    except (TypeError, ValueError, OverflowError):
        converted = None
    if converted is None:
        raise InvalidInput(
            f"column {name!r} must be datetime", details={"field": name, "expected": "datetime"}
        )
    bad = converted.isna().to_numpy() & ~np.asarray(pd.isna(values), dtype=bool)
    if bad.any():
        raise InvalidInput(
            f"column {name!r} must be datetime; got {values[int(np.argmax(bad))]!r}",
            details={"field": name, "expected": "datetime"},
        )
    return converted.array


def _is_null(value: Any, pd: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value) or value is pd.NA


def validate_input(schema: Schema | None, data: Any) -> Any:
    """Check prepared input data against an input schema; return what the flavor should get.

    A table schema accepts a DataFrame, or a 2-D array with one value per column (it becomes a
    DataFrame with the schema's column names); a tensor schema accepts arrays of its shape.
    """
    import pandas as pd

    if not schema:
        return data
    if schema.get("type") == "dataframe":
        if not isinstance(data, pd.DataFrame):
            data = _array_as_frame(schema, data)
        return validate_frame(schema, data)
    if schema.get("type") == "tensor":
        validate_tensor(schema, data)
    return data


def _array_as_frame(schema: Schema, data: Any) -> Any:
    import numpy as np
    import pandas as pd

    names = [c["name"] for c in schema["columns"]]
    if isinstance(data, pd.Series) and set(names) <= set(data.index):
        return data.to_frame().T  # one record
    array = _as_array(data)
    if array.ndim == 1 and len(names) == 1:
        array = array.reshape(-1, 1)
    if array.ndim != 2 or array.shape[1] != len(names):
        raise InvalidInput(
            f"input must be a table with the columns {', '.join(names)}; got an array of "
            f"shape {list(array.shape)}",
            details={"field": "input", "expected": names, "shape": list(array.shape)},
        )
    return pd.DataFrame(array if array.dtype != np.dtype("O") else array.tolist(), columns=names)


def validate_tensor(schema: Schema, data: Any) -> None:
    """Check an array against a tensor schema: its rank, fixed dimensions and number type."""
    import numpy as np

    array = _as_array(data)
    shape = list(schema.get("shape") or [])
    if array.ndim != len(shape) or any(
        want not in (-1, None) and want != got for want, got in zip(shape, array.shape, strict=True)
    ):
        raise InvalidInput(
            f"input must have shape {shape} (-1: any size); got {list(array.shape)}",
            details={"field": "input", "expected": shape, "shape": list(array.shape)},
        )
    try:
        expected = np.dtype(schema.get("dtype", "float64"))
    except TypeError:  # a dtype this NumPy does not know: nothing to check against
        return
    if expected.kind in "biuf" and array.dtype.kind not in "biuf":
        try:
            array.astype(expected)
        except (TypeError, ValueError):
            raise InvalidInput(
                f"input must hold {expected} numbers; got {array.dtype} values",
                details={"field": "input", "expected": str(expected)},
            ) from None


def _as_array(data: Any) -> Any:
    import numpy as np
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data.to_numpy()
    try:
        return np.asarray(data)
    except ValueError as exc:  # ragged nested lists
        raise InvalidInput(f"input is not a rectangular array: {exc}") from None
