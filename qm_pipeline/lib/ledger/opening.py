"""Opening-balance lots: holdings older than the event history, from IB's open positions.

Flex windows are at most 365 days, so the history often starts after positions were
opened. Instead of inventing trades or losing the holdings, the ledger opens
"opening balance" lots at the start of each account's history (its first event, H),
sized so that replaying the history reproduces IB's position at the earliest report
date R0 of that account:

    unexplained at R0 = IB's position at R0 - the history's position at R0
    opening quantity at H = unexplained at R0 / split factor between H and R0

(quantity at R0 is linear in the quantity at H; splits are the only multiplier). Only
holdings the history does not explain get lots. Their basis and dates come, best first:
- IB's LOT-level open positions at R0 opened before H (open time, holding period,
  cost basis money of each lot);
- IB's CLOSED_LOT rows of in-history closings whose lots were opened before H (the
  part of the old holding sold before R0);
- for what is left, the SUMMARY row's cost pro rata, open date unknown (flagged).
Lot rows a transfer in already took (`transfer_lots`) are not used again.
The first replay provides the history's position at R0; a second replay runs with the
lots seeded (see `engine.replay`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

import pyarrow as pa

from qm_pipeline.lib.ledger import events as ev
from qm_pipeline.lib.ledger import inputs as src
from qm_pipeline.lib.ledger.money import ONE, QUANTUM, ZERO, part, to_base
from qm_pipeline.lib.ledger.outputs import Flags
from qm_pipeline.lib.ledger.timeline import end_of_day

if TYPE_CHECKING:
    from qm_pipeline.lib.ledger.engine import LedgerResult, Prepared
    from qm_pipeline.lib.ledger.trades import TradeStream


@dataclass(frozen=True)
class SeedLot:
    """An opening-balance lot, in the book before the account's first event."""

    account_id: str
    conid: str
    source_id: str  # what it was derived from (originating transaction id, SUMMARY...)
    open_ts: int | None
    holding_ts: int | None
    at_ts: int  # the account's first event: when the ledger starts knowing the lot
    qty: Decimal
    cost: Decimal
    cost_base: Decimal


@dataclass
class _Source:
    source_id: str
    open_ts: int | None
    holding_ts: int | None
    qty: Decimal  # in units at H
    cost: Decimal


def seed_lots(prepared: Prepared, first: LedgerResult) -> tuple[list[SeedLot], list[tuple]]:
    """Opening-balance lots and the flag rows explaining estimates, from a first replay."""
    positions = src.rows(prepared.tables["open_positions"])
    if not positions:
        return [], []
    report: dict[str, int] = {}
    for r in positions:
        if r["account_id"] is not None and r["report_date"] is not None:
            report[r["account_id"]] = min(r["report_date"], report.get(r["account_id"], 1 << 30))
    ib: dict[tuple[str, str], dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for r in positions:
        if report.get(r["account_id"]) == r["report_date"] and r["position"] is not None:
            ib[(r["account_id"], r["conid"])][(r["level_of_detail"] or "SUMMARY").upper()].append(r)
    ours = _history_at(first, report)
    start = _history_start(prepared, report)
    splits = splits_by_book(prepared.events)
    closed = defaultdict(list)
    for r in closed_lot_rows(prepared.tables["closed_lots"], prepared.trades):
        if closed_lot_key(r) not in prepared.claimed:  # lots a transfer in brought
            closed[(r["account_id"], r["conid"])].append(r)
    flags = Flags()
    seeds: list[SeedLot] = []
    for key in sorted(set(ib) | {k for k in ours if k[0] in report}):
        account, conid = key
        h, r0_end = start[account], end_of_day(report[account])
        levels = ib.get(key, {})
        summary = levels.get("SUMMARY", [])
        lot_rows = levels.get("LOT", [])
        ib_qty = sum((r["position"] for r in summary or lot_rows), ZERO)
        gap = ib_qty - ours.get(key, ZERO)
        if not gap:
            continue

        def in_h_units(qty: Decimal, ts: int, k: tuple[str, str] = key, h: int = h) -> Decimal:
            num, den = split_factor(splits.get(k, ()), h, ts)
            return qty if num == den else (qty * den / num).quantize(QUANTUM)

        wanted = in_h_units(gap, r0_end)
        sign = ONE if gap > ZERO else -ONE
        sources = [
            _Source(r["originating_transaction_id"] or f"LOT:{r['open_date_time']}",
                    r["open_date_time"], r["holding_period_date_time"],
                    in_h_units(r["position"], r0_end), r["cost_basis_money"] or ZERO)
            for r in lot_rows if (r["open_date_time"] is None or r["open_date_time"] < h)
            and open_lot_key(r) not in prepared.claimed
        ] + [
            _Source(f"CL:{r['transaction_id']}", r["open_date_time"], None,
                    sign * in_h_units(abs(r["quantity"]), r["closed_at"]), sign * abs(r["cost"]))
            for r in closed.get(key, ())
            if r["quantity"] and r["cost"] is not None and h <= r["closed_at"] <= r0_end
            and (r["open_date_time"] is None or r["open_date_time"] < h)
        ]
        sources.sort(key=lambda s: (-1 if s.open_ts is None else s.open_ts, s.source_id))
        sources = _fit(sources, wanted, summary or lot_rows, ib_qty, in_h_units(ONE, r0_end),
                       flags, account, conid, h, lot_rows == [])
        fx = (summary or lot_rows or [{"fx_rate_to_base": None}])[0]["fx_rate_to_base"] or ONE
        seeds += [SeedLot(account, conid, s.source_id, s.open_ts, s.holding_ts, h, s.qty,
                          s.cost, to_base(s.cost, fx)) for s in sources if s.qty]
    return seeds, flags.rows


def _fit(sources: list[_Source], wanted: Decimal, ib_rows: list[dict], ib_qty: Decimal,
         unit_at_h: Decimal, flags: Flags, account: str, conid: str, h: int,
         summary_only: bool) -> list[_Source]:
    """Trims or completes `sources` to exactly `wanted` (units at H)."""
    total = sum((s.qty for s in sources), ZERO)
    if abs(total) > abs(wanted):  # keep the oldest lots, trim the newest
        flags.add("WARN", "open_positions", f"IB's lots before the history hold {total}, the "
                  f"history leaves {wanted} unexplained: newest trimmed", account, conid,
                  None, h)
        kept, room = [], wanted
        for s in sources:
            take = s.qty if abs(s.qty) <= abs(room) else room
            if take:
                kept.append(_Source(s.source_id, s.open_ts, s.holding_ts, take,
                                    part(s.cost, abs(take), abs(s.qty))))
            room -= take
        return kept
    rest = wanted - total
    if rest:
        cost = ZERO
        if ib_qty:
            # cost per unit at R0 from IB's total cost; rest is in units at H
            money = sum((r["cost_basis_money"] or ZERO for r in ib_rows), ZERO)
            cost = part(money, abs(rest), abs(ib_qty) * unit_at_h)  # signed like IB's money
        what = "open date unknown, basis pro rata from IB's" + (
            " SUMMARY position" if summary_only else " lots (they do not cover it)")
        flags.add("WARN", "open_positions", f"opening balance of {rest}: {what}", account,
                  conid, None, h)
        sources.append(_Source("SUMMARY" if summary_only else "RESIDUAL", None, None, rest,
                                cost))
    return sources


def closed_lot_rows(table: pa.Table, trades: TradeStream) -> list[dict]:
    """IB's CLOSED_LOT rows with `closed_at`: their own date_time, else the closing
    execution's, else the end of their trade date."""
    lots = src.rows(table)
    closing = {r["transaction_id"] for r in lots if r["date_time"] is None}
    executed = {}
    if closing:
        executed = trades.times(closing)
        executed.update({r["transaction_id"]: r["ts"] for r in trades.eae_rows})
    for r in lots:
        r["closed_at"] = r["date_time"] if r["date_time"] is not None else executed.get(
            r["transaction_id"], end_of_day(r["trade_date"] or 0))
    return lots


def _history_at(first: LedgerResult, report: dict[str, int]) -> dict[tuple[str, str], Decimal]:
    """The first replay's end-of-day quantity per position at its account's report date."""
    quantity: dict[tuple[str, str], Decimal] = {}
    history = first.position_history.select(["account_id", "conid", "date", "quantity"])
    for r in src.rows(history):  # sorted by account, conid, date
        r0 = report.get(r["account_id"])
        if r0 is not None and r["date"] <= r0:
            quantity[(r["account_id"], r["conid"])] = r["quantity"]
    return quantity


def _history_start(prepared: Prepared, report: dict[str, int]) -> dict[str, int]:
    """H per account: its first event, or the end of its report date if it has none."""
    start = {account: end_of_day(day) for account, day in report.items()}
    firsts = list(prepared.trades.first_ts().items())
    for e in prepared.events:
        firsts += _legs(e)
    for account, ts in firsts:
        if account in start and ts < start[account]:
            start[account] = ts
    return start


def _legs(e: ev.Event) -> list[tuple[str, int]]:
    if isinstance(e, ev.OptionEvent):
        return [(leg.account_id, leg.ts) for leg in (e.option, e.stock) if leg is not None]
    if isinstance(e, ev.TransferEvent):
        return [(e.leg.account_id, e.leg.ts)]
    if isinstance(e, ev.SplitEvent):
        return [(e.account_id, e.key[0])]
    return []


def open_lot_key(r: dict) -> tuple:
    """Identity of an OpenPosition LOT row (DOMAIN.md §1 natural key)."""
    return ("LOT", r["account_id"], r["conid"], r["report_date"],
            r["originating_transaction_id"], r["open_date_time"])


def closed_lot_key(r: dict) -> tuple:
    """Identity of a CLOSED_LOT row (DOMAIN.md §1 natural key, without the ordinal)."""
    return ("CLOSED_LOT", r["account_id"], r["conid"], r["transaction_id"],
            r["open_date_time"], r["quantity"])


Splits = dict[tuple[str, str], list[tuple[int, Decimal, Decimal]]]


def splits_by_book(events: list[ev.Event]) -> Splits:
    """Same-conid splits per (account, conid): (time, numerator, denominator)."""
    splits = defaultdict(list)
    for e in events:
        if isinstance(e, ev.SplitEvent) and e.new_conid is None:
            splits[(e.account_id, e.conid)].append((e.key[0], e.num, e.den))
    return splits


def split_factor(splits: list[tuple[int, Decimal, Decimal]], since: int,
                 until: int) -> tuple[Decimal, Decimal]:
    """Product of split ratios applied in [since, until], as (numerator, denominator)."""
    num = den = ONE
    for ts, n, d in splits:
        if since <= ts <= until:
            num *= n
            den *= d
    return num, den
