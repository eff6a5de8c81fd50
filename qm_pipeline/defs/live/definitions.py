"""The live capability: the snapshot asset, its job and schedules."""

import os

import dagster as dg

from qm_pipeline.defs.live.assets import live_snapshot
from qm_pipeline.defs.live.resources import gateway_from_env

live_snapshot_job = dg.define_asset_job(
    "live_snapshot", selection=dg.AssetSelection.assets(live_snapshot),
    description="Take one live snapshot of the accounts from TWS / IB Gateway.",
)

# Off until a gateway is configured (QM_LIVE_SCHEDULES=on), so a fresh install does not fail
# every 15 minutes; times are New York market hours, configurable.
_STATUS = (dg.DefaultScheduleStatus.RUNNING if os.environ.get("QM_LIVE_SCHEDULES") == "on"
           else dg.DefaultScheduleStatus.STOPPED)
_TZ = os.environ.get("QM_MARKET_TIMEZONE", "America/New_York")

intraday = dg.ScheduleDefinition(
    name="live_snapshot_intraday", job=live_snapshot_job,
    cron_schedule=os.environ.get("QM_LIVE_CRON", "*/15 9-16 * * 1-5"),
    execution_timezone=_TZ, default_status=_STATUS,
    description="Every 15 minutes in market hours.",
)
startup = dg.ScheduleDefinition(
    name="live_snapshot_startup", job=live_snapshot_job,
    cron_schedule=os.environ.get("QM_LIVE_STARTUP_CRON", "0 8 * * 1-5"),
    execution_timezone=_TZ, default_status=_STATUS,
    description="Once at the start of each trading day.",
)


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(
        assets=[live_snapshot], jobs=[live_snapshot_job], schedules=[intraday, startup],
        resources={"ib_gateway": gateway_from_env()},
    )
