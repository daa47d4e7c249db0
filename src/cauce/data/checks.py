"""Quality checks: run a check suite over a dataset version in DuckDB, store the verdict.

Every row check becomes one boolean "this row fails" expression; one pass over the version's
Parquet counts the failures of all checks at once (``unique`` checks first find their column's
repeated values), and a last query, only when something failed, fetches a bounded sample of
failing rows per check. The user's SQL runs in an in-memory DuckDB that can read only the files
of this validation (external access is switched off and the configuration locked). A local
artifact store's files are read in place while a thread checks their sha256; no result is
returned or stored unless the check passed.

The quality bar: :func:`validate` raises :class:`QualityGateFailed` when an ``error`` check
fails, and :func:`promote` registers data into the next layer only after it passed.
"""

from __future__ import annotations

import datetime as dt
import math
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from cauce.data.assets import (
    LAYERS,
    DatasetVersion,
    PreparedVersion,
    get_version,
    load,
    prepare_version,
    resolve_version,
    stored_blob,
    version_in,
    write_version,
)
from cauce.data.suites import ROW_KINDS, Check, CheckSuite, load_suite
from cauce.errors import Conflict, InvalidInput, NotFound, ValidationFailed
from cauce.lineage import audit
from cauce.operations import operation
from cauce.store import new_id, now_ms
from cauce.store.schema import check_results
from cauce.workspace import Workspace, current

if TYPE_CHECKING:
    import duckdb
    import pandas as pd
    from sqlalchemy import Connection

SAMPLE_ROWS = 10
_TIME_TYPES = ("TIMESTAMP", "DATE")


@dataclass(frozen=True)
class CheckResult:
    """The verdict of one check."""

    name: str
    kind: str
    severity: str
    column: str | None
    mostly: float
    passed: bool
    rows: int
    failing: int | None  # rows that fail; None for table checks (row_count, freshness)
    success_rate: float
    observed: Any  # row_count: the count; freshness: the newest value and its age
    message: str
    sample: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view."""
        return asdict(self)


@dataclass(frozen=True)
class ValidationResult:
    """The verdict of a suite on a dataset version."""

    id: str | None  # None when it was not stored (data not yet registered)
    dataset: str
    dataset_version_id: str | None
    suite: str
    suite_sha256: str
    passed: bool
    checks: list[CheckResult]
    duration_ms: int
    created_at: int
    user: str

    @property
    def failures(self) -> list[CheckResult]:
        """Failed checks of severity ``error``: these fail the quality bar."""
        return [c for c in self.checks if not c.passed and c.severity == "error"]

    @property
    def warnings(self) -> list[CheckResult]:
        """Failed checks of severity ``warn``: reported, never blocking."""
        return [c for c in self.checks if not c.passed and c.severity == "warn"]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view."""
        return {**asdict(self), "checks": [c.to_dict() for c in self.checks]}


@dataclass(frozen=True)
class Promotion:
    """A dataset version registered in a higher layer after passing its suite."""

    version: DatasetVersion
    validation: ValidationResult


def validate(
    ref: DatasetVersion | str,
    suite: CheckSuite | dict[str, Any] | str | Path,
    *,
    as_of: dt.datetime | str | None = None,
    raise_on_failure: bool = True,
    workspace: Workspace | None = None,
) -> ValidationResult:
    """Run a check suite over a dataset version and store the result.

    ``suite`` is a CheckSuite, a dict, a path to a YAML file or a YAML string. ``as_of`` is
    the time freshness checks measure from (default: now; a naive time is UTC). With
    ``raise_on_failure`` a failed ``error`` check raises :class:`QualityGateFailed`, carrying
    the result; ``warn`` checks never do.

    Example::

        result = cauce.data.validate("customers@3", "checks.yaml", raise_on_failure=False)
        print(result.passed, [c.name for c in result.failures])
    """
    ws = workspace or current()
    version = resolve_version(ref, workspace=ws)
    result = _check(ws, load_suite(suite), version, as_of)
    stored = record_validation(version.ref, result, workspace=ws)
    if raise_on_failure and not stored.passed:
        raise ValidationFailed(stored)
    return stored


@operation("POST /dataset-versions/{ref}/validations")
def record_validation(
    ref: str, result: ValidationResult, *, workspace: Workspace | None = None
) -> ValidationResult:
    """Store the verdict of a suite run on a version (``name@version``), audited; return it
    with its id."""
    ws = workspace or current()
    with ws.store.write() as conn:
        return _store(conn, ws, result, version_in(conn, ref))


def _check(
    ws: Workspace, rules: CheckSuite, version: DatasetVersion, as_of: dt.datetime | str | None
) -> ValidationResult:
    """Run a suite over a stored version; the result is not stored yet."""
    _check_columns(rules, rules.check_names(), version.schema, version.ref)  # before downloading
    with tempfile.TemporaryDirectory(prefix="cauce-checks-") as tmp, _Inputs(ws, tmp) as inputs:
        path = inputs.file(version.sha256, "data.parquet")
        return _run(ws, rules, path, version.schema, version.ref, inputs, as_of)


def promote(
    ref: DatasetVersion | str,
    suite: CheckSuite | dict[str, Any] | str | Path,
    *,
    to_layer: str = "silver",
    name: str | None = None,
    transform: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
    as_of: dt.datetime | str | None = None,
    allow_schema_change: bool = False,
    workspace: Workspace | None = None,
) -> Promotion:
    """Validate a version (after an optional transform) and only then register it in a layer.

    The data is ``transform(load(ref))``, or the version itself. It must pass ``suite``; if an
    ``error`` check fails, :class:`QualityGateFailed` is raised and nothing is registered. The
    new version is registered as ``name`` (default: the source's dataset) in ``to_layer``,
    with a lineage edge from the source version. ``allow_schema_change`` is passed to
    :func:`~cauce.data.register` (a new schema in the target layer is refused by default).
    The check result, the version, the edge and their audit events are one transaction.

    Example::

        promoted = cauce.data.promote("customers@1", "silver.yaml", name="customers_silver",
                                      transform=lambda df: df.dropna(subset=["age"]))
    """
    import pandas as pd

    ws = workspace or current()
    if to_layer not in LAYERS:
        raise InvalidInput(f"layer must be one of {', '.join(LAYERS)}, not {to_layer!r}")
    rules = load_suite(suite)
    source = resolve_version(ref, workspace=ws)
    target = name or source.name
    if transform is None and target == source.name:
        raise Conflict(
            f"unchanged data cannot be promoted within dataset {target!r}: it is already "
            f"{source.ref} (layer {source.layer or 'none'})",
            hint="promote under another name (name=...) or change the data with a transform",
        )
    if transform is None:
        validation = _check(ws, rules, source, as_of)
        if not validation.passed:
            # The suite judged the source version itself: its verdict is kept, as validate does.
            raise ValidationFailed(record_validation(source.ref, validation, workspace=ws))
        frame = load(source, workspace=ws)
    else:
        frame = transform(load(source, workspace=ws))
        if not isinstance(frame, pd.DataFrame):
            raise InvalidInput(f"the transform must return a DataFrame, got {type(frame).__name__}")
        frame.columns = [str(c) for c in frame.columns]
        with (
            tempfile.TemporaryDirectory(prefix="cauce-checks-") as tmp,
            _Inputs(ws, tmp) as inputs,
        ):
            path = Path(tmp) / "data.parquet"
            try:
                frame.to_parquet(path, index=False)
            except (TypeError, ValueError) as exc:
                raise InvalidInput(
                    f"the transformed data cannot be stored as Parquet: {exc}"
                ) from None
            schema = {c: str(t) for c, t in frame.dtypes.items()}
            label = f"{target} (transformed from {source.ref})"
            validation = _run(ws, rules, path, schema, label, inputs, as_of)
        if not validation.passed:
            raise ValidationFailed(validation)
    table = prepare_version(
        target, frame, layer=to_layer, allow_schema_change=allow_schema_change, workspace=ws
    )
    return record_promotion(source.ref, table, validation, transform is None, workspace=ws)


@operation("POST /dataset-versions/{ref}/promotions")
def record_promotion(
    ref: str,
    table: PreparedVersion,
    validation: ValidationResult,
    judged_source: bool,
    *,
    workspace: Workspace | None = None,
) -> Promotion:
    """Write a promotion of version ``ref`` in one transaction: the new version (``table``, its
    blob already stored), the passed ``validation`` of the source (``judged_source``) or of the
    new version, and the lineage edge between them."""
    from cauce.lineage.graph import add_edge

    ws = workspace or current()
    if not validation.passed:
        raise InvalidInput(
            "a promotion needs a passed validation", details={"field": "validation.passed"}
        )
    if table.layer not in LAYERS:
        raise InvalidInput(
            f"layer must be one of {', '.join(LAYERS)}, not {table.layer!r}",
            details={"field": "table.layer"},
        )
    table = stored_blob(ws, table)
    with ws.store.write() as conn:
        source = version_in(conn, ref)
        version, created = write_version(conn, ws, table)
        if not created and version.layer != table.layer:
            raise Conflict(
                f"this content is already {version.ref} in layer {version.layer}",
                hint="promote under another name (name=...) or change the data with a transform",
            )
        # Without a transform the suite judged the source; with one, the new version.
        stored = _store(conn, ws, validation, source if judged_source else version)
        add_edge(conn, ("dataset_version", source.id), ("dataset_version", version.id), "promoted")
    return Promotion(version=version, validation=stored)


def validations(
    ref: DatasetVersion | str, *, workspace: Workspace | None = None
) -> list[ValidationResult]:
    """The stored results of every suite run on a version, newest first."""
    if isinstance(ref, DatasetVersion):
        ref = ref.ref
    return list_validations(ref, workspace=workspace)


@operation("GET /dataset-versions/{ref}/validations")
def list_validations(ref: str, *, workspace: Workspace | None = None) -> list[ValidationResult]:
    """The stored results of every suite run on a version (``name@version``), newest first."""
    ws = workspace or current()
    with ws.store.read() as conn:
        version = version_in(conn, ref)
        rows = conn.execute(
            select(check_results)
            .where(check_results.c.dataset_version_id == version.id)
            .order_by(check_results.c.created_at.desc(), check_results.c.id)
        ).all()
    return [
        ValidationResult(
            id=r.id,
            dataset=version.ref,
            dataset_version_id=r.dataset_version_id,
            suite=r.suite,
            suite_sha256=r.suite_sha256,
            passed=r.passed,
            checks=[CheckResult(**c) for c in r.results],
            duration_ms=r.duration_ms,
            created_at=r.created_at,
            user=r.user,
        )
        for r in rows
    ]


# -- running -----------------------------------------------------------------------------------


class _Inputs:
    """The artifact files one validation reads, each verified against its sha256.

    A local store's blob is read in place while a thread hashes it: copying it out with
    ``get_file`` and hashing the copy took a fifth of a validation. Other stores' blobs are
    copied into ``tmp`` (and verified) by ``get_file``. Leaving the ``with`` block waits for
    the hashes; a mismatch raises IntegrityError, which replaces whatever the block returned
    or raised (a corrupted file may also fail the query).
    """

    def __init__(self, ws: Workspace, tmp: str) -> None:
        self._store = ws.artifacts
        self._tmp = Path(tmp)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cauce-verify")
        self._checks: list[Future[None]] = []

    def file(self, sha256: str, name: str) -> Path:
        """A local path holding the blob (``name``: the copy's name in ``tmp``)."""
        if not self._store.is_local:
            return self._store.get_file(sha256, self._tmp / name)
        self._checks.append(self._pool.submit(self._store.verify, sha256))
        return Path(self._store.path_of(sha256))

    def __enter__(self) -> _Inputs:
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            for check in self._checks:
                check.result()
        finally:
            self._pool.shutdown()


def _run(
    ws: Workspace,
    suite: CheckSuite,
    path: Path,
    schema: dict[str, str],
    label: str,
    inputs: _Inputs,
    as_of: dt.datetime | str | None,
) -> ValidationResult:
    started = time.perf_counter()
    names = suite.check_names()
    now = _as_of(as_of)
    _check_columns(suite, names, schema, label)
    references = _reference_files(ws, suite, names, inputs)
    import duckdb

    con = _sandbox(path, references)
    types: dict[str, str] = {}
    try:
        types.update((row[0], row[1]) for row in con.execute("DESCRIBE data").fetchall())
        _precheck(con, suite, names, types)
        _find_repeated(con, suite)
        rows, failing, positions, newest = _count(con, suite, types)
        samples = _samples(con, positions, list(types))
    except duckdb.Error as exc:
        culprit = _culprit(con, suite, names, types)
        raise InvalidInput(
            f"check {culprit} cannot run on {label}: {_first_line(exc)}"
            if culprit
            else f"checks on {label} cannot run: {_first_line(exc)}"
        ) from None
    finally:
        con.close()
    verdicts = [
        _verdict(check, names[i], rows, failing.get(i), newest.get(i), now, samples.get(i, []))
        for i, check in enumerate(suite.checks)
    ]
    return ValidationResult(
        id=None,
        dataset=label,
        dataset_version_id=None,
        suite=suite.name,
        suite_sha256=suite.sha256(),
        passed=all(v.passed or v.severity == "warn" for v in verdicts),
        checks=verdicts,
        duration_ms=int((time.perf_counter() - started) * 1000),
        created_at=now_ms(),
        user=ws.user,
    )


def _check_columns(suite: CheckSuite, names: list[str], schema: dict[str, str], label: str) -> None:
    """Refuse, before anything runs, a check that names a column the data does not have."""
    for check, name in zip(suite.checks, names, strict=True):
        if check.column is not None and check.column not in schema:
            raise InvalidInput(
                f"check {name!r} names column {check.column!r}, which dataset version {label} "
                f"does not have; its columns: {', '.join(schema)}"
            )


def _reference_files(
    ws: Workspace, suite: CheckSuite, names: list[str], inputs: _Inputs
) -> dict[int, Path]:
    """Each relationships check's other dataset version, as a local Parquet file."""
    files: dict[int, Path] = {}
    for i, check in enumerate(suite.checks):
        rel = check.relationships
        if rel is None:
            continue
        try:
            other = get_version(rel.to, workspace=ws)
        except NotFound:
            raise InvalidInput(
                f"check {names[i]!r} refers to dataset {rel.to!r}, which does not exist"
            ) from None
        if rel.field not in other.schema:
            raise InvalidInput(
                f"check {names[i]!r} names column {rel.field!r}, which dataset version "
                f"{other.ref} does not have; its columns: {', '.join(other.schema)}"
            )
        files[i] = inputs.file(other.sha256, f"ref-{i}.parquet")
    return files


def _sandbox(path: Path, references: dict[int, Path]) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB that sees ``data`` (and ``ref_<i>``) and can open no other file."""
    import duckdb

    con = duckdb.connect(":memory:")
    try:
        files = [str(Path(p).resolve()) for p in (path, *references.values())]
        con.execute("SET allowed_paths = ?", [files])
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        source = _literal(str(Path(path).resolve()))
        con.execute(
            f"CREATE VIEW src AS SELECT * EXCLUDE (file_row_number), "
            f"file_row_number AS __cauce_row FROM read_parquet({source}, file_row_number=true)"
        )
        con.execute("CREATE VIEW data AS SELECT * EXCLUDE (__cauce_row) FROM src")
        for i, ref in references.items():
            con.execute(
                f"CREATE VIEW ref_{i} AS SELECT * FROM read_parquet({_literal(str(ref.resolve()))})"
            )
    except BaseException:
        con.close()
        raise
    return con


def _precheck(
    con: duckdb.DuckDBPyConnection, suite: CheckSuite, names: list[str], types: dict[str, str]
) -> None:
    """SQL expressions must bind and be boolean; freshness columns must hold times."""
    import duckdb

    for check, name in zip(suite.checks, names, strict=True):
        if check.sql is not None:
            try:
                described = con.execute(f"DESCRIBE SELECT ({check.sql}) AS v FROM data").fetchall()
            except duckdb.Error as exc:
                raise InvalidInput(f"check {name!r}: {_first_line(exc)}") from None
            if described[0][1] != "BOOLEAN":
                raise InvalidInput(
                    f"check {name!r} must be a true/false expression; it gives {described[0][1]}"
                )
        if check.freshness is not None:
            kind = types[check.freshness.column]
            if not kind.startswith(_TIME_TYPES):
                raise InvalidInput(
                    f"check {name!r}: column {check.freshness.column!r} holds {kind}, "
                    "not timestamps or dates"
                )


def _failure(check: Check, index: int, params: list[Any], types: dict[str, str]) -> str:
    """A SQL expression that is true on each row failing the check (``types``: the columns')."""
    if check.sql is not None:
        return f"NOT coalesce(({check.sql}), false)"
    col = _ident(check.column or "")
    spec = check.spec
    if check.kind == "not_null":
        return f"{col} IS NULL"
    if check.kind == "unique":
        return f"({col} IS NOT NULL AND {col} IN (SELECT v FROM repeated_{index}))"
    if check.kind == "accepted_values":
        strings = all(isinstance(v, str) for v in spec.values)
        if strings and types.get(check.column or "") == "VARCHAR":
            # The same comparisons as the list below, as a hash lookup: 4x faster on 20 values.
            params.append(spec.values)
            return f"({col} IS NOT NULL AND {col} NOT IN (SELECT unnest(?::VARCHAR[])))"
        params.extend(spec.values)
        return f"({col} IS NOT NULL AND {col} NOT IN ({', '.join('?' * len(spec.values))}))"
    if check.kind == "range":
        bounds = []
        if spec.min is not None:
            bounds.append(f"{col} {'>=' if spec.min_inclusive else '>'} ?")
            params.append(spec.min)
        if spec.max is not None:
            bounds.append(f"{col} {'<=' if spec.max_inclusive else '<'} ?")
            params.append(spec.max)
        return f"({col} IS NOT NULL AND NOT ({' AND '.join(bounds)}))"
    if check.kind == "regex":
        params.append(spec.pattern)
        return f"({col} IS NOT NULL AND NOT regexp_full_match(CAST({col} AS VARCHAR), ?))"
    if check.kind == "relationships":
        other = _ident(spec.field)
        return (
            f"({col} IS NOT NULL AND {col} NOT IN "
            f"(SELECT {other} FROM ref_{index} WHERE {other} IS NOT NULL))"
        )
    raise AssertionError(check.kind)  # pragma: no cover - table checks have no row failure


def _find_repeated(con: duckdb.DuckDBPyConnection, suite: CheckSuite) -> None:
    """For each unique check, a table ``repeated_<i>`` of the values its column holds twice or more.

    Grouping every row by value was the slowest check (a hash table of 10M distinct strings:
    2.5 s). The column's 64-bit hashes are sorted instead (0.2 s in numpy at 10M rows); a value
    can repeat only if its hash does, and grouping just those candidates' rows by value keeps
    the count exact whatever the hash collisions.
    """
    import numpy as np
    import pyarrow as pa

    for i, check in enumerate(suite.checks):
        if check.kind != "unique":
            continue
        col = _ident(check.column or "")
        query = f"SELECT hash({col}) AS h FROM src WHERE {col} IS NOT NULL"
        hashes = con.sql(query).fetchnumpy()["h"]
        hashes.sort()
        twice = np.unique(hashes[1:][hashes[1:] == hashes[:-1]])
        con.register("candidates", pa.table({"h": twice}))
        try:
            con.execute(
                f"CREATE TEMP TABLE repeated_{i} AS SELECT {col} AS v FROM src "
                f"WHERE hash({col}) IN (SELECT h FROM candidates) AND {col} IS NOT NULL "
                f"GROUP BY {col} HAVING count(*) > 1"
            )
        finally:
            con.unregister("candidates")


def _flagged(suite: CheckSuite, types: dict[str, str]) -> tuple[str, list[Any]]:
    """Each row's position with a ``__cauce_f<i>`` failure flag per row check."""
    params: list[Any] = []
    flags = [
        f"{_failure(check, i, params, types)} AS __cauce_f{i}"
        for i, check in enumerate(suite.checks)
        if check.kind in ROW_KINDS
    ]
    return f"SELECT __cauce_row{''.join(', ' + f for f in flags)} FROM src", params


def _count(
    con: duckdb.DuckDBPyConnection, suite: CheckSuite, types: dict[str, str]
) -> tuple[int, dict[int, int], dict[int, list[int]], dict[int, int | None]]:
    """The row count and each freshness column's newest value (ms since the epoch); then, in
    one pass, per row check its failing rows and the positions of the first SAMPLE_ROWS."""
    fresh = [i for i, c in enumerate(suite.checks) if c.freshness is not None]
    totals = ["count(*)"]
    for i in fresh:
        freshness = suite.checks[i].freshness
        assert freshness is not None
        latest = f"max({_ident(freshness.column)})"
        if types[freshness.column] != "TIMESTAMP WITH TIME ZONE":  # dates, _NS, _MS: to µs
            latest = f"CAST({latest} AS TIMESTAMP)"
        totals.append(f"epoch_ms({latest})")
    row = con.execute(f"SELECT {', '.join(totals)} FROM src").fetchone()
    assert row is not None  # an aggregate always answers one row
    rows = int(row[0])
    newest = {i: (None if v is None else int(v)) for i, v in zip(fresh, row[1:], strict=True)}

    row_checks = [i for i, c in enumerate(suite.checks) if c.kind in ROW_KINDS]
    if not row_checks:
        return rows, {}, {}, newest
    inner, params = _flagged(suite, types)
    columns = []
    for i in row_checks:
        columns.append(f"count_if(__cauce_f{i})")
        columns.append(f"min(__cauce_row, {SAMPLE_ROWS}) FILTER (WHERE __cauce_f{i})")
    # Most rows fail no check: aggregating only those that fail one took a fifth off the pass.
    failed = " OR ".join(f"__cauce_f{i}" for i in row_checks)
    found = con.execute(
        f"SELECT {', '.join(columns)} FROM ({inner}) WHERE {failed}", params
    ).fetchone()
    assert found is not None
    values = list(found)
    failing: dict[int, int] = {}
    positions: dict[int, list[int]] = {}
    for i in row_checks:
        failing[i] = int(values.pop(0) or 0)  # count_if over no rows is null
        positions[i] = sorted(int(p) for p in values.pop(0) or [])
    return rows, failing, positions, newest


def _culprit(
    con: duckdb.DuckDBPyConnection, suite: CheckSuite, names: list[str], types: dict[str, str]
) -> str | None:
    """The name of the first row check that fails to run on its own (after a failed pass)."""
    import duckdb

    for i, check in enumerate(suite.checks):
        if check.kind not in ROW_KINDS:
            continue
        params: list[Any] = []
        failure = _failure(check, i, params, types)
        try:
            con.execute(
                f"SELECT count_if(f) FROM (SELECT {failure} AS f FROM src)", params
            ).fetchall()
        except duckdb.Error:
            return repr(names[i])
    return None


def _samples(
    con: duckdb.DuckDBPyConnection, positions: dict[int, list[int]], columns: list[str]
) -> dict[int, list[dict[str, Any]]]:
    """The sampled failing rows of each check, every column, read in one query."""
    wanted = sorted({p for found in positions.values() for p in found})
    if not wanted:
        return {}
    picked = ", ".join(_ident(c) for c in columns)
    query = (
        f"SELECT __cauce_row, {picked} FROM src "
        f"WHERE __cauce_row IN ({', '.join(str(int(p)) for p in wanted)})"
    )
    by_row: dict[int, dict[str, Any]] = {}
    for row in con.execute(query).fetchall():
        record = {"_row": int(row[0])}
        record.update({c: _jsonable(v) for c, v in zip(columns, row[1:], strict=True)})
        by_row[int(row[0])] = record
    return {i: [by_row[p] for p in found] for i, found in positions.items() if found}


def _verdict(
    check: Check,
    name: str,
    rows: int,
    failing: int | None,
    newest_ms: int | None,
    now: dt.datetime,
    sample: list[dict[str, Any]],
) -> CheckResult:
    observed: Any = None
    if check.row_count is not None:
        low, high = check.row_count.min, check.row_count.max
        passed = (low is None or rows >= low) and (high is None or rows <= high)
        bounds = " and ".join(
            s for s in (low is not None and f"≥ {low}", high is not None and f"≤ {high}") if s
        )
        observed = rows
        message = f"{rows} rows (need {bounds})"
    elif check.freshness is not None:
        limit = check.freshness.max_age_seconds
        if newest_ms is None:
            passed, message = False, f"column {check.freshness.column!r} has no values"
        else:
            newest = dt.datetime.fromtimestamp(newest_ms / 1000, tz=dt.UTC)
            age = (now - newest).total_seconds()
            passed = age <= limit
            observed = {"newest": newest.isoformat(), "age_seconds": age}
            message = (
                f"newest value {newest.isoformat()} is {_age(age)} old "
                f"(limit {check.freshness.max_age}, as of {now.isoformat()})"
            )
    else:
        assert failing is not None
        rate = 1.0 - failing / rows if rows else 1.0
        # A tolerance for binary fractions: 99 of 100 rows passes mostly 0.99.
        passed = rate >= check.mostly - 1e-9
        message = f"{failing} of {rows} rows fail ({rate:.2%} pass" + (
            f", need {check.mostly:.2%})" if check.mostly < 1 else ")"
        )
        return CheckResult(
            name, check.kind, check.severity, check.column, check.mostly, passed, rows,
            failing, rate, None, message, sample,
        )  # fmt: skip
    return CheckResult(
        name, check.kind, check.severity, check.column, check.mostly, passed, rows,
        None, 1.0 if passed else 0.0, observed, message, [],
    )  # fmt: skip


def _store(
    conn: Connection, ws: Workspace, result: ValidationResult, version: DatasetVersion
) -> ValidationResult:
    """Write the result and its audit event inside the caller's transaction."""
    stored = ValidationResult(
        **{
            **result.__dict__,
            "id": new_id(),
            "dataset": version.ref,
            "dataset_version_id": version.id,
            "user": ws.user,  # the actor: on a server, its principal, never the caller's word
        }
    )
    conn.execute(
        check_results.insert().values(
            id=stored.id,
            dataset_version_id=version.id,
            suite=stored.suite,
            suite_sha256=stored.suite_sha256,
            passed=stored.passed,
            results=[c.to_dict() for c in stored.checks],
            duration_ms=stored.duration_ms,
            created_at=stored.created_at,
            user=stored.user,
        )
    )
    audit.record(
        conn,
        ws.user,
        "check_result.create",
        "check_result",
        str(stored.id),
        after={
            "dataset_version": version.ref,
            "suite": stored.suite,
            "passed": stored.passed,
            "failed": [c.name for c in stored.failures],
            "warnings": [c.name for c in stored.warnings],
        },
    )
    return stored


# -- helpers -----------------------------------------------------------------------------------


def _as_of(value: dt.datetime | str | None) -> dt.datetime:
    if value is None:
        return dt.datetime.now(dt.UTC).replace(microsecond=0)
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            raise InvalidInput(f"as_of must be an ISO date and time, got {value!r}") from None
    if not isinstance(value, dt.datetime):
        raise InvalidInput(f"as_of must be a datetime, got {type(value).__name__}")
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if abs(seconds) >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _jsonable(value: Any) -> Any:
    """A sample cell as a JSON value (the store keeps results as JSON)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return value.hex()
    return str(value)
