"""The Open Inference Protocol v2 (KServe, Triton): ``POST /v2/models/{name}/infer``.

A request is ``{"id"?, "parameters"?, "inputs": [{"name", "shape", "datatype", "data"}],
"outputs"?}``. A column signature takes one tensor per column (shape ``[n]`` or ``[n, 1]``) or
one ``[n, ncols]`` tensor in the signature's column order; a tensor signature takes the first
input. The answer lists one output per prediction tensor (one per column for a table). Input is
checked against the signature as in :mod:`cauce.serving.protocols`, with the same errors.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from typing import Any, NamedTuple

from cauce.errors import BadRequest, CauceError, InvalidInput
from cauce.registry.signature import Schema, column_arrays
from cauce.serving.protocols import (
    ScoringInput,
    check_tensor,
    dump_json,
    is_table_schema,
    json_type,
    jsonable,
    load_json,
    object_array,
    pandas_call,
    row_count,
    tensor_input,
    validated_frame,
)

__all__ = ["encode_v2", "parse_v2_infer", "v2_metadata"]

# Open Inference Protocol datatypes and the NumPy dtypes they read into.
V2_DTYPES = {
    "BOOL": "bool",
    "INT8": "int8",
    "INT16": "int16",
    "INT32": "int32",
    "INT64": "int64",
    "UINT8": "uint8",
    "UINT16": "uint16",
    "UINT32": "uint32",
    "UINT64": "uint64",
    "FP16": "float16",
    "FP32": "float32",
    "FP64": "float64",
    "BYTES": "object",
}
_NUMPY_TO_V2 = {v: k for k, v in V2_DTYPES.items() if k != "BYTES"}
_COLUMN_TO_V2 = {
    "long": "INT64",
    "double": "FP64",
    "boolean": "BOOL",
    "string": "BYTES",
    "datetime": "BYTES",
    "binary": "BYTES",
}


def parse_v2_infer(body: bytes, schema: Schema | None) -> ScoringInput:
    """Read an Open Inference Protocol v2 infer request into validated model input."""
    request = load_json(body)
    if not isinstance(request, dict):
        raise BadRequest(
            f"the body must be a JSON object with 'inputs'; got a {json_type(request)}",
            details={"field": "body"},
        )
    request_id = request.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise BadRequest("id must be a string", details={"field": "id"})
    params = request.get("parameters")
    if params is not None and not isinstance(params, dict):
        raise BadRequest("parameters must be a JSON object", details={"field": "parameters"})
    raw_inputs = request.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise BadRequest(
            "inputs must be a non-empty list of tensors {name, shape, datatype, data}",
            details={"field": "inputs"},
        )
    tensors = [_v2_tensor(i, item) for i, item in enumerate(raw_inputs)]
    outputs = _v2_requested_outputs(request.get("outputs"))
    data = _from_v2_tensors(tensors, schema)
    return ScoringInput(data, params, request_id, row_count(data), outputs)


def encode_v2(
    predictions: Any,
    *,
    model_name: str,
    model_version: str,
    request_id: str | None,
    outputs: Sequence[str] | None = None,
) -> bytes:
    """The v2 infer response: one output tensor per prediction array, data flattened row-major.

    A DataFrame or dict gives one output per column or key; anything else one output named
    ``predict``. ``outputs`` (the names the request asked for) keeps only those.
    """
    tensors = _v2_outputs(predictions)
    if outputs:
        known = {t["name"] for t in tensors}
        unknown = [name for name in outputs if name not in known]
        if unknown:
            raise BadRequest(
                f"the model has no output {unknown[0]!r}; it has {', '.join(sorted(known))}",
                details={"field": "outputs", "unknown": unknown},
            )
        tensors = [t for t in tensors if t["name"] in outputs]
    return dump_json(
        {
            "model_name": model_name,
            "model_version": model_version,
            "id": request_id if request_id is not None else uuid.uuid4().hex,
            "outputs": tensors,
        }
    )


def v2_metadata(
    model_name: str, versions: list[str], signature: dict[str, Any] | None, platform: str
) -> dict[str, Any]:
    """The ``GET /v2/models/{name}`` body: inputs and outputs described from the signature."""
    signature = signature or {}
    return {
        "name": model_name,
        "versions": list(versions),
        "platform": platform,
        "inputs": _v2_schema_tensors(signature.get("inputs"), "input"),
        "outputs": _v2_schema_tensors(signature.get("outputs"), "predict"),
    }


# -- v2 tensors ------------------------------------------------------------------------------------


class _V2Tensor(NamedTuple):
    name: str
    shape: tuple[int, ...]
    array: Any  # NumPy array already in ``shape``


def _v2_tensor(position: int, item: Any) -> _V2Tensor:
    import numpy as np

    if type(item) is not dict:
        field = f"inputs[{position}]"
        raise BadRequest(f"{field} must be an object", details={"field": field})
    name = item.get("name")
    shape = item.get("shape")
    datatype = item.get("datatype")
    data = item.get("data")
    if not isinstance(name, str):
        field = f"inputs[{position}].name"
        raise BadRequest(f"{field} must be a string", details={"field": field})
    if type(shape) is not list or not all(type(d) is int and d >= 0 for d in shape):
        field = f"inputs[{name}].shape"
        raise BadRequest(
            f"{field} must be a list of non-negative integers", details={"field": field}
        )
    if type(datatype) is not str or datatype not in V2_DTYPES:
        field = f"inputs[{name}].datatype"
        raise BadRequest(
            f"{field} must be one of {', '.join(V2_DTYPES)}; got {datatype!r}",
            details={"field": field},
        )
    if type(data) is not list:
        field = f"inputs[{name}].data"
        raise BadRequest(f"{field} must be a list", details={"field": field})
    if data and type(data[0]) is list:  # nested (row-major) data is accepted too
        try:
            flat = np.array(data, dtype=object)
        except ValueError:
            flat = None
        if flat is None or any(isinstance(v, list) for v in flat.flat):
            field = f"inputs[{name}].data"
            raise BadRequest(f"{field} is not a rectangular array", details={"field": field})
        data = flat.ravel().tolist()
    count = math.prod(shape)
    if len(data) != count:
        field = f"inputs[{name}].data"
        raise BadRequest(
            f"{field} has {len(data)} values; shape {shape} needs {count}",
            details={"field": field, "shape": shape},
        )
    array = _v2_array(f"inputs[{name}]", datatype, data)
    return _V2Tensor(name, tuple(shape), array.reshape(shape) if len(shape) != 1 else array)


def _v2_array(field: str, datatype: str, data: list[Any]) -> Any:
    import numpy as np

    where = {"field": f"{field}.data", "datatype": datatype}
    if datatype == "BYTES":
        if not all(isinstance(v, str) for v in data):
            raise InvalidInput(f"{field}: BYTES data must be strings", details=where)
        return object_array(data)
    if datatype == "BOOL":
        if not all(isinstance(v, bool) for v in data):
            raise InvalidInput(f"{field}: BOOL data must be true or false", details=where)
        return np.array(data, dtype=bool)
    dtype = np.dtype(V2_DTYPES[datatype])
    try:
        probe = np.array(data) if data else np.array([], dtype=dtype)
    except (ValueError, TypeError):  # lists inside the data
        probe = np.empty((0, 0))
    if (
        dtype.kind == "f"
        and probe.dtype.kind == "O"
        and all(
            v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in data
        )
    ):
        try:
            probe = np.array(data, dtype=np.float64)  # JSON null: a missing value, NaN
        except OverflowError:  # an integer too large for any float
            raise InvalidInput(
                f"{field}: a value does not fit in {datatype}", details=where
            ) from None
    if probe.ndim != 1 or probe.dtype.kind not in ("iu" if dtype.kind in "iu" else "iuf"):
        if dtype.kind in "iu" and all(type(v) is int for v in data):
            try:  # integers past int64 (UINT64) make NumPy guess an object array
                return np.array(data, dtype=dtype)
            except OverflowError:
                raise InvalidInput(
                    f"{field}: a value does not fit in {datatype}", details=where
                ) from None
        kind = "integers" if dtype.kind in "iu" else "numbers"
        raise InvalidInput(f"{field}: {datatype} data must be {kind}", details=where)
    if probe.dtype == dtype:
        return probe
    try:
        with np.errstate(over="raise"):
            array = probe.astype(dtype)
    except (OverflowError, FloatingPointError):
        raise InvalidInput(f"{field}: a value does not fit in {datatype}", details=where) from None
    if dtype.kind in "iu" and not np.array_equal(array, probe):
        raise InvalidInput(f"{field}: a value does not fit in {datatype}", details=where)
    return array


def _v2_requested_outputs(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(
        isinstance(o, dict) and isinstance(o.get("name"), str) for o in value
    ):
        raise BadRequest("outputs must be a list of {name}", details={"field": "outputs"})
    return tuple(o["name"] for o in value)


def _from_v2_tensors(tensors: list[_V2Tensor], schema: Schema | None) -> Any:
    if schema and schema.get("type") == "tensor":
        first = tensors[0]
        array = first.array
        if array.dtype.kind == "O":
            array = tensor_input(array.tolist(), None, f"inputs[{first.name}]")
        check_tensor(schema, array, f"inputs[{first.name}]")
        return array
    if is_table_schema(schema):
        columns = schema["columns"]
        names = [c["name"] for c in columns]
        by_tensor = {t.name: t for t in tensors}
        if all(n in by_tensor for n in names):
            return validated_frame(schema, _v2_columns(by_tensor, names), _v2_rows(tensors))
        if len(tensors) == 1 and len(tensors[0].shape) == 2 and tensors[0].shape[1] == len(names):
            array = tensors[0].array
            by_name = {n: _column_values(array[:, i]) for i, n in enumerate(names)}
            return validated_frame(schema, by_name, array.shape[0])
        if len(tensors) == 1 and len(names) == 1 and _is_column_shape(tensors[0].shape):
            return validated_frame(
                schema, _v2_columns({names[0]: tensors[0]}, names), tensors[0].shape[0]
            )
        missing = [n for n in names if n not in by_tensor]
        raise InvalidInput(
            f"the model takes the columns {', '.join(map(str, names))}: send one input per column "
            f"(shape [n] or [n, 1]) or one input of shape [n, {len(names)}]; missing "
            f"{', '.join(map(str, missing))}",
            details={"field": missing[0], "missing": missing},
        )
    if len(tensors) == 1:
        return tensors[0].array
    names = [t.name for t in tensors]
    columns = _v2_columns({t.name: t for t in tensors}, names)
    return pandas_call(lambda pd: pd.DataFrame(columns), "inputs")


def _v2_columns(by_tensor: dict[str, _V2Tensor], names: list[str]) -> dict[str, Any]:
    rows = None
    out = {}
    for name in names:
        tensor = by_tensor[name]
        if not _is_column_shape(tensor.shape):
            raise InvalidInput(
                f"input {name!r} must have shape [n] or [n, 1] (one value per row); got "
                f"{list(tensor.shape)}",
                details={"field": name, "shape": list(tensor.shape)},
            )
        if rows is not None and tensor.shape[0] != rows:
            raise InvalidInput(
                f"input {name!r} has {tensor.shape[0]} rows; the other inputs have {rows}",
                details={"field": name, "shape": list(tensor.shape)},
            )
        rows = tensor.shape[0]
        out[name] = _column_values(tensor.array.reshape(-1))
    return out


def _column_values(array: Any) -> Any:
    # BYTES columns hold Python objects: hand them over as a list so that check_column reads
    # text as numbers the same way for v2 and JSON.
    return array.tolist() if array.dtype.kind == "O" else array


def _is_column_shape(shape: tuple[int, ...]) -> bool:
    return len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)


def _v2_rows(tensors: list[_V2Tensor]) -> int:
    return tensors[0].shape[0] if tensors[0].shape else 1


def _v2_outputs(predictions: Any) -> list[dict[str, Any]]:
    import numpy as np
    import pandas as pd

    if isinstance(predictions, pd.DataFrame):
        return [
            _v2_output(str(name), values)
            for name, values in zip(predictions.columns, column_arrays(predictions), strict=True)
        ]
    if isinstance(predictions, dict):
        return [_v2_output(str(k), v) for k, v in predictions.items()]
    if isinstance(predictions, pd.Series):
        return [_v2_output("predict", predictions.array)]
    if isinstance(predictions, np.ndarray):
        return [_v2_output("predict", predictions)]
    return [_v2_output("predict", predictions)]


def _v2_output(name: str, values: Any) -> dict[str, Any]:
    import numpy as np

    try:
        array = np.asarray(values)
    except (ValueError, TypeError) as exc:
        raise CauceError(
            f"prediction {name!r} is not a rectangular array: {exc}",
            code="bad-prediction",
            details={"field": name},
        ) from None
    if array.ndim == 0:
        array = array.reshape(1)
    if array.dtype.kind == "O":
        retyped = np.array(array.tolist())
        if retyped.dtype.kind in "biuf" and retyped.shape == array.shape:
            array = retyped
    datatype = _NUMPY_TO_V2.get(array.dtype.name)
    if datatype is None:
        datatype = "BYTES"
        data = [jsonable(v) for v in array.ravel().tolist()]
        if array.dtype.kind in "mM":
            data = [str(v) for v in array.ravel()]
    else:
        data = array.ravel().tolist()
    return {"name": name, "datatype": datatype, "shape": list(array.shape), "data": data}


def _v2_schema_tensors(schema: Schema | None, tensor_name: str) -> list[dict[str, Any]]:
    if not schema:
        return []
    if schema.get("type") == "dataframe":
        return [
            {
                "name": str(c["name"]),
                "datatype": _COLUMN_TO_V2.get(c["type"], "BYTES"),
                "shape": [-1],
            }
            for c in schema["columns"]
        ]
    dtype = str(schema.get("dtype", "float64"))
    return [
        {
            "name": tensor_name,
            "datatype": _NUMPY_TO_V2.get(dtype, "BYTES"),
            "shape": [d if d is not None else -1 for d in schema.get("shape") or [-1]],
        }
    ]
