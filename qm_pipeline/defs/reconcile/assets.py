"""Reconciliation: local state (the ledger, the application's orders) against the broker
(Flex end of day, the latest live snapshot), as one multi-asset with a blocking check.

The check `recon_discrepancies_no_halting_breaks` fails when a HALT_AND_ALERT strategy
fired, so assets downstream (analytics, sizing inputs) never run on broken state.
"""

from functools import partial

import dagster as dg

from qm_pipeline.defs.ledger.assets import BALANCE_HISTORY, POSITIONS
from qm_pipeline.defs.live.assets import SNAPSHOT
from qm_pipeline.defs.live.resources import IBGatewayResource
from qm_pipeline.defs.reconcile.resources import ReconResource
from qm_pipeline.defs.resources import WarehouseResource
from qm_pipeline.lib.recon.run import reconcile
from qm_pipeline.lib.recon.submit import submit_proposals


def recon_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(["recon", table])


RUNS, DISCREPANCIES, ACTIONS, PROPOSALS = (recon_key(t) for t in (
    "runs", "discrepancies", "actions", "proposals"))
BROKER = [SNAPSHOT, *(dg.AssetKey(["core", t]) for t in ("open_positions", "cash_balances"))]
LOCAL = [POSITIONS, BALANCE_HISTORY]
NO_HALT = "recon_discrepancies_no_halting_breaks"

SPECS = [
    dg.AssetSpec(RUNS, deps=LOCAL + BROKER, group_name="recon", description=(
        "One row per reconciliation: the broker views used (Flex date, live snapshot or why "
        "it was unknown), matches per comparison, break counts, halted or not, report files.")),
    dg.AssetSpec(DISCREPANCIES, deps=LOCAL + BROKER, group_name="recon", description=(
        "Breaks tracked across runs: type, severity, likely cause, local and broker values, "
        "strategy and action; first and last seen, runs seen, age, resolved at.")),
    dg.AssetSpec(ACTIONS, deps=LOCAL + BROKER, group_name="recon", description=(
        "What reconciliation changed (before and after) or halted on, with deterministic "
        "ids so reruns never act twice.")),
    dg.AssetSpec(PROPOSALS, deps=LOCAL + BROKER, group_name="recon", description=(
        "SYNC_TO_LOCAL: the orders that would make the broker match local state; submitted "
        "only with allow_order_submission on and a client that is not read-only.")),
]


@dg.multi_asset(specs=SPECS, pool="warehouse", check_specs=[dg.AssetCheckSpec(
    NO_HALT, asset=DISCREPANCIES, blocking=True,
    description="No break under HALT_AND_ALERT: downstream stops and a person decides.")])
def reconciliation(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                   recon: ReconResource, ib_gateway: IBGatewayResource):
    """Compare positions (three ways), cash and orders; act per strategy; report."""
    config = recon.config()
    submit = (partial(submit_proposals, ib_gateway.settings(), allow_order_submission=True)
              if config.allow_order_submission else None)
    found = reconcile(warehouse.get(), config, context.run.run_id, notifier=recon.notifier(),
                      submit=submit, reports_dir=warehouse.settings.reports_dir)
    context.log.info(found.text)
    report = {"report": dg.MetadataValue.md(found.markdown), "status": found.status,
              "open_breaks": found.discrepancies, "by_severity": dg.MetadataValue.json(
                  found.by_severity)}
    if found.report_paths:
        report |= {"report_text": dg.MetadataValue.path(str(found.report_paths[0])),
                   "report_json": dg.MetadataValue.path(str(found.report_paths[1]))}
    counts = {RUNS: {"live_problem": found.live_problem or ""},
              DISCREPANCIES: {"new_breaks": found.new_breaks,
                              "resolved_breaks": found.resolved_breaks},
              ACTIONS: {"actions": found.actions}, PROPOSALS: {"proposals": found.proposals}}
    for spec in SPECS:
        yield dg.MaterializeResult(asset_key=spec.key, metadata={
            **counts[spec.key], **(report if spec.key in (RUNS, DISCREPANCIES) else {})})
    yield dg.AssetCheckResult(
        check_name=NO_HALT, asset_key=DISCREPANCIES, passed=not found.halted,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"halting_breaks": found.halting_breaks, "status": found.status},
        description=None if not found.halted else "reconciliation halted: see the report")
