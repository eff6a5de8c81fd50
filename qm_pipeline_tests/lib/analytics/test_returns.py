"""IB-linked daily returns, TWR index, drawdown and the Decimal boundary (conftest table)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd
import pytest

from qm_pipeline.lib.analytics.boundary import daily_sums, to_series
from qm_pipeline.lib.analytics.returns import (
    MaxDrawdown,
    daily_returns,
    link,
    max_drawdown,
    period_returns,
    portfolio_daily,
    twr_index,
)

T = pd.Timestamp


def test_boundary_converts_decimal_drops_missing_and_rejects_duplicates() -> None:
    series = to_series({dt.date(2024, 1, 3): Decimal("1.5"), "2024-01-02": None})
    assert series.dtype == "float64"
    assert series.to_dict() == {T("2024-01-03"): 1.5}
    with pytest.raises(ValueError, match="2024-01-02"):
        to_series(pd.Series([1, 2], index=["2024-01-02", "2024-01-02"]))
    assert daily_sums([("2024-01-02", Decimal(2)), ("2024-01-02", 3.5)]).tolist() == [5.5]


def test_daily_returns_link_flows_at_start_of_day(nav: pd.Series, flows: pd.Series) -> None:
    r = daily_returns(nav, flows)
    assert list(r.index) == [T("2024-01-03"), T("2024-01-04"), T("2024-01-08")]
    assert r.tolist() == pytest.approx([0.10, -0.10, 0.10], abs=1e-15)
    assert link(r) == pytest.approx(1.1 * 0.9 * 1.1 - 1.0, abs=1e-15)  # 0.089


def test_without_flows_the_deposit_would_count_as_gain(nav: pd.Series) -> None:
    # (132 - 100) / 100 = 0.32: what the flow column is there to prevent.
    assert daily_returns(nav).iloc[0] == pytest.approx(0.32)


def test_portfolio_daily_table(nav: pd.Series, flows: pd.Series) -> None:
    table = portfolio_daily(nav, flows)
    assert table["external_flow"].tolist() == pytest.approx([0.0, 20.0, 0.0, -18.8])
    assert table["pnl"].iloc[1:].tolist() == pytest.approx([12.0, -13.2, 10.0])
    assert pd.isna(table["daily_return"].iloc[0])
    assert table["twr_index"].tolist() == pytest.approx([1.0, 1.1, 0.99, 1.089])
    assert table["drawdown"].tolist() == pytest.approx([0.0, 0.0, -0.10, 1.089 / 1.1 - 1.0])


def test_zero_capital_day_has_no_return_and_keeps_the_index() -> None:
    # Opened empty: day 2 starts from 0 + 100 deposited, earns 0; day 3: 5 / 100.
    nav = to_series({"2024-01-01": 0.0, "2024-01-02": 0.0, "2024-01-03": 100.0,
                     "2024-01-04": 105.0})
    flows = daily_sums([("2024-01-03", 100.0)])
    table = portfolio_daily(nav, flows)
    assert table["daily_return"].isna().tolist() == [True, True, False, False]
    assert table["daily_return"].iloc[2:].tolist() == pytest.approx([0.0, 0.05])
    assert table["twr_index"].tolist() == pytest.approx([1.0, 1.0, 1.0, 1.05])


def test_twr_index_base_and_max_drawdown_dates() -> None:
    # Index 1.0 (base), 0.95, 1.045, 0.9405, 1.05: first-day loss is a drawdown from the
    # base; the deepest is 0.9405 / 1.045 - 1 = -0.10, peak 01-03, trough 01-04,
    # recovered 01-05 (1.05 >= 1.045).
    r = pd.Series([-0.05, 0.10, -0.10, 1.05 / 0.9405 - 1.0],
                  index=pd.DatetimeIndex(["2024-01-02", "2024-01-03", "2024-01-04",
                                          "2024-01-05"]))
    index = twr_index(r, "2024-01-01")
    assert index.tolist() == pytest.approx([1.0, 0.95, 1.045, 0.9405, 1.05])
    dd = max_drawdown(index)
    assert dd == MaxDrawdown(pytest.approx(-0.10), dt.date(2024, 1, 3), dt.date(2024, 1, 4),
                             dt.date(2024, 1, 5))
    first_only = max_drawdown(twr_index(r.iloc[:2], "2024-01-01"))
    assert (first_only.depth, first_only.peak) == (pytest.approx(-0.05), dt.date(2024, 1, 1))
    assert first_only.recovery == dt.date(2024, 1, 3)  # 1.045 >= 1.0


def test_drawdown_peak_is_the_last_close_at_the_peak_level() -> None:
    # 1.0, 1.1, 1.1 (flat day), 0.99: the fall starts from the close of 01-03.
    r = pd.Series([0.1, 0.0, -0.1], index=pd.DatetimeIndex(["2024-01-02", "2024-01-03",
                                                            "2024-01-04"]))
    dd = max_drawdown(twr_index(r, "2024-01-01"))
    assert (dd.depth, dd.peak, dd.trough) == (pytest.approx(-0.1), dt.date(2024, 1, 3),
                                              dt.date(2024, 1, 4))


def test_no_drawdown_when_the_index_only_rises() -> None:
    index = twr_index(pd.Series([0.01, 0.02], index=pd.DatetimeIndex(["2024-01-02",
                                                                      "2024-01-03"])))
    assert max_drawdown(index) == MaxDrawdown(0.0, None, None, None)


def test_period_returns_include_both_ends(nav: pd.Series, flows: pd.Series) -> None:
    r = daily_returns(nav, flows)
    assert period_returns(r, "2024-01-04", "2024-01-08").tolist() == pytest.approx([-0.1, 0.1])
