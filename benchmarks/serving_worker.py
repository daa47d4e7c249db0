"""Log the serving benchmark's model with one side's library, in a fresh process.

``serving_vs_mlflow.py`` trains one scikit-learn pipeline and pickles it; this script loads that
pickle and logs it as a registered model version (``bench`` version 1), so that both servers
serve the identical estimator. It imports only the standard library at the top, so the same file
runs under Cauce's interpreter (``--side cauce``, workspace in ``--dir``) and under the MLflow
virtual environment (``--side mlflow``, a SQLite tracking store in ``--dir``). It writes what the
server needs (the model URI, versions, the tracking URI) as JSON to ``--out``.

Example::

    python benchmarks/serving_worker.py --side cauce --model m.pkl --example ex.json \\
        --dir /tmp/ws --out r.json
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
from pathlib import Path
from typing import Any

REGISTERED = "bench"


def log_cauce(model: Any, example: Any, folder: Path) -> dict[str, Any]:
    """``cauce.log_model`` in a run of a fresh workspace at ``folder``."""
    os.environ["CAUCE_HOME"] = str(folder)
    import cauce

    with cauce.start_run(experiment="bench"):
        version = cauce.log_model(
            model, "model", registered_model=REGISTERED, input_example=example
        )
    return {
        "library": "cauce",
        "version": cauce.__version__,
        "model_uri": f"models:/{REGISTERED}/{version.version}",
    }


def log_mlflow(model: Any, example: Any, folder: Path) -> dict[str, Any]:
    """``mlflow.sklearn.log_model`` in a run, on a SQLite tracking store in ``folder``."""
    import mlflow
    import sklearn

    tracking_uri = f"sqlite:///{folder / 'mlflow.db'}"
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment("bench")
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            input_example=example,
            registered_model_name=REGISTERED,
            serialization_format="skops",
            skops_trusted_types=_trusted_types(model),
        )
    return {
        "library": "mlflow",
        "version": mlflow.__version__,
        "sklearn": sklearn.__version__,
        "model_uri": f"models:/{REGISTERED}/{info.registered_model_version}",
        "tracking_uri": tracking_uri,
    }


def _trusted_types(model: Any) -> list[str]:
    """The types skops would refuse to load from this file: every one comes from our own pickle."""
    import skops.io

    return list(skops.io.get_untrusted_types(data=skops.io.dumps(model)))


def main(argv: list[str] | None = None) -> int:
    """Load the pickled model and the example rows, log them, write the result."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--side", choices=("cauce", "mlflow"), required=True)
    parser.add_argument("--model", type=Path, required=True, help="the pickled estimator")
    parser.add_argument("--example", type=Path, required=True, help="input example, split JSON")
    parser.add_argument("--dir", type=Path, required=True, help="the fresh store's folder")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    import pandas as pd

    with args.model.open("rb") as f:
        model = pickle.load(f)  # our own file, written by serving_vs_mlflow.py
    split = json.loads(args.example.read_text())
    example = pd.DataFrame(split["data"], columns=split["columns"])
    log = log_cauce if args.side == "cauce" else log_mlflow
    args.out.write_text(json.dumps(log(model, example, args.dir.resolve())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
