"""Registering datasets from every kind of source; versions, schemas, sources without secrets.

Tests that touch the store run on SQLite, PostgreSQL and a server (``any_workspace``).
"""

from __future__ import annotations

import secrets
from pathlib import Path

import fsspec
import numpy as np
import pandas as pd
import pytest
from sqlalchemy import create_engine, select, text

import cauce
from cauce.data.sources import FileSource, SqlSource, redact_url
from cauce.errors import Conflict, InvalidInput
from cauce.lineage import audit
from cauce.store.schema import dataset_versions
from cauce.workspace import Workspace
from remote import server_side
from stored import row_count


def orders(n: int = 50, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "id": np.arange(n, dtype="int64"),
            "amount": rng.normal(100.0, 15.0, n).round(2),
            "country": rng.choice(["es", "fr", "de"], n),
        }
    )


def stored_profile(ws: Workspace, version_id: str) -> dict | None:  # type: ignore[type-arg]
    with ws.store.read() as conn:
        return conn.execute(  # type: ignore[no-any-return]
            select(dataset_versions.c.profile).where(dataset_versions.c.id == version_id)
        ).scalar()


def test_every_file_format_gives_the_same_content(any_workspace: Workspace, tmp_path: Path) -> None:
    frame = orders()
    paths = {
        "csv": tmp_path / "o.csv",
        "csv.gz": tmp_path / "o.csv.gz",
        "parquet": tmp_path / "o.parquet",
        "json": tmp_path / "o.json",
        "jsonl": tmp_path / "o.jsonl",
    }
    frame.to_csv(paths["csv"], index=False)
    frame.to_csv(paths["csv.gz"], index=False)
    frame.to_parquet(paths["parquet"], index=False)
    frame.to_json(paths["json"], orient="records")
    frame.to_json(paths["jsonl"], orient="records", lines=True)

    first = cauce.data.register("orders", paths["parquet"], layer="bronze")
    assert first.version == 1
    assert first.row_count == 50
    assert first.schema == {"id": "int64", "amount": "float64", "country": "str"}
    assert first.source == str(paths["parquet"])
    assert first.layer == "bronze"
    for kind in ("csv", "csv.gz", "json", "jsonl"):
        again = cauce.data.register("orders", paths[kind])
        assert again == first, kind  # identical content: the existing version
    # ...also from the DataFrame itself and from a file:// URL.
    assert cauce.data.register("orders", frame) == first
    assert cauce.data.register("orders", paths["csv"].as_uri()) == first
    pd.testing.assert_frame_equal(cauce.data.load("orders@1"), frame)
    assert len(cauce.data.versions("orders")) == 1


def test_fsspec_memory_url(any_workspace: Workspace) -> None:
    frame = orders(20, seed=3)
    folder = f"memory://cauce-{secrets.token_hex(4)}"
    with fsspec.open(f"{folder}/orders.parquet", "wb") as out:
        frame.to_parquet(out, index=False)
    with fsspec.open(f"{folder}/orders.jsonl", "w") as out:
        out.write(frame.to_json(orient="records", lines=True))
    version = cauce.data.register("remote", f"{folder}/orders.parquet")
    assert version.source == f"{folder}/orders.parquet"
    assert version.row_count == 20
    assert cauce.data.register("remote", f"{folder}/orders.jsonl") == version
    fsspec.filesystem("memory").rm(folder.removeprefix("memory://"), recursive=True)


def test_sql_source_against_postgresql(any_workspace: Workspace, pg_url: str) -> None:
    engine = create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE orders (id integer, amount double precision, note text)"))
        conn.execute(
            text("INSERT INTO orders SELECT g, g * 1.5, 'n' || g FROM generate_series(1, 30) g")
        )
    engine.dispose()
    url_with_password = pg_url.replace("postgres@", "postgres:s3cret@")
    query = "SELECT id, amount, note FROM orders WHERE id <= 20 ORDER BY id"
    version = cauce.data.register("sql_orders", cauce.data.sql(query, url=url_with_password))
    assert version.row_count == 20
    assert version.schema == {"id": "int64", "amount": "float64", "note": "str"}
    assert "s3cret" not in version.source
    assert version.source.startswith("sql: SELECT id, amount, note FROM orders")
    assert "postgres:***@127.0.0.1" in version.source
    frame = cauce.data.load(version)
    assert frame["amount"].sum() == pytest.approx(1.5 * sum(range(1, 21)))
    # The same query again: the same content, the same version.
    assert cauce.data.register("sql_orders", cauce.data.sql(query, url=pg_url)) == version
    # The SQL is passed as written: casts, colons and percent signs in literals.
    literal = "SELECT note || ' :x' AS n, amount::int AS a FROM orders WHERE note LIKE 'n1%'"
    other = cauce.data.load(cauce.data.register("odd", cauce.data.sql(literal, url=pg_url)))
    assert sorted(other["n"]) == sorted(f"n{i} :x" for i in [1, *range(10, 20)])


def test_sql_source_on_sqlite_file(workspace: Workspace, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (a INTEGER, b TEXT)"))
        conn.execute(text("INSERT INTO t VALUES (1, 'x'), (2, 'y')"))
    engine.dispose()
    version = cauce.data.register("t", cauce.data.sql("SELECT * FROM t", url=url))
    assert version.row_count == 2
    assert version.source == f"sql: SELECT * FROM t @ {url}"


def test_profile_is_stored_at_registration(any_workspace: Workspace) -> None:
    version = cauce.data.register("orders", orders())
    profile = stored_profile(server_side(any_workspace), version.id)
    assert profile is not None
    assert profile["row_count"] == 50
    assert set(profile["columns"]) == {"id", "amount", "country"}
    assert cauce.data.get_profile("orders@1") == profile


def test_schema_change_is_refused_unless_allowed(any_workspace: Workspace) -> None:
    cauce.data.register("orders", orders())
    changed = (
        orders(seed=1)
        .drop(columns=["country"])
        .assign(id=lambda f: f["id"].astype("float64"), channel="web")
    )

    def count() -> int:
        return row_count(server_side(any_workspace), "dataset_versions")

    with pytest.raises(Conflict) as caught:
        cauce.data.register("orders", changed)
    message = str(caught.value)
    assert caught.value.code == "schema-changed"
    assert "added channel (str)" in message
    assert "removed country" in message
    assert "id int64 → float64" in message
    assert "allow_schema_change=True" in message
    assert count() == 1

    allowed = cauce.data.register("orders", changed, allow_schema_change=True)
    assert allowed.version == 2
    assert count() == 2
    # The accepted change is in the audit log.
    event = audit.events(server_side(any_workspace), entity_id=allowed.id)[0]
    assert event.after is not None
    assert event.after["schema_change"] == {
        "since_version": 1,
        "added": {"channel": "str"},
        "removed": {"country": "str"},
        "type_changed": {"id": {"from": "int64", "to": "float64"}},
    }
    # The same schema as the newest version is fine; a new dataset has no schema to keep.
    assert cauce.data.register("orders", changed.head(10)).version == 3
    assert cauce.data.register("other", changed).version == 1


def test_schema_is_kept_per_layer(any_workspace: Workspace) -> None:
    raw = orders().assign(amount=lambda f: f["amount"].astype(str))
    cauce.data.register("orders", raw, layer="bronze")
    # Cleaning into silver may change types: each layer keeps its own schema.
    silver = cauce.data.register("orders", orders(), layer="silver")
    assert silver.version == 2
    with pytest.raises(Conflict, match=r"'orders' \(bronze\) changed since v1: type changed"):
        cauce.data.register("orders", orders(seed=4), layer="bronze")
    assert cauce.data.register("orders", orders(seed=4), layer="silver").version == 3


def test_versions_list_and_layers(any_workspace: Workspace) -> None:
    cauce.data.register("a", orders(10), layer="bronze")
    cauce.data.register("a", orders(12), layer="silver")
    cauce.data.register("b", orders(5), layer="gold")
    assert [(v.name, v.version) for v in cauce.data.list_datasets()] == [("a", 2), ("b", 1)]
    assert [v.layer for v in cauce.data.versions("a")] == ["bronze", "silver"]
    with pytest.raises(InvalidInput, match="layer must be one of"):
        cauce.data.register("a", orders(3), layer="platinum")


def test_redact_url_hides_passwords() -> None:
    assert redact_url("s3://key:secret@bucket/x.csv") == "s3://key:***@bucket/x.csv"
    assert redact_url("https://h/x.csv?sig=abc&v=1") == "https://h/x.csv?sig=***&v=1"
    assert redact_url("data/x.csv") == "data/x.csv"
    source = FileSource("https://u:pw@example.com/x.parquet")
    assert "pw" not in source.description
    sql = SqlSource("SELECT 1", "postgresql+psycopg://u:pw@db:5432/shop")
    assert sql.description == "sql: SELECT 1 @ postgresql+psycopg://u:***@db:5432/shop"
    in_query = SqlSource("SELECT 1", "mysql+pymysql://db/shop?password=pw&charset=utf8")
    assert "pw" not in in_query.url and "password=***" in in_query.url


def test_format_comes_from_the_extension_or_the_argument(tmp_path: Path) -> None:
    assert FileSource("x.CSV").format == "csv"
    assert FileSource("s3://b/x.parquet?versionId=3").format == "parquet"
    assert FileSource("x.jsonl.gz").format == "jsonl"
    assert FileSource("x.data", format="csv").format == "csv"
    with pytest.raises(InvalidInput, match="unsupported data format 'xlsx'"):
        FileSource("x.xlsx", format="xlsx")
