"""Model flavors: how each kind of model is saved, loaded and asked to predict.

Flavors are registered here as ``(name, "module:Class")`` and imported only when used.
Detection tries them in this order, so the specific ones come before ``python``. ``gguf`` (a
GGUF file: a path is not callable, so ``python`` never takes it) lives with the local LLM it
loads, in the genai layer, which imports this one; naming it here imports nothing until a GGUF
model is saved or loaded.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cauce.config import load_object
from cauce.errors import InvalidInput

FLAVORS: tuple[tuple[str, str], ...] = (
    ("sklearn", "cauce.registry.flavors.sklearn:SklearnFlavor"),
    ("onnx", "cauce.registry.flavors.onnx:OnnxFlavor"),
    ("python", "cauce.registry.flavors.python:PythonFlavor"),
    ("gguf", "cauce.genai.llms:GGUFFlavor"),
    ("mlflow", "cauce.registry.flavors.mlflow:MlflowFlavor"),
)


@dataclass
class Saved:
    """What a flavor wrote: its main file, settings to keep in cauce-model.yaml, requirements."""

    file: str
    config: dict[str, Any] = field(default_factory=dict)
    requirements: list[str] = field(default_factory=list)


class Flavor(ABC):
    """Saves, loads and runs one kind of model."""

    name: str

    @abstractmethod
    def matches(self, model: Any) -> bool:
        """Whether this flavor knows how to save ``model``."""

    @abstractmethod
    def save(self, model: Any, folder: Path) -> Saved:
        """Write the model's files into ``folder``."""

    @abstractmethod
    def load(self, folder: Path, config: dict[str, Any]) -> Any:
        """Read the model written by :meth:`save`; return the native object."""

    @abstractmethod
    def predict(self, native: Any, data: Any) -> Any:
        """Run the native model on prepared input data."""


def get_flavor(name: str) -> Flavor:
    """The flavor registered under ``name``."""
    for flavor_name, target in FLAVORS:
        if flavor_name == name:
            flavor: Flavor = load_object(target, what="model flavor")()
            return flavor
    raise InvalidInput(
        f"unknown model flavor {name!r}", hint=f"known: {', '.join(n for n, _ in FLAVORS)}"
    )


def detect_flavor(model: Any) -> Flavor:
    """The first flavor that can save ``model``."""
    for name, _ in FLAVORS:
        flavor = get_flavor(name)
        if flavor.matches(model):
            return flavor
    raise InvalidInput(
        f"cannot log a {type(model).__name__}: it is not a scikit-learn estimator, an ONNX "
        "model, a callable or a GGUF file",
    )


def requirement(distribution: str) -> str:
    """``name==installed version`` of a distribution."""
    from importlib import metadata

    return f"{distribution}=={metadata.version(distribution)}"
