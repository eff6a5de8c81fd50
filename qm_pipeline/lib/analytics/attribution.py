"""Contribution of positions and groups to the portfolio's return, per day and per window.

Convention (chosen so contributions add up exactly under IB's linking, DOMAIN.md §5): a
position's contribution on day t is its P&L over the day divided by the day's starting
capital, the denominator of the day's return:

    c_i,t = PnL_i,t / (NAV_{t-1} + F_t),  r_t = (NAV_t - NAV_{t-1} - F_t) / (NAV_{t-1} + F_t)

Since the day's P&L is the sum of what every position and the cash earned, the
contributions sum to r_t. "Weight at the start of day x the position's return" is the same
number for a position held all day, but it misses the P&L of trades made during the day;
P&L / capital does not. Whatever the position P&L given does not explain (cash interest,
fees, FX on cash, rounding) is the `residual` column, so the sum is exact by construction
and checked.

Over a window, daily contributions are linked by Carino's method: each day is scaled by
k_t / k with k_t = ln(1 + r_t) / r_t and k = ln(1 + R) / R (k = 1 where the return is 0),
R the window's linked return. The linked contributions then sum exactly to R, which a
plain sum of daily contributions does not (compounding), and each day's weight reflects
the growth the portfolio had then.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from qm_pipeline.lib.analytics.returns import align_to_returns, link

RESIDUAL = "residual"
TOLERANCE = 1e-10  # float rounding of sums of a few thousand terms; far below 1e-4 (1 bp)


def daily_contributions(position_pnl: pd.DataFrame, daily: pd.DataFrame) -> pd.DataFrame:
    """Contribution of each position (column) per return date, plus `residual`.

    `position_pnl`: P&L in base per day, dates x positions (realized + unrealized change
    + income of that day; NaN where a position was not held, read as 0). P&L dated on a
    day without a NAV joins the return that spans it (`returns.align_to_returns`).
    `daily`: the account's `returns.portfolio_daily` table. Rows: the dates with a
    daily return; each row sums to `daily_return`.
    """
    returns = daily["daily_return"].dropna()
    capital = (daily["nav"] - daily["pnl"]).loc[returns.index]  # NAV_{t-1} + F_t
    pnl = align_to_returns(daily.index, position_pnl.fillna(0.0)).loc[returns.index]
    contributions = pnl.div(capital, axis=0)
    contributions[RESIDUAL] = returns - contributions.sum(axis=1)
    _check_sums(contributions.sum(axis=1), returns)
    return contributions


def group_contributions(contributions: pd.DataFrame, groups: Mapping[str, str]) -> pd.DataFrame:
    """Contributions summed by group (asset class, sector...); `residual` stays its own
    column, positions the mapping does not name go to `residual` too, not lost."""
    labels = [RESIDUAL if c == RESIDUAL else groups.get(c, RESIDUAL) for c in contributions]
    return contributions.T.groupby(labels).sum().T


def link_contributions(contributions: pd.DataFrame) -> pd.Series:
    """Each column's contribution over the whole window (Carino linking).

    `contributions`: daily contributions whose rows sum to the day's return (the output
    of `daily_contributions` or `group_contributions`, sliced to the window). The result
    sums to the window's linked return.
    """
    daily = contributions.sum(axis=1)
    total = link(daily)
    linked = contributions.mul(_carino(daily) / _carino(total), axis=0).sum()
    _check_sums(pd.Series([linked.sum()]), pd.Series([total]))
    return linked


def _carino(r: pd.Series | float) -> pd.Series | float:
    """ln(1 + r) / r, and 1 where r is 0 (its limit)."""
    values = np.asarray(r, dtype="float64")
    safe = np.where(values == 0.0, 1.0, values)
    k = np.where(values == 0.0, 1.0, np.log1p(values) / safe)
    return pd.Series(k, index=r.index) if isinstance(r, pd.Series) else float(k)


def _check_sums(sums: pd.Series, returns: pd.Series) -> None:
    """Contributions must add up to the return (issue 6's acceptance); fail loudly if not
    (NaN or infinite P&L, a capital of zero)."""
    gap = np.abs(sums.to_numpy() - returns.to_numpy())
    if not np.all(gap <= TOLERANCE):
        raise ValueError(f"contributions do not sum to the return: max gap {np.nanmax(gap)}")
