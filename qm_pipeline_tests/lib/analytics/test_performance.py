"""Performance and benchmark statistics: hand-computed on four days, then the per-window
table, then an independent cross-check with empyrical (conventions set to DOMAIN.md §5's).

Four returns r = +1%, -2%, +3%, -1% (2024-01-02 .. 01-05, base close 2024-01-01):
  mean 0.0025; deviations .0075 -.0225 .0275 -.0125, squares summing to 0.001475;
  sample variance 0.001475 / 3, std s = sqrt(0.000491667) = 0.02217356...
  volatility s * sqrt(252); Sharpe (rf 0) 0.0025 / s * sqrt(252)
  downside (MAR 0): (0.02^2 + 0.01^2) / 4 = 0.000125, DD = 0.0111803...;
  Sortino 0.0025 / DD * sqrt(252) = 3.5496...
  TWR 1.01 * 0.98 * 1.03 * 0.99 - 1 = 1.00929906 - 1; CAGR 1.00929906^(252/4) - 1
  index 1, 1.01, 0.9898, 1.019494, 1.00929906: max drawdown 0.9898 / 1.01 - 1 = -2%,
  peak 01-02, trough 01-03, recovered 01-04; Calmar CAGR / 0.02
  best +3% on 01-04, worst -2% on 01-03, hit rate 2/4.
"""

from __future__ import annotations

import datetime as dt
import math

import empyrical
import numpy as np
import pandas as pd
import pytest

from qm_pipeline.lib.analytics.performance import performance, performance_table
from qm_pipeline.lib.analytics.relative import relative

DATES = pd.DatetimeIndex(["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"])
R = pd.Series([0.01, -0.02, 0.03, -0.01], index=DATES)
S = math.sqrt(0.001475 / 3)
ROOT = math.sqrt(252)
RF = 0.05
RF_DAILY = 1.05 ** (1 / 252) - 1  # 0.000193630...


def test_hand_computed_performance() -> None:
    p = performance(R, "2024-01-01")
    growth = 1.01 * 0.98 * 1.03 * 0.99
    cagr = growth ** 63 - 1
    assert p.days == 4
    assert p.twr == pytest.approx(growth - 1, abs=1e-15)
    assert p.cagr == pytest.approx(cagr, rel=1e-12)
    assert p.volatility == pytest.approx(S * ROOT, rel=1e-12)
    assert p.sharpe == pytest.approx(0.0025 / S * ROOT, rel=1e-12)
    assert p.sortino == pytest.approx(0.0025 / math.sqrt(0.000125) * ROOT, rel=1e-12)
    assert p.sortino == pytest.approx(3.5496478698597698, rel=1e-12)
    assert p.max_drawdown.depth == pytest.approx(-0.02, abs=1e-15)
    assert (p.max_drawdown.peak, p.max_drawdown.trough, p.max_drawdown.recovery) == (
        dt.date(2024, 1, 2), dt.date(2024, 1, 3), dt.date(2024, 1, 4))
    assert p.calmar == pytest.approx(cagr / 0.02, rel=1e-12)
    assert (p.best_day, p.best_date) == (0.03, dt.date(2024, 1, 4))
    assert (p.worst_day, p.worst_date) == (-0.02, dt.date(2024, 1, 3))
    assert p.hit_rate == 0.5


def test_risk_free_and_mar_are_annual_rates_made_daily() -> None:
    # Sharpe: mean(r - rf_d) / s (the std is unchanged by a constant).
    # Sortino with MAR 5%: excess r - rf_d; losers -0.02 - rf_d, -0.01 - rf_d, and
    # +0.01 - rf_d stays positive.
    p = performance(R, rf=RF)
    down = math.sqrt(((0.02 + RF_DAILY) ** 2 + (0.01 + RF_DAILY) ** 2) / 4)
    assert p.sharpe == pytest.approx((0.0025 - RF_DAILY) / S * ROOT, rel=1e-12)
    assert p.sortino == pytest.approx((0.0025 - RF_DAILY) / down * ROOT, rel=1e-12)
    # MAR apart from rf: Sortino uses MAR, Sharpe keeps rf = 0.
    q = performance(R, mar=RF)
    assert (q.sharpe, q.sortino) == (pytest.approx(0.0025 / S * ROOT), pytest.approx(p.sortino))


def test_degenerate_series_give_nan_not_errors() -> None:
    flat = performance(pd.Series([0.01, 0.01], index=DATES[:2]))
    assert math.isnan(flat.sharpe) and math.isnan(flat.calmar)  # no dispersion, no drawdown
    assert flat.volatility == 0.0
    empty = performance(R.iloc[:0])
    assert (empty.days, empty.twr) == (0, 0.0) and math.isnan(empty.cagr)


def test_relative_hand_computed_on_common_dates() -> None:
    # b = (r - 0.001) / 2 on the four dates; the benchmark has an extra date and the
    # portfolio one the benchmark lacks: both dropped.
    # beta 2, correlation 1; alpha = 252 (mean(r - rf) - 2 mean(b - rf))
    #   = 252 (0.001 + rf_d) since mean r = 2 mean b + 0.001.
    # active r - b = (r + 0.001) / 2: std s / 2, mean 0.00175.
    b = (R - 0.001) / 2
    b[pd.Timestamp("2024-01-08")] = 0.5
    r = pd.concat([R, pd.Series([-0.5], index=pd.DatetimeIndex(["2023-12-29"]))])
    rel = relative(r, b, rf=RF)
    assert rel.days == 4
    assert rel.beta == pytest.approx(2.0, rel=1e-12)
    assert rel.correlation == pytest.approx(1.0, rel=1e-12)
    assert rel.alpha == pytest.approx(252 * (0.001 + RF_DAILY), rel=1e-9)
    assert rel.tracking_error == pytest.approx(S / 2 * ROOT, rel=1e-12)
    assert rel.information_ratio == pytest.approx(0.00175 / (S / 2) * ROOT, rel=1e-12)


def test_performance_table_windows_start_from_the_previous_close() -> None:
    # Inception 2023-12-28; returns 12-29 (-5%), then R in January. The 2024 window
    # starts from the 12-29 close, so its max drawdown is R's -2% (peak 01-02), while
    # since inception the index runs 1, 0.95, 0.9595, 0.94031, ...: -5.969% from the
    # inception close, trough 01-03.
    r = pd.concat([pd.Series([-0.05], index=pd.DatetimeIndex(["2023-12-29"])), R])
    table = performance_table(r, "2023-12-28", benchmark=R / 2).set_index("window")
    assert list(table.index) == ["MTD", "QTD", "YTD", "SI", "2023", "2024"]
    assert table.loc["2024", "twr"] == pytest.approx(1.01 * 0.98 * 1.03 * 0.99 - 1)
    assert table.loc["2024", "max_drawdown"] == pytest.approx(-0.02)
    assert table.loc["2024", "peak_date"] == dt.date(2024, 1, 2)
    assert table.loc["SI", "max_drawdown"] == pytest.approx(0.95 * 1.01 * 0.98 - 1)
    assert table.loc["SI", "peak_date"] == dt.date(2023, 12, 28)
    assert table.loc["SI", "trough_date"] == dt.date(2024, 1, 3)
    assert table.loc["SI", "days"] == 5
    assert table.loc["2024", "bench_beta"] == pytest.approx(2.0)
    assert table.loc["2023", "bench_days"] == 0  # no benchmark return in 2023
    assert performance_table(R.iloc[:0], "2023-12-28").empty  # nothing to report yet


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_cross_check_with_empyrical(seed: int) -> None:
    # empyrical-reloaded (pinned) with the same conventions: 252 days, ddof=1, daily
    # rf and MAR given as (1 + annual)^(1/252) - 1, downside deviation over all N days,
    # drawdown from a starting value before the first return.
    rng = np.random.default_rng(seed)
    r = pd.Series(rng.normal(0.0004, 0.012, 800), index=pd.bdate_range("2020-01-02",
                                                                        periods=800))
    r.iloc[0] = -0.03  # a first-day loss must count as drawdown in both
    mar, mar_daily = 0.0751, 1.0751 ** (1 / 252) - 1
    p = performance(r, rf=RF, mar=mar)
    assert p.volatility == pytest.approx(empyrical.annual_volatility(r), abs=1e-9)
    assert p.sharpe == pytest.approx(empyrical.sharpe_ratio(r, risk_free=RF_DAILY), abs=1e-9)
    assert p.sortino == pytest.approx(
        empyrical.sortino_ratio(r, required_return=mar_daily), abs=1e-9)
    assert p.max_drawdown.depth == pytest.approx(empyrical.max_drawdown(r), abs=1e-9)
    assert p.max_drawdown.depth < -0.03
