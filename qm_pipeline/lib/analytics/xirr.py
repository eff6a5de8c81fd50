"""Money-weighted return (XIRR): the one annual rate that discounts the investor's cash
flows and the ending value to zero.

Shown beside TWR: TWR judges the manager (flows do not count), XIRR the investor's timing
(a deposit before a fall hurts it). Cash flows are from the investor's side: money paid
into the account is negative, money taken out and the ending value positive. Time is in
years of 365 days from the first flow (Actual/365, as spreadsheet XIRR does).

Root finding: `scipy.optimize.brentq` on a bracket found by widening, not Newton. Newton
needs a good start and can step below -100% (where the rate is undefined) or diverge on
short periods, whose annualised rates are huge (+1% in a day is +3,600% a year). Brent's
method cannot leave a bracket whose ends have opposite signs and always converges. With
flows of one sign followed by the ending value, the NPV is monotone and the root unique;
when the flows change sign several times more than one rate may exist and the one in the
first bracket found, searching outward from 0%, is returned.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy.optimize import brentq

from qm_pipeline.lib.analytics.boundary import DateLike, to_timestamp
from qm_pipeline.lib.analytics.returns import align_to_returns

DAYS_PER_YEAR = 365.0  # Actual/365, the XIRR convention
LOWEST_RATE = -1.0 + 1e-9  # -100% is a total loss; below it the discounting is undefined
HIGHEST_RATE = 1e9


def xirr(cash_flows: pd.Series) -> float | None:
    """Annual money-weighted rate of dated cash flows (investor's signs); None if none.

    `cash_flows`: float64 amounts indexed by date (see `boundary.daily_sums`). There is no
    rate unless some flows are positive and some negative.
    """
    flows = cash_flows[cash_flows != 0.0]
    if not ((flows > 0).any() and (flows < 0).any()):
        return None
    years = ((flows.index - flows.index[0]).days / DAYS_PER_YEAR).to_numpy()
    amounts = flows.to_numpy(dtype="float64")

    def npv(rate: float) -> float:
        return float(np.sum(amounts * np.exp(-years * np.log1p(rate))))

    bracket = _bracket(npv)
    return None if bracket is None else float(brentq(npv, *bracket, xtol=1e-12, rtol=1e-12))


def money_weighted_return(nav: pd.Series, flows: pd.Series | None = None,
                          start: DateLike | None = None, end: DateLike | None = None
                          ) -> float | None:
    """XIRR of an account from the NAV at `start` to the NAV at `end` (default: all of it).

    The opening NAV counts as paid in at `start`, each external flow of the returns in
    (start, end] as paid in (deposit) or out (withdrawal) on its date, and the closing
    NAV as taken out at `end`: the same flows TWR neutralises (`returns.align_to_returns`).
    """
    nav = nav.loc[_bound(start):_bound(end)]
    if len(nav) < 2:
        return None
    external = align_to_returns(nav.index, flows if flows is not None else nav.iloc[:0])
    investor = -external.iloc[1:]  # a deposit is the investor's outflow
    ends = pd.Series([-nav.iloc[0], nav.iloc[-1]], index=nav.index[[0, -1]])
    return xirr(pd.concat([ends, investor]).groupby(level=0).sum())


def _bracket(npv: Callable[[float], float]) -> tuple[float, float] | None:
    """Rates around 0% widened geometrically until the NPV changes sign between them."""
    low, high = -0.5, 0.5
    for _ in range(200):
        if npv(low) * npv(high) <= 0.0:
            return low, high
        low = max(LOWEST_RATE, -1.0 + (1.0 + low) / 4.0)
        high = min(HIGHEST_RATE, high * 4.0 + 1.0)
    return None


def _bound(day: DateLike | None) -> pd.Timestamp | None:
    return None if day is None else to_timestamp(day)
