"""Checks over a build's tables, read back as an analyst would: do the contributions in
`attribution_daily` and `attribution` add up to the returns in `portfolio_daily` and
`performance`? (The build asserts it as it computes; this re-adds what was stored.)"""

from __future__ import annotations

import pandas as pd

TOLERANCE = 1e-9


def contribution_gap(tables: dict[str, pd.DataFrame]) -> float:
    """The largest |sum of contributions - return| over every account, level, day and
    window; 0.0 when there is nothing to attribute."""
    return max(_daily_gap(tables), _window_gap(tables), 0.0)


def _daily_gap(tables: dict[str, pd.DataFrame]) -> float:
    contributions, daily = tables.get("attribution_daily"), tables.get("portfolio_daily")
    if contributions is None or contributions.empty:
        return 0.0
    sums = contributions.groupby(["account_id", "level", "date"])["contribution"].sum()
    returns = daily.assign(date=pd.to_datetime(daily["date"])).set_index(
        ["account_id", "date"])["daily_return"].dropna()
    joined = sums.reset_index("level").join(returns, how="right").fillna({"contribution": 0.0})
    return float((joined["contribution"] - joined["daily_return"]).abs().max())


def _window_gap(tables: dict[str, pd.DataFrame]) -> float:
    linked, performance = tables.get("attribution"), tables.get("performance")
    if linked is None or linked.empty:
        return 0.0
    sums = linked.groupby(["account_id", "window", "level"])["contribution"].sum()
    twr = performance.set_index(["account_id", "window"])["twr"]
    joined = sums.reset_index("level").join(twr, how="inner")
    return float((joined["contribution"] - joined["twr"]).abs().max())
