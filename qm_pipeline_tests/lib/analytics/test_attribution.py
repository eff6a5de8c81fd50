"""Contributions that sum to IB-linked returns, grouped and Carino-linked.

NAV 100 -> 132 with a 20 deposit (capital 120, P&L 12, r +10%) -> 118.8 (capital 132,
P&L -13.2, r -10%). Position P&L, day 1: X 9, Y 2 (1 unexplained: cash interest); day 2:
X -10, Y -3.3 (-0.1 too much: fees refunded, say). Contributions = P&L / capital:
    day 1: X 9/120 = 0.075, Y 2/120 = 0.0166667, residual 1/120 = 0.0083333   (sum 0.1)
    day 2: X -10/132 = -0.0757576, Y -0.025, residual +0.1/132 = 0.0007576   (sum -0.1)
Window: R = 1.1 * 0.9 - 1 = -1%. Carino k1 = ln 1.1 / 0.1 = 0.9531018,
k2 = ln 0.9 / -0.1 = 1.0536052, k = ln 0.99 / -0.01 = 1.0050336:
    X = (0.075 k1 - 0.0757576 k2) / k = (0.0714826 - 0.0798186) / 1.0050336 = -0.0082942
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from qm_pipeline.lib.analytics.attribution import (
    RESIDUAL,
    daily_contributions,
    group_contributions,
    link_contributions,
)
from qm_pipeline.lib.analytics.returns import portfolio_daily

DATES = pd.DatetimeIndex(["2024-01-02", "2024-01-03", "2024-01-04"])
NAV = pd.Series([100.0, 132.0, 118.8], index=DATES)
FLOWS = pd.Series([20.0], index=DATES[1:2])
PNL = pd.DataFrame({"X": [9.0, -10.0], "Y": [2.0, -3.3]}, index=DATES[1:])
K1, K2, K = math.log(1.1) / 0.1, math.log(0.9) / -0.1, math.log(0.99) / -0.01


@pytest.fixture
def contributions() -> pd.DataFrame:
    return daily_contributions(PNL, portfolio_daily(NAV, FLOWS))


def test_daily_contributions_are_pnl_over_starting_capital(contributions: pd.DataFrame) -> None:
    assert list(contributions.columns) == ["X", "Y", RESIDUAL]
    assert contributions.iloc[0].tolist() == pytest.approx([0.075, 2 / 120, 1 / 120])
    assert contributions.iloc[1].tolist() == pytest.approx([-10 / 132, -0.025, 0.1 / 132])
    assert contributions.sum(axis=1).tolist() == pytest.approx([0.1, -0.1], abs=1e-15)


def test_carino_linking_sums_to_the_window_return(contributions: pd.DataFrame) -> None:
    linked = link_contributions(contributions)
    assert linked["X"] == pytest.approx((0.075 * K1 - 10 / 132 * K2) / K, abs=1e-15)
    assert round(linked["X"], 7) == -0.0082942
    assert linked["Y"] == pytest.approx((2 / 120 * K1 - 0.025 * K2) / K, abs=1e-15)
    assert linked.sum() == pytest.approx(-0.01, abs=1e-15)
    # The plain sum of daily contributions would not: it gives 0, not -1%.
    assert contributions.to_numpy().sum() == pytest.approx(0.0, abs=1e-15)


def test_groups_sum_columns_and_keep_the_residual(contributions: pd.DataFrame) -> None:
    grouped = group_contributions(contributions, {"X": "equity"})  # Y unmapped
    assert grouped["equity"].tolist() == pytest.approx([0.075, -10 / 132])
    assert grouped[RESIDUAL].tolist() == pytest.approx([3 / 120, -0.025 + 0.1 / 132])
    assert link_contributions(grouped).sum() == pytest.approx(-0.01, abs=1e-15)


def test_pnl_on_a_day_without_nav_joins_the_spanning_return() -> None:
    # No NAV on 01-03: the return 01-02 -> 01-04 spans it, (118.8 - 100 - 20) / 120 = -1%,
    # and X's P&L of both days (9 - 10) counts there: -1 / 120.
    daily = portfolio_daily(NAV.drop(DATES[1]), FLOWS)
    found = daily_contributions(PNL, daily)
    assert found["X"].tolist() == pytest.approx([-1 / 120])
    assert found.sum(axis=1).tolist() == pytest.approx([-0.01], abs=1e-15)


@pytest.mark.filterwarnings("ignore:invalid value encountered")  # inf - inf, on purpose
def test_unusable_pnl_fails_the_sum_check() -> None:
    with pytest.raises(ValueError, match="do not sum"):
        daily_contributions(PNL.replace(-10.0, np.inf), portfolio_daily(NAV, FLOWS))
