"""DataOps: versioned datasets (more — checks, profiles, transforms — builds on this)."""

from cauce.data.assets import DatasetVersion, get_version, list_datasets, load, register, versions

__all__ = ["DatasetVersion", "get_version", "list_datasets", "load", "register", "versions"]
