"""The analytics build on a warehouse (DuckDB and the real PostgreSQL): generated Flex
reports, ingested and replayed into the ledger as in production, then every table checked
against IB's own numbers and against the rows it came from."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, localcontext
from pathlib import Path

import pandas as pd
import pytest

from qm_pipeline.lib.analytics.build import AnalyticsHalted, _holding_tables, build_analytics
from qm_pipeline.lib.analytics.checks import contribution_gap
from qm_pipeline.lib.analytics.config import AnalyticsConfig
from qm_pipeline.lib.analytics.greeks import Contract, black_scholes
from qm_pipeline.lib.analytics.holdings import option_greeks
from qm_pipeline.lib.analytics.positions import QUANTUM
from qm_pipeline.lib.flex.sample import SampleSpec, write_reports
from qm_pipeline.lib.flex.sample.benchmark import BENCHMARK_SYMBOL, write_benchmark
from qm_pipeline.lib.ledger.settings import ledger_config
from qm_pipeline.lib.ledger.store import rebuild
from qm_pipeline.lib.settings import Settings
from qm_pipeline.lib.warehouse.engine import Warehouse
from qm_pipeline_tests.helpers import ingest_files, rows, scalar, snapshot

SAMPLE = SampleSpec(accounts=("U1000001", "U1000002"), start=dt.date(2024, 1, 2),
                    end=dt.date(2024, 12, 31), trades_per_day=3, seed=5)
CONFIG = AnalyticsConfig(benchmark=BENCHMARK_SYMBOL)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], Path]:
    folder = tmp_path_factory.mktemp("analytics_sample")
    reports = write_reports(SAMPLE, folder / "reports", window_days=120)  # 4 periods each
    return reports, write_benchmark(SAMPLE, folder / "benchmarks").parent


@pytest.fixture
def loaded(warehouse: Warehouse, settings: Settings, sample: tuple[list[Path], Path]
           ) -> Path:
    reports, benchmarks = sample
    assert all(r.status == "loaded" for r in ingest_files(warehouse, settings, *reports))
    rebuild(warehouse, ledger_config(), "ledger-run")
    return benchmarks


def test_analytics_reproduce_ib_and_add_up(warehouse: Warehouse, loaded: Path) -> None:
    found = build_analytics(warehouse, CONFIG, loaded)

    # every statement period's TWR within 1 bp of ChangeInNAV.twr, for both accounts
    checks = found.tables["twr_checks"]
    assert len(checks) == scalar(warehouse, "SELECT count(*) FROM core.change_in_nav") == 8
    assert checks["matches"].all() and checks["gap_bp"].abs().max() < 0.01
    # contributions add up to the returns: per day and per window, every level
    assert contribution_gap(found.tables) < 1e-9
    assert {"position", "asset_class", "sector"} == set(found.tables["attribution"]["level"])
    # NAV is IB's, exactly, and traced to its report row; ALL is the exact sum
    assert rows(warehouse, "SELECT count(*) FROM analytics.portfolio_daily p JOIN "
                           "core.nav_daily n ON n.account_id = p.account_id AND "
                           "n.report_date = p.date WHERE p.nav <> n.total OR p.nav_source <> "
                           "n.file_sha256 || ':' || CAST(n.source_line AS VARCHAR)") == [(0,)]
    assert rows(warehouse, "SELECT count(*) FROM analytics.portfolio_daily a WHERE "
                           "a.account_id = 'ALL' AND a.nav <> (SELECT sum(total) FROM "
                           "core.nav_daily n WHERE n.report_date = a.date)") == [(0,)]
    _assert_pnl_split_is_the_reports(warehouse)
    _assert_position_pnl_is_the_ledgers(warehouse)
    _assert_performance_and_risk(found.tables)
    _assert_holdings(warehouse)


def _assert_pnl_split_is_the_reports(warehouse: Warehouse) -> None:
    """Realized P&L is the ledger's and dividends are IB's cash lines, to the last digit."""
    first = scalar(warehouse, "SELECT min(date) FROM analytics.portfolio_daily")
    ours = dict(rows(warehouse, "SELECT account_id, sum(realized) FROM "
                                "analytics.portfolio_daily GROUP BY account_id"))
    ledger = dict(rows(warehouse, "SELECT account_id, sum(realized_pnl_base) FROM "
                                  "ledger.realized WHERE close_date > :d GROUP BY account_id",
                       d=first))
    assert ours["ALL"] == sum(ledger.values()) and all(ours[a] == v for a, v in ledger.items())
    dividends = scalar(warehouse, "SELECT sum(amount * fx_rate_to_base) FROM "
                                  "core.cash_transactions WHERE type IN ('Dividends', "
                                  "'Withholding Tax')")
    assert dividends != 0
    assert scalar(warehouse, "SELECT sum(dividends) FROM analytics.portfolio_daily "
                             "WHERE account_id = 'ALL'") == dividends


# The ledger's position on a position_daily row's date: its latest history row up to then.
_LEDGER_ROW = ("FROM ledger.position_history h WHERE h.account_id = p.account_id AND "
               "h.conid = p.conid AND h.date <= p.date ORDER BY h.date DESC LIMIT 1")
# IB's rate that day from the row's currency into the account's base (1 for the base).
_DAY_RATE = ("CASE WHEN h.currency = a.currency THEN 1 ELSE (SELECT f.rate FROM core.fx_rates f "
             "WHERE f.from_currency = h.currency AND f.to_currency = a.currency AND "
             "f.report_date <= h.date ORDER BY f.report_date DESC LIMIT 1) END")


def _assert_position_pnl_is_the_ledgers(warehouse: Warehouse) -> None:
    """Per position: realized P&L adds up to the ledger's closes, to the last digit;
    unrealized P&L is the ledger's own on every day it marked the position, at IB's rate of
    that day (exact: rounded once, half-even, to MONEY's 18 places), and 0 once flat."""
    ours = rows(warehouse, "SELECT account_id, conid, sum(realized_pnl_base) FROM "
                           "analytics.position_daily GROUP BY account_id, conid "
                           "HAVING sum(realized_pnl_base) <> 0")
    ledger = rows(warehouse, "SELECT account_id, conid, sum(realized_pnl_base) FROM "
                             "ledger.realized GROUP BY account_id, conid "
                             "HAVING sum(realized_pnl_base) <> 0")
    assert len(ledger) > 20 and sorted(ours) == sorted(ledger)

    marked = rows(warehouse, (
        f"SELECT p.unrealized_pnl_base, h.unrealized_pnl, h.currency, {_DAY_RATE} "
        "FROM analytics.position_daily p JOIN ledger.position_history h ON "
        "h.account_id = p.account_id AND h.conid = p.conid AND h.date = p.date "
        "JOIN core.accounts a ON a.account_id = h.account_id "
        "WHERE h.unrealized_pnl IS NOT NULL"))
    assert len(marked) == scalar(warehouse, "SELECT count(*) FROM ledger.position_history "
                                            "WHERE unrealized_pnl IS NOT NULL")
    assert {currency for *_, currency, _ in marked} == {"USD", "EUR"}
    with localcontext(prec=120):  # the product unrounded, then rounded once
        assert [unrealized for unrealized, *_ in marked] == [
            (theirs * rate).quantize(QUANTUM) for _, theirs, _, rate in marked]

    flat = rows(warehouse, (
        "SELECT p.unrealized_pnl_base, p.date > (SELECT h.date " + _LEDGER_ROW + ") "
        "FROM analytics.position_daily p WHERE (SELECT h.quantity " + _LEDGER_ROW + ") = 0"))
    assert {unrealized for unrealized, _ in flat} == {0}
    assert any(after_close for _, after_close in flat)  # not only the closing days


def _assert_performance_and_risk(tables: dict[str, pd.DataFrame]) -> None:
    daily, performance = tables["portfolio_daily"], tables["performance"]
    for account in ("U1000001", "U1000002", "ALL"):
        index = daily[daily["account_id"] == account]["twr_index"]
        si = performance[(performance["account_id"] == account)
                         & (performance["window"] == "SI")].iloc[0]
        assert si["twr"] == pytest.approx(index.iloc[-1] - 1.0, abs=1e-12)
        assert -1 < si["bench_beta"] < 3 and si["bench_days"] > 240  # benchmark joined
        assert si["mwr"] == si["mwr"]  # XIRR found
    risk = tables["risk"]
    portfolio = risk[(risk["account_id"] == "ALL") & (risk["level"] == "portfolio")]
    assert sorted(portfolio["method"].unique()) == ["historical", "monte_carlo", "parametric"]
    assert (portfolio["cvar"] <= portfolio["var"]).all() and (portfolio["var"] < 0).all()
    assert (risk["level"] == "positions").any()  # today's holdings over their price history


def _assert_holdings(warehouse: Warehouse) -> None:
    """Weights cover the ledger's open positions; exposure's gross is their sum of |value|."""
    assert scalar(warehouse, "SELECT count(*) FROM analytics.position_weights WHERE "
                             "account_id <> 'ALL'") == scalar(
        warehouse, "SELECT count(*) FROM ledger.positions WHERE status = 'OPEN'")
    gross = dict(rows(warehouse, "SELECT account_id, sum(gross) FROM analytics.exposure "
                                 "WHERE dimension = 'asset_class' GROUP BY account_id"))
    values = dict(rows(warehouse, "SELECT account_id, sum(abs(market_value)) FROM "
                                  "analytics.position_weights GROUP BY account_id"))
    assert gross == values and gross["ALL"] == gross["U1000001"] + gross["U1000002"]


def test_rerun_writes_the_same_rows(warehouse: Warehouse, loaded: Path) -> None:
    build_analytics(warehouse, CONFIG, loaded)
    before = snapshot(warehouse, ("analytics",))
    build_analytics(warehouse, CONFIG, loaded)
    assert snapshot(warehouse, ("analytics",)) == before


def test_a_halted_reconciliation_stops_analytics(warehouse: Warehouse, loaded: Path) -> None:
    build_analytics(warehouse, CONFIG, loaded)
    before = snapshot(warehouse, ("analytics", "core"))
    with warehouse.transaction() as tx:
        tx.execute("INSERT INTO recon.runs (run_id, started_at, finished_at, halted, status) "
                   "VALUES ('recon-7', :t, :t, TRUE, 'halted')",
                   {"t": dt.datetime(2025, 1, 2, 9)})

    with pytest.raises(AnalyticsHalted, match="reconciliation run recon-7 halted"):
        build_analytics(warehouse, CONFIG, loaded)
    assert snapshot(warehouse, ("analytics", "core")) == before


def test_a_bad_benchmark_row_is_named_and_changes_nothing(
        warehouse: Warehouse, loaded: Path, tmp_path: Path) -> None:
    build_analytics(warehouse, CONFIG, loaded)
    before = snapshot(warehouse, ("analytics", "core"))
    bad = tmp_path / "benchmarks"
    bad.mkdir()
    (bad / "smpl.csv").write_text("date,close\n2024-01-02,100.5\n2024-01-03,n/a\n")

    with pytest.raises(ValueError, match=r"smpl.csv: row 3: field 'close': 'n/a'"):
        build_analytics(warehouse, CONFIG, bad)
    assert snapshot(warehouse, ("analytics", "core")) == before


def test_the_build_takes_ibs_model_greeks_over_black_scholes() -> None:
    """(The generated reports hold no option at a statement end, so the build's wiring is
    checked on one hand-made holding: an option and its underlying.)"""
    as_of = dt.date(2024, 6, 3)
    stock = {"account_id": "U1", "conid": "42", "symbol": "ABC", "underlying": "ABC",
             "underlying_conid": "42", "quantity": Decimal(100), "multiplier": Decimal(1),
             "price": Decimal(100), "asset_category": "STK", "strike": None, "expiry": None,
             "put_call": None, "currency": "USD", "market_value": Decimal(10_000),
             "sector": "Tech", "country": "US"}
    call = stock | {"conid": "9001", "symbol": "ABC 20SEP24 105 C", "quantity": Decimal(-3),
                    "multiplier": Decimal(100), "price": Decimal("3.20"),
                    "asset_category": "OPT", "strike": "105", "expiry": "2024-09-20",
                    "put_call": "C", "market_value": Decimal(-960)}
    daily = pd.DataFrame({"account_id": ["U1"], "date": [as_of], "nav": [Decimal(50_000)]})
    model = pd.DataFrame([{"conid": "9001", "implied_vol": 0.31, "delta": 0.42, "gamma": 0.012,
                           "vega": 0.2, "theta": -0.03, "underlying_price": 101.5,
                           "snapshot_id": "s-1", "taken_at": dt.datetime(2024, 6, 3, 15)}])
    holdings = pd.DataFrame([stock, call])

    tables = _holding_tables(holdings, daily, as_of, CONFIG, model)
    stale = _holding_tables(holdings, daily, dt.date(2024, 6, 4), CONFIG, model)

    (ours,) = tables["greeks"].to_dict("records")
    assert ours["source"] == "ib_model: live snapshot s-1" and ours["note"] is None
    assert (ours["implied_vol"], ours["delta"], ours["underlying_price"]) == (0.31, 0.42, 101.5)
    assert ours["delta_adjusted_exposure"] == pytest.approx(0.42 * 101.5 * 100 * -3)
    (older,) = stale["greeks"].to_dict("records")  # the snapshot predates the valuation day
    assert older["source"].startswith("black_scholes") and 0 < older["delta"] < 1
    assert older["delta"] != 0.42 and older["underlying_price"] == 100.0


def test_option_greeks_use_the_volatility_the_mark_implies() -> None:
    as_of = dt.date(2024, 6, 3)
    spot, vol = 100.0, 0.3
    contract = Contract("C", spot, 105.0, (dt.date(2024, 9, 20) - as_of).days / 365.0)
    mark = black_scholes(contract, vol).price
    holdings = pd.DataFrame([{
        "account_id": "U1", "conid": "9001", "symbol": "ABC 20SEP24 105 C", "underlying": "ABC",
        "underlying_conid": "42", "quantity": Decimal(-3), "multiplier": Decimal(100),
        "price": Decimal(f"{mark:.10f}"), "asset_category": "OPT", "strike": "105",
        "expiry": "2024-09-20", "put_call": "C"}])

    (row,) = option_greeks(holdings, {"42": spot}, as_of).to_dict("records")

    expected = black_scholes(contract, vol)
    assert row["implied_vol"] == pytest.approx(vol, abs=1e-8)
    assert row["delta"] == pytest.approx(expected.delta, abs=1e-8) and 0 < row["delta"] < 1
    assert row["gamma"] == pytest.approx(expected.gamma, abs=1e-8)
    assert row["delta_adjusted_exposure"] == pytest.approx(expected.delta * spot * 100 * -3)
    assert row["note"] is None
