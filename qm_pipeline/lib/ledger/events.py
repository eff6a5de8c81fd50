"""Events other than plain executions, normalised into sortable event objects.

These sources are small (hundreds of rows, not millions), so they are plain Python:
- option expiry, exercise and assignment: the BookTrades split off the trade stream
  and the OptionEAE rows describe the same events twice (DOMAIN.md §1); each is replayed
  once, the option leg together with its stock leg so the premium can move into the
  stock's basis or proceeds (DOMAIN.md §6);
- transfers in and out, an out and an in of the same conid, quantity and date between
  two ledger accounts being one internal move that carries the lots (a transfer in from
  outside gets its lots from IB's lot rows later, see `transfer_lots`);
- corporate actions: splits (same conid, or IB's old-conid/new-conid pair); anything
  else that changes holdings is flagged, the rest recorded;
- marks (end-of-day prices for the position history).
Every event has `key = (ts, priority, tiebreak)` (see `timeline`).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

import pyarrow as pa

from qm_pipeline.lib.ledger.inputs import rows
from qm_pipeline.lib.ledger.instruments import Instrument, unknown
from qm_pipeline.lib.ledger.money import ONE, ZERO, to_base
from qm_pipeline.lib.ledger.outputs import Flags
from qm_pipeline.lib.ledger.timeline import (
    PRIO_CORPORATE_ACTION,
    PRIO_MARK,
    PRIO_OPTION_EVENT,
    PRIO_TRANSFER_IN,
    PRIO_TRANSFER_OUT,
    day_of,
    end_of_day,
    tiebreak,
)

Key = tuple[int, int, str]

# Flex notes codes and OptionEAE transaction types of the option lifecycle.
ACTION_BY_NOTE = {"A": "ASSIGNED", "Ex": "EXERCISED", "Ep": "EXPIRED"}
ACTION_BY_EAE = {"Assignment": "ASSIGNED", "Exercise": "EXERCISED", "Expiration": "EXPIRED"}
DELIVERY_SIGN = {"Buy": 1, "Sell": -1}
SPLIT_TYPES = frozenset({"FS", "RS"})
SPLIT_RATIO = re.compile(r"SPLIT\s+(\d+(?:\.\d+)?)\s+FOR\s+(\d+(?:\.\d+)?)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Leg:
    """One movement of one conid: quantity (signed) and the cash it moved."""

    ts: int
    transaction_id: str
    account_id: str
    conid: str
    qty: Decimal
    net_cash: Decimal
    fx: Decimal

    @property
    def day(self) -> int:
        return day_of(self.ts)


@dataclass(frozen=True, slots=True)
class OptionEvent:
    """Expiry, exercise or assignment: the option leg, and the stock leg it delivered.
    A stock leg alone (its option leg missing) replays as a plain trade."""

    key: Key
    action: str
    option: Leg | None
    stock: Leg | None


@dataclass(frozen=True, slots=True)
class InLot:
    """A lot a transfer in opens. `open_ts` None: opened at the transfer."""

    open_ts: int | None
    holding_ts: int | None
    qty: Decimal
    cost: Decimal
    cost_base: Decimal


@dataclass(frozen=True, slots=True)
class TransferEvent:
    key: Key
    leg: Leg  # net_cash 0: a position transfer moves no cash
    lots: tuple[InLot, ...]  # of a transfer in (none for an out)
    # internal transfer: on an out its own id (its lots are kept for the in), on an in the
    # id of the out it receives
    pair: str | None


@dataclass(frozen=True, slots=True)
class SplitEvent:
    """Quantities times num/den. `new_conid`: IB moved the holding to a new conid."""

    key: Key
    transaction_id: str
    account_id: str
    conid: str
    num: Decimal
    den: Decimal
    reported: Decimal  # IB's quantity: shares added (same conid) or new conid's shares
    new_conid: str | None


@dataclass(frozen=True, slots=True)
class MarkEvent:
    key: Key
    account_id: str
    conid: str
    mark: Decimal


Event = OptionEvent | TransferEvent | SplitEvent | MarkEvent


# --- option expiry, exercise, assignment ---------------------------------------------


def option_events(book_trades: list[dict], eae: pa.Table, instruments: dict[str, Instrument],
                  flags: Flags) -> list[OptionEvent]:
    """Pairs option legs with stock legs. BookTrades are preferred (they carry ids, times
    and commissions); an OptionEAE row without its BookTrade twin is replayed instead."""
    legs: list[tuple[str, Leg, bool]] = []  # (action, leg, is_option)
    twins: dict[tuple, int] = defaultdict(int)
    for r in book_trades:
        notes = set((r["notes"] or "").split(";"))
        action = next(a for note, a in ACTION_BY_NOTE.items() if note in notes)
        leg = Leg(r["ts"], r["transaction_id"], r["account_id"], r["conid"], r["quantity"],
                  r["net_cash"], r["fx_rate_to_base"])
        legs.append((action, leg, instruments.get(r["conid"], unknown(r["conid"])).is_option))
        twins[(leg.account_id, leg.conid, leg.day, abs(leg.qty))] += 1
    for r in sorted(rows(eae), key=_eae_order):
        twin = (r["account_id"], r["conid"], r["date"], abs(r["quantity"] or ZERO))
        if twins[twin]:
            twins[twin] -= 1
            continue
        leg = _eae_leg(r)
        if leg is not None:
            kind = r["transaction_type"]
            legs.append((ACTION_BY_EAE.get(kind, ""), leg, kind in ACTION_BY_EAE))
    return _pair(legs, instruments, flags)


def _eae_order(r: dict) -> tuple:
    return tuple(str(r[k]) for k in ("account_id", "date", "conid", "transaction_type",
                                     "quantity", "trade_id"))


def _eae_leg(r: dict) -> Leg | None:
    kind = r["transaction_type"]
    qty = r["quantity"]
    if not qty or r["date"] is None or (kind not in ACTION_BY_EAE and kind not in DELIVERY_SIGN):
        return None
    if kind in DELIVERY_SIGN:
        qty = abs(qty) * DELIVERY_SIGN[kind]
    # OptionEAE quantities are signed like Trades (the closing side of the option); cash
    # moves against the quantity whatever sign the row gives its proceeds.
    proceeds = r["proceeds"]
    if proceeds is None:
        proceeds = qty * (r["trade_price"] or ZERO) * (r["multiplier"] or ONE)
    proceeds = abs(proceeds) if qty < ZERO else -abs(proceeds)
    commission = r["commisions_and_tax"] or ZERO
    tid = "EAE:" + (r["trade_id"] or
                    f"{r['account_id']}:{r['conid']}:{r['date']}:{kind}:{r['quantity']}")
    return Leg(end_of_day(r["date"]), tid, r["account_id"], r["conid"], qty,
               proceeds + commission, r["fx_rate_to_base"] or ONE)


def _pair(legs: list[tuple[str, Leg, bool]], instruments: dict[str, Instrument],
          flags: Flags) -> list[OptionEvent]:
    legs.sort(key=lambda x: (x[1].ts, tiebreak(x[1].transaction_id)))
    stock_legs = [(a, leg) for a, leg, is_option in legs if not is_option]
    used: set[str] = set()
    events = []
    for action, leg, is_option in legs:
        if not is_option:
            continue
        inst = instruments.get(leg.conid, unknown(leg.conid))
        stock = None
        if action in ("ASSIGNED", "EXERCISED") and inst.underlying_conid:
            # a call delivers against the option's side, a put with it (DOMAIN.md §1 signs)
            expected = leg.qty * inst.multiplier * (1 if inst.put_call == "P" else -1)
            stock = next((s for a, s in stock_legs
                          if s.transaction_id not in used and a in (action, "")
                          and s.account_id == leg.account_id and s.day == leg.day
                          and s.conid == inst.underlying_conid and s.qty == expected), None)
            if stock is not None:
                used.add(stock.transaction_id)
        events.append(OptionEvent((leg.ts, PRIO_OPTION_EVENT, tiebreak(leg.transaction_id)),
                                  action, leg, stock))
    for action, stock in stock_legs:
        if stock.transaction_id not in used:
            flags.add("WARN", "option_events", f"{action} delivery without its option leg: "
                      "replayed as a trade, premium not moved", stock.account_id, stock.conid,
                      stock.transaction_id, stock.ts)
            events.append(OptionEvent((stock.ts, PRIO_OPTION_EVENT,
                                       tiebreak(stock.transaction_id)), action, None, stock))
    return events


# --- transfers ------------------------------------------------------------------------


def transfer_events(table: pa.Table) -> list[TransferEvent]:
    """Transfers out remove lots without realizing; an in and an out between two ledger
    accounts (same conid, quantity and date) carry the lots themselves. A transfer in gets
    one lot here, opened at the transfer with its market value (`position_amount`) as
    basis: the Transfer row carries no lot detail, `transfer_lots` finds IB's."""
    legs = []
    for r in sorted(rows(table), key=lambda r: str(r["transaction_id"])):
        qty = r["quantity"]
        r["transaction_id"] = r["transaction_id"] or (
            f"T:{r['account_id']}:{r['conid']}:{r['date_time'] or r['date']}:{qty}")
        ts = r["date_time"] if r["date_time"] is not None else (
            end_of_day(r["date"]) if r["date"] is not None else None)
        if not qty or ts is None or r["conid"] is None:
            continue
        direction = (r["direction"] or "").upper()
        if direction in ("IN", "OUT"):
            qty = abs(qty) if direction == "IN" else -abs(qty)
        legs.append((r, ts, qty))
    outs: dict[tuple, list[tuple[dict, int]]] = defaultdict(list)
    for r, ts, qty in legs:
        if qty < ZERO:
            outs[(r["conid"], day_of(ts), -qty)].append((r, ts))
    pairs: dict[str, tuple[str, int]] = {}  # transfer in -> (transfer out, its time)
    for r, ts, qty in legs:
        candidates = outs.get((r["conid"], day_of(ts), qty), []) if qty > ZERO else []
        match = next((c for c in candidates if c[0]["account_id"] != r["account_id"]), None)
        if match is not None:
            candidates.remove(match)
            pairs[r["transaction_id"]] = (match[0]["transaction_id"], match[1])
    paired_outs = {out for out, _ in pairs.values()}
    events = []
    for r, ts, qty in legs:
        fx = r["fx_rate_to_base"] or ONE
        tid = r["transaction_id"]
        if qty < ZERO:
            leg = Leg(ts, tid, r["account_id"], r["conid"], qty, ZERO, fx)
            events.append(TransferEvent((ts, PRIO_TRANSFER_OUT, tiebreak(tid)), leg, (),
                                        tid if tid in paired_outs else None))
            continue
        pair, out_ts = pairs.get(tid, (None, ts))
        key_ts = max(ts, out_ts)
        basis = abs(r["position_amount"] or ZERO)
        basis_base = r["position_amount_in_base"]
        basis_base = abs(basis_base) if basis_base is not None else to_base(basis, fx)
        leg = Leg(key_ts, tid, r["account_id"], r["conid"], qty, ZERO, fx)
        events.append(TransferEvent((key_ts, PRIO_TRANSFER_IN, tiebreak(tid)), leg,
                                    (InLot(None, None, qty, basis, basis_base),), pair))
    return events


# --- corporate actions ----------------------------------------------------------------


def corporate_action_events(table: pa.Table, flags: Flags) -> list[SplitEvent]:
    """Forward and reverse splits become SplitEvents. IB books a split either on the same
    conid (quantity = shares added, e.g. "SPLIT 4 FOR 1") or as a pair: the old conid's
    shares removed and the new conid's added, one description ("GCM(CA38501D2041) SPLIT
    1 FOR 25 (...)" on both rows). Other actions that change holdings are flagged."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in sorted(rows(table), key=lambda r: str(r["transaction_id"])):
        ts = r["date_time"] if r["date_time"] is not None else (
            end_of_day(r["report_date"]) if r["report_date"] is not None else None)
        r["ts"] = ts
        description = r["description"] or ""
        is_split = r["type"] in SPLIT_TYPES or (not r["type"] and SPLIT_RATIO.search(description))
        if not is_split or ts is None:
            level, what = ("ERROR", "changes holdings the ledger cannot interpret") \
                if r["quantity"] else ("INFO", "recorded; no change to holdings")
            flags.add(level, "corporate_actions",
                      f"corporate action {r['type'] or '?'} {what}: {description}",
                      r["account_id"], r["conid"], r["transaction_id"], ts)
            continue
        event = r["action_id"] or f"{ts}|{description.split(' (')[0]}"
        groups[(r["account_id"], event)].append(r)
    return [e for group in groups.values() if (e := _split(group, flags)) is not None]


def _split(group: list[dict], flags: Flags) -> SplitEvent | None:
    first = group[0]
    ratio = SPLIT_RATIO.search(first["description"] or "")
    removed = [r for r in group if (r["quantity"] or ZERO) < ZERO]
    added = [r for r in group if (r["quantity"] or ZERO) > ZERO]
    if ratio is None or not (len(group) == 1 or (len(removed) == 1 and len(added) == 1)):
        for r in group:
            flags.add("ERROR", "corporate_actions", "split the ledger cannot interpret "
                      f"(ratio or rows): {r['description']}", r["account_id"], r["conid"],
                      r["transaction_id"], r["ts"])
        return None
    num, den = Decimal(ratio.group(1)), Decimal(ratio.group(2))
    if len(group) == 1:
        old, new_conid, reported = first, None, first["quantity"] or ZERO
    else:
        old, new_conid, reported = removed[0], added[0]["conid"], added[0]["quantity"]
    tid = old["transaction_id"] or f"CA:{old['account_id']}:{old['conid']}:{old['ts']}"
    return SplitEvent((old["ts"], PRIO_CORPORATE_ACTION, tiebreak(tid)), tid, old["account_id"],
                      old["conid"], num, den, reported, new_conid)


# --- marks ----------------------------------------------------------------------------


def mark_events(table: pa.Table) -> list[MarkEvent]:
    latest: dict[tuple[str, str, int], Decimal] = {}
    for r in rows(table):
        if r["mark"] is not None and r["date"] is not None:
            key = (r["account_id"], r["conid"], r["date"])
            latest[key] = max(r["mark"], latest.get(key, r["mark"]))  # duplicates: one value
    return [MarkEvent((end_of_day(day), PRIO_MARK, f"{account}|{conid}"), account, conid, mark)
            for (account, conid, day), mark in latest.items()]


def in_order(*groups: Iterable[Event]) -> list[Event]:
    return sorted((e for g in groups for e in g), key=lambda e: e.key)
