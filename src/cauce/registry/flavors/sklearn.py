"""scikit-learn models, persisted with skops (no pickle: only recorded types load)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cauce import estimator_files
from cauce.registry.flavors import Flavor, Saved, requirement


class SklearnFlavor(Flavor):
    """Any scikit-learn estimator or pipeline."""

    name = "sklearn"

    def matches(self, model: Any) -> bool:
        try:
            from sklearn.base import BaseEstimator
        except ImportError:  # pragma: no cover - scikit-learn is a dependency
            return False
        return isinstance(model, BaseEstimator)

    def save(self, model: Any, folder: Path) -> Saved:
        path = folder / "model.skops"
        data, trusted = estimator_files.dumps(model)
        path.write_bytes(data)  # loading trusts exactly the types recorded here
        return Saved(
            file=path.name,
            config={"trusted_types": trusted, "estimator": type(model).__name__},
            requirements=[requirement("scikit-learn"), requirement("skops"), requirement("numpy")],
        )

    def load(self, folder: Path, config: dict[str, Any]) -> Any:
        path = folder / "model.skops"
        return estimator_files.loads(path.read_bytes(), config.get("trusted_types", []), str(path))

    def predict(self, native: Any, data: Any) -> Any:
        return native.predict(data)
