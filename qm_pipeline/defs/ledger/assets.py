"""The ledger: one replay of the core tables writes every `ledger.*` table in one
transaction, so the tables are the specs of one multi-asset."""

import dagster as dg

from qm_pipeline.defs.ledger.resources import LedgerResource
from qm_pipeline.defs.live.assets import SNAPSHOT
from qm_pipeline.defs.resources import WarehouseResource
from qm_pipeline.lib.ledger.inputs import CORE_INPUTS
from qm_pipeline.lib.ledger.store import rebuild


def ledger_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(["ledger", table])


LOTS, REALIZED, POSITIONS, POSITION_HISTORY = (ledger_key(t) for t in (
    "lots", "realized", "positions", "position_history"))
BALANCE_HISTORY, FLAGS, CHECK_FAILURES, AUDIT_LOG = (ledger_key(t) for t in (
    "balance_history", "flags", "check_failures", "audit_log"))
REPLAYED = [dg.AssetKey(["core", name]) for name in CORE_INPUTS]
CASH = [dg.AssetKey(["core", name]) for name in ("cash_balances", "nav_daily", "fx_rates",
                                                 "accounts")]

def _spec(key: dg.AssetKey, deps: list[dg.AssetKey], description: str) -> dg.AssetSpec:
    return dg.AssetSpec(key, deps=deps, description=description, group_name="ledger")


SPECS = [
    _spec(LOTS, REPLAYED, "Open tax lots: quantity, basis (with the opening commission), "
          "wash-sale adjustment, holding period, lot method."),
    _spec(REALIZED, REPLAYED, "Closed lot pieces: open and close dates, quantity, cost, "
          "proceeds, realized P&L local and base, term, wash-sale disallowed loss and "
          "adjusted basis."),
    _spec(POSITIONS, REPLAYED, "Position episodes per (account, conid): status, side, "
          "quantity, average cost, open/close times, exit reason, realized P&L. The state a "
          "trading application reads; statuses set by reconciliation survive rebuilds."),
    _spec(POSITION_HISTORY, [*REPLAYED, SNAPSHOT], "End-of-day quantity, cost basis, mark, "
          "market value and unrealized P&L per position (marks: IB's open positions, "
          "trades' close prices, live snapshots)."),
    _spec(BALANCE_HISTORY, CASH, "End-of-day cash: in base every report date (nav_daily), "
          "by currency at statement ends (cash_balances)."),
    _spec(FLAGS, REPLAYED, "Events the ledger could not interpret or only estimated, with "
          "the reason."),
    _spec(CHECK_FAILURES, REPLAYED, "Each disagreement with IB's numbers found by the last "
          "rebuild (both values, check name, run id)."),
    _spec(AUDIT_LOG, REPLAYED, "Every change to ledger.positions with before and after "
          "values, cause and run id."),
]


@dg.multi_asset(specs=SPECS, pool="warehouse")
def ledger_tables(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                  ledger: LedgerResource):
    """Replay every account's trades, transfers, corporate actions and option events into
    the ledger tables, check them against IB's numbers, all in one transaction."""
    found = rebuild(warehouse.get(), ledger.config(), context.run.run_id,
                    accounts=ledger.accounts or None, timezone=ledger.market_timezone)
    context.log.info(f"ledger rebuilt for {len(found.accounts)} account(s) in "
                     f"{found.seconds:.1f} s ({found.check_failures} check failure(s))")
    common = {"accounts": dg.MetadataValue.json(found.accounts),
              "settings": dg.MetadataValue.json(found.settings)}
    extra = {
        LOTS: {"executions_replayed": found.executions,
               "replay_seconds": round(found.replay_seconds, 3)},
        POSITIONS: {"open_positions": found.open_positions,
                    "audit": dg.MetadataValue.json(found.audit)},
        FLAGS: {"by_level": dg.MetadataValue.json(found.flags)},
        CHECK_FAILURES: {"by_check": dg.MetadataValue.json(found.failures)},
    }
    for spec in SPECS:
        yield dg.MaterializeResult(asset_key=spec.key, metadata={
            "rows_written": found.rows[spec.key.path[-1]], **common,
            **extra.get(spec.key, {})})
