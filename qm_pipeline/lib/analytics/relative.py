"""Statistics against a benchmark, on the dates both series have (DOMAIN.md §5).

Days one series lacks are dropped from both, never filled. With r the portfolio's daily
returns, b the benchmark's and rf the daily risk-free rate:
beta = cov(r, b) / var(b); alpha = 252 * (mean(r - rf) - beta * mean(b - rf)) (annual,
arithmetic, as DOMAIN.md states it; empyrical compounds instead); correlation is
Pearson's; tracking error = std(r - b, ddof=1) * sqrt(252); information ratio =
mean(r - b) / std(r - b, ddof=1) * sqrt(252).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from qm_pipeline.lib.analytics.conventions import (
    ANNUALISE,
    NAN,
    TRADING_DAYS,
    daily_rate,
    ratio,
)


@dataclass(frozen=True)
class Relative:
    """The portfolio against a benchmark over their common dates."""

    days: int  # common dates used
    beta: float
    alpha: float  # annual
    correlation: float
    tracking_error: float  # annual
    information_ratio: float  # annual


def relative(returns: pd.Series, benchmark: pd.Series, rf: float = 0.0) -> Relative:
    """Beta, alpha, correlation, tracking error and information ratio (NaN under 2 days)."""
    both = pd.concat({"r": returns, "b": benchmark}, axis=1, join="inner").dropna()
    if len(both) < 2:
        return Relative(len(both), NAN, NAN, NAN, NAN, NAN)
    r, b = both["r"].to_numpy(), both["b"].to_numpy()
    cov = np.cov(r, b, ddof=1)
    beta = ratio(cov[0, 1], cov[1, 1])
    rf_daily = daily_rate(rf)
    alpha = TRADING_DAYS * (np.mean(r - rf_daily) - beta * np.mean(b - rf_daily))
    active = r - b
    active_std = float(np.std(active, ddof=1))
    return Relative(
        days=len(both), beta=beta, alpha=float(alpha),
        correlation=ratio(cov[0, 1], float(np.sqrt(cov[0, 0] * cov[1, 1]))),
        tracking_error=active_std * ANNUALISE,
        information_ratio=ratio(float(np.mean(active)), active_std) * ANNUALISE,
    )
