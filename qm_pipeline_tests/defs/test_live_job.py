"""The `live_snapshot` job against the simulated IB Gateway, with the real client: a complete
snapshot is stored whole; a failed one leaves only a `failed` row in `live.snapshots`, so a
failed query is never read as a flat portfolio; a dropped connection is retried whole."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from qm_pipeline.definitions import defs
from qm_pipeline.defs.live.resources import IBGatewayResource
from qm_pipeline.defs.resources import WarehouseResource
from qm_pipeline.lib.analytics.prices import rebuild_prices
from qm_pipeline.lib.ib.client import LIBRARY, LOGGER_NAMES
from qm_pipeline.lib.ib.rows import TABLES
from qm_pipeline.lib.live.store import snapshot_counts
from qm_pipeline.lib.settings import Settings
from qm_pipeline.lib.sim.gateway import (
    DropConnection,
    ErrorReply,
    Fault,
    FaultPlan,
    GatewayThread,
    NeverEnd,
    RefuseConnection,
    default_state,
)
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
from qm_pipeline_tests.logs import SIMULATOR_LOGGER, error_records

AAPL, MSFT, SAP, SPY = 265598, 272093, 14204, 756733
AAPL_CALL, AAPL_PUT = 723350001, 723350002
STEP = "live__snapshots"


@pytest.fixture(autouse=True)
def no_decoder_or_simulator_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """A message the client could not decode, or a request the simulator failed on, is a bug
    whatever the test (the client only logs those)."""
    caplog.set_level(logging.WARNING)
    yield
    assert not error_records(caplog, {f"{LIBRARY}.Decoder", SIMULATOR_LOGGER})


def run_snapshot(instance: dg.DagsterInstance, settings: Settings, gw: GatewayThread,
                 **gateway: Any) -> dg.ExecuteInProcessResult:
    options: dict[str, Any] = {"host": gw.host, "port": gw.port, "connect_timeout": 5.0,
                               "request_timeout": 5.0, "retries": 0}
    return defs.resolve_job_def("live_snapshot").execute_in_process(
        instance=instance, raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        resources={
            "warehouse": WarehouseResource(database_url=settings.database_url,
                                           data_dir=str(settings.data_dir)),
            "ib_gateway": IBGatewayResource(**{**options, **gateway}),
        },
    )


def failure_of(result: dg.ExecuteInProcessResult) -> tuple[str, dict[str, Any]]:
    (event,) = [e for e in result.all_events if e.is_step_failure]
    assert event.step_key == STEP and event.step_failure_data is not None
    data = event.step_failure_data.user_failure_data
    assert data is not None
    return data.description or "", {k: v.value for k, v in data.metadata.items()}


def live_counts(warehouse: Warehouse) -> dict[str, int]:
    with warehouse.transaction() as tx:
        return {t: tx.scalar(f"SELECT count(*) FROM {qualified('live', t)}") for t in TABLES}


def start(*faults: Fault) -> GatewayThread:
    gw = GatewayThread(default_state(), FaultPlan(*faults))
    gw.start()
    return gw


def test_a_snapshot_run_stores_one_complete_snapshot(
        warehouse: Warehouse, settings: Settings, instance: dg.DagsterInstance, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    # Flex already described AAPL and MSFT: details are asked for the other contracts only
    flex = report(statement(section(
        "Trades", row("Trade", trade("T1", conid=str(AAPL), symbol="AAPL")),
        row("Trade", trade("T2", conid=str(MSFT), symbol="MSFT"))), account_id="DU1234567"))
    (loaded,) = ingest_files(warehouse, settings, write(tmp_path / "flex.xml", flex))
    assert loaded.status == "loaded"
    state = default_state()
    gw = GatewayThread(state)
    gw.start()
    try:
        result = run_snapshot(instance, settings, gw)
    finally:
        gw.stop()

    assert result.success
    assert not error_records(caplog, set(LOGGER_NAMES))
    (materialization,) = result.asset_materializations_for_node(STEP)
    meta = {k: v.value for k, v in materialization.metadata.items()}
    sid = meta["snapshot_id"]
    assert meta["accounts"] == "DU1234567,DU7654321"
    written = {t: meta[f"rows_{t}"] for t in TABLES}
    assert written == {"snapshots": 1, "accounts": 2, "account_values": 61, "account_summary": 28,
                       "portfolio_items": 6, "positions": 6, "open_orders": 5,
                       "completed_orders": 2, "executions": 4, "pnl": 8, "contract_details": 4,
                       "option_greeks": 2}
    with warehouse.transaction() as tx:
        assert snapshot_counts(tx, sid) == written
    assert live_counts(warehouse) == written  # one snapshot, nothing else

    requested = sorted(r.as_int("con_id") for r in gw.server.requests_named("REQ_CONTRACT_DATA"))
    assert requested == sorted([SAP, SPY, AAPL_CALL, AAPL_PUT])
    assert {c for (c,) in rows(warehouse, "SELECT conid FROM live.contract_details")} == {
        str(c) for c in requested}
    assert rows(warehouse, "SELECT status, error, port, client_id, attempts FROM live.snapshots"
                ) == [("complete", None, gw.port, 17, 1)]
    held = {(a.account_id, str(p.instrument.conid), p.quantity, p.avg_cost)
            for a in state.accounts for p in a.positions}
    assert set(rows(warehouse, "SELECT account_id, conid, position, avg_cost "
                    "FROM live.positions")) == held
    latest = rows(warehouse, "SELECT account_id, snapshot_id, net_liquidation FROM "
                  "live.latest_account_snapshots ORDER BY 1")
    assert latest == [("DU1234567", sid, Decimal("74966.68")),
                      ("DU7654321", sid, Decimal("16571.50"))]

    # a later failed run adds only its failure: the accounts stay as last seen, not flat
    refusing = start(RefuseConnection())
    try:
        failed = run_snapshot(instance, settings, refusing)
    finally:
        refusing.stop()
    assert not failed.success
    assert live_counts(warehouse) == {**written, "snapshots": 2}
    assert rows(warehouse, "SELECT account_id, snapshot_id, net_liquidation FROM "
                "live.latest_account_snapshots ORDER BY 1") == latest


# (fault, retries allowed, API sessions the gateway saw, the request named in the failure,
# a pattern of its message)
FAULTS = [
    pytest.param(RefuseConnection(), 0, 0, "connect",
                 r"^connect: connection to 127\.0\.0\.1:\d+ ", id="refused"),
    pytest.param(NeverEnd(request="REQ_POSITIONS"), 0, 1, ("connect", "reqPositions"),
                 r"positions request timed out|^reqPositions: no complete answer within",
                 id="positions-never-end"),
    # an API error is an answer, not a glitch: no retry however many are allowed
    pytest.param(ErrorReply(request="REQ_COMPLETED_ORDERS", code=322), 2, 1,
                 "reqCompletedOrders", r"^reqCompletedOrders: error 322", id="error-reply"),
]


@pytest.mark.parametrize("warehouse_url", ["duckdb"], indirect=True)
@pytest.mark.parametrize(("fault", "retries", "sessions", "request_name", "message"), FAULTS)
def test_a_failed_snapshot_stores_only_its_failure(
        warehouse: Warehouse, settings: Settings, instance: dg.DagsterInstance, fault: Fault,
        retries: int, sessions: int, request_name: str | tuple[str, ...], message: str) -> None:
    gw = start(fault)
    try:
        result = run_snapshot(instance, settings, gw, connect_timeout=1.0, request_timeout=1.0,
                              retries=retries)
    finally:
        gw.stop()

    assert not result.success
    assert gw.server.faults.fired  # the fault really happened
    assert len(gw.server.requests_named("START_API")) == sessions
    description, meta = failure_of(result)
    head = "Live snapshot failed, nothing stored (the accounts are unknown, not flat): "
    assert description.startswith(head)
    assert re.search(message, description.removeprefix(head))
    assert meta["request"] in ((request_name,) if isinstance(request_name, str) else request_name)
    assert meta["host"] == f"127.0.0.1:{gw.port}"
    assert result.asset_materializations_for_node(STEP) == []

    assert live_counts(warehouse) == {t: int(t == "snapshots") for t in TABLES}
    ((status, error, host, port, client_id, accounts),) = rows(
        warehouse, "SELECT status, error, host, port, client_id, accounts FROM live.snapshots")
    assert (status, host, port, client_id, accounts) == ("failed", "127.0.0.1", gw.port, 17, None)
    assert re.search(message, error) and description == head + error
    for view in ("account_snapshots", "position_snapshots", "latest_account_snapshots",
                 "latest_position_snapshots"):
        assert scalar(warehouse, f"SELECT count(*) FROM {qualified('live', view)}") == 0


@pytest.mark.parametrize("warehouse_url", ["duckdb"], indirect=True)
def test_a_connection_dropped_once_is_retried_and_stored_once(
        warehouse: Warehouse, settings: Settings, instance: dg.DagsterInstance,
        caplog: pytest.LogCaptureFixture) -> None:
    gw = start(DropConnection(request="REQ_ACCT_DATA", after_messages=3, times=1))
    try:
        result = run_snapshot(instance, settings, gw, retries=1)
    finally:
        gw.stop()

    assert result.success
    assert len(gw.server.faults.fired) == 1
    assert len(gw.server.requests_named("START_API")) == 2  # a fresh connection, from the top
    retried = [r.getMessage() for r in caplog.records if r.name == "qm_pipeline.lib.ib.session"]
    assert len(retried) == 1 and retried[0].startswith("snapshot attempt 1 of 2 failed: "
                                                       "reqAccountUpdates(DU1234567)")
    (materialization,) = result.asset_materializations_for_node(STEP)
    sid = materialization.metadata["snapshot_id"].value
    # the first attempt's account values never reach the warehouse: one snapshot, no doubles
    assert rows(warehouse, "SELECT snapshot_id, status, attempts FROM live.snapshots") == [
        (sid, "complete", 2)]
    assert live_counts(warehouse) == {
        "snapshots": 1, "accounts": 2, "account_values": 61, "account_summary": 28,
        "portfolio_items": 6, "positions": 6, "open_orders": 5, "completed_orders": 2,
        "executions": 4, "pnl": 8, "contract_details": 6, "option_greeks": 2}
    assert scalar(warehouse, "SELECT count(DISTINCT snapshot_id) FROM live.account_values") == 1


def run_daily_bars(instance: dg.DagsterInstance, settings: Settings, gw: GatewayThread,
                   **config: Any) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def("daily_bars").execute_in_process(
        instance=instance, raise_on_error=False,
        run_config={"ops": {"live__daily_bars": {"config": config}},
                    "loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        resources={
            "warehouse": WarehouseResource(database_url=settings.database_url,
                                           data_dir=str(settings.data_dir)),
            "ib_gateway": IBGatewayResource(host=gw.host, port=gw.port, connect_timeout=5.0,
                                            request_timeout=1.0, retries=0),
        },
    )


def test_the_benchmarks_daily_bars_are_stored_once_and_become_its_prices(
        warehouse: Warehouse, settings: Settings, instance: dg.DagsterInstance,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QM_BENCHMARK", "spy")
    state = default_state()
    gw = GatewayThread(state, FaultPlan())
    gw.start()
    try:
        first = run_daily_bars(instance, settings, gw)
        again = run_daily_bars(instance, settings, gw, duration="1 M")
    finally:
        gw.stop()

    assert first.success and again.success
    (client,) = {r.client_id for r in gw.server.requests_named("REQ_HISTORICAL_DATA")}
    assert client == 18  # its own client id: it may run beside a snapshot
    want = state.daily_bars[SPY]
    meta = {k: v.value for k, v in
            first.asset_materializations_for_node("live__daily_bars")[0].metadata.items()}
    assert meta == {"symbol": "SPY", "conid": SPY, "what_to_show": "ADJUSTED_LAST",
                    "first": want[0].day.isoformat(), "last": want[-1].day.isoformat(),
                    "rows": len(want)}
    stored = rows(warehouse, "SELECT date, close, conid FROM live.daily_bars ORDER BY date")
    assert [(d, c) for d, c, _ in stored] == [(b.day, b.close) for b in want]  # no day twice
    assert {conid for *_, conid in stored} == {str(SPY)}

    drop = settings.data_dir / "benchmarks"
    drop.mkdir(parents=True)
    (drop / "SPY.csv").write_text(f"date,close\n{want[-1].day},999.99\n")  # the user's file wins
    with warehouse.transaction() as tx:
        rebuild_prices(tx, drop)
    prices = rows(warehouse, "SELECT date, price, conid, source, source_ref FROM core.prices "
                  "WHERE instrument_id = 'BENCH:SPY' ORDER BY date")
    assert [(d, p) for d, p, *_ in prices] == [(b.day, b.close) for b in want[:-1]] + [
        (want[-1].day, Decimal("999.99"))]
    assert {(conid, source) for _, _, conid, source, _ in prices[:-1]} == {
        (None, "benchmark_live")}
    assert prices[0][4].startswith(f"live.daily_bars:ADJUSTED_LAST/{SPY}@")
    assert prices[-1][3:] == ("benchmark_csv", "SPY.csv:2")


def test_daily_bars_that_never_arrive_store_nothing(
        warehouse: Warehouse, settings: Settings, instance: dg.DagsterInstance) -> None:
    gw = start(NeverEnd(request="REQ_HISTORICAL_DATA"))
    try:
        result = run_daily_bars(instance, settings, gw, symbol="SPY")
    finally:
        gw.stop()

    assert not result.success
    (event,) = [e for e in result.all_events if e.is_step_failure]
    description = event.step_failure_data.user_failure_data.description
    assert description.startswith("Daily bars of SPY not fetched, nothing stored: "
                                   "reqHistoricalData: no complete answer within 2 s")
    assert scalar(warehouse, "SELECT count(*) FROM live.daily_bars") == 0
