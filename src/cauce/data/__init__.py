"""DataOps: versioned datasets from DataFrames, files, fsspec URLs and SQL; profiles; diffs."""

from cauce.data.assets import (
    DatasetVersion,
    get_profile,
    get_version,
    list_datasets,
    load,
    register,
    versions,
)
from cauce.data.checks import (
    CheckResult,
    Promotion,
    ValidationResult,
    promote,
    validate,
    validations,
)
from cauce.data.diff import DatasetDiff, diff
from cauce.data.sources import FileSource, FrameSource, Source, SqlSource, sql
from cauce.data.suites import CheckSuite, load_suite

__all__ = [
    "CheckResult",
    "CheckSuite",
    "DatasetDiff",
    "DatasetVersion",
    "FileSource",
    "FrameSource",
    "Promotion",
    "Source",
    "SqlSource",
    "ValidationResult",
    "diff",
    "get_profile",
    "get_version",
    "list_datasets",
    "load",
    "load_suite",
    "promote",
    "register",
    "sql",
    "validate",
    "validations",
    "versions",
]
