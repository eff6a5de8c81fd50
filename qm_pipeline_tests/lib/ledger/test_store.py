"""The ledger in the warehouse, on DuckDB and PostgreSQL: the generated multi-year history
agrees with IB's own numbers, rebuilds are idempotent, restatements change the ledger and
are audited, reconciliation's CLOSED_EXTERNALLY survives replays, marks come from the right
source, and the SQLAlchemy model reads `ledger.positions`.

Small hand-made reports (`base_report` and friends, also used by the Dagster job tests)
keep most tests to a few rows; the generated history is loaded once per test that needs it.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from qm_pipeline.lib.flex.sample import SampleSpec, write_reports
from qm_pipeline.lib.ledger.audit import set_status
from qm_pipeline.lib.ledger.model import LedgerAuditEntry, LedgerPosition
from qm_pipeline.lib.ledger.settings import ledger_config, parse_pairs
from qm_pipeline.lib.ledger.store import TABLES, rebuild
from qm_pipeline.lib.settings import Settings
from qm_pipeline.lib.warehouse.engine import Warehouse, qualified
from qm_pipeline_tests.helpers import (
    ingest_files,
    report,
    row,
    rows,
    scalar,
    section,
    statement,
    table_rows,
    trade,
    write,
)

D = Decimal
ACCOUNT = "U1234567"
ACME, BETA = "U1234567|1001|1", "U1234567|2002|1"  # the base report's position episodes
FIFO = ledger_config()

# --- small reports ------------------------------------------------------------------------


def execution(tid: str, day: str, quantity: int, price: str, *, conid: str = "1001",
              symbol: str = "ACME", fifo: str = "0", close: str | None = None,
              account: str = ACCOUNT) -> str:
    """A stock execution with IB's arithmetic: proceeds = -quantity x price, commission -1."""
    proceeds = -quantity * D(price)
    return row("Trade", trade(
        tid, accountId=account, conid=conid, symbol=symbol, description=f"{symbol} INC",
        tradeDate=day, reportDate=day, dateTime=f"{day};101500", quantity=quantity,
        tradePrice=price, proceeds=proceeds, netCash=proceeds - 1, ibCommission="-1",
        buySell="BUY" if quantity > 0 else "SELL", fifoPnlRealized=fifo,
        closePrice=close or price, fxRateToBase="1", multiplier="1"))


def position(day: str, conid: str, symbol: str, quantity: int, cost: str, mark: str) -> str:
    return row("OpenPosition", {
        "accountId": ACCOUNT, "currency": "USD", "assetCategory": "STK", "symbol": symbol,
        "conid": conid, "reportDate": day, "position": quantity, "markPrice": mark,
        "costBasisMoney": cost, "multiplier": "1", "fxRateToBase": "1",
        "levelOfDetail": "SUMMARY", "side": "Long"})


def flex(path: Path, trades: list[str], positions: list[str], *, when: str,
         from_date: str = "20240101", to_date: str = "20240131") -> Path:
    return write(path, report(statement(
        section("Trades", *trades), section("OpenPositions", *positions),
        account_id=ACCOUNT, from_date=from_date, to_date=to_date, when_generated=when)))


def base_report(folder: Path, fifo_t2: str = "198") -> Path:
    """Buy 100 ACME, sell them at a 198 profit (net of both commissions); buy 50 BETA and
    hold them: ACME's episode is CLOSED, BETA's OPEN at IB's report date."""
    return flex(folder / "base.xml", [
        execution("T1", "20240102", 100, "10", close="10.5"),
        execution("T2", "20240105", -100, "12", fifo=fifo_t2, close="12.2"),
        execution("T3", "20240108", 50, "20", conid="2002", symbol="BETA", close="20.4"),
    ], [position("20240131", "2002", "BETA", 50, "1001", "21")], when="20240201;120000")


def restated_report(folder: Path) -> Path:
    """IB restates T2: 60 sold, not 100 (newer whenGenerated, same transactionID)."""
    return flex(folder / "restated.xml", [
        execution("T2", "20240105", -60, "12", fifo="118.4", close="12.2"),
    ], [position("20240131", "1001", "ACME", 40, "400.4", "12.5"),
        position("20240131", "2002", "BETA", 50, "1001", "21")], when="20240301;120000")


def later_report(folder: Path) -> Path:
    """February: 10 more BETA."""
    return flex(folder / "february.xml", [
        execution("T4", "20240202", 10, "22", conid="2002", symbol="BETA"),
    ], [], when="20240301;120000", from_date="20240201", to_date="20240229")


def ledger_rows(warehouse: Warehouse, table: str) -> list[tuple]:
    """Every row of a ledger table, order-free (times of this run's bookkeeping kept)."""
    return sorted(rows(warehouse, f"SELECT * FROM {qualified('ledger', table)}"), key=repr)


def positions(warehouse: Warehouse) -> dict[str, dict[str, Any]]:
    columns = ["episode_id", "status", "quantity", "closed_at", "exit_reason", "realized_pnl",
               "status_source", "updated_cause", "updated_run_id"]
    return {r["episode_id"]: r for r in table_rows(warehouse, "ledger", "positions", columns)}


def audit(warehouse: Warehouse) -> list[dict[str, Any]]:
    columns = ["run_id", "cause", "action", "episode_id", "changed_columns", "before_values",
               "after_values", "note"]
    return table_rows(warehouse, "ledger", "audit_log", columns,
                      "ORDER BY logged_at, run_id, episode_id, action")


# --- the generated multi-year history ---------------------------------------------------------

SAMPLE = SampleSpec(accounts=("U1000001", "U1000002"), start=date(2023, 1, 2),
                    end=date(2024, 12, 31), trades_per_day=4, seed=11)


@pytest.fixture(scope="session")
def sample_reports(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_reports(SAMPLE, tmp_path_factory.mktemp("ledger_sample"))


def test_generated_history_agrees_with_ib(warehouse: Warehouse, settings: Settings,
                                          sample_reports: list[Path]) -> None:
    """Every cross-check passes with zero mismatches on both databases: realized P&L per
    execution, IB's closed lots and the open positions at every report date, the
    ACATS-transferred stock included (its lots keep IB's open dates and basis)."""
    assert all(r.status == "loaded" for r in ingest_files(warehouse, settings, *sample_reports))
    assert scalar(warehouse, "SELECT count(DISTINCT conid) FROM core.transfers "
                             "WHERE direction = 'IN'") == 1  # ELBW, one ACATS per account

    found = rebuild(warehouse, FIFO, "r1")

    assert found.accounts == ["U1000001", "U1000002"]
    assert found.executions == scalar(warehouse, "SELECT count(*) FROM core.trades") > 4000
    assert found.flags.get("ERROR", 0) == 0
    assert found.failures == {} and found.check_failures == 0
    assert rows(warehouse, "SELECT count(*) FROM ledger.check_failures") == [(0,)]
    # every transfer in took its lots from IB's lot rows, none fell back to market value:
    # the first account sold them at once (their trace: CLOSED_LOT rows), the second kept
    # them past the first statement (OpenPosition LOT rows naming the transfer)
    sourced = rows(warehouse, "SELECT account_id, level, reason FROM ledger.flags "
                              "WHERE source = 'transfers' ORDER BY account_id")
    assert [(a, level) for a, level, _ in sourced] == [("U1000001", "INFO"),
                                                       ("U1000002", "INFO")]
    assert sourced[0][2].endswith("from its CLOSED_LOT rows")
    assert sourced[1][2].endswith("from its open position LOT rows")
    # the ledger's realized P&L is IB's, to the cent
    ours = dict(rows(warehouse, "SELECT account_id, sum(realized_pnl) FROM ledger.realized "
                                "GROUP BY account_id"))
    ibs = dict(rows(warehouse, "SELECT account_id, sum(fifo_pnl_realized) FROM core.trades "
                               "GROUP BY account_id"))
    assert ours.keys() == ibs.keys() and all(abs(ours[a] - ibs[a]) < D("0.01") for a in ours)

    statuses = dict(rows(warehouse, "SELECT status, count(*) FROM ledger.positions "
                                    "GROUP BY status"))
    assert set(statuses) == {"OPEN", "CLOSED", "EXPIRED"}  # options expire in the sample
    assert statuses["OPEN"] == found.open_positions == scalar(
        warehouse, "SELECT count(*) FROM core.open_positions "
                   "WHERE level_of_detail = 'SUMMARY' AND report_date = '2024-12-31'")
    for name in ("lots", "realized", "position_history", "balance_history"):
        assert found.rows[name] > 0, name
    assert found.audit == {"INSERT": found.rows["positions"]}

    # balances: per-currency cash at statement ends adds up to IB's base total
    balances: dict[tuple, dict[str, Decimal]] = defaultdict(dict)
    for account, day, currency, cash_base in rows(
            warehouse, "SELECT account_id, date, currency, cash_base FROM ledger.balance_history"):
        balances[(account, day)][currency] = cash_base
    ends = [b for b in balances.values() if len(b) > 1]
    assert len(ends) == 4  # two statements x two accounts, in USD and EUR
    for by_currency in ends:
        total = by_currency.pop("BASE")
        assert abs(sum(by_currency.values()) - total) < D("0.01")
    assert rows(warehouse, "SELECT source, count(*) FROM ledger.balance_history "
                           "WHERE currency = 'BASE' GROUP BY source") == [
        ("core.nav_daily", scalar(warehouse, "SELECT count(*) FROM core.nav_daily"))]


def test_rebuild_is_idempotent(warehouse: Warehouse, settings: Settings,
                               sample_reports: list[Path]) -> None:
    ingest_files(warehouse, settings, *sample_reports)
    first = rebuild(warehouse, FIFO, "r1")
    tables = [t for t in TABLES if t not in ("audit_log", "runs", "check_failures")]
    before = {t: ledger_rows(warehouse, t) for t in tables}
    logged = ledger_rows(warehouse, "audit_log")
    failures = rows(warehouse, "SELECT check_name, account_id, conid, key, ours, ibs "
                               "FROM ledger.check_failures ORDER BY 1, 2, 3, 4")

    again = rebuild(warehouse, FIFO, "r2")

    assert {t: ledger_rows(warehouse, t) for t in tables} == before
    assert ledger_rows(warehouse, "audit_log") == logged  # nothing changed, nothing logged
    assert again.audit == {} and again.rows == {**first.rows, "audit_log": 0}
    assert rows(warehouse, "SELECT check_name, account_id, conid, key, ours, ibs "
                           "FROM ledger.check_failures ORDER BY 1, 2, 3, 4") == failures
    assert rows(warehouse, "SELECT run_id, audit_rows FROM ledger.runs ORDER BY started_at") \
        == [("r1", first.rows["positions"]), ("r2", 0)]


# --- restatements, reconciliation, audit ---------------------------------------------------


def test_restatement_changes_the_ledger_and_is_audited(
        warehouse: Warehouse, settings: Settings, tmp_path: Path) -> None:
    ingest_files(warehouse, settings, base_report(tmp_path))
    assert rebuild(warehouse, FIFO, "r1").failures == {}
    assert positions(warehouse)[ACME]["status"] == "CLOSED"

    ingest_files(warehouse, settings, restated_report(tmp_path))
    found = rebuild(warehouse, FIFO, "r2")

    assert found.failures == {}  # the restated numbers agree with IB's restated ones
    acme = positions(warehouse)[ACME]
    assert (acme["status"], acme["quantity"], acme["realized_pnl"], acme["closed_at"]) == (
        "OPEN", 40, D("118.4"), None)
    assert acme["updated_run_id"] == "r2" and acme["updated_cause"] == "replay"
    assert positions(warehouse)[BETA]["updated_run_id"] == "r1"  # untouched
    changes = [a for a in audit(warehouse) if a["run_id"] == "r2"]
    assert len(changes) == 1
    (change,) = changes
    assert (change["cause"], change["action"], change["episode_id"]) == (
        "replay", "UPDATE", ACME)
    assert set(change["changed_columns"].split(",")) == {
        "status", "quantity", "cost_basis", "cost_basis_base", "closed_at", "exit_reason",
        "realized_pnl", "realized_pnl_base"}
    assert '"status": "CLOSED"' in change["before_values"]
    assert '"quantity": "40"' in change["after_values"]
    assert rows(warehouse, "SELECT sum(quantity) FROM ledger.lots WHERE conid = '1001'") == [
        (40,)]


def test_closed_externally_survives_replays(warehouse: Warehouse, settings: Settings,
                                            tmp_path: Path) -> None:
    ingest_files(warehouse, settings, base_report(tmp_path))
    rebuild(warehouse, FIFO, "r1")
    gone = datetime(2024, 2, 1, 16, 0)
    with warehouse.transaction() as tx:
        set_status(tx, BETA, "CLOSED_EXTERNALLY", cause="reconciliation", run_id="recon-1",
                   closed_at=gone, exit_reason="GONE_AT_BROKER", note="missing at the broker")
    assert [(a["cause"], a["action"], a["changed_columns"]) for a in audit(warehouse)
            if a["run_id"] == "recon-1"] == [
        ("reconciliation", "UPDATE", "status,closed_at,exit_reason,status_source")]

    rebuild(warehouse, FIFO, "r2")  # the replay still derives BETA as OPEN

    beta = positions(warehouse)[BETA]
    assert (beta["status"], beta["closed_at"], beta["exit_reason"], beta["status_source"],
            beta["quantity"]) == ("CLOSED_EXTERNALLY", gone, "GONE_AT_BROKER",
                                  "reconciliation", 50)
    (kept,) = [a for a in audit(warehouse) if a["run_id"] == "r2"]
    assert (kept["cause"], kept["action"], kept["episode_id"]) == ("replay", "KEEP", BETA)
    assert "kept status CLOSED_EXTERNALLY set by reconciliation" in kept["note"]
    assert "replay derives OPEN" in kept["note"]

    logged = len(audit(warehouse))
    rebuild(warehouse, FIFO, "r3")  # nothing new: nothing logged, nothing undone
    assert len(audit(warehouse)) == logged
    assert positions(warehouse)[BETA]["status"] == "CLOSED_EXTERNALLY"

    ingest_files(warehouse, settings, later_report(tmp_path))
    rebuild(warehouse, FIFO, "r4")  # a change under the reconciled status: applied, logged
    beta = positions(warehouse)[BETA]
    assert (beta["status"], beta["quantity"], beta["exit_reason"]) == (
        "CLOSED_EXTERNALLY", 60, "GONE_AT_BROKER")
    (update,) = [a for a in audit(warehouse) if a["run_id"] == "r4"]
    assert update["action"] == "UPDATE" and "quantity" in update["changed_columns"]
    assert "kept status CLOSED_EXTERNALLY" in update["note"]


def test_set_status_refuses_unknown_causes_and_episodes(warehouse: Warehouse,
                                                        settings: Settings,
                                                        tmp_path: Path) -> None:
    ingest_files(warehouse, settings, base_report(tmp_path))
    rebuild(warehouse, FIFO, "r1")
    with warehouse.transaction() as tx, pytest.raises(ValueError, match="cause"):
        set_status(tx, BETA, "CLOSED_EXTERNALLY", cause="replay", run_id="x")
    with warehouse.transaction() as tx, pytest.raises(ValueError, match="status"):
        set_status(tx, BETA, "GONE", cause="manual", run_id="x")
    with warehouse.transaction() as tx, pytest.raises(LookupError):
        set_status(tx, "U1|nothing|1", "CLOSED", cause="manual", run_id="x")


def test_subset_rebuild_replaces_only_those_accounts(warehouse: Warehouse, settings: Settings,
                                                     tmp_path: Path) -> None:
    other = write(tmp_path / "other.xml", report(statement(
        section("Trades", execution("X1", "20240103", 5, "7", account="U7654321")),
        account_id="U7654321", when_generated="20240201;120000")))
    ingest_files(warehouse, settings, base_report(tmp_path), other)
    rebuild(warehouse, FIFO, "r1")
    kept = ledger_rows(warehouse, "lots")

    found = rebuild(warehouse, ledger_config("LIFO"), "r2", accounts=[ACCOUNT])

    assert found.accounts == [ACCOUNT]
    assert rows(warehouse, "SELECT account_id, method FROM ledger.lots ORDER BY 1, 2") == [
        (ACCOUNT, "LIFO"), ("U7654321", "FIFO")]
    assert [r for r in ledger_rows(warehouse, "lots") if "U7654321" in r] == [
        r for r in kept if "U7654321" in r]
    assert rows(warehouse, "SELECT DISTINCT account_id FROM ledger.positions ORDER BY 1") == [
        (ACCOUNT,), ("U7654321",)]


# --- marks, balances, the model ----------------------------------------------------------------


def add_snapshot(warehouse: Warehouse, snapshot_id: str, taken_at: datetime,
                 marks: dict[str, str]) -> None:
    with warehouse.transaction() as tx:
        tx.insert("live", "snapshots", pa.Table.from_pylist(
            [{"snapshot_id": snapshot_id, "taken_at": taken_at, "status": "complete"}]))
        tx.insert("live", "portfolio_items", pa.Table.from_pylist([
            {"snapshot_id": snapshot_id, "account_id": ACCOUNT, "conid": conid,
             "market_price": D(price)} for conid, price in marks.items()]))


def test_marks_come_from_ib_positions_then_trades_then_live(
        warehouse: Warehouse, settings: Settings, tmp_path: Path) -> None:
    ingest_files(warehouse, settings, base_report(tmp_path))
    # 2024-01-10 in New York: 15:00, then 22:00 (already the 11th in UTC): the later wins
    add_snapshot(warehouse, "s1", datetime(2024, 1, 10, 20, 0), {"2002": "20.5"})
    add_snapshot(warehouse, "s2", datetime(2024, 1, 11, 3, 0), {"2002": "20.75"})
    # on IB's report date IB's mark wins over a live one; a trade's close over a live one
    add_snapshot(warehouse, "s3", datetime(2024, 1, 31, 20, 0), {"2002": "99"})
    add_snapshot(warehouse, "s4", datetime(2024, 1, 8, 20, 0), {"2002": "98"})

    rebuild(warehouse, FIFO, "r1")

    history = rows(warehouse, "SELECT date, quantity, mark, market_value, unrealized_pnl "
                              "FROM ledger.position_history WHERE conid = '2002' ORDER BY date")
    assert history == [
        (date(2024, 1, 8), 50, D("20.4"), D("1020"), D("19")),  # the trade's close price
        (date(2024, 1, 10), 50, D("20.75"), D("1037.5"), D("36.5")),  # live, New York day
        (date(2024, 1, 31), 50, D("21"), D("1050"), D("49")),  # IB's open position mark
    ]
    assert rows(warehouse, "SELECT date, mark FROM ledger.position_history "
                           "WHERE conid = '1001' ORDER BY date") == [
        (date(2024, 1, 2), D("10.5")), (date(2024, 1, 5), D("12.2"))]


def test_model_reads_positions_and_audit_log(warehouse: Warehouse, settings: Settings,
                                             tmp_path: Path) -> None:
    ingest_files(warehouse, settings, base_report(tmp_path))
    rebuild(warehouse, FIFO, "r1")
    with warehouse.transaction() as tx:
        for model in (LedgerPosition, LedgerAuditEntry):
            table = model.__table__
            assert list(tx.columns("ledger", table.name)) == [c.name for c in table.columns]

    with Session(warehouse.engine) as session:
        found = session.scalars(select(LedgerPosition).order_by(LedgerPosition.episode_id)).all()
        open_now = session.scalars(select(LedgerPosition).where(
            LedgerPosition.account_id == ACCOUNT, LedgerPosition.status == "OPEN")).all()
        logged = session.scalars(select(LedgerAuditEntry)).all()

    assert [p.episode_id for p in found] == [ACME, BETA]
    acme, beta = found
    assert (acme.status, acme.side, acme.quantity, acme.exit_reason, acme.realized_pnl) == (
        "CLOSED", "LONG", 0, "SOLD", D("198"))
    assert acme.closed_at == datetime(2024, 1, 5, 10, 15)
    assert isinstance(beta.average_cost, Decimal) and beta.average_cost == D("20.02")
    assert (beta.status, beta.quantity, beta.opened_at, beta.status_source) == (
        "OPEN", 50, datetime(2024, 1, 8, 10, 15), "replay")
    assert [p.episode_id for p in open_now] == [BETA]
    assert sorted((e.episode_id, e.action, e.cause) for e in logged) == [
        (ACME, "INSERT", "replay"), (BETA, "INSERT", "replay")]

    exact = D("1001.123456789012345678")  # 18 decimals: no binary float on the way
    with Session(warehouse.engine) as session:
        session.get(LedgerPosition, BETA).cost_basis = exact
        session.commit()
    assert scalar(warehouse, "SELECT cost_basis FROM ledger.positions WHERE episode_id = :e",
                  e=BETA) == exact
    with Session(warehouse.engine) as session:
        assert session.get(LedgerPosition, BETA).cost_basis == exact


def test_settings_parse_and_refuse_nonsense() -> None:
    config = ledger_config("lifo", "U1=HIFO, U2=specific", "taxpayer", "U1=ada,U2=ada")
    assert config.method("U1").value == "HIFO" and config.method("U3").value == "LIFO"
    assert config.method("U2").value == "SPECIFIC" and config.wash_sales.value == "taxpayer"
    assert config.owner("U2") == "ada"
    assert parse_pairs("", "x") == {}
    for bad in ({"method": "FILO"}, {"wash_sales": "sometimes"}, {"methods": "U1"},
                {"methods": "U1=FIFO,=LIFO"}):
        with pytest.raises(ValueError):
            ledger_config(**bad)
