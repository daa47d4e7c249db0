"""The floor of the checks benchmark: the suite's failing counts as one hand-written DuckDB query.

No Cauce code: what an engineer who knows DuckDB would write by hand to get the same 20
numbers from the benchmark's Parquet file. One statement, one ``count_if`` per row check in a
single scan, and the ``unique`` check the way a person writes it: group the column, keep the
values seen more than once, add up their copies. The connection is ``duckdb.connect()`` with
DuckDB's defaults, as Cauce's own (threads = the machine's cores).

The query is written out for this suite (its values, patterns and bounds are literals); the
benchmark compares its counts with Cauce's, pandera's and the injected violations, so a suite
that changed without it would show as a disagreement.

Example::

    python benchmarks/checks_floor.py .bench/checks/data-200000-seed7.parquet
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any

# A null is not a failure except for `not_null`: count_if skips the NULL that a comparison of a
# null gives. The predicate's null (a null price) fails, hence IS NOT TRUE. Aliases: the
# suite's check names.
QUERY = """
SELECT
    count(*)                                                             AS "row count",
    count_if(order_id IS NULL)                                           AS "order_id present",
    (SELECT coalesce(sum(copies), 0) FROM (
        SELECT count(*) AS copies FROM read_parquet({file})
        WHERE order_id IS NOT NULL
        GROUP BY order_id HAVING count(*) > 1
    ))                                                                   AS "order_id unique",
    count_if(NOT regexp_full_match(order_id, 'ORD-[0-9]{{10}}'))         AS "order_id format",
    count_if(customer_id IS NULL)                                        AS "customer_id present",
    count_if(customer_id NOT BETWEEN 1 AND 1000000)                      AS "customer_id range",
    count_if(quantity NOT BETWEEN 1 AND 100)                             AS "quantity range",
    count_if(price IS NULL)                                              AS "price mostly present",
    count_if(price <= 0)                                                 AS "price positive",
    count_if(tax_rate NOT BETWEEN 0 AND 0.25)                            AS "tax_rate range",
    count_if(score NOT BETWEEN -10 AND 10)                               AS "score range",
    count_if(status NOT IN ('new', 'paid', 'shipped', 'delivered', 'returned'))
                                                                         AS "status known",
    count_if(channel NOT IN ('web', 'store', 'app', 'phone'))            AS "channel known",
    count_if(country NOT IN ('AR', 'BR', 'CA', 'CL', 'CO', 'DE', 'ES', 'FR', 'GB', 'IN',
                             'IT', 'JP', 'MX', 'NL', 'PE', 'PT', 'SE', 'US', 'UY', 'ZA'))
                                                                         AS "country known",
    count_if(NOT regexp_full_match(email, '[a-z0-9]+@[a-z]+\\.com'))     AS "email format",
    count_if(NOT regexp_full_match(sku, 'SKU-[0-9]{{5}}'))               AS "sku format",
    count_if((discount <= price) IS NOT TRUE)                            AS "discount within price",
    count_if(latency_ms > 60000)                                         AS "latency bound",
    count_if(created_at IS NULL)                                         AS "created_at present",
    count_if(rating NOT IN (1, 2, 3, 4, 5))                              AS "rating known"
FROM read_parquet({file})
"""


def query(data: Path) -> str:
    """The statement for one Parquet file."""
    file = "'" + str(Path(data).resolve()).replace("'", "''") + "'"
    return QUERY.format(file=file)


def count(data: Path) -> dict[str, int]:
    """Run the statement on a fresh connection: each check's failing rows, and ``row count``."""
    import duckdb

    con = duckdb.connect()
    try:
        cursor = con.execute(query(data))
        names = [d[0] for d in cursor.description]
        row = cursor.fetchone()
    finally:
        con.close()
    assert row is not None  # an aggregate answers one row
    return {name: int(value) for name, value in zip(names, row, strict=True)}


def settings() -> dict[str, Any]:
    """The settings a fresh connection runs with (the same defaults Cauce's connection has)."""
    import duckdb

    con = duckdb.connect()
    try:
        names = ("threads", "memory_limit", "preserve_insertion_order")
        values = [con.execute(f"SELECT current_setting('{n}')").fetchone() for n in names]
    finally:
        con.close()
    return {"duckdb": duckdb.__version__} | {
        n: v[0] for n, v in zip(names, values, strict=True) if v
    }


class Floor:
    """The hand-written query, timed once per :meth:`turn`, in this process.

    One untimed run first (as Cauce's warm-up), whose counts are kept; every timed run must
    give the same counts.
    """

    def __init__(self, data: Path, reps: int) -> None:
        self.data = data
        self.left = reps
        self.counts = count(data)
        self.samples: list[float] = []
        self.cpu_samples: list[float] = []

    def turn(self) -> None:
        """Time one run (nothing once its ``reps`` are done)."""
        if self.left <= 0:
            return
        self.left -= 1
        wall, cpu = time.perf_counter(), time.process_time()
        counts = count(self.data)
        self.samples.append(time.perf_counter() - wall)
        self.cpu_samples.append(time.process_time() - cpu)
        if counts != self.counts:
            raise SystemExit("the hand-written query gave different counts on the same data")

    def result(self) -> dict[str, Any]:
        """The figures, after the turns not taken yet."""
        while self.left > 0:
            self.turn()
        return {
            **settings(),
            "query": query(self.data),
            "rows": self.counts["row count"],
            "samples_s": self.samples,
            "cpu_samples_s": self.cpu_samples,
            "median_s": statistics.median(self.samples),
            "failing": {k: v for k, v in self.counts.items() if k != "row count"},
        }


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python benchmarks/checks_floor.py DATA.parquet")
    started = time.perf_counter()
    for name, value in count(Path(sys.argv[1])).items():
        print(f"{name:24} {value:>12,}")
    print(f"{time.perf_counter() - started:.2f} s")
