"""The live capability: the snapshot asset and its job. Its schedules take a snapshot and
reconcile against it (`defs/reconcile`): `live_reconcile_startup`, `live_reconcile_intraday`."""

import dagster as dg

from qm_pipeline.defs.live.assets import daily_bars, live_snapshot
from qm_pipeline.defs.live.resources import gateway_from_env

live_snapshot_job = dg.define_asset_job(
    "live_snapshot", selection=dg.AssetSelection.assets(live_snapshot),
    description="Take one live snapshot of the accounts from TWS / IB Gateway.",
)
daily_bars_job = dg.define_asset_job(
    "daily_bars", selection=dg.AssetSelection.assets(daily_bars),
    description="Fetch the benchmark's daily bars (QM_BENCHMARK, or the run config's symbol) "
                "from TWS's historical data; `qm benchmark` runs it.",
)


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(
        assets=[live_snapshot, daily_bars], jobs=[live_snapshot_job, daily_bars_job],
        resources={"ib_gateway": gateway_from_env()},
    )
