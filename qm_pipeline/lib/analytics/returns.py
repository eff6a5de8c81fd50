"""Daily returns, the TWR index and drawdown of one account, as IB links them.

DOMAIN.md §5: external flows (deposits, withdrawals, transfers) arrive at the start of the
day, so the day's return is

    r_t = (NAV_t - NAV_{t-1} - F_t) / (NAV_{t-1} + F_t)

and returns link by product. Dividends, interest, fees and FX are not flows: they stay
inside the return. Inputs are float64 series from `boundary` (dates -> NAV, dates -> flow).

Conventions applied here:
- Inception is the first NAV date: it has no return, and the TWR index is 1.0 there.
- A day without a NAV is dropped, never zero-filled: the next NAV's return spans the gap,
  and the flows dated inside the gap are counted at the start of that return.
- Flows dated on or before the first NAV, or after the last, belong to no return (the
  first NAV already holds them; the last has not seen them yet) and are left out.
- A day whose starting capital `NAV_{t-1} + F_t` is zero has no defined return: dropped.
- Drawdown is measured on the TWR index, never on NAV (deposits are not gains).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import pandas as pd

from qm_pipeline.lib.analytics.boundary import DateLike, to_timestamp

Frame = TypeVar("Frame", pd.Series, pd.DataFrame)

PORTFOLIO_DAILY_COLUMNS = [
    "nav", "external_flow", "pnl", "daily_return", "twr_index", "drawdown",
]


def align_to_returns(nav_dates: pd.DatetimeIndex, amounts: Frame, zero: object = 0.0) -> Frame:
    """Dated amounts summed onto the NAV date whose return holds them: the first NAV date
    on or after theirs (a flow or P&L dated inside a gap of missing NAVs joins the return
    that spans the gap).

    Works on a series (flows) or a frame (P&L per position). The result is on
    `nav_dates`, `zero` where nothing belongs (a zero amount, not a zero return; pass
    Decimal(0) for exact money). Amounts on or before the first NAV date or after the last
    are left out.
    """
    position = nav_dates.searchsorted(amounts.index, side="left")
    belongs = (position > 0) & (position < len(nav_dates))
    assigned = amounts[belongs].groupby(nav_dates[position[belongs]]).sum()
    return assigned.reindex(nav_dates, fill_value=zero)


def daily_returns(nav: pd.Series, flows: pd.Series | None = None) -> pd.Series:
    """IB-linked daily returns, one per NAV date after inception (DOMAIN.md §5)."""
    return _daily_frame(nav, flows)["daily_return"].dropna()


def twr_index(returns: pd.Series, base_date: DateLike | None = None) -> pd.Series:
    """Growth of 1.0 under the linked returns; with `base_date`, 1.0 is prepended there.

    Pass the inception (or the day before a window) as `base_date` so that a loss on the
    first day shows as a drawdown from 1.0.
    """
    index = (1.0 + returns).cumprod()
    if base_date is None:
        return index
    base = pd.Series([1.0], index=pd.DatetimeIndex([to_timestamp(base_date)]))
    return pd.concat([base, index])


def drawdown(index: pd.Series) -> pd.Series:
    """Fall of a TWR index from its running peak: 0 at a peak, negative below it."""
    return index / index.cummax() - 1.0


def link(returns: pd.Series | np.ndarray) -> float:
    """Returns linked by product over the whole series: prod(1 + r) - 1."""
    return float(np.prod(1.0 + np.asarray(returns, dtype="float64")) - 1.0)


def period_returns(returns: pd.Series, start: DateLike, end: DateLike) -> pd.Series:
    """The returns of a statement period, `start` and `end` included.

    IB's period starts from the NAV at the close before `fromDate`, so the return dated
    `fromDate` belongs to the period, as does the one dated `toDate`.
    """
    return returns.loc[to_timestamp(start):to_timestamp(end)]


def portfolio_daily(nav: pd.Series, flows: pd.Series | None = None) -> pd.DataFrame:
    """One account's daily table: NAV, flow, P&L, return, TWR index and drawdown.

    Indexed by NAV date; columns `PORTFOLIO_DAILY_COLUMNS`. `pnl` is NAV change less flows
    (NaN at inception), `daily_return` is NaN at inception and on zero-capital days. On a
    zero-capital day the index keeps its level (nothing was invested, nothing changed).
    """
    frame = _daily_frame(nav, flows)
    returns = frame["daily_return"].dropna()
    if frame.empty:
        return frame.assign(twr_index=[], drawdown=[])[PORTFOLIO_DAILY_COLUMNS]
    index = twr_index(returns, frame.index[0]).reindex(frame.index).ffill()
    return frame.assign(twr_index=index, drawdown=drawdown(index))[PORTFOLIO_DAILY_COLUMNS]


def _daily_frame(nav: pd.Series, flows: pd.Series | None) -> pd.DataFrame:
    nav = nav.dropna().sort_index()
    flow = align_to_returns(nav.index, flows if flows is not None else nav.iloc[:0])
    previous = nav.shift(1)
    pnl = nav - previous - flow
    capital = previous + flow
    daily_return = (pnl / capital).where(capital != 0.0)
    return pd.DataFrame(
        {"nav": nav, "external_flow": flow, "pnl": pnl, "daily_return": daily_return},
        index=nav.index,
    )


@dataclass(frozen=True)
class MaxDrawdown:
    """The deepest fall of a TWR index: depth (negative, 0.0 if none) and its dates.

    `peak` is the close the fall started from (the last one at that level), `trough` its
    lowest close, `recovery` the first close back at the peak's level (None while not
    recovered). Dates are None when the index never fell.
    """

    depth: float
    peak: dt.date | None
    trough: dt.date | None
    recovery: dt.date | None


def max_drawdown(index: pd.Series) -> MaxDrawdown:
    """Deepest drawdown of a TWR index (with its base row, so a first-day loss counts)."""
    falls = drawdown(index)
    if falls.empty or falls.min() >= 0.0:
        return MaxDrawdown(0.0, None, None, None)
    trough = falls.idxmin()
    before = index.loc[:trough]
    peak = before.index[before == before.max()][-1]  # the last close at the peak's level
    recovered = index.loc[trough:][index.loc[trough:] >= index.loc[peak]]
    recovery = recovered.index[0].date() if not recovered.empty else None
    return MaxDrawdown(float(falls.min()), peak.date(), trough.date(), recovery)
