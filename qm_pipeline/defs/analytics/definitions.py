"""When analytics run: after each successful reconciliation (so never on a halted state),
and by hand (`qm analytics` builds the tables, `qm report` builds them and the tearsheets)."""

import dagster as dg

from qm_pipeline.defs.analytics.assets import analytics_tables, tearsheets
from qm_pipeline.defs.analytics.resources import AnalyticsResource
from qm_pipeline.defs.chaining import run_after_success
from qm_pipeline.defs.reconcile.definitions import ledger_reconcile_job, reconcile_job

analytics_job = dg.define_asset_job(
    "analytics", selection=dg.AssetSelection.assets(analytics_tables),
    description="Build core.prices and every analytics table from the ledger and the "
                "reconciled state.")
report_job = dg.define_asset_job(
    "analytics_report", selection=dg.AssetSelection.assets(analytics_tables, tearsheets),
    description="Refresh the analytics, then write the HTML tearsheets.")


analytics_after_reconcile = run_after_success(
    "analytics_after_reconcile", [reconcile_job, ledger_reconcile_job], report_job,
    "After each successful reconciliation: analytics and tearsheets.")


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(
        assets=[analytics_tables, tearsheets], jobs=[analytics_job, report_job],
        sensors=[analytics_after_reconcile], resources={"analytics": AnalyticsResource()})
