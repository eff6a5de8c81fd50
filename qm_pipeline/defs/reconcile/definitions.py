"""When reconciliation runs: with each live snapshot at the start of the trading day and
every few minutes in market hours, after each successful Flex ingest (ledger first), after
large executions (sensor), and by hand (`qm reconcile`)."""

import os

import dagster as dg

from qm_pipeline.defs.chaining import run_after_success
from qm_pipeline.defs.ingest.definitions import flex_ingest_job
from qm_pipeline.defs.ledger.assets import ledger_tables
from qm_pipeline.defs.ledger.definitions import flex_ingest_ledger_job
from qm_pipeline.defs.live.assets import live_snapshot
from qm_pipeline.defs.reconcile.assets import reconciliation
from qm_pipeline.defs.reconcile.resources import recon_from_env
from qm_pipeline.defs.reconcile.sensors import large_executions_sensor

# Off until a gateway is configured (QM_LIVE_SCHEDULES=on); New York market hours.
_LIVE = (dg.DefaultScheduleStatus.RUNNING if os.environ.get("QM_LIVE_SCHEDULES") == "on"
         else dg.DefaultScheduleStatus.STOPPED)
_TZ = os.environ.get("QM_MARKET_TIMEZONE", "America/New_York")

reconcile_job = dg.define_asset_job(
    "reconcile", selection=dg.AssetSelection.assets(reconciliation),
    description="Reconcile local state with the broker views already in the warehouse.")
live_reconcile_job = dg.define_asset_job(
    "live_reconcile", selection=dg.AssetSelection.assets(live_snapshot, reconciliation),
    description="Take a live snapshot, then reconcile against it (a failed snapshot stops "
                "the run: the broker is unknown, never flat).")
ledger_reconcile_job = dg.define_asset_job(
    "ledger_reconcile", selection=dg.AssetSelection.assets(ledger_tables, reconciliation),
    description="Rebuild the ledger from the core tables, then reconcile.")

startup = dg.ScheduleDefinition(
    name="live_reconcile_startup", job=live_reconcile_job,
    cron_schedule=os.environ.get("QM_LIVE_STARTUP_CRON", "0 8 * * 1-5"),
    execution_timezone=_TZ, default_status=_LIVE,
    description="The first live snapshot of the trading day, reconciled.")
intraday = dg.ScheduleDefinition(
    name="live_reconcile_intraday", job=live_reconcile_job,
    cron_schedule=os.environ.get("QM_RECON_CRON", "*/5 9-16 * * 1-5"),
    execution_timezone=_TZ, default_status=_LIVE,
    description="A live snapshot and reconciliation every 5 minutes in market hours.")


reconcile_after_flex_ingest = run_after_success(
    "reconcile_after_flex_ingest", [flex_ingest_job, flex_ingest_ledger_job],
    ledger_reconcile_job, "After each successful Flex ingest: rebuild the ledger, then "
    "reconcile.")


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(
        assets=[reconciliation],
        jobs=[reconcile_job, live_reconcile_job, ledger_reconcile_job],
        schedules=[startup, intraday],
        sensors=[reconcile_after_flex_ingest, large_executions_sensor(reconcile_job.name)],
        resources={"recon": recon_from_env()},
    )
