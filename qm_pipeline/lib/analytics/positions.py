"""Each position's value and P&L per day, in base currency: the input of attribution.

The ledger records a position on the days it changed (`ledger.position_history`: quantity
and the day's mark). Between those days the quantity holds and the last mark stands (a
stale price, not a zero one); FX comes from IB's daily rates, carried forward the same way.
A position's P&L on day t is

    PnL_t = V_t - V_{t-1} + cash_t

with V its market value in base and cash_t what its trades, income and transfers paid
(negative) or brought (positive) that day (`sources.read_trade_cash`): a buy moves value
from cash into the position and is no P&L; a dividend is the position's P&L. These are
float64 statistics for attribution (see `boundary`); the exact money stays in `ledger`.
"""

from __future__ import annotations

import pandas as pd

KEY = ["account_id", "conid"]


def fx_to_base(fx: pd.DataFrame, base: str, dates: pd.DatetimeIndex) -> pd.DataFrame:
    """dates x currency: rate into `base`, carried forward; 1.0 for the base itself."""
    into = fx[fx["to_currency"] == base]
    wide = (into.assign(date=pd.to_datetime(into["date"]), rate=into["rate"].astype(float))
            .pivot_table(index="date", columns="currency", values="rate", aggfunc="last"))
    wide = wide.reindex(wide.index.union(dates)).ffill().bfill().reindex(dates)
    wide[base] = 1.0
    return wide


def marks(prices: pd.DataFrame, history: pd.DataFrame, dates: pd.DatetimeIndex) -> pd.DataFrame:
    """dates x conid: each instrument's price, carried forward to the days without one.

    `core.prices` first (any account's execution that day gives the instrument's close);
    the ledger's own marks fill what it lacks."""
    known = prices[prices["conid"].notna()].rename(columns={"price": "mark"})
    rows = pd.concat([known[["conid", "date", "mark"]].assign(rank=0),
                      history[["conid", "date", "mark"]].assign(rank=1)], ignore_index=True)
    rows = rows[rows["mark"].notna()].assign(date=lambda f: pd.to_datetime(f["date"]))
    best = rows.sort_values("rank").drop_duplicates(["conid", "date"])
    wide = _wide(best, "mark")
    return wide.reindex(wide.index.union(dates)).ffill().reindex(dates)


def account_positions(history: pd.DataFrame, cash: pd.DataFrame, prices: pd.DataFrame,
                      rates: pd.DataFrame, dates: pd.DatetimeIndex
                      ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(value, pnl): dates x conid frames in base for one account, on `dates` (which must
    hold every history and cash date: pass the union with the NAV dates). `prices`: dates x
    conid marks (`marks`)."""
    h = history.assign(date=pd.to_datetime(history["date"]))
    quantity = _wide(h, "quantity").reindex(dates).ffill().fillna(0.0)
    mark = prices.reindex(columns=quantity.columns)
    meta = h.groupby("conid")[["currency", "multiplier"]].last()
    local = quantity * mark.fillna(0.0) * meta["multiplier"].astype(float)
    value = local * rates.reindex(columns=meta["currency"]).set_axis(local.columns, axis=1)
    paid = (cash.assign(date=pd.to_datetime(cash["date"]), amount=cash["amount"].astype(float))
            .pivot_table(index="date", columns="conid", values="amount", aggfunc="sum"))
    paid = paid.reindex(index=dates, columns=value.columns.union(paid.columns)).fillna(0.0)
    value = value.reindex(columns=paid.columns).fillna(0.0)
    pnl = value.diff().fillna(value) + paid
    return value, pnl


def calendar(*frames: pd.DataFrame | pd.Series | pd.DatetimeIndex) -> pd.DatetimeIndex:
    """The sorted union of the dates in `frames` (a `date` column or the index)."""
    found = pd.DatetimeIndex([])
    for f in frames:
        dates = f if isinstance(f, pd.DatetimeIndex) else (
            f["date"] if isinstance(f, pd.DataFrame) and "date" in f else f.index)
        found = found.union(pd.DatetimeIndex(pd.to_datetime(dates)).unique())
    return found


def _wide(history: pd.DataFrame, column: str) -> pd.DataFrame:
    values = history.assign(**{column: history[column].astype(float)})
    return values.pivot_table(index="date", columns="conid", values=column, aggfunc="last")
