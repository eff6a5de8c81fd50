"""The latest snapshot per account, for the CLI's closing table."""

from __future__ import annotations

from qm_pipeline.lib.warehouse.engine import Warehouse


def latest_accounts(warehouse: Warehouse) -> list[tuple]:
    with warehouse.transaction() as tx:
        return tx.execute(
            "SELECT a.account_id, a.is_paper, a.timestamp, a.net_liquidation, a.total_cash, "
            "a.buying_power, (SELECT count(*) FROM live.positions p WHERE p.snapshot_id = "
            "a.snapshot_id AND p.account_id = a.account_id), (SELECT count(*) FROM "
            "live.open_orders o WHERE o.snapshot_id = a.snapshot_id AND o.account_id = "
            "a.account_id) FROM live.latest_account_snapshots a ORDER BY 1")
