"""scikit-learn estimators as skops bytes: only recorded types load, and loading one in a new
process does not import torch."""

from __future__ import annotations

import json
import operator
import os
import subprocess
import sys

import numpy as np
import pytest

from cauce import estimator_files
from cauce.errors import IntegrityError
from cauce.workspace import Workspace
from optional import need

X = np.array([[0.0, 1.0], [1.0, 0.0], [0.2, 0.9], [0.9, 0.1]])
Y = np.array([0, 1, 0, 1])


def _model():  # type: ignore[no-untyped-def]
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    return make_pipeline(FunctionTransformer(operator.neg), LogisticRegression()).fit(X, Y)


def test_a_type_beyond_skops_defaults_is_recorded_and_loads_only_when_trusted() -> None:
    model = _model()
    data, trusted = estimator_files.dumps(model)
    assert trusted == ["_operator.neg"]
    back = estimator_files.loads(data, trusted, "model.skops")
    np.testing.assert_array_equal(back.predict(X), model.predict(X))

    with pytest.raises(IntegrityError, match=r"model\.skops needs types .*: _operator\.neg") as e:
        estimator_files.loads(data, [], "model.skops", hint="record them")
    assert e.value.hint == "record them"


# Loads a registered model in a new process, then reports which modules it imported.
LOAD_IN_A_NEW_PROCESS = """
import importlib, json, sys
import numpy as np
import cauce
model = cauce.models.load("models:/neg/1").unwrap()
loaded = "torch" in sys.modules
compat = importlib.import_module("sklearn.externals.array_api_compat.torch")
print(json.dumps({"prediction": model.predict(np.array([[0.0, 1.0]])).tolist(), "torch": loaded,
                  "compat": hasattr(compat, "asarray")}))
"""


@pytest.mark.slow
def test_loading_a_model_in_a_new_process_leaves_torch_unimported(workspace: Workspace) -> None:
    need("torch", extra="genai")  # what made it slow: sklearn's package walk imported torch
    import cauce

    with cauce.start_run(experiment="neg"):
        cauce.log_model(_model(), registered_model="neg")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAUCE_")}
    env["CAUCE_HOME"] = str(workspace.settings.root)
    proc = subprocess.run(
        [sys.executable, "-c", LOAD_IN_A_NEW_PROCESS], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["prediction"] == _model().predict(np.array([[0.0, 1.0]])).tolist()
    assert report["torch"] is False
    assert report["compat"] is True  # sklearn's torch adapter still imports when asked for
