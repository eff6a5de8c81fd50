"""When analytics run: after each successful reconciliation (so never on a halted state),
and by hand (`qm analytics` builds the tables, `qm report` builds them and the tearsheets)."""

import dagster as dg

from qm_pipeline.defs.analytics.assets import analytics_tables, tearsheets
from qm_pipeline.defs.analytics.resources import AnalyticsResource
from qm_pipeline.defs.reconcile.definitions import ledger_reconcile_job, reconcile_job

analytics_job = dg.define_asset_job(
    "analytics", selection=dg.AssetSelection.assets(analytics_tables),
    description="Build core.prices and every analytics table from the ledger and the "
                "reconciled state.")
report_job = dg.define_asset_job(
    "analytics_report", selection=dg.AssetSelection.assets(analytics_tables, tearsheets),
    description="Refresh the analytics, then write the HTML tearsheets.")


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS, name="analytics_after_reconcile",
    monitored_jobs=[reconcile_job, ledger_reconcile_job], request_job=report_job,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="After each successful reconciliation: analytics and tearsheets.")
def analytics_after_reconcile(context: dg.RunStatusSensorContext):
    return dg.RunRequest(run_key=f"after-{context.dagster_run.run_id}")


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(
        assets=[analytics_tables, tearsheets], jobs=[analytics_job, report_job],
        sensors=[analytics_after_reconcile], resources={"analytics": AnalyticsResource()})
