"""Reconcile soon after large executions: a sensor over the newest live snapshot's fills.

The threshold is the fill's notional, |shares x price| (QM_RECON_EXECUTION_SIZE, default
25,000 in the fill's currency). The sensor reads the warehouse; while a run holds DuckDB's
single write lock it skips the tick and looks again at the next one.
"""

import os
from decimal import Decimal

import dagster as dg

from qm_pipeline.lib.settings import load_settings
from qm_pipeline.lib.warehouse.engine import Warehouse

_LATEST = (
    "SELECT s.snapshot_id, count(e.ib_exec_id) FROM live.snapshots s LEFT JOIN "
    "live.executions e ON e.snapshot_id = s.snapshot_id AND abs(e.shares * e.price) >= :size "
    "WHERE s.status = 'complete' GROUP BY s.snapshot_id, s.taken_at "
    "ORDER BY s.taken_at DESC, s.snapshot_id DESC LIMIT 1"
)


def large_executions(database_url: str, size: Decimal) -> tuple[str, int] | None:
    """(newest complete snapshot id, its fills of at least `size` notional), or None."""
    warehouse = Warehouse(database_url)
    try:
        with warehouse.transaction() as tx:
            if "snapshots" not in tx.tables("live"):
                return None
            found = tx.execute(_LATEST, {"size": size})
    finally:
        warehouse.dispose()
    return (found[0][0], found[0][1]) if found else None


def large_executions_sensor(job_name: str) -> dg.SensorDefinition:
    status = (dg.DefaultSensorStatus.RUNNING if os.environ.get("QM_LIVE_SCHEDULES") == "on"
              else dg.DefaultSensorStatus.STOPPED)

    @dg.sensor(name="reconcile_on_large_executions", job_name=job_name, minimum_interval_seconds=60,
               default_status=status,
               description="Reconcile when the newest live snapshot has fills above "
                           "QM_RECON_EXECUTION_SIZE notional.")
    def sensor(context: dg.SensorEvaluationContext):
        size = Decimal(os.environ.get("QM_RECON_EXECUTION_SIZE", "25000"))
        try:
            found = large_executions(load_settings().database_url, size)
        except Exception as exc:  # the warehouse is busy (a run holds the lock) or absent
            return dg.SkipReason(f"warehouse not readable now: {type(exc).__name__}")
        if found is None or found[0] == context.cursor:
            return dg.SkipReason("no new complete live snapshot")
        context.update_cursor(found[0])
        if not found[1]:
            return dg.SkipReason(f"snapshot {found[0]}: no fill of {size} or more")
        return dg.RunRequest(run_key=f"large-executions-{found[0]}")

    return sensor
