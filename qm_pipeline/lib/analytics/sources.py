"""What the analytics read from the warehouse, as pandas frames: one query per input.

Money stays Decimal here (the exact figures of `portfolio_daily`'s money columns are computed
from it); `boundary` turns it into float64 for the statistics. Every NAV keeps the report row
it came from (`source`: file sha256 and line), so a figure can be traced back.

Conventions (DOMAIN.md §5):
- NAV: `core.nav_daily.total` (EquitySummaryByReportDateInBase) by report date.
- External flows, in base, by report date: deposits and withdrawals and internal cash
  transfers (CashTransactions), position transfers at `positionAmountInBase` signed by
  direction, and cash transfers (Transfers). Dividends, interest, fees, commissions and FX
  are not flows: they stay inside the return.
"""

from __future__ import annotations

import pandas as pd

from qm_pipeline.lib.warehouse.engine import Tx

FLOW_TYPES = ("Deposits/Withdrawals", "Deposits & Withdrawals", "Internal Transfers")
# P&L lines of CashTransactions, by the split `portfolio_daily` reports (IB's type names).
INCOME_TYPES = {
    "dividends": ("Dividends", "Payment In Lieu Of Dividends", "Withholding Tax",
                  "871(m) Withholding"),
    "interest": ("Broker Interest Paid", "Broker Interest Received", "Bond Interest Paid",
                 "Bond Interest Received", "Broker Fees"),
    "fees": ("Other Fees", "Advisor Fees", "Commission Adjustments", "Price Adjustments"),
}
_FLOW_LIST = ", ".join(f"'{t}'" for t in FLOW_TYPES)
_CASH_DAY = "coalesce(report_date, CAST(date_time AS DATE))"  # a cash transaction's date
# A position transfer's value in base, signed as the account sees it (in: positive).
_TRANSFER_VALUE = ("CASE WHEN direction = 'OUT' THEN -abs(position_amount_in_base) "
                   "ELSE abs(position_amount_in_base) END")


def frame(tx: Tx, sql: str, columns: list[str], params: dict | None = None) -> pd.DataFrame:
    return pd.DataFrame(tx.execute(sql, params), columns=columns)


def read_nav(tx: Tx) -> pd.DataFrame:
    """account_id, date, nav (Decimal), source ("<file sha256>:<line>")."""
    return frame(tx, "SELECT account_id, report_date, total, file_sha256 || ':' || "
                     "CAST(source_line AS VARCHAR) FROM core.nav_daily WHERE total IS NOT NULL "
                     "ORDER BY account_id, report_date",
                 ["account_id", "date", "nav", "source"])


def read_flows(tx: Tx) -> pd.DataFrame:
    """account_id, date, amount (Decimal, base, positive into the account)."""
    return frame(tx, (
        f"SELECT account_id, {_CASH_DAY}, "
        "amount * coalesce(fx_rate_to_base, 1) FROM core.cash_transactions "
        f"WHERE type IN ({_FLOW_LIST}) AND amount IS NOT NULL "
        "UNION ALL SELECT account_id, coalesce(report_date, date), "
        f"{_TRANSFER_VALUE} + coalesce(cash_transfer, 0) * coalesce(fx_rate_to_base, 1) "
        "FROM core.transfers "
        "WHERE position_amount_in_base IS NOT NULL OR cash_transfer IS NOT NULL"),
        ["account_id", "date", "amount"])


def read_periods(tx: Tx) -> pd.DataFrame:
    """IB's statement periods: account_id, from_date, to_date, twr (percent), source."""
    return frame(tx, "SELECT account_id, from_date, to_date, twr, file_sha256 || ':' || "
                     "CAST(source_line AS VARCHAR) FROM core.change_in_nav "
                     "WHERE twr IS NOT NULL ORDER BY account_id, from_date",
                 ["account_id", "from_date", "to_date", "twr", "source"])


def read_pnl_lines(tx: Tx) -> pd.DataFrame:
    """account_id, date, line, amount (Decimal, base): the P&L split's known lines.

    realized: the ledger's realized P&L by close date; commissions: IB's commission on each
    execution (already inside realized and unrealized: reported for information);
    dividends, interest, fees: CashTransactions by type."""
    cases = " ".join(f"WHEN type IN ({', '.join(repr(t) for t in types)}) THEN '{line}'"
                     for line, types in INCOME_TYPES.items())
    return frame(tx, (
        "SELECT account_id, close_date, 'realized', realized_pnl_base FROM ledger.realized "
        "WHERE realized_pnl_base IS NOT NULL "
        "UNION ALL SELECT account_id, trade_date, 'commissions', "
        "ib_commission * coalesce(fx_rate_to_base, 1) FROM core.trades "
        "WHERE ib_commission IS NOT NULL "
        "UNION ALL SELECT account_id, day, line, amount FROM (SELECT account_id, "
        f"CASE {cases} END AS line, {_CASH_DAY} AS day, "
        "amount * coalesce(fx_rate_to_base, 1) AS amount FROM core.cash_transactions) c "
        "WHERE line IS NOT NULL AND amount IS NOT NULL"),
        ["account_id", "date", "line", "amount"])


def read_base_currencies(tx: Tx) -> dict[str, str]:
    return dict(tx.execute("SELECT account_id, max(currency) FROM core.accounts "
                           "GROUP BY account_id"))


def read_fx(tx: Tx) -> pd.DataFrame:
    """IB's daily rates into each account's base: date, currency, rate (Decimal)."""
    return frame(tx, "SELECT report_date, from_currency, to_currency, rate FROM core.fx_rates "
                     "WHERE rate IS NOT NULL",
                 ["date", "currency", "to_currency", "rate"])


def read_position_history(tx: Tx) -> pd.DataFrame:
    """The ledger's position on each day it changed: quantity, cost basis (in the
    instrument's currency) and the mark of that day."""
    return frame(tx, "SELECT h.account_id, h.conid, h.date, h.quantity, h.cost_basis, h.mark, "
                     "h.currency, coalesce(i.multiplier, 1) FROM ledger.position_history h "
                     "LEFT JOIN core.instruments i ON i.conid = h.conid "
                     "ORDER BY h.account_id, h.conid, h.date",
                 ["account_id", "conid", "date", "quantity", "cost_basis", "mark", "currency",
                  "multiplier"])


def read_position_realized(tx: Tx) -> pd.DataFrame:
    """account_id, conid, date, amount: the ledger's realized P&L in base per position and
    close date (Decimal, summed exactly by the warehouse)."""
    return frame(tx, "SELECT account_id, conid, close_date, sum(realized_pnl_base) "
                     "FROM ledger.realized WHERE realized_pnl_base IS NOT NULL "
                     "GROUP BY account_id, conid, close_date",
                 ["account_id", "conid", "date", "amount"])


def read_trade_cash(tx: Tx) -> pd.DataFrame:
    """account_id, conid, date, amount: what each instrument's trades and income paid or
    received that day, in base (a buy is negative; a position transferred in is paid for by
    the external flow that brought it, so it counts as paid here)."""
    return frame(tx, (
        "SELECT account_id, conid, trade_date, net_cash * coalesce(fx_rate_to_base, 1) "
        "FROM core.trades WHERE conid IS NOT NULL AND net_cash IS NOT NULL "
        "AND asset_category <> 'CASH' "
        f"UNION ALL SELECT account_id, conid, {_CASH_DAY}, "
        "amount * coalesce(fx_rate_to_base, 1) FROM core.cash_transactions "
        "WHERE conid IS NOT NULL AND conid <> '' AND amount IS NOT NULL "
        f"AND type NOT IN ({_FLOW_LIST}) "
        "UNION ALL SELECT account_id, conid, coalesce(report_date, date), "
        f"-({_TRANSFER_VALUE}) FROM core.transfers "
        "WHERE conid IS NOT NULL AND conid <> '' AND position_amount_in_base IS NOT NULL"),
        ["account_id", "conid", "date", "amount"])


def read_instruments(tx: Tx) -> pd.DataFrame:
    return frame(tx, "SELECT conid, symbol, asset_category, currency, multiplier, strike, "
                     "expiry, put_call, underlying_conid, underlying_symbol, "
                     "issuer_country_code FROM core.instruments",
                 ["conid", "symbol", "asset_category", "currency", "multiplier", "strike",
                  "expiry", "put_call", "underlying_conid", "underlying_symbol", "country"])


def read_open_positions(tx: Tx) -> pd.DataFrame:
    """The reconciled local state: the ledger's OPEN positions."""
    return frame(tx, "SELECT account_id, conid, symbol, quantity FROM ledger.positions "
                     "WHERE status = 'OPEN' AND quantity <> 0",
                 ["account_id", "conid", "symbol", "quantity"])


def read_industries(tx: Tx) -> dict[str, str]:
    """Industry per conid from the newest live contract details, where a snapshot has them."""
    if "contract_details" not in tx.tables("live"):
        return {}
    rows = tx.execute("SELECT d.conid, d.industry FROM live.contract_details d "
                      "JOIN live.snapshots s ON s.snapshot_id = d.snapshot_id "
                      "WHERE d.industry IS NOT NULL AND d.industry <> '' "
                      "ORDER BY s.taken_at")
    return {str(conid): industry for conid, industry in rows}


def read_margin(tx: Tx) -> pd.DataFrame:
    """Margin figures of every complete live snapshot (live.account_snapshots)."""
    if "account_snapshots" not in _views(tx):
        return pd.DataFrame(columns=MARGIN_COLUMNS)
    return frame(tx, "SELECT account_id, timestamp, net_liquidation, margin_used, "
                     "maintenance_margin, excess_liquidity, cushion FROM live.account_snapshots "
                     "ORDER BY account_id, timestamp", MARGIN_COLUMNS)


MARGIN_COLUMNS = ["account_id", "taken_at", "net_liquidation", "initial_margin",
                  "maintenance_margin", "excess_liquidity", "cushion"]


def _views(tx: Tx) -> set[str]:
    return {name for (name,) in tx.execute(
        "SELECT table_name FROM information_schema.views WHERE table_schema = 'live'")} | set(
        tx.tables("live"))


def latest_recon(tx: Tx) -> dict | None:
    """The newest reconciliation run, or None if reconciliation never ran."""
    if "runs" not in tx.tables("recon"):
        return None
    rows = tx.execute("SELECT run_id, finished_at, status, halted, discrepancies "
                      "FROM recon.runs ORDER BY finished_at DESC LIMIT 1")
    if not rows:
        return None
    run_id, finished_at, status, halted, breaks = rows[0]
    return {"run_id": run_id, "finished_at": finished_at, "status": status,
            "halted": bool(halted), "open_breaks": int(breaks or 0)}

