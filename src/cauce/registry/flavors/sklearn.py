"""scikit-learn models, persisted with skops (no pickle: only recorded types load)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cauce.errors import IntegrityError
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
        import skops.io

        path = folder / "model.skops"
        skops.io.dump(model, path)
        # The types the file needs beyond skops' defaults; loading trusts exactly these.
        trusted = sorted(skops.io.get_untrusted_types(file=path))
        return Saved(
            file=path.name,
            config={"trusted_types": trusted, "estimator": type(model).__name__},
            requirements=[requirement("scikit-learn"), requirement("skops"), requirement("numpy")],
        )

    def load(self, folder: Path, config: dict[str, Any]) -> Any:
        import skops.io

        path = folder / "model.skops"
        recorded = set(config.get("trusted_types", []))
        unexpected = set(skops.io.get_untrusted_types(file=path)) - recorded
        if unexpected:
            raise IntegrityError(
                f"{path} needs types that were not recorded when it was saved: "
                f"{', '.join(sorted(unexpected))}"
            )
        return skops.io.load(path, trusted=sorted(recorded))

    def predict(self, native: Any, data: Any) -> Any:
        return native.predict(data)
