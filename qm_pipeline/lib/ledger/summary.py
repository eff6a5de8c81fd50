"""What `qm ledger` prints after a rebuild: accounts, realized P&L by year and term, and
the cross-check failures, read back from the `ledger` tables."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from qm_pipeline.lib.ledger.settings import parse_pairs
from qm_pipeline.lib.warehouse.engine import Warehouse


@dataclass(frozen=True)
class LedgerSummary:
    run: dict | None  # the latest ledger.runs row
    accounts: list[tuple]  # account, method, open positions, episodes, realized (base), flags
    realized: list[tuple]  # account, year, term, lot pieces closed, realized (base), disallowed
    failures: list[tuple]  # check name, mismatches


def ledger_summary(warehouse: Warehouse) -> LedgerSummary:
    with warehouse.transaction() as tx:
        runs = tx.execute("SELECT run_id, accounts, default_method, lot_methods, wash_sales "
                          "FROM ledger.runs ORDER BY started_at DESC, run_id DESC LIMIT 1")
        per_account = tx.execute(
            "SELECT p.account_id, sum(CASE WHEN p.status = 'OPEN' THEN 1 ELSE 0 END), "
            "count(*), sum(p.realized_pnl_base), "
            "(SELECT count(*) FROM ledger.flags f WHERE f.account_id = p.account_id) "
            "FROM ledger.positions p GROUP BY p.account_id ORDER BY p.account_id")
        realized = tx.execute(
            "SELECT account_id, EXTRACT(YEAR FROM close_date) AS year, term, count(*), "
            "sum(realized_pnl_base), sum(wash_sale_disallowed_base) FROM ledger.realized "
            "GROUP BY account_id, EXTRACT(YEAR FROM close_date), term ORDER BY 1, 2, 3")
        failures = tx.execute("SELECT check_name, count(*) FROM ledger.check_failures "
                              "GROUP BY check_name ORDER BY check_name")
    run = None
    methods: dict[str, str] = {}
    if runs:
        run = dict(zip(("run_id", "accounts", "default_method", "lot_methods", "wash_sales"),
                       runs[0], strict=True))
        methods = parse_pairs(run["lot_methods"] or "", "lot methods")
    default = run["default_method"] if run else "?"
    return LedgerSummary(
        run=run,
        accounts=[(a, methods.get(a, default), int(open_), int(n), _dec(pnl), int(flags))
                  for a, open_, n, pnl, flags in per_account],
        realized=[(a, int(year), term, int(n), _dec(pnl), _dec(wash))
                  for a, year, term, n, pnl, wash in realized],
        failures=[(name, int(n)) for name, n in failures],
    )


def _dec(value: Decimal | None) -> Decimal:
    return Decimal(0) if value is None else Decimal(value)
