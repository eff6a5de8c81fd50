"""The live capability: the snapshot asset and its job. Its schedules take a snapshot and
reconcile against it (`defs/reconcile`): `live_reconcile_startup`, `live_reconcile_intraday`."""

import dagster as dg

from qm_pipeline.defs.live.assets import live_snapshot
from qm_pipeline.defs.live.resources import gateway_from_env

live_snapshot_job = dg.define_asset_job(
    "live_snapshot", selection=dg.AssetSelection.assets(live_snapshot),
    description="Take one live snapshot of the accounts from TWS / IB Gateway.",
)


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(
        assets=[live_snapshot], jobs=[live_snapshot_job],
        resources={"ib_gateway": gateway_from_env()},
    )
