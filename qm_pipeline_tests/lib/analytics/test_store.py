"""The analytics tables as written to DuckDB and PostgreSQL: money exact to the column's
18 places across its whole 38-digit range, not only what Python's default context holds."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd

from qm_pipeline.lib.analytics.store import write_tables
from qm_pipeline.lib.warehouse.engine import Warehouse
from qm_pipeline_tests.helpers import rows

NAVS = [Decimal("12345678901.123456789012345678"),  # 29 digits: beyond the default 28
        Decimal("98765432109876543210.000000000000000001"), Decimal("0.1")]


def test_large_money_is_written_exactly(warehouse: Warehouse) -> None:
    daily = pd.DataFrame({"account_id": ["JPY1", "BIG", "ALL"],
                          "date": [dt.date(2024, 1, 2)] * 3, "nav": NAVS,
                          "daily_return": [0.01, None, float("nan")]})
    with warehouse.transaction() as tx:
        written = write_tables(tx, {"portfolio_daily": daily})

    assert written["portfolio_daily"] == 3
    found = rows(warehouse, "SELECT account_id, nav, daily_return FROM "
                 "analytics.portfolio_daily ORDER BY nav")
    assert found == [("ALL", NAVS[2], None), ("JPY1", NAVS[0], 0.01), ("BIG", NAVS[1], None)]
