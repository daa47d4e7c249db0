"""Model registry: logging, the model format, loading by URI, versions, aliases, integrity.

Models are real: a scikit-learn pipeline (saved with skops), an ONNX graph built with
``onnx.helper`` (run with onnxruntime) and a plain Python function (cloudpickle). Tests that
touch the store's rules run on SQLite and PostgreSQL (``any_workspace``); tests of the files on
disk run on SQLite only.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

import cauce
from builders import churn_features
from cauce.errors import BackendError, IntegrityError, InvalidInput, NotFound
from cauce.lineage import audit
from cauce.registry import models as registry
from cauce.registry.format import SPEC_FILE
from cauce.workspace import Workspace
from remote import server_side
from stored import row_counts
from together import at_once

# -- models ---------------------------------------------------------------------------------


def sklearn_pipeline(c: float = 1.0) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame = churn_features()
    labels = ((frame["charges"] > 50) ^ (frame["age"] > 60)).astype(int)
    return make_pipeline(StandardScaler(), LogisticRegression(C=c)).fit(frame, labels)


ONNX_WEIGHTS = np.array([[1.0], [2.0], [-0.5]], dtype=np.float32)


def onnx_linear(bias: float = 0.25) -> Any:
    """``Y = X @ W + B`` as an ONNX graph (MatMul + Add) on a float [N, 3] input."""
    from onnx import TensorProto, checker, helper, numpy_helper

    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["X", "W"], ["XW"]),
            helper.make_node("Add", ["XW", "B"], ["Y"]),
        ],
        "linear",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 1])],
        [
            numpy_helper.from_array(ONNX_WEIGHTS, "W"),
            numpy_helper.from_array(np.array([bias], dtype=np.float32), "B"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    checker.check_model(model)
    return model


def onnx_input(n: int = 8) -> np.ndarray:
    return np.random.default_rng(1).normal(size=(n, 3)).astype(np.float32)


def doubled_charges(frame: pd.DataFrame) -> np.ndarray:
    """A plain Python model: a function of a DataFrame."""
    return (frame["charges"] * 2 + frame["age"]).to_numpy()


# -- helpers --------------------------------------------------------------------------------


def blobs(ws: Workspace) -> list[Path]:
    """Every blob file in the workspace's artifact store (the server's, for a remote one)."""
    root = Path(server_side(ws).artifacts.root)
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def overwrite(path: Path | str, data: bytes) -> None:
    """Replace a file's bytes, as a careless tool or an attacker would (blobs are read-only)."""
    os.chmod(path, 0o644)
    Path(path).write_bytes(data)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def log_sklearn(name: str = "churn", c: float = 1.0, **kwargs: Any) -> tuple[Any, Any]:
    """Log a fitted pipeline in a new run; return (estimator, ModelVersion)."""
    frame = churn_features()
    model = sklearn_pipeline(c)
    with cauce.start_run(experiment="churn"):
        version = cauce.log_model(
            model, "model", registered_model=name, input_example=frame.head(5), **kwargs
        )
    return model, version


# -- logging and loading --------------------------------------------------------------------


def test_every_flavor_loads_by_every_uri_form_with_identical_predictions(
    any_workspace: Workspace,
) -> None:
    frame = churn_features()
    cases = [
        ("churn", sklearn_pipeline(), frame.head(5), frame, "sklearn"),
        ("linear", onnx_linear(), onnx_input(3), onnx_input(), "onnx"),
        ("doubler", doubled_charges, frame.head(5), frame, "python"),
    ]
    for name, model, example, data, flavor in cases:
        with cauce.start_run(experiment="flavors") as run:
            version = cauce.log_model(model, "model", registered_model=name, input_example=example)
        assert version.version == 1 and version.flavor == flavor and version.run_id == run.run_id
        registry.set_alias(name, "champion", 1)

        if flavor == "onnx":
            import onnxruntime

            session = onnxruntime.InferenceSession(
                model.SerializeToString(), providers=["CPUExecutionProvider"]
            )
            expected = session.run(None, {"X": data})[0]
            np.testing.assert_allclose(expected, data @ ONNX_WEIGHTS + 0.25, rtol=1e-5)
        elif flavor == "python":
            expected = model(data)
        else:
            expected = model.predict(data)
        for uri in (
            f"models:/{name}/1",
            f"models:/{name}@champion",
            f"models:/{name}",
            f"runs:/{run.run_id}/model",
        ):
            loaded = cauce.models.load(uri)
            assert loaded.flavor.name == flavor, uri
            np.testing.assert_array_equal(loaded.predict(data), expected, err_msg=uri)
            if flavor == "sklearn":
                np.testing.assert_array_equal(
                    loaded.unwrap().predict_proba(data), model.predict_proba(data)
                )
        assert registry.resolve(f"models:/{name}@champion").id == version.id


def test_log_model_without_registering_returns_a_run_model(any_workspace: Workspace) -> None:
    frame = churn_features()
    model = sklearn_pipeline()
    with cauce.start_run() as run:
        logged = cauce.log_model(model, "clf", input_example=frame.head(3))
    assert logged.uri == f"runs:/{run.run_id}/clf"
    assert cauce.models.list_models() == []
    loaded = cauce.models.load(logged.uri)
    np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame))

    version = cauce.models.register(logged.uri, "churn", description="from a run")
    assert (version.version, version.run_id, version.description) == (1, run.run_id, "from a run")
    np.testing.assert_array_equal(
        cauce.models.load("models:/churn/1").predict(frame), model.predict(frame)
    )
    with pytest.raises(NotFound, match="no model at 'nothing'"):
        cauce.models.register(f"runs:/{run.run_id}/nothing", "churn")
    with pytest.raises(NotFound, match="does not exist"):
        cauce.models.register("runs:/" + "f" * 32 + "/clf", "churn")


def test_sklearn_model_is_skops_with_a_complete_spec(workspace: Workspace, tmp_path: Path) -> None:
    _, version = log_sklearn()
    folder = cauce.download_artifacts(version.run_id, "model", tmp_path / "model")
    spec = yaml.safe_load((folder / SPEC_FILE).read_text())

    # skops writes a zip archive with a JSON schema, never a pickle stream.
    model_file = folder / spec["model_file"]
    assert spec["model_file"] == "model.skops"
    assert zipfile.is_zipfile(model_file)
    with zipfile.ZipFile(model_file) as archive:
        assert "schema.json" in archive.namelist()
    assert not model_file.read_bytes().startswith(b"\x80")
    assert not list(folder.rglob("*.pkl"))

    assert spec["format_version"] == 1
    assert spec["flavor"] == "sklearn"
    assert spec["flavor_config"]["estimator"] == "Pipeline"
    assert isinstance(spec["flavor_config"]["trusted_types"], list)
    assert spec["signature"]["inputs"] == {
        "type": "dataframe",
        "columns": [{"name": "age", "type": "long"}, {"name": "charges", "type": "double"}],
    }
    assert spec["signature"]["outputs"]["type"] == "tensor"
    assert version.signature == spec["signature"]

    from importlib import metadata as dist

    for package in ("scikit-learn", "skops", "numpy"):
        assert f"{package}=={dist.version(package)}" in spec["requirements"]
    assert (folder / "requirements.txt").read_text().split() == spec["requirements"]
    example = pd.read_json(folder / spec["input_example"], orient="split")
    assert list(example.columns) == ["age", "charges"] and len(example) == 5

    # Every file but the spec is listed with its sha256 and size; the registry holds the spec's.
    on_disk = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert set(spec["files"]) == on_disk - {SPEC_FILE}
    assert {"model.skops", "input_example.json", "requirements.txt"} <= set(spec["files"])
    for rel, meta in spec["files"].items():
        assert meta == {"sha256": sha256_of(folder / rel), "size": (folder / rel).stat().st_size}
    assert version.spec_sha256 == sha256_of(folder / SPEC_FILE)
    assert version.files == {rel: sha256_of(folder / rel) for rel in on_disk}


def test_python_and_onnx_specs_record_their_flavor(workspace: Workspace) -> None:
    frame = pd.DataFrame({"age": [30, 40], "charges": [1.5, 2.5], "plan": ["a", "b"]})
    with cauce.start_run():
        python = cauce.log_model(doubled_charges, "f", registered_model="f", input_example=frame)
        onnx = cauce.log_model(
            onnx_linear(), "o", registered_model="o", input_example=onnx_input(2)
        )
    assert python.flavor == "python"
    assert python.signature is not None
    assert python.signature["inputs"]["columns"] == [
        {"name": "age", "type": "long"},
        {"name": "charges", "type": "double"},
        {"name": "plan", "type": "string"},
    ]
    spec = cauce.models.load("models:/f/1").spec
    assert spec["model_file"] == "model.pkl"
    assert spec["flavor_config"] == {"entry": "call", "object": "doubled_charges"}
    assert any(r.startswith("cloudpickle==") for r in spec["requirements"])

    assert onnx.signature is not None
    assert onnx.signature["inputs"] == {"type": "tensor", "dtype": "float32", "shape": [-1, 3]}
    spec = cauce.models.load("models:/o/1").spec
    assert spec["model_file"] == "model.onnx"
    assert spec["flavor_config"] == {"inputs": ["X"], "outputs": ["Y"]}
    assert any(r.startswith("onnxruntime==") for r in spec["requirements"])


# -- versions and aliases -------------------------------------------------------------------


def test_versions_are_immutable_and_numbered_upwards(any_workspace: Workspace) -> None:
    frame = churn_features()
    first, v1 = log_sklearn(c=0.01)
    before = registry.get_version("churn", 1)
    second, v2 = log_sklearn(c=100.0)
    assert (v1.version, v2.version) == (1, 2)
    assert v1.id != v2.id and v1.spec_sha256 != v2.spec_sha256

    # v1 is unchanged by v2 and by a description change (the only mutable field but tags).
    registry.update_version("churn", 1, description="first try")
    after = registry.get_version("churn", 1)
    assert after.description == "first try"
    assert (after.files, after.spec_sha256, after.run_id, after.created_at, after.signature) == (
        before.files,
        before.spec_sha256,
        before.run_id,
        before.created_at,
        before.signature,
    )
    np.testing.assert_array_equal(
        cauce.models.load("models:/churn/1").unwrap().predict_proba(frame),
        first.predict_proba(frame),
    )
    np.testing.assert_array_equal(
        cauce.models.load("models:/churn").unwrap().predict_proba(frame),
        second.predict_proba(frame),
    )
    # Registering v1's run again makes a new version; numbers never repeat.
    v3 = registry.register(f"runs:/{v1.run_id}/model", "churn")
    assert v3.version == 3 and v3.spec_sha256 == v1.spec_sha256
    assert [v.version for v in registry.versions("churn")] == [1, 2, 3]
    assert registry.get_model("churn").latest_version == 3
    with pytest.raises(NotFound, match="no version 4"):
        registry.get_version("churn", 4)
    with pytest.raises(NotFound, match="does not exist"):
        cauce.models.load("models:/nothing/1")


def test_aliases_move_and_their_history_keeps_every_move(any_workspace: Workspace) -> None:
    log_sklearn(c=0.1)
    log_sklearn(c=10.0)
    registry.set_alias("churn", "champion", 1)
    registry.set_alias("churn", "challenger", 2)
    assert registry.resolve("models:/churn@champion").version == 1
    registry.set_alias("churn", "champion", 2)
    assert registry.resolve("models:/churn@champion").version == 2
    assert registry.get_model("churn").aliases == {"challenger": 2, "champion": 2}
    assert registry.get_version("churn", 2).aliases == ["challenger", "champion"]
    assert registry.get_version("churn", 1).aliases == []
    registry.delete_alias("churn", "challenger")

    moves = [
        (h["alias"], h["from_version"], h["to_version"]) for h in registry.alias_history("churn")
    ]
    assert moves == [
        ("champion", None, 1),
        ("challenger", None, 2),
        ("champion", 1, 2),
        ("challenger", 2, None),
    ]
    assert all(h["user"] == "tester" for h in registry.alias_history("churn"))
    assert [h["to_version"] for h in registry.alias_history("churn", "champion")] == [1, 2]
    with pytest.raises(NotFound, match="no alias 'challenger'"):
        cauce.models.load("models:/churn@challenger")
    with pytest.raises(NotFound, match="no alias 'challenger'"):
        registry.delete_alias("churn", "challenger")

    # Bad targets and names change nothing.
    with pytest.raises(NotFound, match="no version 7"):
        registry.set_alias("churn", "champion", 7)
    with pytest.raises(NotFound, match="'ghost' does not exist"):
        registry.set_alias("ghost", "champion", 1)
    for bad in ("latest", "LATEST", "3", "", "a/b"):
        with pytest.raises(InvalidInput):
            registry.set_alias("churn", bad, 1)
    assert len(registry.alias_history("churn")) == 4
    assert registry.resolve("models:/churn@champion").version == 2


def test_tags_descriptions_and_audit_events(any_workspace: Workspace) -> None:
    model = registry.create_model("churn", description="predicts churn", tags={"team": "growth"})
    assert (model.description, model.tags, model.latest_version) == (
        "predicts churn",
        {"team": "growth"},
        None,
    )
    with pytest.raises(NotFound, match="no versions"):
        cauce.models.load("models:/churn")
    _, version = log_sklearn(description="baseline", tags={"stage": "dev"})
    assert (version.description, version.tags) == ("baseline", {"stage": "dev"})
    registry.set_model_tag("churn", "team", "retention")
    registry.set_version_tag("churn", 1, "stage", "prod")
    registry.update_model("churn", description="predicts who leaves")
    registry.set_alias("churn", "champion", 1)
    model = registry.get_model("churn")
    assert (model.description, model.tags) == ("predicts who leaves", {"team": "retention"})
    assert registry.get_version("churn", 1).tags == {"stage": "prod"}
    assert [m.name for m in registry.list_models()] == ["churn"]

    events = list(reversed(audit.events(server_side(any_workspace), action="model*")))
    actions = [e.action for e in events]
    assert actions == [
        "model.create",
        "model.tag",
        "model_version.create",
        "model_version.tag",
        "model.tag",
        "model_version.tag",
        "model.update",
        "model.alias.set",
    ]
    assert all(e.actor == "tester" for e in events)
    created = events[2]
    assert created.entity_id == version.id
    assert created.after is not None
    assert created.after["version"] == 1 and created.after["run_id"] == version.run_id
    assert events[0].after == {"name": "churn"} and events[0].entity_id == model.id
    alias = events[-1]
    assert alias.entity_id == model.id
    assert alias.before == {"alias": "champion", "version": None}
    assert alias.after == {"alias": "champion", "version": 1}
    with pytest.raises(cauce.Conflict, match="already exists"):
        registry.create_model("churn")
    # Only ``*`` is a wildcard in the action filter (``_`` is not "any character").
    assert {e.action for e in audit.events(server_side(any_workspace), action="model_*")} == {
        "model_version.create",
        "model_version.tag",
    }
    registry.delete_model_tag("churn", "team")
    registry.delete_version_tag("churn", 1, "stage")
    assert registry.get_model("churn").tags == {} and registry.get_version("churn", 1).tags == {}
    with pytest.raises(NotFound, match="has no tag 'stage'"):
        registry.delete_version_tag("churn", 1, "stage")
    untagged = audit.events(server_side(any_workspace), action="*.untag")
    assert sorted(e.action for e in untagged) == ["model.untag", "model_version.untag"]


def test_concurrent_registrations_get_consecutive_numbers(any_workspace: Workspace) -> None:
    with cauce.start_run() as run:
        cauce.log_model(doubled_charges, "model")

    def create() -> str:
        try:
            registry.create_model("fresh")
        except cauce.Conflict:
            return "conflict"
        return "created"

    at_once([lambda: registry.register(f"runs:/{run.run_id}/model", "churn")] * 4)
    # Every registration got its own number; of the creations, one won and three conflicted.
    assert [v.version for v in registry.versions("churn")] == [1, 2, 3, 4]
    assert sorted(at_once([create] * 4)) == ["conflict"] * 3 + ["created"]
    assert [
        e.entity_id for e in audit.events(server_side(any_workspace), action="model.create")
    ] == [registry.get_model(name).id for name in ("fresh", "churn")]


def test_a_new_model_name_records_model_create(any_workspace: Workspace) -> None:
    _, version = log_sklearn("fresh")
    events = audit.events(server_side(any_workspace), action="model*")
    assert [e.action for e in reversed(events)] == ["model.create", "model_version.create"]
    assert events[0].entity_id == version.id


# -- integrity ------------------------------------------------------------------------------


def test_a_tampered_blob_in_the_artifact_store_is_refused(workspace: Workspace) -> None:
    _, version = log_sklearn()
    sha = version.files["model.skops"]
    blob = server_side(workspace).artifacts.path_of(sha)
    overwrite(blob, Path(blob).read_bytes()[:-10] + b"0123456789")
    with pytest.raises(IntegrityError) as caught:
        cauce.models.load("models:/churn/1")
    assert "model.skops" in str(caught.value)
    # Locally the blob's path is named; through a server, the blob (it arrived corrupted).
    assert (sha if workspace.remote else blob) in str(caught.value)
    cache = workspace.cache_dir / "models" / version.spec_sha256
    assert not cache.exists()  # nothing half-downloaded is left to be trusted later


def test_a_tampered_file_in_the_model_cache_is_refused(workspace: Workspace) -> None:
    _, version = log_sklearn()
    cauce.models.load("models:/churn/1")  # fills the cache
    cached = workspace.cache_dir / "models" / version.spec_sha256 / "model.skops"
    assert cached.is_file()
    overwrite(cached, cached.read_bytes() + b"\0")
    with pytest.raises(IntegrityError) as caught:
        cauce.models.load("models:/churn/1")
    assert str(cached) in str(caught.value)
    assert caught.value.details["path"] == str(cached)


def test_a_cached_spec_rewritten_to_match_a_swapped_model_is_refused(
    workspace: Workspace, tmp_path: Path
) -> None:
    frame = churn_features()
    _, version = log_sklearn(c=0.01)
    with cauce.start_run():
        other = cauce.log_model(sklearn_pipeline(c=100.0), "other", input_example=frame.head(2))
    cauce.models.load("models:/churn/1")
    folder = workspace.cache_dir / "models" / version.spec_sha256
    # Swap in another valid model and make the cached spec agree with it.
    swapped = cauce.download_artifacts(other.run_id, "other/model.skops", tmp_path / "m.skops")
    overwrite(folder / "model.skops", swapped.read_bytes())
    spec = yaml.safe_load((folder / SPEC_FILE).read_text())
    spec["files"]["model.skops"]["sha256"] = sha256_of(swapped)
    spec["files"]["model.skops"]["size"] = swapped.stat().st_size
    overwrite(folder / SPEC_FILE, yaml.safe_dump(spec, sort_keys=False).encode())
    with pytest.raises(IntegrityError) as caught:
        cauce.models.load("models:/churn/1")
    assert SPEC_FILE in str(caught.value)


def test_a_missing_blob_is_not_found(workspace: Workspace) -> None:
    _, version = log_sklearn()
    blob = Path(server_side(workspace).artifacts.path_of(version.files["model.skops"]))
    blob.unlink()
    with pytest.raises(NotFound, match=version.files["model.skops"]):
        cauce.models.load("models:/churn/1")


# -- bad input ------------------------------------------------------------------------------


def test_predict_checks_input_against_the_signature(workspace: Workspace) -> None:
    frame = churn_features()
    model, _ = log_sklearn()
    loaded = cauce.models.load("models:/churn/1")
    with pytest.raises(InvalidInput, match="missing column charges") as caught:
        loaded.predict(frame[["age"]])
    assert caught.value.details["field"] == "charges"
    with pytest.raises(InvalidInput, match="'age' must be long"):
        loaded.predict(frame.assign(age="old"))
    # Extra columns are dropped, column order follows the signature, records are accepted.
    reordered = frame[["charges", "age"]].assign(extra=1)
    np.testing.assert_array_equal(loaded.predict(reordered), model.predict(frame))
    records = frame.head(3).to_dict(orient="records")
    np.testing.assert_array_equal(loaded.predict(records), model.predict(frame.head(3)))
    # An array with one value per column is read in the signature's column order.
    np.testing.assert_array_equal(loaded.predict(frame.to_numpy()), model.predict(frame))
    for bad in (frame.to_numpy()[:, :1], np.ones(3), "age"):
        with pytest.raises(InvalidInput, match="columns age, charges"):
            loaded.predict(bad)


def test_predict_checks_tensor_input_against_the_signature(workspace: Workspace) -> None:
    with cauce.start_run():
        cauce.log_model(
            onnx_linear(), "model", registered_model="linear", input_example=onnx_input(2)
        )
    loaded = cauce.models.load("models:/linear")
    np.testing.assert_allclose(loaded.predict([[1, 2, 3]]), [[1 + 4 - 1.5 + 0.25]], rtol=1e-6)
    for bad, message in (
        (np.ones((2, 2)), r"shape \[-1, 3\] .*got \[2, 2\]"),
        (np.ones(3), r"got \[3\]"),
        (np.ones((1, 2, 3)), r"got \[1, 2, 3\]"),
        ([[1, 2], [3]], "not a rectangular array"),
        ([["a", "b", "c"]], "must hold float32 numbers"),
    ):
        with pytest.raises(InvalidInput, match=message):
            loaded.predict(bad)


def test_log_model_outside_a_run_is_a_clear_error_and_stores_nothing(
    workspace: Workspace,
) -> None:
    counts = row_counts(server_side(workspace))
    with pytest.raises(InvalidInput, match="log_model needs a run") as caught:
        cauce.log_model(sklearn_pipeline(), "model", registered_model="churn")
    assert "start_run" in str(caught.value)
    assert row_counts(server_side(workspace)) == counts
    assert blobs(workspace) == []


def test_a_bad_model_name_is_refused_before_any_file_is_stored(workspace: Workspace) -> None:
    with cauce.start_run() as run:
        for bad in ("a/b", "", "../x", "-dash"):
            with pytest.raises(InvalidInput, match="model name"):
                cauce.log_model(sklearn_pipeline(), "model", registered_model=bad)
    assert blobs(workspace) == []
    assert cauce.list_artifacts(run.run_id) == []


def test_an_unsupported_object_is_invalid_input_and_stores_nothing(workspace: Workspace) -> None:
    with cauce.start_run() as run:
        counts = row_counts(server_side(workspace))
        for bad in (42, "a string", None):
            with pytest.raises(InvalidInput, match="cannot log a"):
                cauce.log_model(bad, "model", registered_model="churn")
        with pytest.raises(InvalidInput, match="cannot be saved with flavor 'onnx'"):
            cauce.log_model(sklearn_pipeline(), "model", flavor="onnx")
        with pytest.raises(InvalidInput, match="unknown model flavor"):
            cauce.log_model(sklearn_pipeline(), "model", flavor="keras")
        with pytest.raises(InvalidInput, match="must stay inside the run"):
            cauce.log_model(sklearn_pipeline(), "../escape")
        assert row_counts(server_side(workspace)) == counts
    assert blobs(workspace) == []
    assert cauce.list_artifacts(run.run_id) == []
    for uri in ("models:/churn/x", "models:/", "churn", "s3://bucket/model"):
        with pytest.raises(InvalidInput):
            cauce.models.load(uri)


def test_a_failure_while_registering_leaves_no_version_and_no_model(
    store_workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = audit.record

    def failing(conn: Any, actor: str, action: str, *args: Any, **kwargs: Any) -> None:
        real(conn, actor, action, *args, **kwargs)  # the rows are written, then the store fails
        if action == "model_version.create":
            raise BackendError("metadata store failed: disk I/O error (injected)")

    with cauce.start_run() as run:
        counts = row_counts(store_workspace)
        monkeypatch.setattr(audit, "record", failing)
        with pytest.raises(BackendError, match="injected"):
            cauce.log_model(sklearn_pipeline(), "model", registered_model="churn")
        monkeypatch.setattr(audit, "record", real)
        assert row_counts(store_workspace) == counts
        assert cauce.list_artifacts(run.run_id) == []
        with pytest.raises(NotFound):
            registry.get_model("churn")

        # With an existing model the failure leaves its versions as they were.
        cauce.log_model(sklearn_pipeline(), "model", registered_model="churn")
        counts = row_counts(store_workspace)
        monkeypatch.setattr(audit, "record", failing)
        with pytest.raises(BackendError, match="injected"):
            cauce.log_model(sklearn_pipeline(c=5.0), "model2", registered_model="churn")
        monkeypatch.setattr(audit, "record", real)
    assert row_counts(store_workspace)["model_versions"] == counts["model_versions"] == 1
    assert [v.version for v in registry.versions("churn")] == [1]
    # Only the first log_model's files (spec, model, requirements) are attached to the run.
    assert [a.path for a in cauce.list_artifacts(run.run_id)] == [
        "model/cauce-model.yaml",
        "model/model.skops",
        "model/requirements.txt",
    ]


def test_a_pretrained_model_is_registered_without_a_run(workspace: Workspace) -> None:
    from cauce.registry.logging import register_pretrained

    version = register_pretrained(
        doubled_charges, "doubler", description="shipped", tags={"source": "package"}
    )
    assert (version.version, version.run_id, version.description) == (1, None, "shipped")
    assert version.tags == {"source": "package"}
    frame = churn_features()
    loaded = cauce.models.load("models:/doubler@latest")
    np.testing.assert_array_equal(loaded.predict(frame), doubled_charges(frame))
    with pytest.raises(InvalidInput, match="model name"):
        register_pretrained(doubled_charges, "a/b")
