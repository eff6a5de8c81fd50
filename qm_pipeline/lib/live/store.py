"""Snapshots into the warehouse: a complete snapshot in one transaction, or a failure row.

A failed or partial broker query never becomes rows that could read as a flat portfolio:
only `Snapshot` objects the collector declared complete are stored, all tables at once; a
failure leaves just a `live.snapshots` row with status `failed` and the error, so the gap
is visible and nothing downstream mistakes it for "no positions".
"""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa

from qm_pipeline.lib.ib.model import Snapshot
from qm_pipeline.lib.ib.rows import TABLES
from qm_pipeline.lib.live import bars
from qm_pipeline.lib.live.tables import VIEWS, live_rows, live_schema, snapshots_schema
from qm_pipeline.lib.warehouse.engine import Tx, q, qualified


def create_live_schema(tx: Tx) -> None:
    tx.execute("CREATE SCHEMA IF NOT EXISTS live")
    for table in TABLES:
        schema = snapshots_schema() if table == "snapshots" else live_schema(table)
        tx.ensure_table("live", table, schema)
    tx.ensure_table("live", bars.TABLE, bars.bars_schema())
    create_live_views(tx)


def create_live_views(tx: Tx) -> None:
    """(Re)define the live views: they are code, so every migrate brings them up to date.

    Dropped dependents first (PostgreSQL cannot replace a view whose columns change), without
    CASCADE: a view of an analyst's built on ours stops the upgrade instead of vanishing."""
    for name in reversed(VIEWS):
        tx.execute(f"DROP VIEW IF EXISTS {qualified('live', name)}")
    for name, sql in VIEWS.items():
        tx.execute(f"CREATE VIEW {qualified('live', name)} AS {sql}")


def store_snapshot(tx: Tx, snapshot: Snapshot) -> dict[str, int]:
    """Every table of one complete snapshot; returns rows per table."""
    written = {}
    for table, rows in snapshot.tables().items():
        data = live_rows(table, rows, snapshot.snapshot_id)
        if table == "snapshots":
            data = data.append_column("status", pa.array(["complete"] * data.num_rows))
            data = data.append_column("error", pa.nulls(data.num_rows, pa.string()))
        written[table] = tx.insert("live", table, data)
    return written


def record_failure(tx: Tx, snapshot_id: str, host: str, port: int, client_id: int,
                   error: str) -> None:
    row = {"snapshot_id": snapshot_id, "taken_at": datetime.now(UTC).replace(tzinfo=None),
           "host": host, "port": port, "client_id": client_id, "status": "failed",
           "error": error}
    tx.insert("live", "snapshots", pa.Table.from_pylist([row], snapshots_schema()))


def known_conids(tx: Tx) -> set[int]:
    """Instruments the warehouse already describes (contract details are fetched for the
    others only)."""
    rows = tx.execute(f"SELECT conid FROM {qualified('core', 'instruments')} "
                      f"WHERE conid IS NOT NULL")
    return {int(c) for (c,) in rows if str(c).isdigit()}


def snapshot_counts(tx: Tx, snapshot_id: str) -> dict[str, int]:
    return {table: tx.scalar(f"SELECT count(*) FROM {qualified('live', table)} "
                             f"WHERE {q('snapshot_id')} = :s", {"s": snapshot_id})
            for table in TABLES}
