"""Generate the bundled customer-churn table (seeded, so the bundled file can be remade).

Run ``python -m cauce.demo.generate`` to rewrite ``data/customers.csv.gz``. The table has
numerical, categorical and timestamp columns, a churn label that depends on them, and a few
injected errors (missing charges, impossible ages, a duplicated customer) for the quality bar.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

BUNDLED = Path(__file__).parent / "data" / "customers.csv.gz"


def customers(rows: int = 20_000, seed: int = 7, drifted: bool = False) -> pd.DataFrame:
    """A synthetic churn table with ``rows`` customers.

    ``drifted`` draws them from the market some months later: more month-to-month contracts and
    fiber, a price rise, and customers who leave over price and support far more readily — the
    decay the demo's monitor catches and its retraining repairs.
    """
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    contracts = [0.8, 0.13, 0.07] if drifted else [0.55, 0.25, 0.2]
    contract = rng.choice(["month-to-month", "one-year", "two-year"], rows, p=contracts)
    internets = [0.2, 0.65, 0.15] if drifted else [0.35, 0.45, 0.2]
    internet = rng.choice(["dsl", "fiber", "none"], rows, p=internets)
    payment = rng.choice(["card", "bank-transfer", "electronic-check", "mailed-check"], rows)
    tenure = rng.integers(1, 73, rows)
    age = rng.integers(18, 86, rows)
    base = (
        {"dsl": 50.0, "fiber": 98.0, "none": 27.0}
        if drifted
        else {"dsl": 45.0, "fiber": 80.0, "none": 25.0}
    )
    monthly = np.array([base[i] for i in internet]) + rng.normal(0, 12, rows).clip(-20, 40)
    monthly = monthly.round(2)
    total = (monthly * tenure * rng.uniform(0.95, 1.05, rows)).round(2)
    calls = rng.poisson(1.5, rows)
    signup = pd.Timestamp("2026-06-01") - pd.to_timedelta(tenure * 30, unit="D")

    logit = (
        -2.2
        + 2.6 * (internet == "fiber")
        - 1.5 * (contract == "month-to-month")
        + 0.08 * (monthly - 90)
        + 0.9 * calls
        - 0.01 * tenure
        if drifted
        else -1.2
        + 1.4 * (contract == "month-to-month")
        - 0.8 * (contract == "two-year")
        + 0.6 * (internet == "fiber")
        + 0.5 * (payment == "electronic-check")
        - 0.035 * tenure
        + 0.018 * (monthly - 60)
        + 0.35 * calls
        - 0.006 * (age - 45)
    )
    churned = (rng.uniform(0, 1, rows) < 1 / (1 + np.exp(-logit))).astype(int)
    frame = pd.DataFrame(
        {
            "customer_id": [f"C{i:06d}" for i in range(rows)],
            "signup_date": signup.strftime("%Y-%m-%d"),
            "age": age,
            "tenure_months": tenure,
            "contract": contract,
            "internet_service": internet,
            "payment_method": payment,
            "monthly_charges": monthly,
            "total_charges": total,
            "support_calls": calls,
            "churned": churned,
        }
    )
    # Injected errors, about 0.5% of rows: what a real export carries.
    bad = rng.choice(rows, size=max(3, rows // 200), replace=False)
    third = len(bad) // 3
    frame.loc[bad[:third], "total_charges"] = np.nan
    frame.loc[bad[third : 2 * third], "age"] = -1
    frame.loc[bad[2 * third :], "customer_id"] = frame.loc[bad[0], "customer_id"]
    return frame


def load_bundled() -> pd.DataFrame:
    """The bundled table."""
    import pandas as pd

    return pd.read_csv(BUNDLED)


if __name__ == "__main__":
    BUNDLED.parent.mkdir(parents=True, exist_ok=True)
    customers().to_csv(BUNDLED, index=False, compression={"method": "gzip", "mtime": 0})
    print(f"wrote {BUNDLED}")
