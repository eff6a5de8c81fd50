"""Performance of a daily return series, and the per-window table of `analytics.performance`.

Every formula is DOMAIN.md §5's; `rf` and `mar` are annual rates turned into daily ones by
`conventions.daily_rate`. With N the number of daily returns:

- TWR = prod(1 + r) - 1; CAGR = prod(1 + r)^(252/N) - 1 (trading days, not calendar);
- volatility = std(r, ddof=1) * sqrt(252);
- Sharpe = mean(r - rf) / std(r - rf, ddof=1) * sqrt(252);
- Sortino = mean(r - MAR) / DD * sqrt(252), DD = sqrt(sum(min(r - MAR, 0)^2) / N) over all
  N days (not only the losing ones); MAR defaults to rf (IB's PortfolioAnalyst uses 7.51%);
- max drawdown on the TWR index, negative, with its peak, trough and recovery dates;
  Calmar = CAGR / |max drawdown|;
- best and worst day; hit rate = share of days with a positive return.
A ratio whose denominator is zero, or which needs two returns and has fewer, is NaN.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from qm_pipeline.lib.analytics.boundary import DateLike, to_timestamp
from qm_pipeline.lib.analytics.conventions import (
    ANNUALISE,
    NAN,
    TRADING_DAYS,
    daily_rate,
    ratio,
)
from qm_pipeline.lib.analytics.relative import relative
from qm_pipeline.lib.analytics.returns import MaxDrawdown, link, max_drawdown, twr_index
from qm_pipeline.lib.analytics.windows import Window, windows


@dataclass(frozen=True)
class Performance:
    """Absolute performance statistics of one return series (see the module docstring)."""

    days: int
    twr: float
    cagr: float
    volatility: float
    sharpe: float
    sortino: float
    max_drawdown: MaxDrawdown
    calmar: float
    best_day: float
    best_date: dt.date | None
    worst_day: float
    worst_date: dt.date | None
    hit_rate: float


def performance(returns: pd.Series, base_date: DateLike | None = None, rf: float = 0.0,
                mar: float | None = None) -> Performance:
    """Statistics of daily `returns` (float64 by date; missing days already dropped).

    `base_date` is the close the series starts from (inception, or the day before a
    window): the TWR index is 1.0 there, so a first-day loss is a drawdown. By default
    the business day before the first return.
    """
    r = returns.dropna()
    if r.empty:
        return Performance(0, 0.0, NAN, NAN, NAN, NAN, MaxDrawdown(0.0, None, None, None),
                           NAN, NAN, None, NAN, None, NAN)
    base = base_date if base_date is not None else r.index[0] - pd.offsets.BDay(1)
    dd, cagr = max_drawdown(twr_index(r, base)), _cagr(r)
    return Performance(
        days=len(r), twr=link(r), cagr=cagr, volatility=volatility(r),
        sharpe=sharpe(r, rf), sortino=sortino(r, rf if mar is None else mar),
        max_drawdown=dd, calmar=ratio(cagr, abs(dd.depth)),
        best_day=float(r.max()), best_date=r.idxmax().date(),
        worst_day=float(r.min()), worst_date=r.idxmin().date(),
        hit_rate=float((r > 0.0).mean()),
    )


def volatility(returns: pd.Series) -> float:
    """Annualised volatility: sample standard deviation (ddof=1) times sqrt(252)."""
    return _std(returns) * ANNUALISE


def sharpe(returns: pd.Series, rf: float = 0.0) -> float:
    """Annualised Sharpe ratio over an annual risk-free rate (DOMAIN.md §5)."""
    excess = returns - daily_rate(rf)
    return ratio(float(excess.mean()), _std(excess)) * ANNUALISE


def sortino(returns: pd.Series, mar: float = 0.0) -> float:
    """Annualised Sortino ratio over an annual minimum acceptable return (DOMAIN.md §5)."""
    excess = returns - daily_rate(mar)
    downside = float(np.sqrt((np.minimum(excess, 0.0) ** 2).mean()))
    return ratio(float(excess.mean()), downside) * ANNUALISE


def performance_table(returns: pd.Series, inception: DateLike, as_of: DateLike | None = None,
                      benchmark: pd.Series | None = None, rf: float = 0.0,
                      mar: float | None = None) -> pd.DataFrame:
    """One row per `windows.windows` window: the `Performance` fields, flattened (max
    drawdown as `max_drawdown`, `peak_date`, `trough_date`, `recovery_date`), and with a
    benchmark the `Relative` fields prefixed `bench_`. Columns `window`, `start`, `end`
    first. `inception` is the first NAV date; `as_of` defaults to the last return date.
    """
    if as_of is None and returns.empty:
        return pd.DataFrame()
    end = as_of if as_of is not None else returns.index[-1]
    closes = returns.index.union([to_timestamp(inception)])
    rows = [_row(w, returns, closes, benchmark, rf, mar) for w in windows(end, inception)]
    return pd.DataFrame(rows)


def _row(window: Window, returns: pd.Series, closes: pd.DatetimeIndex,
         benchmark: pd.Series | None, rf: float, mar: float | None) -> dict[str, object]:
    start = to_timestamp(window.start)
    r = returns.loc[start:to_timestamp(window.end)]
    base = closes[closes < start].max() if (closes < start).any() else start
    stats = dataclasses.asdict(performance(r, base, rf, mar))
    dd = stats.pop("max_drawdown")
    row = {"window": window.name, "start": window.start, "end": window.end, **stats,
           "max_drawdown": dd["depth"], "peak_date": dd["peak"],
           "trough_date": dd["trough"], "recovery_date": dd["recovery"]}
    if benchmark is not None:
        rel = dataclasses.asdict(relative(r, benchmark, rf))
        row |= {f"bench_{k}": v for k, v in rel.items()}
    return row


def _cagr(returns: pd.Series) -> float:
    growth = float(np.prod(1.0 + returns))
    return growth ** (TRADING_DAYS / len(returns)) - 1.0


def _std(values: pd.Series) -> float:
    return float(values.std(ddof=1)) if len(values) > 1 else NAN
