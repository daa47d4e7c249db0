"""The floor of the checks benchmark: the suite's failing counts as hand-written DuckDB queries.

No Cauce code: what an engineer who knows DuckDB would write by hand to get the same 20
numbers from the benchmark's Parquet file, each check in its cheapest exact form for this
suite. One statement per variant: one ``count_if`` per row check in a single scan of the file,
and ``unique`` (every copy of a repeated value fails) as a scalar subquery that reads
``order_id`` again. The variants differ only in that subquery, the costliest check in SQL:

- ``group``: group the values, keep those seen more than once, add up their copies;
- ``sort``: sort the values; a value equal to its neighbour is repeated;
- ``hash-sort``: sort the values' 64-bit hashes; the rows whose hash repeats are grouped
  by value, so that a hash collision cannot change the count.

The fastest form depends on the machine (cores, memory) and its load, so the benchmark times
every variant in each turn and takes the fastest median as the floor. One connection with
DuckDB's defaults, as Cauce's own (threads = the machine's cores), serves every run.

The queries are written out for this suite (its values, patterns and bounds are literals); the
benchmark compares their counts with Cauce's, pandera's and the injected violations, so a suite
that changed without them would show as a disagreement.

Example::

    python benchmarks/checks_floor.py .bench/checks/data-200000-seed7.parquet
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any

# One count_if per row check; aliases are the suite's check names. count_if skips the NULL
# that a comparison with a null gives, so a null fails only `not_null` and the predicate (a null
# price), through IS NOT TRUE. The cheapest exact form of each check: a value list on text is
# a cast to an ENUM of its values (an unknown value casts to NULL); on integers a range; the
# two fixed-width patterns are GLOBs, the same full match as their regexes; the email pattern
# has repetitions a GLOB cannot say, so it stays an RE2 full match.
QUERY = """
SELECT
    count(*)                                                             AS "row count",
    count_if(order_id IS NULL)                                           AS "order_id present",
    count_if(order_id NOT GLOB 'ORD-[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]')
                                                                         AS "order_id format",
    count_if(customer_id IS NULL)                                        AS "customer_id present",
    count_if(customer_id NOT BETWEEN 1 AND 1000000)                      AS "customer_id range",
    count_if(quantity NOT BETWEEN 1 AND 100)                             AS "quantity range",
    count_if(price IS NULL)                                              AS "price mostly present",
    count_if(price <= 0)                                                 AS "price positive",
    count_if(tax_rate NOT BETWEEN 0 AND 0.25)                            AS "tax_rate range",
    count_if(score NOT BETWEEN -10 AND 10)                               AS "score range",
    count_if(status IS NOT NULL AND TRY_CAST(status AS
        ENUM('new', 'paid', 'shipped', 'delivered', 'returned')) IS NULL) AS "status known",
    count_if(channel IS NOT NULL AND TRY_CAST(channel AS
        ENUM('web', 'store', 'app', 'phone')) IS NULL)                   AS "channel known",
    count_if(country IS NOT NULL AND TRY_CAST(country AS
        ENUM('AR', 'BR', 'CA', 'CL', 'CO', 'DE', 'ES', 'FR', 'GB', 'IN',
             'IT', 'JP', 'MX', 'NL', 'PE', 'PT', 'SE', 'US', 'UY', 'ZA')) IS NULL)
                                                                         AS "country known",
    count_if(NOT regexp_full_match(email, '[a-z0-9]+@[a-z]+\\.com'))     AS "email format",
    count_if(sku NOT GLOB 'SKU-[0-9][0-9][0-9][0-9][0-9]')               AS "sku format",
    count_if((discount <= price) IS NOT TRUE)                            AS "discount within price",
    count_if(latency_ms > 60000)                                         AS "latency bound",
    count_if(created_at IS NULL)                                         AS "created_at present",
    count_if(rating NOT BETWEEN 1 AND 5)                                 AS "rating known",
    {unique}                                                             AS "order_id unique"
FROM read_parquet({file})
"""

# The `unique` check, each a scalar subquery of the statement above.
UNIQUE = {
    "group": """(SELECT coalesce(sum(copies), 0) FROM (
        SELECT count(*) AS copies FROM read_parquet({file})
        WHERE order_id IS NOT NULL
        GROUP BY order_id HAVING count(*) > 1
    ))""",
    "sort": """(SELECT count_if(repeated) FROM (
        SELECT order_id = lag(order_id) OVER byvalue
            OR order_id = lead(order_id) OVER byvalue AS repeated
        FROM read_parquet({file})
        WHERE order_id IS NOT NULL
        WINDOW byvalue AS (ORDER BY order_id)
    ))""",
    "hash-sort": """(SELECT coalesce(sum(copies), 0) FROM (
        SELECT count(*) AS copies FROM read_parquet({file})
        WHERE order_id IS NOT NULL AND hash(order_id) IN (
            SELECT h FROM (
                SELECT h, h = lag(h) OVER byhash OR h = lead(h) OVER byhash AS repeated
                FROM (SELECT hash(order_id) AS h FROM read_parquet({file})
                      WHERE order_id IS NOT NULL)
                WINDOW byhash AS (ORDER BY h)
            ) WHERE repeated
        )
        GROUP BY order_id HAVING count(*) > 1
    ))""",
}


def queries(data: Path) -> dict[str, str]:
    """Each variant's statement for one Parquet file."""
    file = "'" + str(Path(data).resolve()).replace("'", "''") + "'"
    return {
        name: QUERY.format(unique=unique.format(file=file).strip(), file=file)
        for name, unique in UNIQUE.items()
    }


def count(con: Any, query: str) -> dict[str, int]:
    """Run one statement: each check's failing rows, and ``row count``."""
    cursor = con.execute(query)
    names = [d[0] for d in cursor.description]
    row = cursor.fetchone()
    assert row is not None  # an aggregate answers one row
    return {name: int(value) for name, value in zip(names, row, strict=True)}


def settings(con: Any) -> dict[str, Any]:
    """The settings the connection runs with (DuckDB's defaults, which are Cauce's too)."""
    import duckdb

    names = ("threads", "memory_limit", "preserve_insertion_order")
    values = [con.execute(f"SELECT current_setting('{n}')").fetchone() for n in names]
    return {"duckdb": duckdb.__version__} | {
        n: v[0] for n, v in zip(names, values, strict=True) if v
    }


class Floor:
    """Every variant timed once per :meth:`turn`, in this process, on one connection.

    One untimed run of each first (as Cauce's warm-up): every variant must give the same counts,
    and every timed run the counts of its untimed one. The variants' order rotates from one turn
    to the next, so that none always runs right after the other sides.
    """

    def __init__(self, data: Path, reps: int) -> None:
        import duckdb

        self.con = duckdb.connect()
        self.queries = queries(data)
        self.left = reps
        self.turns = 0
        first = {name: count(self.con, query) for name, query in self.queries.items()}
        self.counts = next(iter(first.values()))
        for name, counts in first.items():
            if counts != self.counts:
                differ = sorted(k for k in counts if counts[k] != self.counts[k])
                raise SystemExit(f"the floor's {name!r} query gives other counts for {differ}")
        self.samples: dict[str, list[float]] = {name: [] for name in self.queries}
        self.cpu_samples: dict[str, list[float]] = {name: [] for name in self.queries}

    def turn(self) -> None:
        """Time one run of every variant (nothing once its ``reps`` are done)."""
        if self.left <= 0:
            return
        self.left -= 1
        names = list(self.queries)
        shift = self.turns % len(names)
        self.turns += 1
        for name in names[shift:] + names[:shift]:
            wall, cpu = time.perf_counter(), time.process_time()
            counts = count(self.con, self.queries[name])
            self.samples[name].append(time.perf_counter() - wall)
            self.cpu_samples[name].append(time.process_time() - cpu)
            if counts != self.counts:
                raise SystemExit(f"the floor's {name!r} query gave other counts on the same data")

    def result(self) -> dict[str, Any]:
        """The figures, after the turns not taken yet: the fastest variant's, and every one's."""
        while self.left > 0:
            self.turn()
        found = settings(self.con)
        self.con.close()
        variants = {
            name: {
                "query": self.queries[name],
                "samples_s": self.samples[name],
                "cpu_samples_s": self.cpu_samples[name],
                "median_s": statistics.median(self.samples[name]),
                "cpu_median_s": statistics.median(self.cpu_samples[name]),
            }
            for name in self.queries
        }
        best = min(variants, key=lambda name: variants[name]["median_s"])
        return {
            **found,
            "variant": best,
            "query": self.queries[best],
            "rows": self.counts["row count"],
            "samples_s": self.samples[best],
            "cpu_samples_s": self.cpu_samples[best],
            "median_s": variants[best]["median_s"],
            "failing": {k: v for k, v in self.counts.items() if k != "row count"},
            "variants": variants,
        }


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python benchmarks/checks_floor.py DATA.parquet")
    floor = Floor(Path(sys.argv[1]), reps=1).result()
    print(f"{'row count':24} {floor['rows']:>12,}")
    for check, failing in floor["failing"].items():
        print(f"{check:24} {failing:>12,}")
    for variant, figures in floor["variants"].items():
        print(f"{variant:24} {figures['median_s']:.2f} s, {figures['cpu_median_s']:.2f} CPU-s")
