"""Reconciliation runs in the warehouse, on DuckDB and PostgreSQL: a position gone at the
broker is closed externally through the audit log and a rerun changes nothing; a failed
snapshot is never read as flat; HALT_AND_ALERT halts and alerts once; SYNC_TO_LOCAL
proposes, and submits to the simulated gateway only when allowed; order statuses follow
the broker; breaks age across runs and resolve.

States are written straight into the tables the pipeline fills (ledger, raw, core, live),
with the pipeline's own schemas, so each test states exactly what each side holds.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa

from qm_pipeline.lib.flex.core_tables import CORE_BY_NAME
from qm_pipeline.lib.flex.prepare import core_schema
from qm_pipeline.lib.ib.model import SnapshotSettings
from qm_pipeline.lib.ledger.audit import POSITIONS
from qm_pipeline.lib.ledger.orders import upsert_orders
from qm_pipeline.lib.live.tables import live_rows, snapshots_schema
from qm_pipeline.lib.recon.config import ReconConfig
from qm_pipeline.lib.recon.model import Strategy
from qm_pipeline.lib.recon.run import reconcile
from qm_pipeline.lib.recon.submit import submit_proposals
from qm_pipeline.lib.sim.gateway import GatewayThread
from qm_pipeline.lib.sim.gateway.mirror import mirror_state
from qm_pipeline.lib.warehouse.engine import Warehouse
from qm_pipeline.lib.warehouse.migrations import STATEMENTS
from qm_pipeline_tests.helpers import rows, scalar

D = Decimal
ACCOUNT = "U1234567"
FLEX_DAY = dt.date(2024, 11, 29)
TAKEN = dt.datetime(2024, 12, 2, 15, 0)  # UTC, a New York day after the Flex report
AAPL, MSFT = "265598", "272093"


class Recorder:
    """A notifier that keeps what it was asked to send (the webhook itself is tested
    against a real HTTP server in test_notify)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict]] = []

    def alert(self, title: str, text: str, payload: dict[str, Any]) -> bool:
        self.sent.append((title, text, payload))
        return True


def _insert(warehouse: Warehouse, schema: str, table: str, data: pa.Table) -> None:
    with warehouse.transaction() as tx:
        tx.insert(schema, table, data)


def local(warehouse: Warehouse, *held: tuple[str, str, str]) -> None:
    """OPEN episodes: (conid, symbol, quantity)."""
    _insert(warehouse, "ledger", "positions", pa.Table.from_pylist([{
        "episode_id": f"{ACCOUNT}|{conid}|1", "account_id": ACCOUNT, "conid": conid,
        "symbol": symbol, "asset_category": "STK", "currency": "USD", "status": "OPEN",
        "side": "LONG" if D(qty) > 0 else "SHORT", "quantity": D(qty),
        "opened_at": dt.datetime(2024, 11, 25, 15, 30), "is_opening_balance": False,
        "status_source": "replay"} for conid, symbol, qty in held], schema=POSITIONS))


def flex(warehouse: Warehouse, *held: tuple[str, str, str]) -> None:
    """A statement with OpenPositions ending FLEX_DAY, holding (conid, symbol, quantity)."""
    _insert(warehouse, "raw", "flex_statements", pa.Table.from_pylist([{
        "file_sha256": "f" * 64, "statement_index": 0, "account_id": ACCOUNT,
        "from_date": "20241101", "to_date": "20241129",
        "sections": "OpenPositions,Trades"}], schema=STATEMENTS))
    _insert(warehouse, "core", "open_positions", pa.Table.from_pylist([{
        "account_id": ACCOUNT, "conid": conid, "symbol": symbol, "asset_category": "STK",
        "report_date": FLEX_DAY, "level_of_detail": "SUMMARY", "position": D(qty),
        "mark_price": D("100"), "natural_key": f"{ACCOUNT}|{conid}"}
        for conid, symbol, qty in held], schema=core_schema(CORE_BY_NAME["open_positions"])))


def live(warehouse: Warehouse, snapshot_id: str, *held: tuple[str, str, str],
         taken_at: dt.datetime = TAKEN, **tables: list[dict]) -> None:
    """A complete snapshot of ACCOUNT holding (conid, symbol, quantity), plus any rows of
    other live tables (`executions=[...]`, `open_orders=[...]`...)."""
    snapshot = live_rows("snapshots", [{"snapshot_id": snapshot_id, "taken_at": taken_at}],
                         snapshot_id)
    snapshot = snapshot.append_column("status", pa.array(["complete"])).append_column(
        "error", pa.nulls(1, pa.string()))
    _insert(warehouse, "live", "snapshots", snapshot)
    content = {"accounts": [{"account_id": ACCOUNT, "base_currency": "USD"}],
               "positions": [{"account_id": ACCOUNT, "conid": c, "symbol": s, "sec_type": "STK",
                              "position": D(q)} for c, s, q in held], **tables}
    for table, found in content.items():
        _insert(warehouse, "live", table, live_rows(table, found, snapshot_id))


def failed_snapshot(warehouse: Warehouse, taken_at: dt.datetime) -> None:
    _insert(warehouse, "live", "snapshots", pa.Table.from_pylist([{
        "snapshot_id": "failed-1", "taken_at": taken_at, "status": "failed",
        "error": "reqPositions timed out after 30 s"}], schema=snapshots_schema()))


def position(warehouse: Warehouse, conid: str) -> dict:
    columns = ["status", "quantity", "exit_reason", "closed_at", "status_source",
               "updated_run_id"]
    (found,) = rows(warehouse, f"SELECT {', '.join(columns)} FROM ledger.positions "
                               "WHERE conid = :c", c=conid)
    return dict(zip(columns, found, strict=True))


SYNC = ReconConfig().with_strategy(Strategy.SYNC_TO_BROKER)


def test_position_gone_at_broker_is_closed_externally_once(warehouse: Warehouse,
                                                          tmp_path: Path) -> None:
    local(warehouse, (AAPL, "AAPL", "2"), (MSFT, "MSFT", "50"))
    flex(warehouse, (AAPL, "AAPL", "2"), (MSFT, "MSFT", "50"))
    live(warehouse, "s1", (MSFT, "MSFT", "50"))

    first = reconcile(warehouse, SYNC, "r1", reports_dir=tmp_path)

    assert first.status == "warnings" and not first.halted
    assert first.matched == {"LEDGER_VS_FLEX": 2, "LEDGER_VS_LIVE": 1, "FLEX_VS_LIVE": 1,
                             "CASH_ROLL_VS_FLEX": 0, "CASH_FLEX_VS_LIVE": 0, "ORDERS": 0}
    closed = position(warehouse, AAPL)
    assert closed == {"status": "CLOSED_EXTERNALLY", "quantity": D(0),
                      "exit_reason": "External close detected during reconciliation",
                      "closed_at": TAKEN, "status_source": "reconciliation",
                      "updated_run_id": "r1"}
    assert position(warehouse, MSFT)["status"] == "OPEN"
    ((cause, run_id, before, after),) = rows(
        warehouse, "SELECT cause, run_id, before_values, after_values FROM ledger.audit_log")
    assert (cause, run_id) == ("reconciliation", "r1")
    assert json.loads(before)["status"] == "OPEN" and json.loads(before)["quantity"] == "2"
    assert json.loads(after)["status"] == "CLOSED_EXTERNALLY"
    assert rows(warehouse, "SELECT action, status, run_id FROM recon.actions") == [
        ("CLOSE_EXTERNALLY", "applied", "r1")]
    breaks = dict(rows(warehouse, "SELECT comparison, kind FROM recon.discrepancies"))
    assert breaks == {"LEDGER_VS_LIVE": "MISSING_BROKER", "FLEX_VS_LIVE": "MISSING_BROKER"}
    text = first.report_paths[0].read_text()
    assert "Closed externally: 1 (AAPL U1234567 local 2 / broker 0, entry 2024-11-25)" in text
    assert json.loads(first.report_paths[1].read_text())["run"]["status"] == "warnings"

    again = reconcile(warehouse, SYNC, "r2", reports_dir=tmp_path)

    assert again.actions == 0 and scalar(warehouse, "SELECT count(*) FROM recon.actions") == 1
    assert scalar(warehouse, "SELECT count(*) FROM ledger.audit_log") == 1
    assert again.resolved_breaks == 1  # ledger vs live agrees now
    status = dict(rows(warehouse, "SELECT comparison, status FROM recon.discrepancies "
                                  "WHERE kind = 'MISSING_BROKER'"))
    assert status == {"LEDGER_VS_LIVE": "RESOLVED", "FLEX_VS_LIVE": "OPEN"}
    assert rows(warehouse, "SELECT runs_seen, first_seen_run, last_seen_run FROM "
                           "recon.discrepancies WHERE comparison = 'FLEX_VS_LIVE'") == [
        (2, "r1", "r2")]
    # the Flex report still shows AAPL: newer than it, reconciliation closed it (TIMING)
    assert rows(warehouse, "SELECT kind, cause, action_taken FROM recon.discrepancies WHERE "
                           "comparison = 'LEDGER_VS_FLEX'") == [
        ("MISSING_LOCAL", "TIMING", "recorded (informational: a fresher comparison acts)")]


def test_failed_snapshot_is_never_read_as_flat(warehouse: Warehouse) -> None:
    local(warehouse, (AAPL, "AAPL", "2"))
    flex(warehouse, (AAPL, "AAPL", "2"))
    live(warehouse, "s1", (AAPL, "AAPL", "2"))
    failed_snapshot(warehouse, TAKEN + dt.timedelta(minutes=5))

    found = reconcile(warehouse, SYNC, "r1")

    assert "failed: reqPositions timed out" in found.live_problem
    assert "unknown, not flat" in found.live_problem
    assert found.matched == {"LEDGER_VS_FLEX": 1, "CASH_ROLL_VS_FLEX": 0}
    assert position(warehouse, AAPL)["status"] == "OPEN"
    assert scalar(warehouse, "SELECT count(*) FROM recon.actions") == 0
    assert rows(warehouse, "SELECT live_snapshot_id, status FROM recon.runs") == [(None, "ok")]


def test_halt_and_alert_halts_each_run_and_alerts_once(warehouse: Warehouse) -> None:
    local(warehouse, (AAPL, "AAPL", "2"))
    flex(warehouse, (AAPL, "AAPL", "2"))
    live(warehouse, "s1")
    notifier = Recorder()

    first = reconcile(warehouse, ReconConfig(), "r1", notifier=notifier)
    second = reconcile(warehouse, ReconConfig(), "r2", notifier=notifier)

    assert first.halted and second.halted and first.status == "halted"
    assert first.halting_breaks == second.halting_breaks == 1
    assert position(warehouse, AAPL)["status"] == "OPEN"  # a person decides
    ((title, text, payload),) = notifier.sent
    assert title == "qm-pipeline reconciliation r1 halted"
    assert "MISSING_BROKER" in text and payload == {"run_id": "r1", "halting_breaks": 1}
    assert rows(warehouse, "SELECT action, run_id FROM recon.actions") == [("HALT", "r1")]


def test_sync_to_local_proposes_and_submits_only_when_allowed(warehouse: Warehouse) -> None:
    local(warehouse, (AAPL, "AAPL", "5"))
    flex(warehouse, (AAPL, "AAPL", "5"))
    live(warehouse, "s1", (AAPL, "AAPL", "2"))
    propose = ReconConfig().with_strategy(Strategy.SYNC_TO_LOCAL)

    reconcile(warehouse, propose, "r1")

    assert rows(warehouse, "SELECT action, quantity, status FROM recon.proposals") == [
        ("BUY", D(3), "proposed")]
    with warehouse.transaction() as tx:
        state = mirror_state(tx)
    with GatewayThread(state, None) as gateway:
        settings = SnapshotSettings(host=gateway.host, port=gateway.port, client_id=31,
                                    readonly=False)
        submit = partial(submit_proposals, settings, allow_order_submission=True)
        allowed = ReconConfig(allow_order_submission=True).with_strategy(
            Strategy.SYNC_TO_LOCAL)
        with warehouse.transaction() as tx:  # a new occurrence: the break was resolved
            tx.execute("DELETE FROM recon.discrepancies")
        reconcile(warehouse, allowed, "r2", submit=submit)
        reconcile(warehouse, allowed, "r3", submit=submit)
        placed = gateway.server.requests_named("PLACE_ORDER")
    assert len(placed) == 1
    assert rows(warehouse, "SELECT run_id, action, quantity, status FROM recon.proposals "
                           "ORDER BY run_id") == [("r1", "BUY", D(3), "proposed"),
                                                  ("r2", "BUY", D(3), "submitted")]


def test_order_status_follows_the_broker(warehouse: Warehouse) -> None:
    local(warehouse)
    flex(warehouse)
    with warehouse.transaction() as tx:
        upsert_orders(tx, [{"order_key": "bot-1", "account_id": ACCOUNT, "conid": AAPL,
                            "symbol": "AAPL", "action": "BUY", "quantity": D(2),
                            "status": "Submitted", "perm_id": 777, "source": "application"}])
    live(warehouse, "s1", (AAPL, "AAPL", "2"), completed_orders=[{
        "perm_id": 777, "account_id": ACCOUNT, "conid": AAPL, "symbol": "AAPL",
        "action": "BUY", "total_quantity": D(2), "status": "Filled",
        "filled_quantity": D(2)}])

    found = reconcile(warehouse, SYNC, "r1")

    assert rows(warehouse, "SELECT status FROM ledger.orders") == [("Filled",)]
    kinds = dict(rows(warehouse, "SELECT kind, action_taken FROM recon.discrepancies "
                                 "WHERE comparison = 'ORDERS'"))
    assert kinds == {"ORPHAN_LOCAL_ORDER": "UPDATE_ORDER_STATUS"}
    assert found.matched["ORDERS"] == 0


def test_a_managed_account_without_local_state_is_named_not_compared(
        warehouse: Warehouse, tmp_path: Path) -> None:
    """Every position of an account the pipeline has no ledger or Flex for would be
    MISSING_LOCAL: it is left out of the comparisons and named in the run and report."""
    local(warehouse, (MSFT, "MSFT", "50"))
    flex(warehouse, (MSFT, "MSFT", "50"))
    live(warehouse, "s1", accounts=[{"account_id": ACCOUNT}, {"account_id": "DU999"}],
         positions=[{"account_id": ACCOUNT, "conid": MSFT, "position": D(50)},
                    {"account_id": "DU999", "conid": AAPL, "position": D(7)}])

    found = reconcile(warehouse, ReconConfig(), "r1", reports_dir=tmp_path)

    assert (found.status, found.discrepancies) == ("ok", 0)
    assert found.matched["LEDGER_VS_LIVE"] == 1
    assert rows(warehouse, "SELECT accounts, unreconciled_accounts FROM recon.runs") == [
        (ACCOUNT, "DU999")]
    assert "Not reconciled (the broker shows them, no local state): DU999" in found.text
