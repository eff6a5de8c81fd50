"""What `qm analytics` and `qm report` print: each account's since-inception figures, the
TWR check against IB, the 99% VaR, limit breaches, from the stored tables."""

from __future__ import annotations

from dataclasses import dataclass, field

from qm_pipeline.lib.analytics.store import SCHEMA
from qm_pipeline.lib.warehouse.engine import Warehouse

SINCE_INCEPTION = "SI"


@dataclass
class AnalyticsSummary:
    accounts: list[tuple] = field(default_factory=list)  # see COLUMNS
    twr_periods: int = 0
    twr_mismatches: list[tuple] = field(default_factory=list)  # account, from, to, gap bp
    breaches: list[str] = field(default_factory=list)

    COLUMNS = ("account", "from", "to", "TWR", "CAGR", "volatility", "Sharpe", "max DD",
               "XIRR", "VaR 99% (hist.)")


def analytics_summary(warehouse: Warehouse) -> AnalyticsSummary:
    found = AnalyticsSummary()
    with warehouse.transaction() as tx:
        if "performance" not in tx.tables(SCHEMA):
            return found
        found.accounts = tx.execute(
            "SELECT p.account_id, p.start, p.\"end\", p.twr, p.cagr, p.volatility, p.sharpe, "
            "p.max_drawdown, p.mwr, r.var FROM analytics.performance p LEFT JOIN "
            "analytics.risk r ON r.account_id = p.account_id AND r.level = 'portfolio' "
            "AND r.method = 'historical' AND r.confidence = 0.99 WHERE p.\"window\" = :w "
            "ORDER BY p.account_id = 'ALL', p.account_id", {"w": SINCE_INCEPTION})
        found.twr_periods = tx.scalar("SELECT count(*) FROM analytics.twr_checks")
        found.twr_mismatches = tx.execute(
            "SELECT account_id, from_date, to_date, gap_bp FROM analytics.twr_checks "
            "WHERE NOT matches ORDER BY account_id, from_date")
        found.breaches = [b for (text,) in tx.execute(
            "SELECT breaches FROM analytics.concentration WHERE breaches IS NOT NULL "
            "ORDER BY account_id") for b in text.split("; ")]
    return found
