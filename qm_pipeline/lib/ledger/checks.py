"""Cross-checks of the ledger against IB's own numbers, as mismatch rows.

Each check is a pure function of a `LedgerResult` and the IB rows it is compared with,
returning one row per disagreement: `{check, account_id, conid, key, ours, ibs}` (an
empty list when the ledger agrees). IB's figures and ours are compared as follows:
- `realized_pnl`: per closing execution, the sum of our realized P&L (proceeds net of
  the closing commission minus cost including the opening commission, in the trade's
  currency) against the execution's `fifo_pnl_realized` (DOMAIN.md §1), to the cent,
  for accounts replayed FIFO (IB's number is a FIFO number);
- `closed_lot_quantity` / `closed_lot_cost`: per closing execution and lot open time,
  our closed quantity and cost against IB's CLOSED_LOT rows, for accounts replayed FIFO
  or SPECIFIC (the methods IB's lots describe). Magnitudes are compared: IB's lot rows
  carry the sign of the closing side;
- `open_position_quantity` / `open_position_cost_basis`: per report date, our end-of-day
  position against IB's open positions (SUMMARY rows, else the sum of LOT rows); the
  cost basis to the cent where IB reports it. Our basis is the economic one (without
  wash-sale adjustments).
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from qm_pipeline.lib.ledger import inputs as src
from qm_pipeline.lib.ledger.config import LedgerConfig, LotMethod
from qm_pipeline.lib.ledger.engine import LedgerResult
from qm_pipeline.lib.ledger.money import ZERO
from qm_pipeline.lib.ledger.timeline import to_date, to_datetime

CENT = Decimal("0.01")


def _mismatch(check: str, account_id: str | None, conid: str | None, key: str,
              ours: Decimal | None, ibs: Decimal | None) -> dict:
    return {"check": check, "account_id": account_id, "conid": conid, "key": key,
            "ours": ours, "ibs": ibs}


def _sorted(mismatches: list[dict]) -> list[dict]:
    return sorted(mismatches, key=lambda m: (m["check"], str(m["account_id"]), str(m["conid"]),
                                             m["key"]))


def check_realized_pnl(result: LedgerResult, trades: src.Rows,
                       config: LedgerConfig | None = None,
                       tolerance: Decimal = CENT) -> list[dict]:
    """Our realized P&L per closing execution against IB's fifo_pnl_realized."""
    config = config or LedgerConfig()
    per_trade = result.realized.group_by("closing_transaction_id").aggregate(
        [("realized_pnl", "sum")])
    ours = {r["closing_transaction_id"]: r["realized_pnl_sum"] for r in src.rows(per_trade)}
    ib = src.rows(src.table(trades, src.TRADES))
    restated = {r["orig_transaction_id"] for r in ib if r["orig_transaction_id"]}
    found = []
    for r in ib:
        tid, fifo = r["transaction_id"], r["fifo_pnl_realized"]
        if fifo is None or tid in restated or r["transaction_type"] == "TradeCancel" \
                or config.method(r["account_id"]) is not LotMethod.FIFO:
            continue
        mine = ours.get(tid, ZERO)
        if abs(mine - fifo) > tolerance:
            found.append(_mismatch("realized_pnl", r["account_id"], r["conid"], tid, mine,
                                   fifo))
    return _sorted(found)


def check_closed_lots(result: LedgerResult, closed_lots: src.Rows,
                      config: LedgerConfig | None = None,
                      tolerance: Decimal = CENT) -> list[dict]:
    """Our closed lot pieces against IB's CLOSED_LOT rows, per closing trade and open time."""
    config = config or LedgerConfig()
    compared = {LotMethod.FIFO, LotMethod.SPECIFIC}
    ib: dict[tuple, list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
    where: dict[tuple, tuple[str, str]] = {}
    for r in src.rows(src.table(closed_lots, src.CLOSED_LOTS)):
        if config.method(r["account_id"]) not in compared or r["quantity"] is None:
            continue
        key = (r["transaction_id"], r["open_date_time"])
        ib[key][0] += abs(r["quantity"])
        ib[key][1] += abs(r["cost"] or ZERO)
        where[key] = (r["account_id"], r["conid"])
    closings = {tid for tid, _ in ib}
    ours: dict[tuple, list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
    columns = ["account_id", "conid", "closing_transaction_id", "open_date_time", "quantity",
               "cost"]
    for r in src.rows(result.realized.select(columns)):
        if r["closing_transaction_id"] in closings:
            key = (r["closing_transaction_id"], r["open_date_time"])
            ours[key][0] += abs(r["quantity"])
            ours[key][1] += abs(r["cost"])
            where.setdefault(key, (r["account_id"], r["conid"]))
    found = []
    for key in set(ib) | set(ours):
        account_id, conid = where[key]
        label = f"{key[0]}|{'?' if key[1] is None else to_datetime(key[1])}"
        mine, theirs = ours.get(key), ib.get(key)
        if mine is None or theirs is None:
            found.append(_mismatch("closed_lot_quantity", account_id, conid, label,
                                   mine and mine[0], theirs and theirs[0]))
            continue
        if mine[0] != theirs[0]:
            found.append(_mismatch("closed_lot_quantity", account_id, conid, label, mine[0],
                                   theirs[0]))
        if abs(mine[1] - theirs[1]) > tolerance:
            found.append(_mismatch("closed_lot_cost", account_id, conid, label, mine[1],
                                   theirs[1]))
    return _sorted(found)


def check_open_positions(result: LedgerResult, open_positions: src.Rows,
                         tolerance: Decimal = CENT) -> list[dict]:
    """Our end-of-day positions against IB's open positions at each report date."""
    reported: dict[str, dict[int, dict[str, dict[str, list[dict]]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(lambda: defaultdict(list))))
    for r in src.rows(src.table(open_positions, src.OPEN_POSITIONS)):
        if r["report_date"] is not None and r["position"] is not None:
            level = (r["level_of_detail"] or "SUMMARY").upper()
            reported[r["account_id"]][r["report_date"]][r["conid"]][level].append(r)
    changes: dict[str, list[dict]] = defaultdict(list)
    columns = ["account_id", "conid", "date", "quantity", "cost_basis"]
    for r in src.rows(result.position_history.select(columns)):
        if r["account_id"] in reported:
            changes[r["account_id"]].append(r)
    found = []
    for account_id, days in reported.items():
        history = sorted(changes[account_id], key=lambda r: r["date"])
        state: dict[str, tuple[Decimal, Decimal]] = {}  # conid -> (quantity, cost basis)
        j = 0
        for day in sorted(days):  # one sweep through the history, report date by date
            while j < len(history) and history[j]["date"] <= day:
                state[history[j]["conid"]] = (history[j]["quantity"], history[j]["cost_basis"])
                j += 1
            found += _compare_positions(account_id, day, days[day], state, tolerance)
    return _sorted(found)


def _compare_positions(account_id: str, day: int, conids: dict[str, dict[str, list[dict]]],
                       state: dict[str, tuple[Decimal, Decimal]],
                       tolerance: Decimal) -> list[dict]:
    found = []
    key = to_date(day).isoformat()
    for conid in set(conids) | {c for c, (q, _) in state.items() if q}:
        levels = conids.get(conid, {})
        ib_rows = levels.get("SUMMARY") or levels.get("LOT") or []
        ib_qty = sum((r["position"] for r in ib_rows), ZERO)
        qty, cost = state.get(conid, (ZERO, ZERO))
        if qty != ib_qty:
            found.append(_mismatch("open_position_quantity", account_id, conid, key, qty,
                                   ib_qty))
        money = [r["cost_basis_money"] for r in ib_rows]
        if ib_rows and None not in money and abs(cost - sum(money, ZERO)) > tolerance:
            found.append(_mismatch("open_position_cost_basis", account_id, conid, key, cost,
                                   sum(money, ZERO)))
    return found
