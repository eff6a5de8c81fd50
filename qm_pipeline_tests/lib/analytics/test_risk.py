"""VaR and CVaR: hand-computed quantiles, a known normal distribution, and the
position-level historical simulation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from qm_pipeline.lib.analytics.risk import (
    HISTORICAL,
    MONTE_CARLO,
    PARAMETRIC,
    VAR_COLUMNS,
    historical_var,
    monte_carlo_var,
    parametric_var,
    position_var,
    price_returns,
    to_frame,
    var_table,
)

TEN = np.array([0.06, -0.05, 0.03, -0.01, 0.0, 0.01, 0.02, -0.03, 0.04, 0.05])


def test_historical_is_the_linear_percentile_and_tail_mean() -> None:
    # Sorted: -.05 -.03 -.01 0 .01 ...; the 5% point sits at rank 9 * 0.05 = 0.45:
    # -0.05 + 0.45 * 0.02 = -0.041, tail {-0.05}. At 80%: rank 1.8, -0.03 + 0.8 * 0.02
    # = -0.014, tail {-0.05, -0.03}, mean -0.04. At 99%: rank 0.09, -0.0482.
    found = {c: historical_var(TEN, c) for c in (0.95, 0.80, 0.99)}
    assert found[0.95].var == pytest.approx(-0.041, abs=1e-15)
    assert found[0.95].cvar == pytest.approx(-0.05, abs=1e-15)
    assert found[0.80].var == pytest.approx(-0.014, abs=1e-15)
    assert found[0.80].cvar == pytest.approx(-0.04, abs=1e-15)
    assert found[0.99].var == pytest.approx(-0.0482, abs=1e-15)
    assert found[0.95].method == HISTORICAL


def test_parametric_normal_formula() -> None:
    # r = -2%, 0, 2%, 4%: mean 1%, deviations -3 -1 1 3 (%), sample std
    # sqrt(0.002 / 3) = 0.0258199; z95 = -1.6448536, pdf(z95) = 0.1031356.
    # VaR = 0.01 - 1.6448536 * 0.0258199 = 0.01 - 0.0424699 = -0.0324699
    # CVaR = 0.01 - 0.0258199 * 2.062713 = 0.01 - 0.0532590 = -0.0432590
    result = parametric_var(np.array([-0.02, 0.0, 0.02, 0.04]), 0.95)
    sigma = np.sqrt(0.002 / 3)
    assert result.var == pytest.approx(0.01 - 1.6448536269514722 * sigma, abs=1e-15)
    assert result.cvar == pytest.approx(0.01 - sigma * 0.10313564037537128 / 0.05, abs=1e-15)
    assert (round(result.var, 7), round(result.cvar, 7)) == (-0.0324699, -0.043259)


def test_methods_agree_with_the_known_distribution() -> None:
    # 200,000 draws of N(0.05%, 1%): every method lands near the analytic quantile
    # mu + sigma * z and expected shortfall mu - sigma * pdf(z) / (1 - c).
    mu, sigma = 0.0005, 0.01
    sample = pd.Series(np.random.default_rng(7).normal(mu, sigma, 200_000))
    for result in var_table(sample):
        tail = 1.0 - result.confidence
        z = norm.ppf(tail)
        assert result.var == pytest.approx(mu + sigma * z, abs=2.5e-4), result
        assert result.cvar == pytest.approx(mu - sigma * norm.pdf(z) / tail, abs=3e-4), result
    assert [(r.method, r.confidence) for r in var_table(sample)] == [
        (HISTORICAL, 0.95), (PARAMETRIC, 0.95), (MONTE_CARLO, 0.95),
        (HISTORICAL, 0.99), (PARAMETRIC, 0.99), (MONTE_CARLO, 0.99),
    ]


def test_monte_carlo_is_seeded() -> None:
    first = monte_carlo_var(TEN, 0.99, seed=11, simulations=10_000)
    assert monte_carlo_var(TEN, 0.99, seed=11, simulations=10_000) == first
    assert monte_carlo_var(TEN, 0.99, seed=12, simulations=10_000).var != first.var


def test_too_few_returns_is_an_error() -> None:
    with pytest.raises(ValueError, match="two returns"):
        historical_var(np.array([0.01, np.nan]), 0.95)


def test_price_returns_leave_no_multi_day_move() -> None:
    prices = pd.DataFrame({"X": [100.0, 110.0, np.nan, 121.0]},
                          index=pd.bdate_range("2024-01-02", periods=4))
    returns = price_returns(prices)["X"]
    assert returns.iloc[0] == pytest.approx(0.1)
    assert returns.iloc[1:].isna().all()  # 121 / 110 spans two days: not a 1-day return


def test_position_var_revalues_todays_holdings() -> None:
    # Holdings A 60, B 40 (NAV 100), C 10 without history. Day 1: 60 * 1% - 40 * 1% = 0.2;
    # day 2: -60 * 2% + 40 * 1% = -0.8; day 3 B has no return: dropped.
    # Scenario returns on NAV 100: +0.002, -0.008.
    dates = pd.bdate_range("2024-01-02", periods=3)
    history = pd.DataFrame({"A": [0.01, -0.02, 0.03], "B": [-0.01, 0.01, np.nan]}, index=dates)
    holdings = pd.Series({"A": 60.0, "B": 40.0, "C": 10.0, "D": 0.0})
    risk = position_var(holdings, history, nav=100.0, confidences=[0.5])
    assert risk.scenarios.tolist() == pytest.approx([0.002, -0.008])
    assert risk.uncovered == ("C",)
    assert risk.nav == 100.0
    # Two scenarios: the 50% point is their midpoint -0.003, the tail mean -0.008.
    historical = risk.results[0]
    assert (historical.method, historical.var, historical.cvar) == (
        HISTORICAL, pytest.approx(-0.003), pytest.approx(-0.008))
    # NAV defaults to the held market value, 110 here.
    assert position_var(holdings, history).scenarios.tolist() == pytest.approx(
        [0.2 / 110, -0.8 / 110])


def test_to_frame() -> None:
    frame = to_frame(var_table(TEN, [0.95], simulations=1000))
    assert list(frame.columns) == VAR_COLUMNS
    assert frame["method"].tolist() == [HISTORICAL, PARAMETRIC, MONTE_CARLO]
    assert frame.loc[0, "var"] == pytest.approx(-0.041)
