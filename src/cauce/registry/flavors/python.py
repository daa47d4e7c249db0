"""Plain Python models: a function, or an object with ``predict``, saved with cloudpickle.

Unlike skops, a pickle runs code when it is loaded: load only models from a store you trust.
The file's sha256 is verified before it is unpickled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cauce.registry.flavors import Flavor, Saved, requirement


class PythonFlavor(Flavor):
    """A callable ``f(data) -> predictions`` or an object with ``predict(data)``."""

    name = "python"

    def matches(self, model: Any) -> bool:
        return callable(model) or callable(getattr(model, "predict", None))

    def save(self, model: Any, folder: Path) -> Saved:
        import cloudpickle

        path = folder / "model.pkl"
        with open(path, "wb") as handle:
            cloudpickle.dump(model, handle)
        kind = "predict" if callable(getattr(model, "predict", None)) else "call"
        return Saved(
            file=path.name,
            config={"entry": kind, "object": getattr(model, "__qualname__", type(model).__name__)},
            requirements=[requirement("cloudpickle")],
        )

    def load(self, folder: Path, config: dict[str, Any]) -> Any:
        import cloudpickle

        with open(folder / "model.pkl", "rb") as handle:
            return cloudpickle.load(handle)

    def predict(self, native: Any, data: Any) -> Any:
        if callable(getattr(native, "predict", None)):
            return native.predict(data)
        return native(data)
