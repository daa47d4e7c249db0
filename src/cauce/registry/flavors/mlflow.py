"""Models in MLflow's format (a folder with an ``MLmodel`` file), as the MLflow client logs them.

Cauce loads a scikit-learn model saved with skops (MLflow's default outside Databricks) itself,
trusting exactly the types its ``MLmodel`` names, as MLflow does. Any other MLflow flavor, and a
scikit-learn model pickled, is loaded by ``mlflow.pyfunc`` when the ``mlflow`` package is
installed (imported only then): unpickling runs the model's code, as it does in MLflow.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cauce import estimator_files
from cauce.errors import InvalidInput
from cauce.registry.flavors import Flavor, Saved

MLMODEL = "MLmodel"

# MLflow column types → Cauce signature types.
_COLUMN_TYPES = {
    "double": "double",
    "float": "double",
    "long": "long",
    "integer": "long",
    "boolean": "boolean",
    "string": "string",
    "datetime": "datetime",
    "binary": "binary",
}
_TENSOR_DTYPES = {"long": "int64", "integer": "int32", "double": "float64", "float": "float32"}


class MlflowFlavor(Flavor):
    """A model folder in MLflow's format; saved by the MLflow client, never by Cauce."""

    name = "mlflow"

    def matches(self, model: Any) -> bool:
        return False

    def save(self, model: Any, folder: Path) -> Saved:
        raise InvalidInput(
            "Cauce does not write MLflow-format models",
            hint="log it with the MLflow client (mlflow.sklearn.log_model) or cauce.log_model",
        )

    def load(self, folder: Path, config: dict[str, Any]) -> Any:
        if config.get("loader") == "sklearn" and config.get("serialization_format") == "skops":
            return _load_skops(folder / config["model_file"], config.get("trusted_types") or [])
        try:
            import mlflow.pyfunc
        except ImportError:
            raise InvalidInput(
                f"the MLflow model in {folder} needs the mlflow package to load "
                f"(flavor {config.get('loader')}, format {config.get('serialization_format')})",
                hint="pip install 'cauce[mlflow]', or log scikit-learn models with skops",
            ) from None
        return mlflow.pyfunc.load_model(str(folder))

    def predict(self, native: Any, data: Any) -> Any:
        return native.predict(data)


def _load_skops(path: Path, trusted: list[str]) -> Any:
    return estimator_files.loads(
        path.read_bytes(),
        trusted,
        str(path),
        hint="its MLmodel trusts what skops_trusted_types names: log the model naming them there",
    )


def spec_from_mlmodel(
    mlmodel: bytes, files: dict[str, tuple[str, int]], requirements: list[str] | None = None
) -> dict[str, Any]:
    """The ``cauce-model.yaml`` spec of an MLflow model folder: ``mlmodel`` is its MLmodel file,
    ``files`` maps each file's path to its sha256 and size."""
    import yaml

    from cauce.registry.format import FORMAT_VERSION
    from cauce.store import now_ms

    try:
        meta = yaml.safe_load(mlmodel)
    except yaml.YAMLError as exc:
        raise InvalidInput(f"the model's MLmodel file is not valid YAML: {exc}") from None
    flavors = meta.get("flavors") if isinstance(meta, dict) else None
    if not isinstance(flavors, dict) or not flavors:
        raise InvalidInput("the model's MLmodel file names no flavor")
    sklearn = flavors.get("sklearn")
    pyfunc = flavors.get("python_function") or {}
    if isinstance(sklearn, dict):
        config: dict[str, Any] = {
            "loader": "sklearn",
            "serialization_format": sklearn.get("serialization_format", "pickle"),
            "model_file": sklearn.get("pickled_model"),
            "trusted_types": sklearn.get("skops_trusted_types") or [],
        }
    else:
        config = {"loader": "python_function", "model_file": pyfunc.get("model_path")}
    config["mlflow_version"] = meta.get("mlflow_version")
    example = meta.get("saved_input_example_info") or {}
    input_example = None
    if example.get("type") == "dataframe" and example.get("pandas_orient") == "split":
        input_example = example.get("artifact_path")
        if input_example not in files:
            input_example = None
    return {
        "format_version": FORMAT_VERSION,
        "flavor": MlflowFlavor.name,
        "model_file": MLMODEL,
        "flavor_config": config,
        "signature": _signature(meta.get("signature")),
        "input_example": input_example,
        "requirements": sorted(requirements or []),
        "python_version": pyfunc.get("python_version"),
        "created_at": now_ms(),
        "files": {
            path: {"sha256": sha, "size": size} for path, (sha, size) in sorted(files.items())
        },
    }


def _signature(signature: Any) -> dict[str, Any] | None:
    """MLflow's signature as Cauce's, or None when it uses types Cauce does not check."""
    if not isinstance(signature, dict) or not signature.get("inputs"):
        return None
    try:
        inputs = _schema(json.loads(signature["inputs"]), outputs=False)
        outputs = (
            _schema(json.loads(signature["outputs"]), outputs=True)
            if signature.get("outputs")
            else None
        )
    except (ValueError, KeyError, TypeError):
        return None
    if inputs is None:
        return None
    return {"inputs": inputs, "outputs": outputs}


def _schema(specs: list[dict[str, Any]], *, outputs: bool) -> dict[str, Any] | None:
    if not specs:
        return None
    if all(s.get("type") == "tensor" for s in specs) and len(specs) == 1:
        tensor = specs[0]["tensor-spec"]
        return {"type": "tensor", "dtype": tensor["dtype"], "shape": tensor["shape"]}
    if any(s.get("type") not in _COLUMN_TYPES for s in specs):
        return None
    if all("name" in s for s in specs):
        columns = []
        for s in specs:
            column: dict[str, Any] = {"name": s["name"], "type": _COLUMN_TYPES[s["type"]]}
            if s.get("required") is False:
                column["required"] = False
            columns.append(column)
        return {"type": "dataframe", "columns": columns}
    if outputs and len(specs) == 1 and specs[0]["type"] in _TENSOR_DTYPES:
        return {"type": "tensor", "dtype": _TENSOR_DTYPES[specs[0]["type"]], "shape": [-1]}
    return None
