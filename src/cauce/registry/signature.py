"""Model signatures: the input and output schema inferred from an input example.

A DataFrame example gives a column schema (``{"type": "dataframe", "columns": [{"name",
"type"}]}``); an array gives a tensor schema (``{"type": "tensor", "dtype", "shape"}``, with -1
for the batch dimension). Scoring validates requests against the input schema
(:func:`validate_input`): a bad request is an InvalidInput naming the column or the shape,
never an error from deep inside the model's library.
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
        return {
            "type": "dataframe",
            "columns": [
                {"name": str(name), "type": column_type(dtype)}
                for name, dtype in example.dtypes.items()
            ],
        }
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

    A missing column or a value that cannot be read as its type raises InvalidInput naming the
    column.
    """
    import pandas as pd

    if not schema or schema.get("type") != "dataframe" or not isinstance(frame, pd.DataFrame):
        return frame
    names = [c["name"] for c in schema["columns"]]
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise InvalidInput(
            f"input is missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}",
            details={"field": missing[0], "missing": missing},
        )
    out = frame[names].copy()
    for column in schema["columns"]:
        name, kind = column["name"], column["type"]
        values = out[name]
        if kind in ("long", "double"):
            if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
                converted = pd.to_numeric(values, errors="coerce")
                bad = converted.isna() & values.notna()
                if bad.any():
                    raise InvalidInput(
                        f"column {name!r} must be {kind}; got {values[bad].iloc[0]!r}",
                        details={"field": name, "expected": kind},
                    )
                out[name] = converted
        elif kind == "boolean" and not pd.api.types.is_bool_dtype(values):
            raise InvalidInput(
                f"column {name!r} must be boolean", details={"field": name, "expected": kind}
            )
    return out


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
