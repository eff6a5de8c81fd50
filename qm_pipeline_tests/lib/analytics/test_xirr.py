"""Money-weighted return: flows with known rates (Actual/365)."""

from __future__ import annotations

import pandas as pd
import pytest

from qm_pipeline.lib.analytics.boundary import daily_sums, to_series
from qm_pipeline.lib.analytics.xirr import money_weighted_return, xirr


def _flows(*pairs: tuple[str, float]) -> pd.Series:
    return daily_sums(list(pairs))


def test_one_year_ten_percent() -> None:
    assert xirr(_flows(("2022-01-01", -100), ("2023-01-01", 110))) == pytest.approx(0.1)


def test_two_deposits() -> None:
    # 100 (1+r)^2 + 100 (1+r) = 231  ->  x^2 + x - 2.31 = 0, x = (-1 + 3.2) / 2 = 1.1.
    flows = _flows(("2022-01-01", -100), ("2023-01-01", -100), ("2024-01-01", 231))
    assert xirr(flows) == pytest.approx(0.1, abs=1e-10)


def test_short_period_annualises_without_diverging() -> None:
    # +1% in one day: 1.01^365 - 1 = 36.78..., where Newton from 0% struggles.
    rate = xirr(_flows(("2024-01-01", -100), ("2024-01-02", 101)))
    assert rate == pytest.approx(1.01**365 - 1.0, rel=1e-9)


def test_heavy_loss() -> None:
    # 1 back of 100 after 730 days: (1/100)^(365/730) - 1 = -0.9.
    assert xirr(_flows(("2022-01-01", -100), ("2024-01-01", 1))) == pytest.approx(-0.9)


def test_no_rate_without_flows_of_both_signs() -> None:
    assert xirr(_flows(("2022-01-01", -100), ("2023-01-01", -5))) is None


def test_money_weighted_return_from_nav_and_flows() -> None:
    # Opening 100 paid in; a 100 deposit a year later, just after the NAV had grown to 110
    # (210 after it); 231 at the end: the two-deposit case above, 10%. The flow dated before
    # the opening NAV is part of it.
    nav = to_series({"2022-01-01": 100, "2022-12-31": 110, "2023-01-01": 210,
                     "2024-01-01": 231})
    flows = _flows(("2021-12-31", 100), ("2023-01-01", 100))
    assert money_weighted_return(nav, flows) == pytest.approx(0.1, abs=1e-10)
    # From 2023-01-01 on: 210 in, 231 out a year later.
    assert money_weighted_return(nav, flows, start="2023-01-01") == pytest.approx(0.1)
    assert money_weighted_return(nav, flows, start="2024-01-01") is None
