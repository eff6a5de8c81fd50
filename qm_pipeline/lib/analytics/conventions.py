"""The numeric conventions every metric shares (DOMAIN.md §5), defined once.

252 periods a year; risk-free rates and minimum acceptable returns are given as annual
rates and turned into daily ones geometrically, `(1 + rate)^(1/252) - 1`, so that 252 days
at the daily rate compound back to the annual one.
"""

from __future__ import annotations

import math

import numpy as np

TRADING_DAYS = 252  # DOMAIN.md §5: 252 periods a year
ANNUALISE = math.sqrt(TRADING_DAYS)  # daily dispersion to annual (i.i.d. days)


def daily_rate(annual: float) -> float:
    """Daily rate equivalent to an annual one (DOMAIN.md §5: `(1+rf)^(1/252)-1`)."""
    return (1.0 + annual) ** (1.0 / TRADING_DAYS) - 1.0


NAN = float("nan")


def ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator, NaN when the denominator is zero or NaN.

    A ratio over no dispersion (a flat series' Sharpe, a Calmar without drawdown) has no
    meaningful value; NaN says so where infinity or an exception would mislead or stop a
    whole table.
    """
    if denominator == 0.0 or np.isnan(denominator):
        return NAN
    return float(numerator / denominator)
