"""The on-disk model format: a folder with ``cauce-model.yaml`` beside the model's files.

``cauce-model.yaml`` (format_version 1) records::

    format_version: 1
    flavor: sklearn                 # sklearn | onnx | python
    model_file: model.skops
    flavor_config: {...}            # what the flavor needs to load (e.g. skops trusted types)
    signature: {inputs: {...}, outputs: {...}}   # inferred from the input example
    input_example: input_example.json
    requirements: [scikit-learn==1.5.0, ...]
    python_version: 3.11.7
    created_at: 1732530000000
    files: {model.skops: {sha256: ..., size: ...}, ...}   # every other file in the folder

Loading checks every listed file against its sha256 before the flavor reads it. The registry
stores the sha256 of ``cauce-model.yaml`` itself, which closes the chain.
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cauce.artifacts import sha256_file
from cauce.errors import IntegrityError, InvalidInput, NotFound
from cauce.registry.flavors import Flavor, detect_flavor, get_flavor
from cauce.registry.signature import infer_schema, validate_input
from cauce.store import now_ms

SPEC_FILE = "cauce-model.yaml"
FORMAT_VERSION = 1


def save_model(
    model: Any,
    folder: Path,
    *,
    flavor: str | None = None,
    input_example: Any = None,
    requirements: list[str] | None = None,
) -> dict[str, Any]:
    """Write ``model`` in the Cauce model format into an empty ``folder``; return the spec."""
    chosen: Flavor = get_flavor(flavor) if flavor else detect_flavor(model)
    if flavor and not chosen.matches(model):
        raise InvalidInput(f"a {type(model).__name__} cannot be saved with flavor {flavor!r}")
    folder.mkdir(parents=True, exist_ok=True)
    saved = chosen.save(model, folder)
    spec: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "flavor": chosen.name,
        "model_file": saved.file,
        "flavor_config": saved.config,
        "signature": None,
        "input_example": None,
        "requirements": sorted(set(saved.requirements) | set(requirements or [])),
        "python_version": platform.python_version(),
        "created_at": now_ms(),
    }
    if input_example is not None:
        inputs = infer_schema(input_example)
        outputs = None
        try:
            outputs = infer_schema(_as_output(chosen.predict(model, _prepare(input_example))))
        except Exception:  # a model that cannot score its own example still gets its inputs
            outputs = None
        spec["signature"] = {"inputs": inputs, "outputs": outputs}
        (folder / "input_example.json").write_text(json.dumps(_example_json(input_example)))
        spec["input_example"] = "input_example.json"
    (folder / "requirements.txt").write_text("".join(f"{r}\n" for r in spec["requirements"]))
    spec["files"] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if rel == SPEC_FILE:
            continue
        digest, size = sha256_file(path)
        spec["files"][rel] = {"sha256": digest, "size": size}
    write_spec(folder, spec)
    return spec


def write_spec(folder: Path, spec: dict[str, Any]) -> None:
    """Write ``cauce-model.yaml``."""
    import yaml

    (folder / SPEC_FILE).write_text(yaml.safe_dump(spec, sort_keys=False))


def read_spec(folder: Path) -> dict[str, Any]:
    """Read and check ``cauce-model.yaml``."""
    import yaml

    path = folder / SPEC_FILE
    if not path.is_file():
        raise NotFound(f"{folder} is not a Cauce model: it has no {SPEC_FILE}")
    try:
        spec = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise IntegrityError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(spec, dict) or spec.get("format_version") != FORMAT_VERSION:
        raise IntegrityError(f"{path} is not a version {FORMAT_VERSION} Cauce model spec")
    return spec


def verify_folder(folder: Path, spec: dict[str, Any]) -> None:
    """Check every file listed in the spec against its sha256."""
    for rel, meta in spec.get("files", {}).items():
        path = folder / rel
        if not path.is_file():
            raise IntegrityError(f"model file {path} is missing")
        digest, _ = sha256_file(path)
        if digest != meta["sha256"]:
            raise IntegrityError(
                f"model file {path} is corrupted: its content hashes to {digest}, "
                f"expected {meta['sha256']}",
                details={"path": str(path), "expected": meta["sha256"], "actual": digest},
            )


@dataclass
class LoadedModel:
    """A model ready to score: ``predict(data)`` with inputs checked against the signature."""

    uri: str
    spec: dict[str, Any]
    flavor: Flavor
    native: Any
    folder: Path | None = None

    @property
    def signature(self) -> dict[str, Any] | None:
        """The input and output schema, when the model was logged with an input example."""
        signature: dict[str, Any] | None = self.spec.get("signature")
        return signature

    def predict(self, data: Any) -> Any:
        """Predictions for a DataFrame, array or list of records."""
        prepared = _prepare(data)
        if self.signature:
            prepared = validate_input(self.signature.get("inputs"), prepared)
        return self.flavor.predict(self.native, prepared)

    def input_example(self) -> Any:
        """The logged input example as stored (a table in split form, or nested lists), or None."""
        name = self.spec.get("input_example")
        if not name or self.folder is None or not (self.folder / name).is_file():
            return None
        return json.loads((self.folder / name).read_text())

    def unwrap(self) -> Any:
        """The underlying model object (estimator, inference session, function)."""
        return self.native

    def __repr__(self) -> str:
        return f"<LoadedModel {self.uri} flavor={self.flavor.name}>"


def verify_spec_file(folder: Path, expected: str) -> None:
    """Check ``cauce-model.yaml`` against the sha256 the registry recorded for it.

    The spec lists the sha256 of every other file, so this check closes the chain: a spec
    rewritten to match a swapped model file is caught here.
    """
    path = folder / SPEC_FILE
    if not path.is_file():
        raise IntegrityError(f"model file {path} is missing")
    digest, _ = sha256_file(path)
    if digest != expected:
        raise IntegrityError(
            f"model file {path} is corrupted: its content hashes to {digest}, expected {expected}",
            details={"path": str(path), "expected": expected, "actual": digest},
        )


def load_folder(folder: Path, uri: str, *, spec_sha256: str | None = None) -> LoadedModel:
    """Verify and load a model folder (and its spec, when its recorded sha256 is given)."""
    if spec_sha256 is not None:
        verify_spec_file(folder, spec_sha256)
    spec = read_spec(folder)
    verify_folder(folder, spec)
    flavor = get_flavor(spec["flavor"])
    native = flavor.load(folder, spec.get("flavor_config") or {})
    return LoadedModel(uri, spec, flavor, native, folder)


def _prepare(data: Any) -> Any:
    import pandas as pd

    if isinstance(data, dict):
        columns = all(isinstance(v, (list, tuple)) for v in data.values())
        return pd.DataFrame(data if columns else [data])
    if isinstance(data, list) and data and all(isinstance(r, dict) for r in data):
        return pd.DataFrame(data)
    return data


def _as_output(prediction: Any) -> Any:
    import numpy as np

    if hasattr(prediction, "dtype") or hasattr(prediction, "dtypes"):
        return prediction
    return np.asarray(prediction)


def _example_json(example: Any) -> Any:
    import numpy as np
    import pandas as pd

    example = _prepare(example)
    if isinstance(example, pd.Series):
        example = example.to_frame()
    if isinstance(example, pd.DataFrame):
        return json.loads(example.to_json(orient="split", index=False, date_format="iso"))
    return np.asarray(example).tolist()
