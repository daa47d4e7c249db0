"""Step outputs stored by type and read back unchanged."""

from __future__ import annotations

import threading
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

from cauce.errors import InvalidInput
from cauce.pipelines import materializers
from cauce.workspace import Workspace


def round_trip(ws: Workspace, value: object) -> tuple[object, dict]:  # type: ignore[type-arg]
    output, blob = materializers.store(ws.artifacts, value, "s")
    assert output["sha256"] == blob.sha256 and output["size"] == blob.size
    return materializers.load(ws.artifacts, output), output


def test_dataframe_is_parquet(workspace: Workspace) -> None:
    df = pd.DataFrame({"a": [1, 2, 3], "b": ["x", None, "z"], "c": [0.5, np.nan, 1.5]})
    back, output = round_trip(workspace, df)
    assert output["kind"] == "parquet" and output["media_type"].endswith("parquet")
    pd.testing.assert_frame_equal(back, df)  # type: ignore[arg-type]
    # the same frame stores the same bytes: outputs are content-addressed and deterministic
    assert materializers.store(workspace.artifacts, df.copy(), "s")[0] == output


def test_dataframe_parquet_cannot_hold_falls_back_to_pickle(workspace: Workspace) -> None:
    df = pd.DataFrame({0: [1, 2], 1: [3, 4]})  # non-string column names
    back, output = round_trip(workspace, df)
    assert output["kind"] == "pickle"
    pd.testing.assert_frame_equal(back, df)  # type: ignore[arg-type]


def test_ndarray_is_npy(workspace: Workspace) -> None:
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    back, output = round_trip(workspace, array)
    assert output["kind"] == "npy"
    assert isinstance(back, np.ndarray) and back.dtype == np.float32
    np.testing.assert_array_equal(back, array)
    objects, output = round_trip(workspace, np.array([{"a": 1}, None], dtype=object))
    assert output["kind"] == "pickle" and list(objects) == [{"a": 1}, None]  # type: ignore[call-overload]


def test_estimator_is_skops_with_trusted_types(workspace: Workspace) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = np.array([[0.0, 1.0], [1.0, 0.0], [0.2, 0.9], [0.9, 0.1]])
    y = np.array([0, 1, 0, 1])
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    back, output = round_trip(workspace, model)
    assert output["kind"] == "skops" and isinstance(output["trusted_types"], list)
    np.testing.assert_array_equal(back.predict(X), model.predict(X))  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "value", [None, True, 3, 2.5, "text", [1, "a", None], {"k": [1, {"n": 2}]}]
)
def test_json_values(workspace: Workspace, value: object) -> None:
    back, output = round_trip(workspace, value)
    assert output["kind"] == "json" and back == value and type(back) is type(value)


@pytest.mark.parametrize("value", [(1, 2), {1: "int key"}, Fraction(1, 3), {"nan": float("nan")}])
def test_other_values_are_cloudpickled(workspace: Workspace, value: object) -> None:
    back, output = round_trip(workspace, value)
    assert output["kind"] == "pickle"
    assert repr(back) == repr(value)  # NaN never equals itself: compare the text


def test_unserializable_output_names_the_step_and_type(workspace: Workspace) -> None:
    with pytest.raises(InvalidInput, match=r"step 'ingest' returned a _thread\.lock") as info:
        materializers.store(workspace.artifacts, threading.Lock(), "ingest")
    assert info.value.code == "unserializable-output"


def test_stats_of_a_dataframe() -> None:
    df = pd.DataFrame({"a": [1, None, 3, None], "b": list("wxyz")})
    assert materializers.stats_of(df) == {
        "rows": 4,
        "columns": 2,
        "null_rates": {"a": 0.5, "b": 0.0},
    }
    assert materializers.stats_of(pd.DataFrame({"a": []}))["null_rates"] == {"a": 0.0}
    assert materializers.stats_of([1, 2]) == {}
