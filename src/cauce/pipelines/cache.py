"""Cache keys: what makes two executions of a step interchangeable.

The key is the sha256 of a canonical JSON document holding the step's source code hash
(``inspect.getsource``, dedented), its constant arguments (canonical JSON), the sha256 of each
input artifact (upstream outputs and non-JSON constants), its declared ``env`` and the Python
version. Equal keys mean equal outputs, so a stored output with the same key is reused.
"""

from __future__ import annotations

import hashlib
import json
import platform
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cauce.pipelines.decorators import Step

PYTHON = platform.python_version()


def canonical_json(value: Any) -> str | None:
    """Sorted, compact JSON of a value, or None when it is not JSON-able."""
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):
        return None


def cache_key(step: Step, params: dict[str, Any], inputs: dict[str, str]) -> str:
    """The cache key of ``step`` given JSON-able ``params`` and input sha256 by argument."""
    document = {
        "source": step.source_hash,
        "params": params,
        "inputs": inputs,
        "env": step.env,
        "python": PYTHON,
    }
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()
