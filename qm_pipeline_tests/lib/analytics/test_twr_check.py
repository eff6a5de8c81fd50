"""The period TWR check against IB's ChangeInNAV.twr, and the days it names (conftest)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from qm_pipeline.lib.analytics.returns import portfolio_daily
from qm_pipeline.lib.analytics.twr_check import (
    FLOW_AT_END,
    LEFT_OUT,
    MISSING_NAV,
    check_period_twr,
)


@pytest.fixture
def daily(nav: pd.Series, flows: pd.Series) -> pd.DataFrame:
    return portfolio_daily(nav, flows)


def test_matching_period_within_one_basis_point(daily: pd.DataFrame) -> None:
    # Linked 1.1 * 0.9 * 1.1 - 1 = 8.9%; IB says 8.905% (0.5 bp away): a match.
    check = check_period_twr(daily, "2024-01-03", "2024-01-08", 8.905)
    assert check.matches
    assert check.computed == pytest.approx(0.089, abs=1e-15)
    assert check.gap_bp == pytest.approx(-0.5, abs=1e-9)
    assert (check.return_days, check.days) == (3, ())


def test_gap_over_one_basis_point_fails() -> None:
    nav = pd.Series([100.0, 101.0], index=pd.DatetimeIndex(["2024-01-02", "2024-01-03"]))
    check = check_period_twr(portfolio_daily(nav), "2024-01-03", "2024-01-03", 0.98)
    assert not check.matches
    assert check.gap_bp == pytest.approx(2.0, abs=1e-9)  # 1% vs 0.98%


def test_names_the_missing_nav_then_the_day_ib_left_out(daily: pd.DataFrame) -> None:
    # IB's 21% = 1.1 * 1.1 - 1: the -10% of 01-04 is not in IB's figure.
    check = check_period_twr(daily, "2024-01-03", "2024-01-08", 21.0)
    assert not check.matches
    missing, best = check.days[0], check.days[1]
    assert (missing.date, missing.reason) == (dt.date(2024, 1, 5), MISSING_NAV)
    assert (best.date, best.reason, best.daily_return) == (
        dt.date(2024, 1, 4), LEFT_OUT, pytest.approx(-0.1))
    assert best.remaining_gap_bp == pytest.approx(0.0, abs=1e-9)
    assert len(check.days) == 5  # max_days


def test_names_a_flow_counted_at_the_end_of_the_day(daily: pd.DataFrame) -> None:
    # With the 20 deposit of 01-03 at the end of the day, r = 12 / 100 = 12%, and the
    # period links to 1.12 * 0.9 * 1.1 - 1 = 10.88%.
    check = check_period_twr(daily, "2024-01-03", "2024-01-08", 10.88)
    best = check.days[1]
    assert (best.date, best.reason, best.external_flow) == (
        dt.date(2024, 1, 3), FLOW_AT_END, pytest.approx(20.0))
    assert best.remaining_gap_bp == pytest.approx(0.0, abs=1e-9)
    # Next best: the 01-08 withdrawal at the end of the day, r = 10 / 118.8, period
    # 0.99 * 128.8 / 118.8 - 1 = 128.8 / 120 - 1 = 7.3333%: 354.67 bp short. Then leaving
    # 01-04 out: 21% - 10.88% = 1012 bp over.
    ranked = [(d.date, d.reason, d.remaining_gap_bp) for d in check.days[2:4]]
    assert ranked == [
        (dt.date(2024, 1, 8), FLOW_AT_END, pytest.approx((128.8 / 120 - 1.1088) * 1e4)),
        (dt.date(2024, 1, 4), LEFT_OUT, pytest.approx(1012.0)),
    ]


def test_missing_opening_nav_is_named() -> None:
    # The period starts 01-04, so it starts from the close of 01-03, which is missing.
    nav = pd.Series([100.0, 102.0, 103.0],
                    index=pd.DatetimeIndex(["2024-01-02", "2024-01-04", "2024-01-05"]))
    check = check_period_twr(portfolio_daily(nav), "2024-01-04", "2024-01-05", 1.0)
    assert [(d.date, d.reason) for d in check.days[:1]] == [(dt.date(2024, 1, 3), MISSING_NAV)]
