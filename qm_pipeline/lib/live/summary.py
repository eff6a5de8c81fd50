"""What the CLI prints after a live run: the latest snapshot per account, the stored bars."""

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


def stored_bars(warehouse: Warehouse) -> list[tuple]:
    """Per symbol and kind of prices: bars, first and last date, last close, fetched at."""
    with warehouse.transaction() as tx:
        return tx.execute(
            "SELECT symbol, what_to_show, count(*), min(date), max(date), "
            "max(fetched_at) FROM live.daily_bars GROUP BY symbol, what_to_show ORDER BY 1, 2")
