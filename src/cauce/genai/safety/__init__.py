"""Safety: prompt-injection detection, PII redaction, canary tokens, blocklists and the policy
that a deployment configures (``filters``); each concept is its own module:

- :mod:`~cauce.genai.safety.normalize`: text as detectors read it (obfuscation undone);
- :mod:`~cauce.genai.safety.injection`: rules in five languages and a trained classifier;
- :mod:`~cauce.genai.safety.pii`: PII detection and stable placeholders;
- :mod:`~cauce.genai.safety.canary`: canary tokens for system-prompt leaks;
- :mod:`~cauce.genai.safety.filters`: ``SafetySpec`` and ``SafetyPolicy`` (input, output and
  stream checks).
"""
