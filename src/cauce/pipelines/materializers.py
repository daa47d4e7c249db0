"""Step outputs stored as artifacts, by type.

=========================  ==========  ==========================================
Output                     Kind        Stored as
=========================  ==========  ==========================================
pandas DataFrame           parquet     Parquet (pyarrow)
NumPy array                npy         ``.npy`` (no pickled objects)
scikit-learn estimator     skops       skops, its extra trusted types recorded
JSON-able value            json        canonical JSON (sorted keys)
anything else              pickle      cloudpickle
=========================  ==========  ==========================================

A value that a typed format cannot hold (an object-dtype array, a DataFrame with non-string
column names or mixed-type object columns) falls through to cloudpickle; a value cloudpickle
cannot hold either is an :class:`~cauce.errors.InvalidInput` naming the step and the type. The
stored output is the JSON ``{"sha256", "kind", "size", "media_type"[, "trusted_types"]}`` kept
in ``step_runs.output``.
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
from typing import TYPE_CHECKING, Any

from cauce import estimator_files
from cauce.errors import InvalidInput

if TYPE_CHECKING:
    from cauce.artifacts import ArtifactStore, Blob

MEDIA_TYPES = {
    "parquet": "application/vnd.apache.parquet",
    "npy": "application/x-npy",
    "skops": "application/vnd.skops",
    "json": "application/json",
    "pickle": "application/x-cloudpickle",
}


def _is_dataframe(obj: Any) -> bool:
    if "pandas" not in sys.modules:  # nothing can be a DataFrame before pandas is imported
        return False
    import pandas as pd

    return isinstance(obj, pd.DataFrame)


def _is_ndarray(obj: Any) -> bool:
    if "numpy" not in sys.modules:
        return False
    import numpy as np

    return isinstance(obj, np.ndarray)


def _is_estimator(obj: Any) -> bool:
    if "sklearn" not in sys.modules:
        return False
    from sklearn.base import BaseEstimator

    return isinstance(obj, BaseEstimator)


def _json_bytes(obj: Any) -> bytes | None:
    """Canonical JSON of a value that survives a JSON round trip unchanged, else None."""
    if not isinstance(obj, (type(None), bool, int, float, str, list, dict)):
        return None
    try:
        text = json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):
        return None
    try:
        same = json.loads(text) == obj
    except (TypeError, ValueError):  # pragma: no cover - dumps and loads agree
        return None
    return text.encode() if same else None


def serialize(obj: Any, step: str) -> tuple[bytes, str, dict[str, Any]]:
    """The bytes, kind and extra settings that store ``obj``, the output of ``step``."""
    if _is_dataframe(obj) and all(isinstance(c, str) for c in obj.columns):
        # Parquet would turn other column names into strings: those frames are pickled.
        buffer = io.BytesIO()
        try:
            obj.to_parquet(buffer, index=True)
            return buffer.getvalue(), "parquet", {}
        except Exception:  # pyarrow raises ArrowInvalid, ValueError…: fall back to pickle
            pass
    elif _is_ndarray(obj):
        import numpy as np

        buffer = io.BytesIO()
        try:
            np.save(buffer, obj, allow_pickle=False)
            return buffer.getvalue(), "npy", {}
        except ValueError:  # object arrays need pickle
            pass
    elif _is_estimator(obj):
        data, trusted = estimator_files.dumps(obj)
        return data, "skops", {"trusted_types": trusted}
    else:
        text = _json_bytes(obj)
        if text is not None:
            return text, "json", {}
    import cloudpickle

    try:
        return cloudpickle.dumps(obj), "pickle", {}
    except Exception as exc:  # pickling raises TypeError, PicklingError, AttributeError…
        raise InvalidInput(
            f"step {step!r} returned a {type(obj).__module__}.{type(obj).__qualname__} that no "
            f"materializer can store: {type(exc).__name__}: {exc}",
            code="unserializable-output",
            hint="return a DataFrame, a NumPy array, a scikit-learn estimator, a JSON-able value "
            "or an object cloudpickle can serialize",
            details={"step": step, "type": type(obj).__qualname__},
        ) from None


def store(artifacts: ArtifactStore, obj: Any, step: str) -> tuple[dict[str, Any], Blob]:
    """Store ``obj`` as an artifact; return the output JSON and the blob."""
    from cauce.artifacts import Blob

    data, kind, extra = serialize(obj, step)
    media_type = MEDIA_TYPES[kind]
    sha = hashlib.sha256(data).hexdigest()
    if artifacts.exists(sha):  # content-addressed: the same output is written once
        blob = Blob(sha, len(data), artifacts.uri_of(sha), media_type)
    else:
        blob = artifacts.put_bytes(data, media_type=media_type)
    output = {"sha256": blob.sha256, "kind": kind, "size": blob.size, "media_type": media_type}
    output.update(extra)
    return output, blob


def load(artifacts: ArtifactStore, output: dict[str, Any]) -> Any:
    """The object stored as ``output`` (its bytes verified against the sha256)."""
    data = artifacts.read_bytes(output["sha256"])
    return deserialize(data, output)


def deserialize(data: bytes, output: dict[str, Any]) -> Any:
    """The object that ``data`` of the stored output's kind holds."""
    kind = output["kind"]
    if kind == "json":
        return json.loads(data)
    if kind == "parquet":
        import pandas as pd

        return pd.read_parquet(io.BytesIO(data))
    if kind == "npy":
        import numpy as np

        return np.load(io.BytesIO(data), allow_pickle=False)
    if kind == "skops":
        return estimator_files.loads(
            data, output.get("trusted_types", []), f"artifact {output['sha256']}"
        )
    if kind == "pickle":
        import cloudpickle

        return cloudpickle.loads(data)
    raise InvalidInput(f"unknown output kind {kind!r}")


def stats_of(obj: Any) -> dict[str, Any]:
    """Row count and per-column null rates of a DataFrame output (empty for other types)."""
    if not _is_dataframe(obj):
        return {}
    rows = len(obj)
    nulls = obj.isna().sum()
    return {
        "rows": rows,
        "columns": len(obj.columns),
        "null_rates": {
            str(col): (float(nulls[col]) / rows if rows else 0.0) for col in obj.columns
        },
    }
