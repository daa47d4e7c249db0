"""The Open Inference Protocol v2 (KServe, Triton): ``POST /v2/models/{name}/infer``.

A request is ``{"id"?, "parameters"?, "inputs": [{"name", "shape", "datatype", "data"}],
"outputs"?}``. A column signature takes one tensor per column (shape ``[n]`` or ``[n, 1]``) or
one ``[n, ncols]`` tensor in the signature's column order; a tensor signature takes the first
input. The answer lists one output per prediction tensor (one per column for a table). Values
are read into model input by :mod:`cauce.serving.codec`, with its errors; an error answers
``{"error": "<message>", "code", "details"}``, the protocol's shape with Cauce's code and
details beside it (:func:`cauce.serving.codec.error_body`).

The binary tensor data extension (what ``tritonclient`` sends by default) is supported both
ways. A tensor whose ``parameters`` hold ``binary_data_size`` has no ``data``: its values
follow the JSON object in the body, in the order of the inputs, and the
``Inference-Header-Content-Length`` header gives the length of the JSON part. Values are
row-major and little-endian, BOOL one byte each, BYTES each a 4-byte little-endian length and
the bytes. An output is answered the same way when the request's ``binary_data_output``
parameter is true or the output's own ``binary_data`` parameter is (which wins).

Example::

    scoring = parse_v2_infer(body, signature["inputs"], header_length(value))
    answer = encode_v2(predictions, model_name="churn", model_version="3",
                       request_id=scoring.request_id, binary=scoring.binary)
    # answer.body, and answer.header_length for the Inference-Header-Content-Length header
"""

from __future__ import annotations

import math
import re
import struct
import uuid
from collections.abc import Sequence
from typing import Any, NamedTuple

from cauce.errors import BadRequest, CauceError, InvalidInput
from cauce.registry.signature import Schema, column_arrays
from cauce.serving.codec import (
    HEADER_LENGTH,
    ScoringInput,
    check_tensor,
    dump_json,
    is_table_schema,
    json_type,
    jsonable,
    object_array,
    pandas_call,
    prediction_names,
    row_count,
    tensor_input,
    validated_frame,
)
from cauce.validation import load_json

__all__ = [
    "UNNAMED_OUTPUT",
    "V2Answer",
    "answer_rows",
    "encode_v2",
    "header_length",
    "json_view",
    "parse_v2_infer",
    "request_rows",
    "v2_metadata",
]

EXTENSIONS = ("binary_tensor_data",)
UNNAMED_OUTPUT = "predict"  # the output of a model whose answer has no names of its own

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
_LENGTH = struct.Struct("<I")
# A length, with the spaces a header may carry; 18 digits stay far below any body's size.
_LENGTH_DIGITS = re.compile(r"[ \t]*[0-9]{1,18}[ \t]*")


class V2Answer(NamedTuple):
    """An encoded infer response: the body, and the length of its JSON part when binary
    output data follows it (the ``Inference-Header-Content-Length`` header), else None."""

    body: bytes
    header_length: int | None


def header_length(value: bytes | str | None) -> int | None:
    """The ``Inference-Header-Content-Length`` header as a number; BadRequest if it is not."""
    if value is None:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    # ASCII digits only: str.isdigit() also takes "²" and "٣", which int() refuses or reads.
    if _LENGTH_DIGITS.fullmatch(text) is None:
        raise BadRequest(
            f"the {HEADER_LENGTH} header must be a non-negative integer; got {text[:40]!r}",
            details={"field": HEADER_LENGTH},
        )
    return int(text)


def parse_v2_infer(
    body: bytes, schema: Schema | None, header_length: int | None = None
) -> ScoringInput:
    """Read an Open Inference Protocol v2 infer request into validated model input.

    ``header_length`` is the request's ``Inference-Header-Content-Length``: the body is then
    that many bytes of JSON followed by the binary data of the inputs that say so.
    """
    request, binary = _split(body, header_length)
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
    tensors = [_v2_tensor(i, item, binary) for i, item in enumerate(raw_inputs)]
    if binary is not None and binary.left():
        raise BadRequest(
            f"{binary.left()} bytes of binary data follow the JSON that no input claims "
            "(binary_data_size)",
            details={"field": "body"},
        )
    outputs, binary_outputs = _v2_requested_outputs(request.get("outputs"), params)
    data = _from_v2_tensors(tensors, schema)
    return ScoringInput(data, params, request_id, row_count(data), outputs, binary_outputs)


def encode_v2(
    predictions: Any,
    *,
    model_name: str,
    model_version: str,
    request_id: str | None,
    outputs: Sequence[str] | None = None,
    binary: bool | frozenset[str] = False,
) -> V2Answer:
    """The v2 infer response: one output tensor per prediction array, data flattened row-major.

    A DataFrame or dict gives one output per column or key; anything else one output named
    ``predict``. ``outputs`` (the names the request asked for) keeps only those; ``binary``
    (True, or a set of names) sends those outputs as binary data after the JSON.
    """
    arrays = _v2_outputs(predictions)
    if outputs:
        known = {name for name, _, _ in arrays}
        unknown = [name for name in outputs if name not in known]
        if unknown:
            raise BadRequest(
                f"the model has no output {unknown[0]!r}; it has {', '.join(sorted(known))}",
                details={"field": "outputs", "unknown": unknown},
            )
        arrays = [a for a in arrays if a[0] in outputs]
    tensors = []
    chunks: list[bytes] = []
    for name, datatype, array in arrays:
        tensor: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(array.shape)}
        if binary is True or (binary and name in binary):
            chunk = _binary_data(array, datatype)
            tensor["parameters"] = {"binary_data_size": len(chunk)}
            chunks.append(chunk)
        else:
            tensor["data"] = _json_data(array, datatype)
        tensors.append(tensor)
    header = dump_json(
        {
            "model_name": model_name,
            "model_version": model_version,
            "id": request_id if request_id is not None else uuid.uuid4().hex,
            "outputs": tensors,
        }
    )
    if not chunks:
        return V2Answer(header, None)
    return V2Answer(b"".join((header, *chunks)), len(header))


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
        "outputs": _v2_schema_tensors(signature.get("outputs"), UNNAMED_OUTPUT),
    }


def request_rows(
    body: bytes, header_length: int | None, columns: list[str] | None = None
) -> list[dict[str, Any]]:
    """The rows of an infer request as sent: what the data collector records.

    Each input of shape ``[n]`` or ``[n, 1]`` is a column named after it; a single input of
    shape ``[n, k]`` gives ``k`` columns named by ``columns`` (the signature's, the order the
    worker reads them in) when there are ``k`` of them, else ``"0"``, ``"1"``…; any other
    input ``NAME`` of shape ``[n, k]`` gives ``NAME_0``…. Binary data is read back
    (:func:`json_view`); no signature check, no pandas.
    """
    tensors = _tensors(body, header_length, "inputs")
    positional = len(tensors) == 1 and not _is_column_shape(tuple(tensors[0]["shape"]))
    names: list[str] = []
    values: list[list[Any]] = []
    for tensor in tensors:
        width, found = _columns(tensor)
        if positional and columns and len(columns) == width:
            names += columns
        elif positional:
            names += [str(i) for i in range(len(found))]
        elif width == 1:  # [n, 1]: one value per row, as the worker reads it
            names.append(tensor["name"])
        else:
            names += prediction_names(tensor["name"], width)
        values += found
    return _rows(names, values)


def answer_rows(body: bytes, header_length: int | None) -> list[dict[str, Any]]:
    """The outputs of an infer answer, one dict per input row.

    An output of shape ``[n]`` is one column, of shape ``[n, k]`` ``k`` columns ``<name>_<i>``;
    the output ``predict`` (what Cauce calls a model's unnamed answer) is named as for
    ``/invocations`` answers: ``prediction``, ``prediction_<i>``
    (:func:`~cauce.serving.codec.prediction_names`).
    """
    names: list[str] = []
    values: list[list[Any]] = []
    for tensor in _tensors(body, header_length, "outputs"):
        width, found = _columns(tensor)
        name = None if tensor["name"] == UNNAMED_OUTPUT else tensor["name"]
        names += prediction_names(name, width)
        values += found
    return _rows(names, values)


def _rows(names: list[str], values: list[list[Any]]) -> list[dict[str, Any]]:
    """Columns of values as rows; every tensor must have as many rows."""
    if len({len(column) for column in values}) > 1:
        raise ValueError(f"tensors with different numbers of rows: {names}")
    return [dict(zip(names, row, strict=True)) for row in zip(*values, strict=True)]


def _tensors(body: bytes, header_length: int | None, key: str) -> list[dict[str, Any]]:
    tensors = json_view(body, header_length)[key]
    if not isinstance(tensors, list) or not all(isinstance(t, dict) for t in tensors):
        raise ValueError(f"{key} is not a list of tensors")
    return tensors


def _columns(tensor: dict[str, Any]) -> tuple[int | None, list[list[Any]]]:
    """A tensor's values as columns of one value per row (its first dimension): one column
    for shape ``[n]`` (width None), ``k`` for ``[n, k, …]`` (nested lists past the second)."""
    shape = [int(d) for d in tensor["shape"]]
    flat = _flat(tensor["data"])
    if len(flat) != math.prod(shape):
        raise ValueError(f"{tensor['name']}: {len(flat)} values for shape {shape}")
    if len(shape) <= 1:
        return None, [flat]
    width = math.prod(shape[1:])
    rows = [_nest(flat[i * width : (i + 1) * width], shape[1:]) for i in range(shape[0])]
    return shape[1], [[row[j] for row in rows] for j in range(shape[1])]


def _flat(data: list[Any]) -> list[Any]:
    while data and isinstance(data[0], list):
        data = [v for row in data for v in row]
    return data


def _nest(flat: list[Any], dims: list[int]) -> list[Any]:
    if len(dims) == 1:
        return flat
    step = math.prod(dims[1:])
    return [_nest(flat[j * step : (j + 1) * step], dims[1:]) for j in range(dims[0])]


def json_view(body: bytes, header_length: int | None) -> Any:
    """A request or response body as JSON, binary tensors put back as ``data`` lists.

    For readers of recorded traffic (:func:`request_rows`, :func:`answer_rows`): BYTES become
    text where they are UTF-8.
    """
    payload, binary = _split(body, header_length)
    if binary is None or not isinstance(payload, dict):
        return payload
    for key in ("inputs", "outputs"):
        for tensor in payload.get(key) or []:
            parameters = tensor.get("parameters") or {}
            size = parameters.get("binary_data_size")
            if size is None:
                continue
            count = math.prod(tensor["shape"])
            array = _binary_array(key, tensor["datatype"], binary.take(size, key), count)
            values = array.tolist()
            if tensor["datatype"] == "BYTES":
                values = [_text_or_bytes(v) for v in values]
            tensor["data"] = values
    return payload


# -- binary data ----------------------------------------------------------------------------------


class _Binary:
    """The binary part of a body, handed out to tensors in order."""

    def __init__(self, data: memoryview) -> None:
        self.data = data
        self.offset = 0

    def take(self, size: int, field: str) -> memoryview:
        end = self.offset + size
        if end > len(self.data):
            raise BadRequest(
                f"{field}: binary_data_size {size} goes past the end of the body "
                f"({len(self.data) - self.offset} bytes of binary data are left)",
                details={"field": field},
            )
        chunk = self.data[self.offset : end]
        self.offset = end
        return chunk

    def left(self) -> int:
        return len(self.data) - self.offset


def _split(body: bytes, length: int | None) -> tuple[Any, _Binary | None]:
    if length is None:
        try:
            return load_json(body), None
        except BadRequest as exc:
            if "Extra data" in exc.message:  # JSON, then more: binary data without the header
                exc.hint = f"binary tensor data needs the {HEADER_LENGTH} header"
            raise
    if length > len(body):
        raise BadRequest(
            f"the {HEADER_LENGTH} header says {length} bytes of JSON; the body has {len(body)}",
            details={"field": HEADER_LENGTH},
        )
    return load_json(body[:length]), _Binary(memoryview(body)[length:])


def _binary_array(field: str, datatype: str, chunk: memoryview, count: int) -> Any:
    """A tensor's binary data as a flat NumPy array of ``count`` values."""
    import numpy as np

    where = {"field": f"{field}.binary_data", "datatype": datatype}
    if datatype == "BYTES":
        return _bytes_elements(field, chunk, count, where)
    dtype = np.dtype(V2_DTYPES[datatype] if datatype != "BOOL" else "uint8").newbyteorder("<")
    if len(chunk) != count * dtype.itemsize:
        raise InvalidInput(
            f"{field}: {len(chunk)} bytes of {datatype} data; its shape needs "
            f"{count * dtype.itemsize}",
            details=where,
        )
    array = np.frombuffer(chunk, dtype=dtype)
    if datatype == "BOOL":
        if array.size and array.max() > 1:
            raise InvalidInput(f"{field}: BOOL data must be bytes 0 or 1", details=where)
        return array.astype(bool)
    return array.astype(dtype.newbyteorder("="))  # a writable copy in the machine's order


def _bytes_elements(field: str, chunk: memoryview, count: int, where: dict[str, Any]) -> Any:
    values: list[bytes] = []
    offset, end = 0, len(chunk)
    while offset < end and len(values) < count:
        if offset + 4 > end:
            break
        (size,) = _LENGTH.unpack_from(chunk, offset)
        offset += 4
        if offset + size > end:
            offset = end + 1  # a length past the end: the data is short
            break
        values.append(bytes(chunk[offset : offset + size]))
        offset += size
    if len(values) != count or offset != end:
        raise InvalidInput(
            f"{field}: the BYTES data does not hold {count} length-prefixed elements "
            "(each a 4-byte little-endian length, then the bytes)",
            details=where,
        )
    return object_array(values)


def _binary_data(array: Any, datatype: str) -> bytes:
    """An output array as the extension's bytes: row-major, little-endian."""
    import numpy as np

    if datatype == "BYTES":
        parts = []
        for value in array.ravel().tolist():
            raw = _as_bytes(value)
            parts.append(_LENGTH.pack(len(raw)))
            parts.append(raw)
        return b"".join(parts)
    if datatype == "BOOL":
        return np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    return dump_json(jsonable(value))  # numbers, null, dates: their JSON text


def _text_or_bytes(value: bytes) -> Any:
    try:
        return value.decode()
    except UnicodeDecodeError:
        return value


# -- v2 tensors ------------------------------------------------------------------------------------


class _V2Tensor(NamedTuple):
    name: str
    shape: tuple[int, ...]
    array: Any  # NumPy array already in ``shape``
    raw: bool  # BYTES sent as binary data: the elements are bytes, not text


def _v2_tensor(position: int, item: Any, binary: _Binary | None) -> _V2Tensor:
    if type(item) is not dict:
        field = f"inputs[{position}]"
        raise BadRequest(f"{field} must be an object", details={"field": field})
    name = item.get("name")
    shape = item.get("shape")
    datatype = item.get("datatype")
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
    count = math.prod(shape)
    size = _binary_size(name, item.get("parameters"))
    if size is not None:
        field = f"inputs[{name}]"
        if binary is None:
            raise BadRequest(
                f"{field} has binary_data_size, but the request has no {HEADER_LENGTH} header "
                "saying where its JSON ends",
                details={"field": HEADER_LENGTH},
            )
        if "data" in item:
            raise BadRequest(
                f"{field} has both data and binary_data_size; send one",
                details={"field": f"{field}.data"},
            )
        array = _binary_array(field, datatype, binary.take(size, field), count)
        raw = datatype == "BYTES"
    else:
        array = _v2_array(f"inputs[{name}]", datatype, _json_values(name, item.get("data"), shape))
        raw = False
    return _V2Tensor(name, tuple(shape), array.reshape(shape) if len(shape) != 1 else array, raw)


def _binary_size(name: str, parameters: Any) -> int | None:
    if parameters is None:
        return None
    if type(parameters) is not dict:
        field = f"inputs[{name}].parameters"
        raise BadRequest(f"{field} must be a JSON object", details={"field": field})
    size = parameters.get("binary_data_size")
    if size is not None and (type(size) is not int or size < 0):
        field = f"inputs[{name}].parameters.binary_data_size"
        raise BadRequest(f"{field} must be a non-negative integer", details={"field": field})
    return size


def _json_values(name: str, data: Any, shape: list[int]) -> list[Any]:
    import numpy as np

    field = f"inputs[{name}].data"
    if type(data) is not list:
        raise BadRequest(f"{field} must be a list", details={"field": field})
    if data and type(data[0]) is list:  # nested (row-major) data is accepted too
        try:
            flat = np.array(data, dtype=object)
        except ValueError:
            flat = None
        if flat is None or any(isinstance(v, list) for v in flat.flat):
            raise BadRequest(f"{field} is not a rectangular array", details={"field": field})
        data = flat.ravel().tolist()
    count = math.prod(shape)
    if len(data) != count:
        raise BadRequest(
            f"{field} has {len(data)} values; shape {shape} needs {count}",
            details={"field": field, "shape": shape},
        )
    values: list[Any] = data
    return values


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


def _v2_requested_outputs(
    value: Any, params: dict[str, Any] | None
) -> tuple[tuple[str, ...] | None, bool | frozenset[str]]:
    """The output names asked for, and which to answer as binary data."""
    every = (params or {}).get("binary_data_output", False)
    if not isinstance(every, bool):
        raise BadRequest(
            "parameters.binary_data_output must be true or false",
            details={"field": "parameters.binary_data_output"},
        )
    if value is None:
        return None, every
    if not isinstance(value, list) or not all(
        isinstance(o, dict)
        and isinstance(o.get("name"), str)
        and isinstance(o.get("parameters", {}), dict)
        for o in value
    ):
        raise BadRequest(
            "outputs must be a list of {name, parameters?}", details={"field": "outputs"}
        )
    binary = set()
    for output in value:
        flag = output.get("parameters", {}).get("binary_data", every)
        if not isinstance(flag, bool):
            field = f"outputs[{output['name']}].parameters.binary_data"
            raise BadRequest(f"{field} must be true or false", details={"field": field})
        if flag:
            binary.add(output["name"])
    return tuple(o["name"] for o in value), frozenset(binary)


def _from_v2_tensors(tensors: list[_V2Tensor], schema: Schema | None) -> Any:
    if schema and schema.get("type") == "tensor":
        first = tensors[0]
        array = first.array
        if array.dtype.kind == "O":
            values = _texts(array, f"inputs[{first.name}]") if first.raw else array
            array = tensor_input(values.tolist(), None, f"inputs[{first.name}]")
        check_tensor(schema, array, f"inputs[{first.name}]")
        return array
    if is_table_schema(schema):
        columns = schema["columns"]
        names = [c["name"] for c in columns]
        binary = {c["name"] for c in columns if c["type"] == "binary"}
        by_tensor = {t.name: t for t in tensors}
        if all(n in by_tensor for n in names):
            by_name = _v2_columns(by_tensor, names, binary)
            return validated_frame(schema, by_name, _v2_rows(tensors))
        if len(tensors) == 1 and len(tensors[0].shape) == 2 and tensors[0].shape[1] == len(names):
            tensor = tensors[0]
            by_name = {
                n: _column_values(tensor, tensor.array[:, i], n in binary)
                for i, n in enumerate(names)
            }
            return validated_frame(schema, by_name, tensor.array.shape[0])
        if len(tensors) == 1 and len(names) == 1 and _is_column_shape(tensors[0].shape):
            by_name = _v2_columns({names[0]: tensors[0]}, names, binary)
            return validated_frame(schema, by_name, tensors[0].shape[0])
        missing = [n for n in names if n not in by_tensor]
        raise InvalidInput(
            f"the model takes the columns {', '.join(map(str, names))}: send one input per column "
            f"(shape [n] or [n, 1]) or one input of shape [n, {len(names)}]; missing "
            f"{', '.join(map(str, missing))}",
            details={"field": missing[0], "missing": missing},
        )
    if len(tensors) == 1:
        first = tensors[0]
        return _texts(first.array, f"inputs[{first.name}]", keep=True) if first.raw else first.array
    names = [t.name for t in tensors]
    columns = _v2_columns({t.name: t for t in tensors}, names, set())
    return pandas_call(lambda pd: pd.DataFrame(columns), "inputs")


def _v2_columns(
    by_tensor: dict[str, _V2Tensor], names: list[str], binary: set[str]
) -> dict[str, Any]:
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
        out[name] = _column_values(tensor, tensor.array.reshape(-1), name in binary)
    return out


def _column_values(tensor: _V2Tensor, array: Any, binary: bool) -> Any:
    # BYTES columns hold Python objects: hand them over as a list so that check_column reads
    # text as numbers the same way for v2 and JSON. Binary BYTES are text unless the column
    # takes bytes.
    if array.dtype.kind != "O":
        return array
    if tensor.raw and not binary:
        array = _texts(array, f"inputs[{tensor.name}]")
    return array.tolist()


def _texts(array: Any, field: str, keep: bool = False) -> Any:
    """BYTES elements as text (UTF-8); with ``keep``, elements that are not stay bytes."""
    out = array.copy()
    flat = out.reshape(-1)
    for i, value in enumerate(array.reshape(-1).tolist()):
        try:
            flat[i] = value.decode()
        except UnicodeDecodeError:
            if keep:
                continue
            raise InvalidInput(
                f"{field}: element {i} is not UTF-8 text", details={"field": field, "row": i}
            ) from None
    return out


def _is_column_shape(shape: tuple[int, ...]) -> bool:
    return len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)


def _v2_rows(tensors: list[_V2Tensor]) -> int:
    return tensors[0].shape[0] if tensors[0].shape else 1


def _v2_outputs(predictions: Any) -> list[tuple[str, str, Any]]:
    """(name, datatype, array) for each output tensor of a model's predictions."""
    import pandas as pd

    if isinstance(predictions, pd.DataFrame):
        return [
            _v2_output(str(name), values)
            for name, values in zip(predictions.columns, column_arrays(predictions), strict=True)
        ]
    if isinstance(predictions, dict):
        return [_v2_output(str(k), v) for k, v in predictions.items()]
    if isinstance(predictions, pd.Series):
        return [_v2_output(UNNAMED_OUTPUT, predictions.array)]
    return [_v2_output(UNNAMED_OUTPUT, predictions)]


def _v2_output(name: str, values: Any) -> tuple[str, str, Any]:
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
        if array.dtype.kind in "mM":
            array = array.astype(str).astype(object)
        return name, "BYTES", array
    return name, datatype, array


def _json_data(array: Any, datatype: str) -> list[Any]:
    if datatype == "BYTES":
        return [jsonable(v) for v in array.ravel().tolist()]
    data: list[Any] = array.ravel().tolist()
    return data


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
