"""Live snapshots of the accounts from TWS / IB Gateway, stored whole or not at all."""

import uuid

import dagster as dg

from qm_pipeline.defs.live.resources import IBGatewayResource
from qm_pipeline.defs.resources import WarehouseResource
from qm_pipeline.lib.ib.model import SnapshotError
from qm_pipeline.lib.ib.snapshot import take_snapshot
from qm_pipeline.lib.live.store import known_conids, record_failure, store_snapshot

SNAPSHOT = dg.AssetKey(["live", "snapshots"])


@dg.asset(
    key=SNAPSHOT, group_name="live", pool="warehouse", kinds={"ib"},
    description="One complete snapshot of every managed account: account values, summary, "
                "portfolio, positions, open and completed orders, today's executions, PnL.",
)
def live_snapshot(ib_gateway: IBGatewayResource,
                  warehouse: WarehouseResource) -> dg.MaterializeResult:
    store = warehouse.get()
    settings = ib_gateway.settings()
    with store.transaction() as tx:
        known = known_conids(tx)
    try:
        snapshot = take_snapshot(settings, known_conids=known)
    except SnapshotError as exc:
        with store.transaction() as tx:
            record_failure(tx, uuid.uuid4().hex, settings.host, settings.port,
                           settings.client_id, str(exc))
        raise dg.Failure(
            f"Live snapshot failed, nothing stored (the accounts are unknown, not flat): {exc}",
            metadata={"request": exc.request, "account": exc.account or "",
                      "host": f"{settings.host}:{settings.port}"},
        ) from exc
    with store.transaction() as tx:
        written = store_snapshot(tx, snapshot)
    accounts = snapshot.snapshots[0]["accounts"] if snapshot.snapshots else ""
    return dg.MaterializeResult(metadata={
        "snapshot_id": snapshot.snapshot_id, "accounts": accounts,
        "taken_at": snapshot.taken_at.isoformat(), **{f"rows_{t}": n for t, n in
                                                       written.items()},
    })
