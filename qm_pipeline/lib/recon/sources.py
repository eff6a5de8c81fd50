"""Both sides of a reconciliation, read from the warehouse in one transaction.

- local: `ledger.positions` with status OPEN (the state a trading application reads), the
  multi-leg strategies their opening trades formed, and `ledger.orders`;
- Flex end of day: `core.open_positions` (SUMMARY rows) at each account's latest statement
  that carried the OpenPositions section, and CashReport cash at its latest period end;
- live: the newest complete snapshot, unless a failed attempt came after it.

A side that cannot be known is None, never empty: an account whose Flex statements never
had OpenPositions has no Flex book, and a snapshot that failed after the last good one
makes the live side unknown (DOMAIN.md sections 3 and 4: a failed query is never "flat").
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from qm_pipeline.lib.recon.model import Book, Holding, Key
from qm_pipeline.lib.warehouse.engine import Tx

PENDING_ORDER_STATUSES = (
    "ApiPending",
    "PendingSubmit",
    "PreSubmitted",
    "Submitted",
    "PendingCancel",
)
MARKET_TIMEZONE = "America/New_York"


@dataclass
class LiveSide:
    snapshot_id: str
    taken_at: dt.datetime  # UTC
    accounts: set[str]
    book: Book
    cash: dict[tuple[str, str], Decimal]  # (account, currency) -> CashBalance
    executed: dict[Key, Decimal]  # signed net quantity of the snapshot's executions
    open_orders: list[dict]
    completed_orders: list[dict]
    executions: list[dict]


@dataclass
class ReconInputs:
    local: Book
    reconciled_after: dict[Key, dt.datetime]  # local closes set by reconciliation, when
    flex_dates: dict[str, dt.date]  # account -> date of its Flex positions
    flex: Book
    roll_forward: dict[tuple[str, str], dict]  # (account, currency) -> amounts and dates
    live: LiveSide | None
    live_problem: str | None  # why there is no live side
    local_orders: list[dict] = field(default_factory=list)
    order_accounts: set[str] = field(default_factory=set)  # accounts that record orders


def statement_date(text: str | None) -> dt.date | None:
    """A FlexStatement toDate: IB writes yyyyMMdd; ISO dates are accepted too."""
    text = (text or "").strip()
    try:
        if len(text) == 8 and text.isdigit():
            return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def read_local(tx: Tx) -> tuple[Book, dict[Key, dt.datetime]]:
    book: Book = {}
    strategies = _strategies(tx)
    for episode, account, conid, symbol, category, quantity, opened, opening in tx.execute(
        "SELECT episode_id, account_id, conid, symbol, asset_category, quantity, "
        "opened_at, is_opening_balance FROM ledger.positions WHERE status = 'OPEN' "
        "ORDER BY episode_id"
    ):
        key = (account, conid)
        previous = book.get(key)
        total = quantity + (previous.quantity if previous else 0)
        book[key] = Holding(
            total, symbol, category, episode, opened, bool(opening), strategies.get(key)
        )
    closed = {
        (a, c): when
        for a, c, when in tx.execute(
            "SELECT account_id, conid, max(updated_at) FROM ledger.positions WHERE status <> "
            "'OPEN' AND status_source = 'reconciliation' GROUP BY account_id, conid"
        )
    }
    return book, closed


def _strategies(tx: Tx) -> dict[Key, str]:
    """Positions opened by one order across several contracts (a combo: a spread) form a
    strategy named after that order; a leg belongs to the newest such order."""
    found: dict[Key, str] = {}
    for account, order, conid in tx.execute(
        "SELECT t.account_id, t.ib_order_id, t.conid FROM core.trades t JOIN ("
        "  SELECT account_id, ib_order_id FROM core.trades WHERE ib_order_id IS NOT NULL"
        "  GROUP BY account_id, ib_order_id HAVING count(DISTINCT conid) > 1) c "
        "ON c.account_id = t.account_id AND c.ib_order_id = t.ib_order_id "
        "ORDER BY t.trade_date, t.ib_order_id"
    ):
        found[(account, conid)] = f"order {order}"
    return found


def read_flex(tx: Tx) -> tuple[dict[str, dt.date], Book]:
    dates: dict[str, dt.date] = {}
    for account, to_date, sections in tx.execute(
        "SELECT account_id, to_date, sections FROM raw.flex_statements"
    ):
        day = statement_date(to_date)
        if (
            day
            and "OpenPositions" in (sections or "").split(",")
            and (account not in dates or day > dates[account])
        ):
            dates[account] = day
    book: Book = {}
    for account, conid, report_date, symbol, category, position in tx.execute(
        "SELECT account_id, conid, report_date, symbol, asset_category, position "
        "FROM core.open_positions WHERE (level_of_detail = 'SUMMARY' OR "
        "level_of_detail IS NULL) AND position IS NOT NULL"
    ):
        if dates.get(account) == report_date:
            book[(account, conid)] = Holding(position, symbol, category)
    return dates, book


def read_roll_forward(tx: Tx) -> dict[tuple[str, str], dict]:
    """Per (account, currency): CashReport's first starting and last ending cash, and the
    events between: trades' net cash, cash transactions, cash transfers, and the other
    currency leg of FX trades (quantity of the pair's base currency)."""
    found: dict[tuple[str, str], dict] = {}
    for account, currency, start_day, end_day, start, ending in tx.execute(
        "SELECT account_id, currency, min(from_date), max(to_date), "
        "min(CASE WHEN rank_first = 1 THEN starting_cash END), "
        "min(CASE WHEN rank_last = 1 THEN ending_cash END) FROM ("
        " SELECT *, row_number() OVER (PARTITION BY account_id, currency "
        "   ORDER BY from_date, to_date DESC) AS rank_first,"
        " row_number() OVER (PARTITION BY account_id, currency "
        "   ORDER BY to_date DESC, from_date) AS rank_last"
        " FROM core.cash_balances WHERE currency <> 'BASE_SUMMARY' "
        " AND from_date IS NOT NULL AND to_date IS NOT NULL) c "
        "GROUP BY account_id, currency"
    ):
        found[(account, currency)] = {
            "from_date": start_day,
            "to_date": end_day,
            "starting_cash": start,
            "ending_cash": ending,
            "trades": Decimal(0),
            "fx_legs": Decimal(0),
            "cash_transactions": Decimal(0),
            "transfers": Decimal(0),
        }
    flows = {
        "trades": "SELECT account_id, currency, trade_date, net_cash FROM core.trades",
        "fx_legs": "SELECT account_id, split_part(symbol, '.', 1), trade_date, quantity "
        "FROM core.trades WHERE asset_category = 'CASH' AND symbol LIKE '%.%'",
        "cash_transactions": "SELECT account_id, currency, coalesce(report_date, "
        "CAST(date_time AS DATE)), amount FROM core.cash_transactions",
        "transfers": "SELECT account_id, currency, coalesce(date, report_date), "
        "cash_transfer FROM core.transfers",
    }
    for name, sql in flows.items():
        for account, currency, day, amount in tx.execute(sql):
            row = found.get((account, currency))
            if (
                row
                and amount is not None
                and day is not None
                and (row["from_date"] <= day <= row["to_date"])
            ):
                row[name] += amount
    return found


def read_local_orders(tx: Tx) -> tuple[list[dict], set[str]]:
    columns = [
        "order_key",
        "account_id",
        "conid",
        "symbol",
        "action",
        "quantity",
        "status",
        "filled_quantity",
        "broker_order_id",
        "perm_id",
        "client_id",
        "order_ref",
    ]
    rows = [
        dict(zip(columns, r, strict=True))
        for r in tx.execute(f"SELECT {', '.join(columns)} FROM ledger.orders ORDER BY order_key")
    ]
    accounts = {r["account_id"] for r in rows}
    return [r for r in rows if r["status"] in PENDING_ORDER_STATUSES], accounts


def _newest_snapshot(tx: Tx, complete: bool) -> tuple | None:
    """The newest complete (or failed) snapshot row: only the head of the history is read."""
    found = tx.execute(
        "SELECT snapshot_id, taken_at, error FROM live.snapshots WHERE "
        f"{'' if complete else 'NOT '}(status = 'complete') "
        "ORDER BY taken_at DESC, snapshot_id DESC LIMIT 1"
    )
    return found[0] if found else None


def _latest_snapshot(tx: Tx) -> tuple[tuple | None, str | None]:
    """(the snapshot to reconcile against, or None with the reason the live side is
    unknown)."""
    good, failed = _newest_snapshot(tx, True), _newest_snapshot(tx, False)
    if good is None:
        return None, (
            "no live snapshot yet"
            if failed is None
            else f"no complete live snapshot; the last attempt failed: {failed[2]}"
        )
    if failed is not None and failed[1] > good[1]:
        return None, (
            f"the newest live snapshot attempt ({failed[1]:%Y-%m-%d %H:%M} UTC) "
            f"failed: {failed[2]}; live state is unknown, not flat"
        )
    return good, None


def _dicts(tx: Tx, table: str, columns: str, snapshot_id: str) -> list[dict]:
    names = [c.strip() for c in columns.split(",")]
    return [
        dict(zip(names, r, strict=True))
        for r in tx.execute(
            f"SELECT {columns} FROM live.{table} WHERE snapshot_id = :s", {"s": snapshot_id}
        )
    ]


def read_live(tx: Tx) -> tuple[LiveSide | None, str | None]:
    latest, problem = _latest_snapshot(tx)
    if latest is None:
        return None, problem
    snapshot_id, taken_at = latest[0], latest[1]
    accounts = {
        a
        for (a,) in tx.execute(
            "SELECT account_id FROM live.accounts WHERE snapshot_id = :s", {"s": snapshot_id}
        )
    }
    book: Book = {}
    for p in _dicts(tx, "positions", "account_id, conid, symbol, sec_type, position", snapshot_id):
        key = (p["account_id"], p["conid"])
        book[key] = Holding(
            p["position"] + (book[key].quantity if key in book else 0), p["symbol"], p["sec_type"]
        )
    cash = {
        (a, c): v
        for a, c, v in tx.execute(
            "SELECT account_id, currency, value_decimal FROM live.account_values WHERE "
            "snapshot_id = :s AND tag = 'CashBalance' AND currency NOT IN ('BASE', '') "
            "AND value_decimal IS NOT NULL",
            {"s": snapshot_id},
        )
    }
    executions = _dicts(
        tx,
        "executions",
        "ib_exec_id, account_id, conid, symbol, time, side, "
        "shares, price, perm_id, order_id, client_id, order_ref, liquidation",
        snapshot_id,
    )
    executed: dict[Key, Decimal] = defaultdict(Decimal)
    for e in executions:
        executed[(e["account_id"], e["conid"])] += e["shares"] * (
            1 if e["side"] in ("BOT", "BUY") else -1
        )
    return LiveSide(
        snapshot_id,
        taken_at,
        accounts,
        book,
        cash,
        dict(executed),
        _dicts(
            tx,
            "open_orders",
            "account_id, order_id, perm_id, client_id, conid, symbol, "
            "action, total_quantity, status, filled, remaining, order_ref",
            snapshot_id,
        ),
        _dicts(
            tx,
            "completed_orders",
            "perm_id, account_id, conid, symbol, action, "
            "total_quantity, status, filled_quantity, order_ref",
            snapshot_id,
        ),
        executions,
    ), None


def read_inputs(tx: Tx) -> ReconInputs:
    local, reconciled = read_local(tx)
    dates, flex = read_flex(tx)
    live, problem = read_live(tx)
    orders, order_accounts = read_local_orders(tx)
    return ReconInputs(
        local, reconciled, dates, flex, read_roll_forward(tx), live, problem, orders, order_accounts
    )
