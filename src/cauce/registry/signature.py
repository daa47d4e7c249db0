"""Model signatures: the input and output schema inferred from an input example.

A DataFrame example gives a column schema (``{"type": "dataframe", "columns": [{"name",
"type"}]}``); an array gives a tensor schema (``{"type": "tensor", "dtype", "shape"}``, with -1
for the batch dimension). Scoring validates requests against the input schema.
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
