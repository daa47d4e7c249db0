"""Safety: prompt-injection detection, PII redaction, canary tokens, blocklists and the policy
that a deployment configures (``filters``); each concept is its own module:

- :mod:`~cauce.genai.safety.normalize`: text as detectors read it (obfuscation undone);
- :mod:`~cauce.genai.safety.injection`: rules in five languages and a trained classifier;
- :mod:`~cauce.genai.safety.pii`: PII detection and stable placeholders;
- :mod:`~cauce.genai.safety.canary`: canary tokens for system-prompt leaks;
- :mod:`~cauce.genai.safety.filters`: ``SafetySpec`` and ``SafetyPolicy`` (input, output and
  stream checks).
"""

from cauce.genai.safety.canary import leaked, new_canary, with_canary
from cauce.genai.safety.filters import OutputGuard, SafetyPolicy, SafetySpec, Verdict
from cauce.genai.safety.injection import InjectionResult, detect_injection
from cauce.genai.safety.normalize import Normalized, normalize
from cauce.genai.safety.pii import Redactor, redact_text

__all__ = [
    "InjectionResult",
    "Normalized",
    "OutputGuard",
    "Redactor",
    "SafetyPolicy",
    "SafetySpec",
    "Verdict",
    "detect_injection",
    "leaked",
    "new_canary",
    "normalize",
    "redact_text",
    "with_canary",
]
