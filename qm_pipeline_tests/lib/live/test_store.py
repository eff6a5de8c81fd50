"""Live snapshots in the warehouse (DuckDB and PostgreSQL): the `live` schema `migrate` makes,
snapshots taken from the simulated gateway with the real client and stored whole, the history
and latest views, failures recorded as unknowns, and the join to Flex trades."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from qm_pipeline.lib.ib.model import Snapshot
from qm_pipeline.lib.ib.rows import TABLES
from qm_pipeline.lib.live.store import (
    known_conids,
    record_failure,
    snapshot_counts,
    store_snapshot,
)
from qm_pipeline.lib.live.tables import VIEWS
from qm_pipeline.lib.settings import Settings
from qm_pipeline.lib.sim.gateway import GatewayState, default_state
from qm_pipeline.lib.warehouse.engine import Warehouse, qualified
from qm_pipeline_tests.helpers import (
    ingest_files,
    report,
    row,
    rows,
    scalar,
    section,
    statement,
    trade,
    write,
)
from qm_pipeline_tests.lib.live.conftest import TakeSnapshot, next_second, reprice

AAPL, MSFT, SAP, SPY = 265598, 272093, 14204, 756733
AAPL_CALL, AAPL_PUT = 723350001, 723350002
FIRST, SECOND = "DU1234567", "DU7654321"
MONEY = {"strike", "multiplier", "position", "market_price", "market_value", "average_cost",
         "unrealized_pnl", "realized_pnl", "avg_cost", "value_decimal", "total_quantity",
         "lmt_price", "aux_price", "filled", "remaining", "avg_fill_price", "filled_quantity",
         "shares", "price", "cum_qty", "avg_price", "commission", "daily_pnl", "min_tick"}


def store(warehouse: Warehouse, snapshot: Snapshot) -> dict[str, int]:
    with warehouse.transaction() as tx:
        return store_snapshot(tx, snapshot)


def value_of(state: GatewayState, account_id: str, tag: str, currency: str) -> Decimal:
    account = state.account(account_id)
    assert account is not None
    (found,) = [v.value for v in account.values if (v.tag, v.currency) == (tag, currency)]
    return Decimal(found)


def columns(warehouse: Warehouse, table: str) -> dict[str, tuple[str, int | None, int | None]]:
    found = rows(warehouse, "SELECT column_name, data_type, numeric_precision, numeric_scale "
                 "FROM information_schema.columns WHERE table_schema = 'live' "
                 "AND table_name = :t ORDER BY ordinal_position", t=table)
    return {name: (kind.lower(), precision, scale) for name, kind, precision, scale in found}


def test_migrate_makes_the_live_tables_and_views(warehouse: Warehouse) -> None:
    kinds = dict(rows(warehouse, "SELECT table_name, table_type FROM information_schema.tables "
                      "WHERE table_schema = 'live'"))
    assert {t for t, k in kinds.items() if k == "BASE TABLE"} == {*TABLES, "daily_bars"}
    assert {t for t, k in kinds.items() if k == "VIEW"} == set(VIEWS) == {
        "account_snapshots", "position_snapshots", "latest_account_snapshots",
        "latest_position_snapshots", "executions_with_trades"}
    text = {"varchar", "text"}
    for table, declared in TABLES.items():
        found = columns(warehouse, table)
        extra = ["status", "error"] if table == "snapshots" else []
        assert list(found) == (["snapshot_id"] if table != "snapshots" else []) + [
            *declared, *extra], table
        assert found["snapshot_id"][0] in text, table
        for name, (kind, precision, scale) in found.items():
            if name in MONEY or (table, name) == ("pnl", "value"):
                assert kind in {"decimal(38,12)", "numeric"} and (precision, scale) == (38, 12), \
                    (table, name, kind)
            elif name in {"conid", "under_conid", "value", "account_id", "ib_exec_id"}:
                assert kind in text, (table, name, kind)  # ids stay text, as in core.instruments
    assert columns(warehouse, "account_values")["value"][0] in text  # IB's text, e.g. INDIVIDUAL
    assert columns(warehouse, "snapshots")["taken_at"][0].startswith("timestamp")
    assert columns(warehouse, "executions")["perm_id"][0] == "bigint"


def test_a_snapshot_is_stored_whole_with_its_values(warehouse: Warehouse,
                                                    take: TakeSnapshot) -> None:
    state = default_state()
    snapshot = take(state)
    written = store(warehouse, snapshot)
    sid = snapshot.snapshot_id

    assert written == {t: len(r) for t, r in snapshot.tables().items()}
    assert written == {"snapshots": 1, "accounts": 2, "account_values": 61, "account_summary": 28,
                       "portfolio_items": 6, "positions": 6, "open_orders": 5,
                       "completed_orders": 2, "executions": 4, "pnl": 8, "contract_details": 6,
                       "option_greeks": 2}
    with warehouse.transaction() as tx:
        assert snapshot_counts(tx, sid) == written
        for table in TABLES:  # nothing stored under any other id
            assert tx.scalar(f"SELECT count(*) FROM {qualified('live', table)}") == written[table]

    header = rows(warehouse, "SELECT status, error, host, port, client_id, accounts, attempts, "
                  "taken_at FROM live.snapshots WHERE snapshot_id = :s", s=sid)
    assert header[0][:7] == ("complete", None, "127.0.0.1", snapshot.snapshots[0]["port"], 17,
                             f"{FIRST},{SECOND}", 1)
    assert header[0][7] == snapshot.taken_at.astimezone(UTC).replace(tzinfo=None, microsecond=0)

    # positions: every holding of the simulator, conid as text, quantities exact
    held = {(a.account_id, str(p.instrument.conid), p.quantity, p.avg_cost)
            for a in state.accounts for p in a.positions}
    assert set(rows(warehouse, "SELECT account_id, conid, position, avg_cost FROM live.positions "
                    "WHERE snapshot_id = :s", s=sid)) == held
    assert rows(warehouse, "SELECT sec_type, \"right\", strike, multiplier, expiry, position "
                "FROM live.positions WHERE conid = :c", c=str(AAPL_PUT)) == [
        ("OPT", "P", Decimal(180), Decimal(100), "20260116", Decimal(-2))]
    valued = {(a.account_id, str(p.instrument.conid), p.market_value, p.unrealized_pnl)
              for a in state.accounts for p in a.positions}
    assert set(rows(warehouse, "SELECT account_id, conid, market_value, unrealized_pnl "
                    "FROM live.portfolio_items")) == valued
    assert rows(warehouse, "SELECT market_value FROM live.portfolio_items WHERE conid = :c",
                c=str(AAPL_CALL)) == [(Decimal("2870.00"),)]  # 2 x 14.35 x 100

    # accounts and their figures, through the history view
    figures = rows(warehouse, "SELECT account_id, is_paper, base_currency, net_liquidation, "
                   "total_cash, buying_power, margin_used, cushion FROM live.account_snapshots "
                   "WHERE snapshot_id = :s ORDER BY account_id", s=sid)
    assert figures == [
        (acct, True, "USD", value_of(state, acct, "NetLiquidation", "USD"),
         value_of(state, acct, "TotalCashValue", "USD"),
         value_of(state, acct, "BuyingPower", "USD"), value_of(state, acct, "InitMarginReq", "USD"),
         value_of(state, acct, "Cushion", ""))
        for acct in (FIRST, SECOND)]
    assert figures[0][3] == Decimal("74966.68")  # 28,255 cash + stock and option values
    assert rows(warehouse, "SELECT value, value_decimal FROM live.account_values "
                "WHERE account_id = :a AND tag = 'AccountType'", a=FIRST) == [("INDIVIDUAL", None)]
    assert rows(warehouse, "SELECT currency, value_decimal FROM live.account_summary "
                "WHERE account_id = :a AND tag = 'NetLiquidation'", a=SECOND) == [
        ("USD", value_of(state, SECOND, "NetLiquidation", "USD"))]

    # fills with their commission reports, times in UTC
    fills = {(e.exec_id, str(e.instrument.conid), e.shares, e.price, e.commission,
              e.commission_currency, e.time.replace(tzinfo=None))
             for a in state.accounts for e in a.executions}
    assert set(rows(warehouse, "SELECT ib_exec_id, conid, shares, price, commission, "
                    "commission_currency, time FROM live.executions")) == fills
    assert rows(warehouse, "SELECT commission, commission_currency, realized_pnl FROM "
                "live.executions WHERE ib_exec_id = '0000f1e6.67a1b2c4.01.01'") == [
        (Decimal("1.25"), "EUR", Decimal("348.75"))]

    # orders, PnL and contract details
    assert rows(warehouse, "SELECT account_id, perm_id, order_type, lmt_price, order_ref FROM "
                "live.open_orders WHERE client_id = 0") == [
        (SECOND, 1_000_006, "LMT", Decimal("400.00"), "manual")]
    assert rows(warehouse, "SELECT status, completed_status, filled_quantity FROM "
                "live.completed_orders WHERE perm_id = 1000004") == [
        ("Cancelled", "Cancelled by Trader", Decimal(0))]
    account_pnl = {(acct, *state.account(acct).pnl()) for acct in (FIRST, SECOND)}
    assert set(rows(warehouse, "SELECT account_id, daily_pnl, unrealized_pnl, realized_pnl "
                    "FROM live.pnl WHERE conid IS NULL")) == account_pnl
    assert rows(warehouse, "SELECT position, value FROM live.pnl WHERE conid = :c",
                c=str(MSFT)) == [(Decimal(50), Decimal("20760.00"))]
    assert rows(warehouse, "SELECT symbol, sec_type, strike, \"right\", long_name, under_conid "
                "FROM live.contract_details WHERE conid = :c", c=str(AAPL_CALL)) == [
        ("AAPL", "OPT", Decimal(200), "C", "APPLE INC", str(AAPL))]


def test_account_figures_are_the_base_totals_across_currencies(warehouse: Warehouse,
                                                                take: TakeSnapshot) -> None:
    """IB sends UnrealizedPnL, RealizedPnL, cash and market values once per currency and once as
    BASE (all currencies in the base one): the account's figure is the BASE row, not whichever
    of the base-currency and BASE rows is larger."""
    state = default_state()
    reprice(state.accounts[0], SAP, Decimal("100.00"))  # the EUR holding now at a loss
    usd_only = value_of(state, FIRST, "UnrealizedPnL", "USD")
    total = value_of(state, FIRST, "UnrealizedPnL", "BASE")
    assert (usd_only, total) == (Decimal("9550.00"), Decimal("9105.15"))  # -410 EUR x 1.085
    snapshot = take(state)
    store(warehouse, snapshot)

    got = rows(warehouse, "SELECT unrealized_pnl, realized_pnl, net_liquidation, total_cash "
               "FROM live.account_snapshots WHERE account_id = :a", a=FIRST)
    assert got == [(total, value_of(state, FIRST, "RealizedPnL", "BASE"),
                    value_of(state, FIRST, "NetLiquidation", "USD"),
                    value_of(state, FIRST, "TotalCashValue", "USD"))]


def test_history_keeps_every_snapshot_latest_the_newest_per_account(
        warehouse: Warehouse, take: TakeSnapshot) -> None:
    state = default_state()
    first = take(state)
    before = value_of(state, FIRST, "NetLiquidation", "USD")
    next_second()  # taken_at is stored to the second
    reprice(state.accounts[0], AAPL, Decimal("200.00"))
    after = value_of(state, FIRST, "NetLiquidation", "USD")
    assert after - before == 100 * Decimal("10.50")
    second = take(state, accounts=(FIRST,))  # only one account this time
    store(warehouse, first)
    store(warehouse, second)
    a, b = first.snapshot_id, second.snapshot_id

    assert sorted(rows(warehouse, "SELECT snapshot_id, status, accounts FROM live.snapshots")) == \
        sorted([(a, "complete", f"{FIRST},{SECOND}"), (b, "complete", FIRST)])
    assert sorted(rows(warehouse, "SELECT snapshot_id, account_id, net_liquidation "
                       "FROM live.account_snapshots")) == sorted([
        (a, FIRST, before), (a, SECOND, value_of(state, SECOND, "NetLiquidation", "USD")),
        (b, FIRST, after)])
    latest = rows(warehouse, "SELECT account_id, snapshot_id, net_liquidation, timestamp "
                  "FROM live.latest_account_snapshots ORDER BY account_id")
    assert [r[:3] for r in latest] == [
        (FIRST, b, after), (SECOND, a, value_of(state, SECOND, "NetLiquidation", "USD"))]
    assert latest[0][3] > latest[1][3]
    assert scalar(warehouse, "SELECT count(*) FROM live.position_snapshots") == 6 + 4

    newest = rows(warehouse, "SELECT snapshot_id, account_id, conid, quantity, market_price, "
                  "market_value FROM live.latest_position_snapshots")
    assert sorted(newest) == sorted(
        [(b, FIRST, str(p.instrument.conid), p.quantity, p.market_price, p.market_value)
         for p in state.accounts[0].positions]
        + [(a, SECOND, str(p.instrument.conid), p.quantity, p.market_price, p.market_value)
           for p in state.accounts[1].positions])
    assert (b, FIRST, str(AAPL), Decimal(100), Decimal("200.00"), Decimal("20000.00")) in newest


def test_a_failure_is_recorded_alone_and_never_reads_as_flat(warehouse: Warehouse,
                                                              take: TakeSnapshot) -> None:
    failed = "f" * 32
    with warehouse.transaction() as tx:
        record_failure(tx, failed, "127.0.0.1", 4002, 17, "reqPositions: no complete answer")
    assert rows(warehouse, "SELECT status, error, host, port, client_id, accounts, attempts "
                "FROM live.snapshots") == [
        ("failed", "reqPositions: no complete answer", "127.0.0.1", 4002, 17, None, None)]
    taken = scalar(warehouse, "SELECT taken_at FROM live.snapshots")
    assert abs(taken - datetime.now(UTC).replace(tzinfo=None)) < timedelta(minutes=1)
    with warehouse.transaction() as tx:
        assert snapshot_counts(tx, failed) == {t: int(t == "snapshots") for t in TABLES}
    for view in VIEWS:  # no account, no position: unknown, not zero
        assert scalar(warehouse, f"SELECT count(*) FROM {qualified('live', view)}") == 0

    snapshot = take(default_state())
    store(warehouse, snapshot)
    with warehouse.transaction() as tx:
        record_failure(tx, "e" * 32, "127.0.0.1", 4002, 17, "connect: connection refused")
    assert sorted(rows(warehouse, "SELECT status, count(*) FROM live.snapshots GROUP BY 1")) == [
        ("complete", 1), ("failed", 2)]
    for view in ("account_snapshots", "position_snapshots", "latest_account_snapshots",
                 "latest_position_snapshots", "executions_with_trades"):
        ids = {i for (i,) in rows(warehouse, f"SELECT snapshot_id FROM {qualified('live', view)}")}
        assert ids == {snapshot.snapshot_id}, view
    assert scalar(warehouse, "SELECT count(*) FROM live.latest_account_snapshots") == 2


def flex_report(path: Path, exec_id: str) -> Path:
    """Flex's record of a fill the gateway also reports today, plus a masked conid."""
    today = date.today()
    fill = trade("T1", accountId=FIRST, symbol="AAPL", description="APPLE INC",
                 conid=str(AAPL), ibExecID=exec_id, tradeDate=f"{today:%Y%m%d}",
                 dateTime=f"{today:%Y%m%d};103100", quantity="40", tradePrice="189.2",
                 ibCommission="-0.35", netCash="-7568.35", fifoPnlRealized="0")
    other = trade("T2", accountId=FIRST, symbol="MSFT", description="MICROSOFT CORP",
                  conid=str(MSFT), ibExecID="0000abcd.00000001.01.01")
    masked = trade("T3", accountId=FIRST, symbol="XYZ", description="MASKED", conid="XXXX1")
    text = report(statement(section("Trades", row("Trade", fill), row("Trade", other),
                                    row("Trade", masked)), account_id=FIRST))
    return write(path, text)


def test_known_conids_and_executions_beside_flex_trades(
        warehouse: Warehouse, settings: Settings, take: TakeSnapshot, tmp_path: Path) -> None:
    exec_id = "0000e0d5.67a1b2c3.02.01"  # the 40-share AAPL fill of the simulator
    with warehouse.transaction() as tx:
        assert known_conids(tx) == set()
    (loaded,) = ingest_files(warehouse, settings, flex_report(tmp_path / "flex.xml", exec_id))
    assert loaded.status == "loaded", loaded.error
    assert sorted(c for (c,) in rows(warehouse, "SELECT conid FROM core.instruments")) == [
        str(AAPL), str(MSFT), "XXXX1"]
    with warehouse.transaction() as tx:
        known = known_conids(tx)
    assert known == {AAPL, MSFT}  # ints, the masked conid left out

    snapshot = take(default_state(), known_conids=known)
    store(warehouse, snapshot)

    described = {c for (c,) in rows(warehouse, "SELECT conid FROM live.contract_details")}
    assert described == {str(c) for c in (SAP, SPY, AAPL_CALL, AAPL_PUT)}
    joined = rows(warehouse, "SELECT ib_exec_id, shares, commission, transaction_id, trade_date, "
                  "net_cash, fifo_pnl_realized FROM live.executions_with_trades")
    assert len(joined) == 4  # one row per fill: the join adds columns, never rows
    by_exec = {r[0]: r[1:] for r in joined}
    assert by_exec[exec_id] == (Decimal(40), Decimal("0.35"), "T1", date.today(),
                                Decimal("-7568.35"), Decimal(0))
    assert all(r[2:] == (None, None, None, None) for e, r in by_exec.items() if e != exec_id)

