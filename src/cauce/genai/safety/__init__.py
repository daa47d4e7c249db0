"""Safety: PII detection and redaction (prompt-injection filters and the rest follow)."""
