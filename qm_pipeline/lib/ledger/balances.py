"""`ledger.balance_history`: end-of-day cash per account, by currency and in base.

Sources (IB's own figures; nothing is re-derived from trades):
- `core.nav_daily.cash` (EquitySummaryByReportDateInBase): the account's total cash in its
  base currency at the end of every report date: rows with currency `BASE`;
- `core.cash_balances.ending_cash` (CashReport, one row per currency and statement period):
  cash in each currency at the end of the period (`to_date`), converted to base with IB's
  rate of that day (`core.fx_rates`, the latest on or before it; NULL when IB gave none),
  rounded half-even to 18 decimals. Its BASE_SUMMARY row fills the `BASE` row of a date
  `nav_daily` does not cover.
Per-currency balances are therefore known at statement ends, the base total every day.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal

import pyarrow as pa

from qm_pipeline.lib.ledger.money import rounded
from qm_pipeline.lib.ledger.sources import account_filter, read_arrow
from qm_pipeline.lib.warehouse.engine import Tx

MONEY = pa.decimal128(38, 18)
BASE = "BASE"
_DEC = pa.decimal128(38, 12)
_EPOCH = dt.datetime(1900, 1, 1)

BALANCE_HISTORY = pa.schema([
    ("account_id", pa.string()),
    ("date", pa.date32()),
    ("currency", pa.string()),  # ISO code, or BASE for the total in base currency
    ("cash", MONEY),  # in `currency` (for BASE: in the base currency)
    ("cash_base", MONEY),  # in the account's base currency
    ("base_currency", pa.string()),
    ("source", pa.string()),  # core.nav_daily or core.cash_balances
])


def balance_history(tx: Tx, accounts: Iterable[str] | None = None) -> pa.Table:
    where = account_filter(accounts)
    nav = read_arrow(tx, f"SELECT account_id, report_date, currency, cash FROM core.nav_daily "
                         f"WHERE cash IS NOT NULL AND report_date IS NOT NULL AND {where}",
                     {"account_id": pa.string(), "report_date": pa.date32(),
                      "currency": pa.string(), "cash": _DEC}).to_pylist()
    periods = read_arrow(
        tx, f"SELECT account_id, currency, from_date, to_date, ending_cash, when_generated "
            f"FROM core.cash_balances WHERE ending_cash IS NOT NULL AND to_date IS NOT NULL "
            f"AND {where}",
        {"account_id": pa.string(), "currency": pa.string(), "from_date": pa.date32(),
         "to_date": pa.date32(), "ending_cash": _DEC, "when_generated": pa.timestamp("s")},
    ).to_pylist()
    fx = read_arrow(tx, "SELECT report_date, from_currency, to_currency, rate "
                        "FROM core.fx_rates WHERE rate IS NOT NULL",
                    {"report_date": pa.date32(), "from_currency": pa.string(),
                     "to_currency": pa.string(), "rate": _DEC}).to_pylist()
    base_of = dict(tx.execute(f"SELECT account_id, currency FROM core.accounts "
                              f"WHERE currency IS NOT NULL AND {where}"))
    for r in nav:
        base_of.setdefault(r["account_id"], r["currency"])
    rates = _rates(fx)

    rows: dict[tuple[str, dt.date, str], dict] = {}
    for r in nav:
        rows[(r["account_id"], r["report_date"], BASE)] = _row(
            r["account_id"], r["report_date"], BASE, r["cash"], r["cash"],
            base_of.get(r["account_id"]), "core.nav_daily")
    # several statements can end on one date: the newest report wins, then the longest period
    periods.sort(key=lambda r: (r["when_generated"] or _EPOCH,
                                -(r["from_date"] or dt.date.max).toordinal()), reverse=True)
    for r in periods:
        account, day, currency = r["account_id"], r["to_date"], r["currency"]
        base = base_of.get(account)
        if currency == "BASE_SUMMARY":
            key, local, in_base = (account, day, BASE), r["ending_cash"], r["ending_cash"]
        else:
            key, local = (account, day, currency), r["ending_cash"]
            in_base = _convert(local, currency, base, day, rates)
        if key not in rows:
            rows[key] = _row(account, day, key[2], local, in_base, base, "core.cash_balances")
    ordered = [rows[k] for k in sorted(rows)]
    return pa.Table.from_pylist(ordered, schema=BALANCE_HISTORY)


def _row(account: str, day: dt.date, currency: str, cash: Decimal, cash_base: Decimal | None,
         base: str | None, source: str) -> dict:
    return {"account_id": account, "date": day, "currency": currency, "cash": cash,
            "cash_base": cash_base, "base_currency": base, "source": source}


def _rates(fx: list[dict]) -> dict[tuple[str, str], tuple[list[dt.date], list[Decimal]]]:
    by_pair: dict[tuple[str, str], list[tuple[dt.date, Decimal]]] = defaultdict(list)
    for r in fx:
        by_pair[(r["from_currency"], r["to_currency"])].append((r["report_date"], r["rate"]))
    found = {}
    for pair, points in by_pair.items():
        points.sort()
        found[pair] = ([d for d, _ in points], [rate for _, rate in points])
    return found


def _convert(amount: Decimal, currency: str, base: str | None, day: dt.date,
             rates: dict[tuple[str, str], tuple[list[dt.date], list[Decimal]]]
             ) -> Decimal | None:
    if base is None:
        return None
    if currency == base:
        return amount
    days, values = rates.get((currency, base), ([], []))
    i = bisect.bisect_right(days, day)
    if not i:
        return None
    return rounded(amount * values[i - 1])
