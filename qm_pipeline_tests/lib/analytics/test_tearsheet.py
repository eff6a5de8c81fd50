"""The HTML tearsheet: monthly returns by hand, then whole pages rendered and opened in
headless Chromium offline (see `chromium`), as a reader would open the file.

The realistic book: 420 business days of seeded returns from 2023-03-01, a benchmark, four
performance windows, a VaR table, exposures along three dimensions and six positions
(one short). Its page has 2 + 3 + 1 = 6 charts: growth, drawdown, one exposure chart per
dimension and the top weights.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from qm_pipeline.lib.analytics.tearsheet import (
    TearsheetData,
    monthly_returns,
    render,
    write_tearsheet,
)
from qm_pipeline_tests.lib.analytics.chromium import browser, visit

AS_OF = dt.date(2024, 10, 4)
CHART, TABLES = "svg.chart", ("table.monthly", "table.performance", "table.risk",
                             "table.exposure")
# Any way a page could reach outside itself.
EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//|@import|url\(\s*["']?"""
                      r"""(?:https?:)?//""", re.IGNORECASE)


def daily_frame(returns: pd.Series) -> pd.DataFrame:
    index = (1.0 + returns.fillna(0.0)).cumprod()
    return pd.DataFrame({"twr_index": index, "drawdown": index / index.cummax() - 1.0,
                         "daily_return": returns})


def book(account_id: str = "U1234567") -> TearsheetData:
    dates = pd.bdate_range("2023-03-01", periods=420)
    rng = np.random.default_rng(11)
    returns = pd.Series(rng.normal(0.0004, 0.011, len(dates)), index=dates)
    returns.iloc[0] = np.nan  # inception
    bench = (1.0 + pd.Series(rng.normal(0.0003, 0.009, len(dates)), index=dates)).cumprod()
    performance = pd.DataFrame([
        {"window": name, "start": start, "end": AS_OF, "twr": twr, "cagr": np.nan,
         "volatility": 0.174, "sharpe": 1.21, "sortino": 1.83, "max_drawdown": -0.112,
         "calmar": 1.4, "best_day": 0.034, "worst_day": -0.031, "hit_rate": 0.53,
         "mwr": twr + 0.004, "beta": 0.92, "alpha": 0.021, "correlation": 0.71,
         "tracking_error": 0.081, "information_ratio": 0.44}
        for name, start, twr in (("MTD", dt.date(2024, 10, 1), 0.0121),
                                 ("YTD", dt.date(2024, 1, 1), 0.0932),
                                 ("Since inception", dt.date(2023, 3, 1), 0.2011),
                                 ("2023", dt.date(2023, 3, 1), 0.0987))])
    risk = pd.DataFrame([
        {"method": method, "confidence": c, "var": -0.017 * k * m, "cvar": -0.022 * k * m}
        for c, k in ((0.95, 1.0), (0.99, 1.4))
        for method, m in (("historical", 1.0), ("parametric", 0.97), ("monte_carlo", 0.99))])
    exposure = pd.DataFrame([
        ("asset_class", "STK", 820_000.0, -95_000.0), ("asset_class", "OPT", 40_000.0, -12_000.0),
        ("asset_class", "CASH", 150_000.0, 0.0),
        ("sector", "Technology", 420_000.0, -95_000.0), ("sector", "Energy", 180_000.0, 0.0),
        ("sector", "Financials", 220_000.0, 0.0), ("sector", "Unmapped", 40_000.0, -12_000.0),
        ("currency", "USD", 760_000.0, -95_000.0), ("currency", "EUR", 250_000.0, -12_000.0),
    ], columns=["dimension", "group", "long", "short"])
    exposure["gross"] = exposure["long"] - exposure["short"]
    exposure["net"] = exposure["long"] + exposure["short"]
    weights = pd.DataFrame({"symbol": ["AAPL", "MSFT", "XOM", "JPM", "TSLA", "SAP"],
                            "weight": [0.27, 0.16, 0.18, 0.22, -0.095, 0.12]})
    return TearsheetData(
        account_id=account_id, base_currency="USD", as_of=AS_OF, daily=daily_frame(returns),
        benchmark=bench / bench.iloc[0], benchmark_name="SPY (total return)",
        performance=performance, risk=risk, exposure=exposure, weights=weights,
        concentration={"top_5_share": 0.885, "herfindahl": 0.19,
                       "breaches": ["AAPL 27.0% > 25% single-name limit"]},
        reconciliation={"run_id": "r-2024-10-04-01",
                        "finished_at": dt.datetime(2024, 10, 4, 22, 15, 3),
                        "status": "warnings", "open_breaks": 2, "halting_breaks": 0,
                        "text": "2 open breaks: cash USD off by 12.50; AAPL quantity 100 vs 99"})


def new_account() -> TearsheetData:
    """An account funded today: one NAV, no return, no positions, no reconciliation."""
    empty = pd.DataFrame()
    return TearsheetData(
        account_id="U7654321", base_currency="EUR", as_of=AS_OF,
        daily=daily_frame(pd.Series([np.nan], index=pd.DatetimeIndex([AS_OF]))),
        benchmark=None, benchmark_name=None, performance=empty,
        risk=pd.DataFrame(columns=["method", "confidence", "var", "cvar"]),
        exposure=pd.DataFrame(columns=["dimension", "group", "long", "short", "gross", "net"]),
        weights=pd.DataFrame(columns=["symbol", "weight"]), concentration={},
        reconciliation={"run_id": None, "finished_at": None, "status": "never run",
                        "open_breaks": 0, "halting_breaks": 0, "text": ""})


# -- monthly returns ------------------------------------------------------------------------

def test_monthly_returns_compound_the_days_of_each_month_and_year() -> None:
    returns = pd.Series([np.nan, 0.01, 0.02, -0.01, 0.05],
                        index=pd.to_datetime(["2023-12-29", "2024-01-02", "2024-01-03",
                                              "2024-03-01", "2025-02-03"]))
    table = monthly_returns(returns)
    assert list(table.columns) == [*range(1, 13), "Year"]
    assert list(table.index) == [2024, 2025]  # 2023 has only the inception (no return)
    assert table.loc[2024, 1] == pytest.approx(0.0302)  # 1.01 * 1.02 - 1
    assert np.isnan(table.loc[2024, 2])  # no data is not a flat month
    assert table.loc[2024, 3] == pytest.approx(-0.01)
    assert table.loc[2024, "Year"] == pytest.approx(1.0302 * 0.99 - 1)  # 0.019898
    assert table.loc[2025, 2] == pytest.approx(0.05)
    assert table.loc[2025, "Year"] == pytest.approx(0.05)
    assert table.loc[2025].drop([2, "Year"]).isna().all()


def test_monthly_returns_of_nothing_is_an_empty_table() -> None:
    table = monthly_returns(pd.Series([np.nan], index=pd.DatetimeIndex(["2024-01-02"])))
    assert table.empty and list(table.columns) == [*range(1, 13), "Year"]


# -- the HTML -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def html() -> str:
    return render(book())


def test_page_shows_the_values_formatted(html: str) -> None:
    assert "Tearsheet: U1234567" in html and "as of 2024-10-04" in html
    assert 'badge-warn" id="recon-status">warnings<' in html
    assert "cash USD off by 12.50" in html and "2024-10-04 22:15:03" in html
    assert "<td>Since inception</td><td>2023-03-01</td><td>2024-10-04</td><td>20.11%</td>" \
           "<td>–</td><td>17.40%</td><td>1.21</td>" in html  # CAGR NaN shows as a dash
    assert "<td>Monte Carlo</td><td>99%</td><td>-2.36%</td><td>-3.05%</td>" in html
    assert "<td>Technology</td><td>420,000</td><td>-95,000</td><td>515,000</td>" \
           "<td>325,000</td>" in html
    assert "<dt>Top 5 share of gross</dt><dd>88.50%</dd>" in html
    assert "<dt>Effective number of positions</dt><dd>5.3</dd>" in html
    assert "<li>AAPL 27.0% &gt; 25% single-name limit</li>" in html
    assert html.count('<svg ') == 6
    assert "SPY (total return)" in html  # the benchmark's legend entry


def test_page_reaches_nothing_outside_itself(html: str) -> None:
    assert not EXTERNAL.search(html), EXTERNAL.search(html)
    assert "<script" not in html.lower() and "<link" not in html.lower()
    assert EXTERNAL.search('<img src="https://x/a.png">')  # the pattern does catch one
    assert EXTERNAL.search("<style>@import 'a.css'</style>")


def test_new_account_renders_with_notes_instead_of_charts() -> None:
    html = render(new_account())
    assert "<svg" not in html
    for note in ("Not enough history for a chart yet", "No daily returns yet",
                 "No performance windows yet", "No VaR yet", "No open positions"):
        assert note in html
    assert 'badge-none" id="recon-status">never run<' in html


def test_outside_text_is_escaped() -> None:
    data = book(account_id='U1"<b>')
    hostile = "<script>alert(1)</script>"
    data = dataclasses.replace(
        data, weights=pd.DataFrame({"symbol": [hostile, "$AAPL$ & co"], "weight": [0.3, 0.1]}),
        exposure=data.exposure.assign(group=hostile),
        reconciliation={**data.reconciliation, "text": hostile},
        concentration={"breaches": [hostile]})
    html = render(data)
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "U1&#34;&lt;b&gt;" in html
    assert "$AAPL$ &amp; co" in html  # a symbol with dollars is text in the chart, not math


def test_same_input_same_bytes(tmp_path: Path, html: str) -> None:
    path = write_tearsheet(book(), tmp_path)
    assert path.name == "tearsheet_U1234567_20241004.html"
    assert path.read_text(encoding="utf-8") == html  # a second render of the same book
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


def test_file_name_keeps_the_account_inside_the_folder(tmp_path: Path) -> None:
    path = write_tearsheet(dataclasses.replace(new_account(), account_id="../ALL"), tmp_path)
    assert path.parent == tmp_path and path.name == "tearsheet_.._ALL_20241004.html"


# -- in the browser -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with browser() as launched:
        yield launched


def picture(png: bytes) -> tuple[float, int]:
    """(share of pixels that are neither page background nor white, distinct colours)."""
    from PIL import Image

    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).reshape(-1, 3)
    packed = rgb.astype(np.int32) @ np.array([1 << 16, 1 << 8, 1], dtype=np.int32)
    colours, counts = np.unique(packed, return_counts=True)
    plain = (packed == colours[counts.argmax()]) | (rgb >= 250).all(axis=1)
    return float(1.0 - plain.mean()), len(colours)


def test_helper_sees_console_errors_requests_and_blank_pages(chromium: Any,
                                                             tmp_path: Path) -> None:
    page = tmp_path / "bad.html"
    page.write_text('<html><body><img src="https://example.invalid/a.png">'
                    '<script>console.error("deliberate"); null.x;</script></body></html>')
    seen = visit(chromium, page, ("img",))
    assert any("deliberate" in e for e in seen.errors)
    assert any(e.startswith("uncaught:") for e in seen.errors)
    assert "https://example.invalid/a.png" in seen.requests
    assert seen.counts == {"img": 1}
    blank = tmp_path / "blank.html"
    blank.write_text("<html><body></body></html>")
    share, colours = picture(visit(chromium, blank).screenshot)
    assert share == 0.0 and colours == 1  # what the screenshot check would call blank


def test_tearsheet_in_chromium(chromium: Any, tmp_path: Path) -> None:
    path = write_tearsheet(book(), tmp_path)
    seen = visit(chromium, path, (CHART, *TABLES, "#recon-status", "ul.breaches li"))
    assert seen.errors == []
    assert seen.requests == [path.resolve().as_uri()]
    assert seen.counts == {CHART: 6, "table.monthly": 1, "table.performance": 1,
                           "table.risk": 1, "table.exposure": 3, "#recon-status": 1,
                           "ul.breaches li": 1}
    share, colours = picture(seen.screenshot)
    assert share > 0.05 and colours > 50, (share, colours)
    (tmp_path / "tearsheet.png").write_bytes(seen.screenshot)


def test_new_account_in_chromium(chromium: Any, tmp_path: Path) -> None:
    path = write_tearsheet(new_account(), tmp_path)
    seen = visit(chromium, path, (CHART, "p.note"))
    assert seen.errors == [] and seen.requests == [path.resolve().as_uri()]
    assert seen.counts == {CHART: 0, "p.note": 8}  # every section says why it is empty
