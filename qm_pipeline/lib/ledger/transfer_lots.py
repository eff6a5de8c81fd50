"""Transfer-in lots: the delivered shares' own open dates and basis, from IB's lot rows.

A Transfer row says how many shares came in, when, and what they were worth
(`positionAmount`); it carries no lot detail (ibflex's `Transfer` and `TransferLot` have
no open date and no cost). IB keeps the delivered lots with their original open dates and
basis (DOMAIN.md §6) and shows them where lots show: OpenPositions LOT rows
(`openDateTime`, `holdingPeriodDateTime`, `costBasisMoney`, `originatingTransactionID`)
and the CLOSED_LOT rows of the closings that consume them (`openDateTime`, `cost`). FIFO
consumes these old lots before anything bought here, so the ledger realizes what IB
realizes only with the same lots in the book.

A transfer in of Q units at T into (account, conid) opens these lots, best first, until
they hold Q (what comes last is trimmed, flagged, when they hold more):
1. the LOT rows at the account's first LOT-level report date R on or after T whose
   originating transaction is the transfer;
2. the CLOSED_LOT rows of closings in [T, R] (R unknown: any later closing), in closing
   order, of lots opened before T at a time none of the account's own openings of the
   conid has (executions, option deliveries, earlier transfers in): such a lot can only
   have come in (or be older than the history: holdings an account had before its first
   report and a transfer in of the same conid cannot be told apart this way, the
   transfer takes them first);
3. the LOT rows at R opened before T at such a time, without that link.
Pieces with one open time are one lot (a lot partly sold before R, the rest still open
at R). What they do not cover (a report without lot detail) opens at the transfer with
the transfer's positionAmount pro rata, as a transfer in always did, flagged WARN; a
transfer covered by IB's lots gets an INFO flag naming its sources. Quantities are
converted to units at T through the splits in between. Internal transfers between two
ledger accounts carry their lots (`engine`) and are left alone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import pyarrow as pa

from qm_pipeline.lib.ledger import events as ev
from qm_pipeline.lib.ledger import inputs as src
from qm_pipeline.lib.ledger.money import QUANTUM, ZERO, part, to_base
from qm_pipeline.lib.ledger.opening import (
    Splits,
    closed_lot_key,
    closed_lot_rows,
    open_lot_key,
    split_factor,
    splits_by_book,
)
from qm_pipeline.lib.ledger.outputs import Flags
from qm_pipeline.lib.ledger.timeline import day_of, end_of_day
from qm_pipeline.lib.ledger.trades import TradeStream


@dataclass(frozen=True)
class _Piece:
    """Part of one IB lot row the transfer takes, in units at T."""

    key: tuple  # the row's identity (`open_lot_key`, `closed_lot_key`)
    source: str  # which rows: "open position LOT" or "CLOSED_LOT"
    open_ts: int
    holding_ts: int | None
    qty: Decimal
    cost: Decimal


@dataclass
class _Evidence:
    """IB's lot rows a replay's transfers in may draw on, and those already drawn."""

    lot_rows: list[dict]
    closed: list[dict]
    splits: Splits
    own_openings: Callable[[str, str], set[int]]
    claimed: set[tuple]
    brought: dict[tuple[str, str], set[int]]  # open times of earlier transfers' lots


def resolve(events: list[ev.Event], open_positions: pa.Table, closed_lots: pa.Table,
            trades: TradeStream, flags: Flags) -> tuple[list[ev.Event], frozenset[tuple]]:
    """`events` with every transfer in from outside given IB's lots, and the keys of the
    IB lot rows they took (opening balances must not take them again)."""
    ins = [e for e in events if isinstance(e, ev.TransferEvent) and e.pair is None
           and e.leg.qty > ZERO]
    if not ins:
        return events, frozenset()
    lot_rows = [r for r in src.rows(open_positions)
                if (r["level_of_detail"] or "").upper() == "LOT" and r["position"]
                and r["open_date_time"] is not None and r["report_date"] is not None]
    closed = sorted((r for r in closed_lot_rows(closed_lots, trades)
                     if r["quantity"] and r["cost"] is not None
                     and r["open_date_time"] is not None),
                    key=lambda r: (r["closed_at"], r["open_date_time"]))
    evidence = _Evidence(lot_rows, closed, splits_by_book(events),
                         _own_openings(events, trades), set(), {})
    resolved = {id(e): dataclasses.replace(e, lots=_lots(e, evidence, flags)) for e in ins}
    return [resolved.get(id(e), e) for e in events], frozenset(evidence.claimed)


def _own_openings(events: list[ev.Event], trades: TradeStream) -> Callable[[str, str], set[int]]:
    """When the account itself opened lots of a conid: its executions and the stock
    deliveries of option exercises and assignments."""
    deliveries: dict[tuple[str, str], set[int]] = {}
    for e in events:
        if isinstance(e, ev.OptionEvent) and e.stock is not None:
            deliveries.setdefault((e.stock.account_id, e.stock.conid), set()).add(e.stock.ts)

    def times(account_id: str, conid: str) -> set[int]:
        return trades.book_times(account_id, conid) | deliveries.get((account_id, conid), set())

    return times


def _lots(e: ev.TransferEvent, evidence: _Evidence, flags: Flags) -> tuple[ev.InLot, ...]:
    leg = e.leg
    pieces = _taken(_candidates(leg, evidence), leg, evidence, flags)
    merged: dict[int, list] = {}  # open time -> [holding time, quantity, cost]
    for p in pieces:
        lot = merged.setdefault(p.open_ts, [p.holding_ts, ZERO, ZERO])
        lot[0] = lot[0] if lot[0] is not None else p.holding_ts
        lot[1] += p.qty
        lot[2] += p.cost
    lots = [ev.InLot(open_ts, holding_ts, qty, cost, to_base(cost, leg.fx))
            for open_ts, (holding_ts, qty, cost) in sorted(merged.items())]
    evidence.brought.setdefault((leg.account_id, leg.conid), set()).update(merged)
    rest = leg.qty - sum((p.qty for p in pieces), ZERO)
    if rest:
        (value,) = e.lots  # the transfer's own lot: its positionAmount, opened at T
        lots.append(ev.InLot(None, None, rest, part(value.cost, rest, leg.qty),
                             part(value.cost_base, rest, leg.qty)))
        flags.add("WARN", "transfers", f"transfer in of {leg.qty}: {rest} without IB lot "
                  "detail, opened at the transfer with basis pro rata from its positionAmount "
                  "(market value)", leg.account_id, leg.conid, leg.transaction_id, leg.ts)
    else:
        sources = sorted({p.source for p in pieces})
        flags.add("INFO", "transfers", f"transfer in of {leg.qty}: {len(lots)} lot(s) with "
                  f"IB's open dates and basis, from its {' and '.join(sources)} rows",
                  leg.account_id, leg.conid, leg.transaction_id, leg.ts)
    return tuple(lots)


def _candidates(leg: ev.Leg, evidence: _Evidence) -> list[_Piece]:
    """IB's lot rows that describe the lots of transfer `leg`, best first."""
    account, conid, t = leg.account_id, leg.conid, leg.ts
    report = min((r["report_date"] for r in evidence.lot_rows
                  if r["account_id"] == account and r["report_date"] >= day_of(t)), default=None)
    report_end = None if report is None else end_of_day(report)
    at_report = [r for r in evidence.lot_rows if r["account_id"] == account
                 and r["conid"] == conid and r["report_date"] == report]
    own = evidence.own_openings(account, conid) | evidence.brought.get((account, conid), set())
    splits = evidence.splits.get((account, conid), [])

    def came_in(open_ts: int) -> bool:
        return open_ts < t and open_ts not in own

    def piece(r: dict, key: tuple, source: str, qty: Decimal, cost: Decimal,
              at: int) -> _Piece:
        num, den = split_factor(splits, t, at)
        if num != den:
            qty = (qty * den / num).quantize(QUANTUM)
        return _Piece(key, source, r["open_date_time"], r["holding_period_date_time"],
                      abs(qty), abs(cost))

    def linked(r: dict) -> bool:
        return r["originating_transaction_id"] == leg.transaction_id

    return [
        *(piece(r, open_lot_key(r), "open position LOT", r["position"],
                r["cost_basis_money"] or ZERO, report_end) for r in at_report if linked(r)),
        *(piece(r, closed_lot_key(r), "CLOSED_LOT", r["quantity"], r["cost"], r["closed_at"])
          for r in evidence.closed
          if r["account_id"] == account and r["conid"] == conid and t <= r["closed_at"]
          and (report_end is None or r["closed_at"] <= report_end)
          and came_in(r["open_date_time"])),
        *(piece(r, open_lot_key(r), "open position LOT", r["position"],
                r["cost_basis_money"] or ZERO, report_end) for r in at_report
          if not linked(r) and came_in(r["open_date_time"])),
    ]


def _taken(candidates: list[_Piece], leg: ev.Leg, evidence: _Evidence,
           flags: Flags) -> list[_Piece]:
    """The candidates, in order, up to the transferred quantity; each IB row is taken by
    one transfer at most."""
    room = leg.qty
    taken = []
    for c in candidates:
        if c.key in evidence.claimed:
            continue
        if not room:
            flags.add("WARN", "transfers", f"IB's lot rows for the transfer in of {leg.qty} "
                      "hold more: the last ones trimmed", leg.account_id, leg.conid,
                      leg.transaction_id, leg.ts)
            break
        qty = min(c.qty, room)
        taken.append(c if qty == c.qty else dataclasses.replace(
            c, qty=qty, cost=part(c.cost, qty, c.qty)))
        evidence.claimed.add(c.key)
        room -= qty
    return taken
