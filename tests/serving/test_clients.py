"""Real clients against a served endpoint: Triton's ``tritonclient.http`` (Open Inference Protocol
v2, with its default binary tensor data) and MLflow's own scoring client for ``/invocations``.

One ``cauce endpoints serve`` process for the module: endpoint ``churn`` with ``blue`` (the churn
LogisticRegression, columns ``age`` long and ``charges`` double) taking the traffic, and
``words`` (a Python model over a text column that answers text and numbers), reached with the
``cauce-deployment`` header. The clients are used with their default arguments unless a test
says otherwise.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest

import cauce
from cauce.workspace import Workspace
from clitools import cauce as cauce_cli
from optional import need
from served import CHURN_BLUE, Served, free_port, serving

triton = need("tritonclient.http", extra="dev")
InferenceServerException = need("tritonclient.utils", extra="dev").InferenceServerException

pytestmark = pytest.mark.slow

SPEC = (
    CHURN_BLUE
    + """\
---
kind: Deployment
endpoint: churn
name: words
model: models:/words/1
---
kind: Deployment
endpoint: churn
name: proba
model: models:/proba/1
collect: {}
"""
)
FRAME = pd.DataFrame({"age": [25, 61, 40], "charges": [80.5, 20.0, 55.0]})


@pytest.fixture(scope="module")
def model(module_workspace: Workspace, churn_model: Any) -> Any:
    fitted = churn_model()

    def shout(data: pd.DataFrame) -> pd.DataFrame:  # nested: pickled by value, not by module
        """The ``words`` model: each word upper-cased, and its length."""
        return pd.DataFrame({"upper": data["word"].str.upper(), "length": data["word"].str.len()})

    def proba(data: pd.DataFrame) -> Any:
        """The ``proba`` model: the churn model's class probabilities, shape [n, 2]."""
        return fitted.predict_proba(data)

    with cauce.start_run(experiment="words"):
        example = pd.DataFrame({"word": ["río", "cauce"]})
        cauce.log_model(shout, "model", registered_model="words", input_example=example)
    with cauce.start_run(experiment="proba"):
        cauce.log_model(proba, "model", registered_model="proba", input_example=FRAME)
    return fitted


@pytest.fixture(scope="module")
def served(module_workspace: Workspace, model: Any) -> Iterator[Served]:
    with serving(module_workspace, SPEC, ["blue", "words", "proba"]) as server:
        yield server


@pytest.fixture(scope="module")
def client(served: Served) -> Iterator[triton.InferenceServerClient]:
    connection = triton.InferenceServerClient(f"127.0.0.1:{served.port}")
    try:
        yield connection
    finally:
        connection.close()


def column(name: str, values: Any, datatype: str, binary: bool = True) -> triton.InferInput:
    """One input per column, as tritonclient builds it (binary data unless told otherwise)."""
    array = np.asarray(values)
    tensor = triton.InferInput(name, list(array.shape), datatype)
    tensor.set_data_from_numpy(array, binary_data=binary)
    return tensor


def words_deployment() -> dict[str, str]:
    """The header that targets ``words``: a new dict per call, since tritonclient writes its
    Inference-Header-Content-Length into the headers it is given."""
    return {"cauce-deployment": "words"}


def collected(served: Served, deployment: str, collection: str, request_id: str) -> pd.DataFrame:
    """The rows the collector wrote for one request, by row."""
    from cauce.serving.collector import files

    root = served.ws.settings.state_dir / "collector"
    paths = files(root, "churn", deployment, collection)
    frame = pd.concat([pd.read_parquet(p) for p in paths]) if paths else pd.DataFrame()
    if frame.empty:
        return frame
    return frame[frame.correlation_id == request_id].sort_values("row")


def churn_inputs(binary: bool = True) -> list[triton.InferInput]:
    return [
        column("age", FRAME["age"].to_numpy(dtype=np.int64), "INT64", binary),
        column("charges", FRAME["charges"].to_numpy(dtype=np.float64), "FP64", binary),
    ]


def failure(call: Any) -> InferenceServerException:
    """The InferenceServerException a client call raises (it must format without crashing)."""
    with pytest.raises(InferenceServerException) as caught:
        call()
    assert caught.value.message() in str(caught.value)
    return caught.value


# -- tritonclient -----------------------------------------------------------------------------


def test_tritonclient_reads_health_and_metadata(client: triton.InferenceServerClient) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("churn")
    assert not client.is_model_ready("nope")
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
    metadata = client.get_model_metadata("churn")
    assert metadata["name"] == "churn" and metadata["versions"] == ["1"]
    assert [(i["name"], i["datatype"]) for i in metadata["inputs"]] == [
        ("age", "INT64"),
        ("charges", "FP64"),
    ]
    error = failure(lambda: client.get_model_metadata("nope"))
    assert error.status() == "404" and "no model 'nope'" in error.message()


def test_tritonclient_infers_with_its_defaults_binary_both_ways(
    client: triton.InferenceServerClient, model: Any
) -> None:
    result = client.infer("churn", churn_inputs(), request_id="r-1")
    response = result.get_response()
    assert response["id"] == "r-1" and response["model_name"] == "churn"
    (output,) = response["outputs"]
    assert output["parameters"] == {"binary_data_size": 3 * 8}  # it came as binary data
    assert "data" not in output
    assert result.as_numpy("predict").tolist() == model.predict(FRAME).tolist()


@pytest.mark.parametrize(
    ("binary_in", "binary_out"), [(False, False), (True, False), (False, True)]
)
def test_tritonclient_infers_with_json_and_binary_mixed(
    client: triton.InferenceServerClient, model: Any, binary_in: bool, binary_out: bool
) -> None:
    asked = [triton.InferRequestedOutput("predict", binary_data=binary_out)]
    result = client.infer("churn", churn_inputs(binary_in), outputs=asked)
    (output,) = result.get_response()["outputs"]
    assert ("data" in output) is not binary_out
    assert result.as_numpy("predict").tolist() == model.predict(FRAME).tolist()


def test_tritonclient_sends_one_2d_input_in_column_order(
    client: triton.InferenceServerClient, model: Any
) -> None:
    for binary in (True, False):
        matrix = column("input", FRAME.to_numpy(dtype=np.float64), "FP64", binary)
        result = client.infer("churn", [matrix])
        assert result.as_numpy("predict").tolist() == model.predict(FRAME).tolist()


def test_tritonclient_bytes_tensors_both_ways(client: triton.InferenceServerClient) -> None:
    words = np.array(["río", "cauce", ""], dtype=object)
    for binary in (True, False):
        result = client.infer(
            "churn", [column("word", words, "BYTES", binary)], headers=words_deployment()
        )
        upper = result.as_numpy("upper")
        assert [v.decode() if isinstance(v, bytes) else v for v in upper] == ["RÍO", "CAUCE", ""]
        assert result.as_numpy("length").tolist() == [3, 5, 0]
        assert [o["datatype"] for o in result.get_response()["outputs"]] == ["BYTES", "INT64"]


def test_tritonclient_gets_cauces_errors(client: triton.InferenceServerClient) -> None:
    error = failure(lambda: client.infer("nope", churn_inputs()))
    assert error.status() == "404" and "no model 'nope'" in error.message()

    short = churn_inputs()
    short[0].set_shape([4])  # three values sent, four promised
    error = failure(lambda: client.infer("churn", short))
    assert error.status() == "422"
    assert "inputs[age]: 24 bytes of INT64 data; its shape needs 32" in error.message()

    text = [
        column("age", np.array(["old", "young", "old"], dtype=object), "BYTES"),
        churn_inputs()[1],
    ]
    error = failure(lambda: client.infer("churn", text))
    assert error.status() == "422" and "column 'age' must be long" in error.message()

    error = failure(lambda: client.infer("churn", churn_inputs()[:1]))
    assert error.status() == "422" and "missing charges" in error.message()

    bad_output = [triton.InferRequestedOutput("score")]
    error = failure(lambda: client.infer("churn", churn_inputs(), outputs=bad_output))
    assert error.status() == "400" and "no output 'score'" in error.message()


def test_the_collector_reads_binary_requests_and_answers(
    client: triton.InferenceServerClient, served: Served, model: Any
) -> None:
    from clitools import wait_until

    client.infer("churn", churn_inputs(), headers={"x-request-id": "binary-1"})

    def rows(collection: str) -> pd.DataFrame:
        return collected(served, "blue", collection, "binary-1")

    wait_until(lambda: len(rows("model_inputs")) == len(rows("model_outputs")) == 3)
    assert rows("model_inputs")[["age", "charges"]].values.tolist() == FRAME.values.tolist()
    # Named as for /invocations answers: monitors and rollout analysis read "prediction".
    assert rows("model_outputs")["prediction"].tolist() == model.predict(FRAME).tolist()


def test_the_collector_reads_a_2d_answer_as_one_row_per_input_row(
    client: triton.InferenceServerClient, served: Served, model: Any
) -> None:
    """``proba`` answers [3, 2]: asked through tritonclient with its defaults (binary data both
    ways) and through /invocations, the collector records three output rows of two values each,
    named the same for both protocols."""
    from clitools import wait_until

    expected = model.predict_proba(FRAME).tolist()
    headers = {"cauce-deployment": "proba", "x-request-id": "proba-v2"}
    result = client.infer("churn", churn_inputs(), headers=headers)
    (output,) = result.get_response()["outputs"]
    assert output["shape"] == [3, 2] and "binary_data_size" in output["parameters"]
    assert result.as_numpy("predict").tolist() == expected
    rows = [{"age": int(a), "charges": float(c)} for a, c in FRAME.values.tolist()]
    reply = served.score(rows, cauce_deployment="proba", x_request_id="proba-mlflow")
    assert reply.status_code == 200 and reply.json()["predictions"] == expected
    for request_id in ("proba-v2", "proba-mlflow"):
        wait_until(lambda r=request_id: len(collected(served, "proba", "model_outputs", r)) == 3)
        outputs = collected(served, "proba", "model_outputs", request_id)
        assert outputs["row"].tolist() == [0, 1, 2], request_id
        assert outputs[["prediction_0", "prediction_1"]].values.tolist() == expected, request_id
        inputs = collected(served, "proba", "model_inputs", request_id)
        assert inputs[["age", "charges"]].values.tolist() == FRAME.values.tolist(), request_id


# -- MLflow's scoring client ------------------------------------------------------------------


@pytest.fixture(scope="module")
def mlflow_client(served: Served) -> Any:
    with warnings.catch_warnings():  # mlflow's own import-time warnings are not ours to fix
        warnings.simplefilter("ignore")
        ScoringServerClient = need(
            "mlflow.pyfunc.scoring_server.client", extra="dev"
        ).ScoringServerClient

    scoring = ScoringServerClient("127.0.0.1", served.port)
    scoring.wait_server_ready(timeout=30)
    return scoring


def test_mlflow_scoring_client_invokes_tables_columns_and_arrays(
    mlflow_client: Any, model: Any
) -> None:
    expected = model.predict(FRAME).tolist()
    mlflow_client.ping()
    for data in (FRAME, {c: FRAME[c].to_numpy() for c in FRAME}, FRAME.to_numpy()):
        predictions = mlflow_client.invoke(data).get_predictions(predictions_format="ndarray")
        assert predictions.tolist() == expected


def test_mlflow_scoring_client_shows_cauces_error(mlflow_client: Any) -> None:
    with pytest.raises(Exception, match="error code 422") as caught:
        mlflow_client.invoke(FRAME[["age"]])
    assert "charges" in str(caught.value)


# -- Cauce's own CLI --------------------------------------------------------------------------


def test_cauce_invoke_prints_a_v2_error_as_one_line(served: Served) -> None:
    result = cauce_cli(
        served.ws.settings.root,
        *("endpoints", "invoke", "churn", "--v2", "--url", served.url, "-d", '{"inputs": []}'),
        check=False,
    )
    assert result.returncode != 0
    assert "endpoint churn answered 400: inputs must be a non-empty list" in result.stderr
    assert "Traceback" not in result.stderr


def test_cauce_invoke_says_how_to_reach_an_endpoint_that_is_not_served(served: Served) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    result = cauce_cli(
        served.ws.settings.root,
        *("endpoints", "invoke", "churn", "--url", nowhere, "-d", '{"inputs": []}'),
        check=False,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"cannot reach endpoint churn at {nowhere}" in result.stderr
    assert "serve it with cauce endpoints serve churn, or pass --url" in result.stderr


def test_cauce_invoke_refuses_the_answer_of_another_endpoint(served: Served) -> None:
    row = '{"dataframe_records": [{"age": 40, "charges": 70.5}]}'
    result = cauce_cli(
        served.ws.settings.root,
        *("endpoints", "invoke", "fraud", "--url", served.url, "-d", row),
        check=False,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"the server at {served.url} serves endpoint churn, not fraud" in result.stderr
    assert result.stdout == ""
