"""Model registry: models, immutable versions, aliases, the on-disk model format, cards."""
