"""The ledger against IB's own numbers. Each rebuild runs the engine's cross-checks and
stores every mismatch in `ledger.check_failures`; these checks count them (one SQL step)."""

import dagster as dg

from qm_pipeline.defs.ledger.assets import FLAGS, POSITION_HISTORY, REALIZED
from qm_pipeline.defs.resources import WarehouseResource
from qm_pipeline.lib.ledger.store import CROSS_CHECKS

# Dagster check -> (asset, the engine's check names, description)
CHECKS = {
    "realized_fifo_pnl_matches_ib": (
        REALIZED, CROSS_CHECKS["realized_pnl"],
        "Realized P&L per closing execution equals IB's fifoPnlRealized to the cent "
        "(accounts replayed FIFO)."),
    "realized_closed_lots_match_ib": (
        REALIZED, CROSS_CHECKS["closed_lots"],
        "Closed lot pieces (quantity, cost to the cent) equal IB's CLOSED_LOT rows per "
        "closing execution and lot open time (accounts replayed FIFO or SPECIFIC)."),
    "position_history_open_positions_match_ib": (
        POSITION_HISTORY, CROSS_CHECKS["open_positions"],
        "End-of-day positions equal IB's open positions at each report date (quantity; "
        "cost basis to the cent where IB reports it)."),
}


@dg.multi_asset_check(
    specs=[
        *[dg.AssetCheckSpec(name, asset=asset, description=description)
          for name, (asset, _, description) in CHECKS.items()],
        dg.AssetCheckSpec("flags_no_errors", asset=FLAGS,
                          description="No event the ledger could not interpret (ERROR "
                                      "flags: holdings may be wrong). Warns, never fails."),
    ],
)
def ledger_cross_checks(warehouse: WarehouseResource):
    with warehouse.get().transaction() as tx:
        for name, (asset, engine_checks, _) in CHECKS.items():
            names = ", ".join(f"'{c}'" for c in engine_checks)
            rows = tx.execute(
                "SELECT check_name, account_id, conid, key, ours, ibs, run_id "
                f"FROM ledger.check_failures WHERE check_name IN ({names}) "
                "ORDER BY check_name, account_id, conid, key")
            counts = {c: sum(1 for r in rows if r[0] == c) for c in engine_checks}
            yield dg.AssetCheckResult(
                asset_key=asset, check_name=name, passed=not rows,
                metadata={
                    "mismatches": len(rows), "by_check": dg.MetadataValue.json(counts),
                    "run_id": rows[0][-1] if rows else "",
                    "first_mismatches": dg.MetadataValue.json(
                        [[None if v is None else str(v) for v in r[:-1]] for r in rows[:20]]),
                },
            )
        errors = tx.execute("SELECT account_id, conid, transaction_id, reason FROM ledger.flags "
                            "WHERE level = 'ERROR' ORDER BY 1, 2, 3, 4")
        total = tx.scalar("SELECT count(*) FROM ledger.flags")
    yield dg.AssetCheckResult(
        asset_key=FLAGS, check_name="flags_no_errors", passed=not errors,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"errors": len(errors), "flags": total,
                  "first_errors": dg.MetadataValue.json(
                      [[None if v is None else str(v) for v in r] for r in errors[:20]])},
    )
