"""Portfolio analytics as one multi-asset over the ledger and the reconciled state, with
its checks, and the HTML tearsheets built from it.

Analytics do not run on a state reconciliation halted: they depend on
`recon/discrepancies`, whose blocking check stops a run that halted, and the build itself
refuses when the newest reconciliation run halted (a run started later, e.g. `qm analytics`).
"""

from typing import TYPE_CHECKING

import dagster as dg

from qm_pipeline.defs.analytics.resources import AnalyticsResource
from qm_pipeline.defs.ledger.assets import POSITION_HISTORY, POSITIONS, REALIZED
from qm_pipeline.defs.reconcile.assets import DISCREPANCIES, RUNS
from qm_pipeline.defs.resources import WarehouseResource

# The analytics library (scipy, matplotlib: over a second to import) is imported when an
# analytics asset runs, not whenever the code location loads: every CLI command and the
# nightly ingest load it too.
if TYPE_CHECKING:
    from qm_pipeline.lib.analytics.build import AnalyticsResult


def analytics_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(["analytics", table])


PRICES = dg.AssetKey(["core", "prices"])
CORE = [dg.AssetKey(["core", t]) for t in (
    "nav_daily", "change_in_nav", "cash_transactions", "transfers", "trades", "fx_rates",
    "open_positions", "instruments")]
UPSTREAM = [POSITIONS, POSITION_HISTORY, REALIZED, DISCREPANCIES, *CORE]
DESCRIPTIONS = {
    "portfolio_daily": "Per account and ALL, per NAV date: NAV, external flows, P&L (NAV "
                       "change less flows) split into realized, unrealized change, dividends, "
                       "interest, fees (commissions shown), IB-linked daily return, TWR index, "
                       "drawdown; each NAV's report row.",
    "twr_checks": "Each IB statement period: our linked TWR against ChangeInNAV.twr, the gap "
                  "in basis points and, where over 1 bp, the days that explain it.",
    "performance": "Per account and window (MTD, QTD, YTD, 1Y, 3Y, SI, calendar years): TWR, "
                   "CAGR, volatility, Sharpe, Sortino, max drawdown and dates, Calmar, best "
                   "and worst day, hit rate, XIRR; beta, alpha, correlation, tracking error, "
                   "information ratio against the benchmark.",
    "risk": "1-day VaR and CVaR at 95% and 99%: historical, parametric and seeded "
            "Monte-Carlo, from the portfolio's returns and from today's holdings.",
    "position_daily": "Per position and day: value, daily P&L, realized and unrealized P&L "
                      "in base, contribution to the account's return.",
    "attribution_daily": "Contribution to the daily return by position, asset class and "
                         "sector (residual: cash, FX, income not tied to a position).",
    "attribution": "Contributions linked over each window (Carino): they sum to the "
                   "window's return.",
    "exposure": "Long, short, gross and net by asset class, sector, currency, underlying "
                "and country.",
    "position_weights": "Today's positions as weights of NAV.",
    "concentration": "Top-N share, Herfindahl index, largest name and sector, limit breaches.",
    "greeks": "Delta, gamma, vega, theta per option position (IB's model values from a "
              "current live snapshot, else Black-Scholes with the volatility implied by the "
              "mark) and delta-adjusted exposure.",
    "margin": "Margin utilisation and cushion per live snapshot.",
}
SPECS = [dg.AssetSpec(PRICES, deps=CORE, group_name="analytics", description=(
    "One price history per instrument: IB's marks, trades' closing prices, live snapshot "
    "prices, and benchmark prices from QM_DATA_DIR/benchmarks/*.csv."))] + [
    dg.AssetSpec(analytics_key(t), deps=UPSTREAM, group_name="analytics", description=d)
    for t, d in DESCRIPTIONS.items()]
TWR_CHECK, SUMS_CHECK, LIMITS_CHECK = (
    "twr_matches_ib", "contributions_sum_to_returns", "concentration_within_limits")
CHECKS = [
    dg.AssetCheckSpec(TWR_CHECK, asset=analytics_key("portfolio_daily"),
                      description="Every statement period's TWR within 1 bp of IB's."),
    dg.AssetCheckSpec(SUMS_CHECK, asset=analytics_key("attribution"),
                      description="Contributions sum to the return, daily and per window."),
    dg.AssetCheckSpec(LIMITS_CHECK, asset=analytics_key("concentration"),
                      description="No single name or sector over its limit (warning)."),
]


@dg.multi_asset(specs=SPECS, check_specs=CHECKS, pool="warehouse")
def analytics_tables(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                     analytics: AnalyticsResource):
    """Build every analytics table in one transaction, then report the checks."""
    from qm_pipeline.lib.analytics.build import AnalyticsHalted, build_analytics

    config = analytics.config(warehouse.settings)
    try:
        found = build_analytics(warehouse.get(), config, warehouse.settings.data_dir
                                / "benchmarks", progress=context.log.info)
    except (AnalyticsHalted, ValueError) as exc:
        raise dg.Failure(str(exc)) from exc
    context.log.info(f"analytics built in {found.seconds:.1f} s")
    yield dg.MaterializeResult(asset_key=PRICES, metadata={
        "rows": sum(found.prices.values()), "by_source": dg.MetadataValue.json(found.prices)})
    for table in DESCRIPTIONS:
        yield dg.MaterializeResult(asset_key=analytics_key(table), metadata={
            "rows": len(found.tables.get(table, ())),
            "as_of": str(found.as_of) if found.as_of else ""})
    yield from check_results(found)


def check_results(found: "AnalyticsResult"):
    from qm_pipeline.lib.analytics.checks import TOLERANCE, contribution_gap

    mismatches = found.twr_mismatches
    yield dg.AssetCheckResult(
        check_name=TWR_CHECK, asset_key=analytics_key("portfolio_daily"),
        passed=mismatches.empty, severity=dg.AssetCheckSeverity.ERROR,
        metadata={"periods": len(found.tables.get("twr_checks", ())),
                  "mismatches": dg.MetadataValue.md(_mismatch_table(mismatches))})
    gap = contribution_gap(found.tables)
    yield dg.AssetCheckResult(
        check_name=SUMS_CHECK, asset_key=analytics_key("attribution"),
        passed=bool(gap <= TOLERANCE), severity=dg.AssetCheckSeverity.ERROR,
        metadata={"max_gap": gap, "tolerance": TOLERANCE})
    breaches = found.breaches()
    yield dg.AssetCheckResult(
        check_name=LIMITS_CHECK, asset_key=analytics_key("concentration"),
        passed=not breaches, severity=dg.AssetCheckSeverity.WARN,
        metadata={"breaches": dg.MetadataValue.json(breaches)})


def _mismatch_table(mismatches) -> str:
    if mismatches.empty:
        return "every period within 1 bp"
    lines = ["| account | period | ours % | IB % | gap bp | days that explain it |",
             "|---|---|---|---|---|---|"]
    for m in mismatches.itertuples(index=False):
        lines.append(f"| {m.account_id} | {m.from_date}..{m.to_date} | {m.computed_pct:.6f} "
                     f"| {m.reported_pct:.6f} | {m.gap_bp:.2f} | {m.explanation or ''} |")
    return "\n".join(lines)


@dg.asset(key=analytics_key("tearsheets"), deps=[*SPECS, RUNS], group_name="analytics",
          pool="warehouse")
def tearsheets(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
               analytics: AnalyticsResource) -> dg.MaterializeResult:
    """One self-contained HTML tearsheet per account and for ALL, under
    QM_DATA_DIR/reports/."""
    from qm_pipeline.lib.analytics.report import write_tearsheets

    config = analytics.config(warehouse.settings)
    paths = write_tearsheets(warehouse.get(), warehouse.settings.reports_dir, config)
    context.log.info(f"{len(paths)} tearsheet(s) written to {warehouse.settings.reports_dir}")
    return dg.MaterializeResult(metadata={
        "tearsheets": dg.MetadataValue.md("\n".join(f"- {p}" for p in paths) or "none"),
        **{f"tearsheet_{p.stem.split('_')[1]}": dg.MetadataValue.path(str(p)) for p in paths}})
