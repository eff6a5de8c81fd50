"""1-day Value at Risk and Conditional VaR (expected shortfall), each labelled by method.

DOMAIN.md §5: VaR and CVaR are 1-day figures reported as returns, negative for a loss
(a 95% VaR of -0.021 reads "on 1 day in 20 the portfolio loses 2.1% or more"), computed by
three named methods over a return series with missing days dropped:

- historical: the (1 - confidence) quantile of the observed returns, linearly interpolated
  between order statistics (numpy's "linear", Excel's PERCENTILE.INC); CVaR the mean of
  the returns at or below it;
- parametric: a normal distribution with the sample mean and standard deviation (ddof=1):
  VaR = mu + sigma * z, CVaR = mu - sigma * pdf(z) / (1 - confidence), z = Phi^-1(1 - c);
- monte_carlo: `simulations` draws from that normal with `numpy.random.default_rng(seed)`,
  then the historical estimator on the draws. Seeded, so a rerun gives the same figure.

Position level (`position_var`): today's holdings revalued on each past day of their
instruments' returns (historical simulation of the portfolio's P&L), divided by NAV, then
the same three methods on those scenario returns. Instruments without a return history
are left out and named, never treated as riskless silently.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import norm

from qm_pipeline.lib.analytics.config import SEED, SIMULATIONS

HISTORICAL, PARAMETRIC, MONTE_CARLO = "historical", "parametric", "monte_carlo"
CONFIDENCES = (0.95, 0.99)
VAR_COLUMNS = ["method", "confidence", "var", "cvar"]


@dataclass(frozen=True)
class VaR:
    """One VaR/CVaR figure: 1-day, as a return (negative is a loss), with its method."""

    method: str  # HISTORICAL, PARAMETRIC or MONTE_CARLO
    confidence: float  # 0.95 or 0.99
    var: float
    cvar: float


@dataclass(frozen=True)
class PositionRisk:
    """VaR of today's holdings from their instruments' histories (`position_var`)."""

    results: tuple[VaR, ...]
    scenarios: pd.Series  # scenario return of today's holdings per historical date
    nav: float  # the denominator; VaR in money is `var * nav`
    uncovered: tuple[str, ...]  # held instruments without a return history


def historical_var(returns: pd.Series | np.ndarray, confidence: float) -> VaR:
    """Empirical quantile (linear interpolation) and mean of the tail at or below it."""
    values = _clean(returns)
    var = float(np.percentile(values, 100.0 * (1.0 - confidence), method="linear"))
    return VaR(HISTORICAL, confidence, var, float(values[values <= var].mean()))


def parametric_var(returns: pd.Series | np.ndarray, confidence: float) -> VaR:
    """Normal VaR and CVaR from the sample mean and standard deviation (ddof=1)."""
    values = _clean(returns)
    mu, sigma = float(values.mean()), float(values.std(ddof=1))
    z = float(norm.ppf(1.0 - confidence))
    cvar = mu - sigma * float(norm.pdf(z)) / (1.0 - confidence)
    return VaR(PARAMETRIC, confidence, mu + sigma * z, cvar)


def monte_carlo_var(returns: pd.Series | np.ndarray, confidence: float, seed: int = SEED,
                    simulations: int = SIMULATIONS) -> VaR:
    """Historical estimator on seeded normal draws with the sample's mean and std."""
    values = _clean(returns)
    rng = np.random.default_rng(seed)
    draws = rng.normal(values.mean(), values.std(ddof=1), simulations)
    simulated = historical_var(draws, confidence)
    return VaR(MONTE_CARLO, confidence, simulated.var, simulated.cvar)


def var_table(returns: pd.Series | np.ndarray, confidences: Iterable[float] = CONFIDENCES,
              seed: int = SEED, simulations: int = SIMULATIONS) -> tuple[VaR, ...]:
    """All three methods at each confidence: the rows of `analytics.risk`."""
    return tuple(
        result
        for c in confidences
        for result in (historical_var(returns, c), parametric_var(returns, c),
                       monte_carlo_var(returns, c, seed, simulations))
    )


def price_returns(prices: pd.DataFrame) -> pd.DataFrame:
    """Daily simple returns per instrument (columns) from prices; a day after a missing
    price has no return (NaN), so no multi-day move passes for a 1-day one."""
    return prices.sort_index().pct_change(fill_method=None).iloc[1:]


def position_var(holdings: pd.Series, instrument_returns: pd.DataFrame,
                 nav: float | None = None, confidences: Iterable[float] = CONFIDENCES,
                 seed: int = SEED, simulations: int = SIMULATIONS) -> PositionRisk:
    """VaR of today's holdings by historical simulation of their P&L.

    `holdings`: market value in base per instrument (index = the instrument's column in
    `instrument_returns`; shorts negative). `instrument_returns`: daily returns, dates x
    instruments (see `price_returns`). Scenario P&L on a date = sum(market value x the
    instrument's return), on the dates every covered instrument has a return. `nav`
    defaults to the sum of the market values.
    """
    held = holdings[holdings != 0.0]
    covered = [i for i in held.index if i in instrument_returns.columns
               and instrument_returns[i].notna().any()]
    history = instrument_returns[covered].dropna()
    denominator = float(held.sum()) if nav is None else float(nav)
    scenarios = history.mul(held[covered], axis=1).sum(axis=1) / denominator
    results = var_table(scenarios, confidences, seed, simulations) if len(scenarios) > 1 else ()
    uncovered = tuple(str(i) for i in held.index if i not in covered)
    return PositionRisk(results, scenarios, denominator, uncovered)


def to_frame(results: Iterable[VaR]) -> pd.DataFrame:
    """Results as rows with columns method, confidence, var, cvar."""
    return pd.DataFrame([dataclasses.asdict(r) for r in results], columns=VAR_COLUMNS)


def _clean(returns: pd.Series | np.ndarray) -> np.ndarray:
    values = np.asarray(returns, dtype="float64")
    values = values[~np.isnan(values)]
    if len(values) < 2:
        raise ValueError("VaR needs at least two returns")
    return values
