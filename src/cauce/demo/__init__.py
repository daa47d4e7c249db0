"""The demo story behind ``cauce demo`` and its bundled data."""
