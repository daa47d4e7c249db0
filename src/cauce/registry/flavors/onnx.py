"""ONNX models, run with onnxruntime on the CPU."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cauce.errors import BackendError, InvalidInput
from cauce.registry.flavors import Flavor, Saved, requirement


class OnnxFlavor(Flavor):
    """An ``onnx.ModelProto``."""

    name = "onnx"

    def matches(self, model: Any) -> bool:
        return type(model).__module__.startswith("onnx") and type(model).__name__ == "ModelProto"

    def save(self, model: Any, folder: Path) -> Saved:
        path = folder / "model.onnx"
        path.write_bytes(model.SerializeToString())
        inputs = [i.name for i in model.graph.input]
        outputs = [o.name for o in model.graph.output]
        return Saved(
            file=path.name,
            config={"inputs": inputs, "outputs": outputs},
            requirements=[requirement("onnx"), requirement("onnxruntime")],
        )

    def load(self, folder: Path, config: dict[str, Any]) -> Any:
        try:
            import onnxruntime
        except ImportError:
            raise BackendError(
                "loading an ONNX model needs onnxruntime", hint="pip install 'cauce[onnx]'"
            ) from None
        return onnxruntime.InferenceSession(
            str(folder / "model.onnx"), providers=["CPUExecutionProvider"]
        )

    def predict(self, native: Any, data: Any) -> Any:
        import numpy as np
        import pandas as pd

        inputs = native.get_inputs()
        feeds: dict[str, Any] = {}
        if len(inputs) == 1:
            array = data.to_numpy() if isinstance(data, pd.DataFrame) else np.asarray(data)
            feeds[inputs[0].name] = array.astype(_numpy_type(inputs[0].type))
        elif isinstance(data, pd.DataFrame):
            for spec in inputs:
                if spec.name not in data.columns:
                    raise InvalidInput(
                        f"input is missing column {spec.name}", details={"field": spec.name}
                    )
                column = data[[spec.name]].to_numpy()
                feeds[spec.name] = column.astype(_numpy_type(spec.type))
        else:
            raise InvalidInput("this ONNX model has several inputs; pass a DataFrame with them")
        try:
            return native.run(None, feeds)[0]
        except Exception as exc:
            # onnxruntime raises its own InvalidArgument for a wrong shape or type.
            if type(exc).__name__ in ("InvalidArgument", "InvalidGraph"):
                raise InvalidInput(f"the ONNX model refused the input: {exc}") from None
            raise


def _numpy_type(onnx_type: str) -> str:
    return {
        "tensor(float)": "float32",
        "tensor(double)": "float64",
        "tensor(int64)": "int64",
        "tensor(int32)": "int32",
        "tensor(bool)": "bool",
        "tensor(string)": "object",
    }.get(onnx_type, "float32")
