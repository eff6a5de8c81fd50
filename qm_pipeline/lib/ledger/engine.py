"""The replay driver: normalised events, in order, through the lot books.

`replay(inputs, config)` is the entry point. It normalises the inputs once (trades in
Arrow, the other sources as event objects), replays them in `(ts, priority, tiebreak)`
order, and returns the ledger as Arrow tables. When open positions are supplied and the
event history does not explain them (Flex windows are 365 days, holdings can be older),
it derives opening-balance lots (`opening`) and replays again with them seeded.

The per-execution path is `_Engine.trade`: one dict lookup for the book, Decimal
arithmetic on precomputed values, lots consumed from a deque, rows appended as tuples.
"""

from __future__ import annotations

import decimal
import gc
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

import pyarrow as pa

from qm_pipeline.lib.ledger import events as ev
from qm_pipeline.lib.ledger import inputs as src
from qm_pipeline.lib.ledger import positions as pos
from qm_pipeline.lib.ledger.config import LedgerConfig, WashMode
from qm_pipeline.lib.ledger.instruments import Instrument, collect, unknown
from qm_pipeline.lib.ledger.lots import PICKERS, Book, Lot, Piece, fifo, opened_at
from qm_pipeline.lib.ledger.money import ZERO, ledger_context, part, to_base
from qm_pipeline.lib.ledger.opening import SeedLot, seed_lots
from qm_pipeline.lib.ledger.outputs import (
    BOOKS,
    LOTS,
    POSITIONS,
    RAW_HISTORY,
    RAW_REALIZED,
    TWINS,
    Flags,
    TableSink,
    history_table,
    realized_table,
)
from qm_pipeline.lib.ledger.timeline import (
    PRIO_TRADE,
    US_PER_DAY,
    day_of,
    first_long_term_day,
    tiebreak,
)
from qm_pipeline.lib.ledger.trades import TradeStream, normalise
from qm_pipeline.lib.ledger.wash_sales import WashTracker


@dataclass(frozen=True)
class LedgerResult:
    """The ledger as Arrow tables (schemas in `outputs`; `.to_pylist()` gives row dicts):
    open lots, realized pieces (in the order they became final; `seq` is sale order),
    position episodes, end-of-day position history, and flags."""

    lots: pa.Table
    realized: pa.Table
    positions: pa.Table
    position_history: pa.Table
    flags: pa.Table


@dataclass(frozen=True)
class Prepared:
    """Inputs normalised once, replayed once or twice."""

    tables: dict[str, pa.Table]
    trades: TradeStream
    events: list[ev.Event]
    instruments: dict[str, Instrument]
    closed_lots: dict[str, list[tuple[int | None, Decimal]]]
    flags: list[tuple]


SOURCES = {
    "trades": src.TRADES,
    "closed_lots": src.CLOSED_LOTS,
    "transfers": src.TRANSFERS,
    "corporate_actions": src.CORPORATE_ACTIONS,
    "option_events": src.OPTION_EVENTS,
    "open_positions": src.OPEN_POSITIONS,
    "marks": src.MARKS,
}


def prepare(inputs: src.LedgerInputs, config: LedgerConfig) -> Prepared:
    tables = {name: src.table(getattr(inputs, name), cols) for name, cols in SOURCES.items()}
    flags = Flags()
    instruments = collect(tables[n] for n in ("trades", "transfers", "corporate_actions",
                                              "option_events", "open_positions"))
    trades = normalise(tables["trades"], config.excluded_asset_categories, flags)
    events = ev.in_order(
        ev.option_events(trades.eae_rows, tables["option_events"], instruments, flags),
        ev.transfer_events(tables["transfers"], flags),
        ev.corporate_action_events(tables["corporate_actions"], flags),
        ev.mark_events(tables["marks"]),
    )
    closed: dict[str, list[tuple[int | None, Decimal]]] = {}
    for r in src.rows(tables["closed_lots"]):
        if r["transaction_id"] is not None and r["quantity"] is not None:
            closed.setdefault(r["transaction_id"], []).append((r["open_date_time"],
                                                               abs(r["quantity"])))
    for wanted in closed.values():
        wanted.sort(key=lambda w: (-1 if w[0] is None else w[0], w[1]))
    return Prepared(tables, trades, events, instruments, closed, flags.rows)


def replay(inputs: src.LedgerInputs, config: LedgerConfig | None = None) -> LedgerResult:
    """Replays `inputs` into lots, realized pieces, position episodes and history."""
    config = config or LedgerConfig()
    collecting = gc.isenabled()
    # A replay allocates millions of short-lived objects; cyclic garbage collection passes
    # over them cost a sixth of the run and have nothing to free until the end.
    gc.disable()
    try:
        with decimal.localcontext(ledger_context()):
            prepared = prepare(inputs, config)
            # normalising a million executions leaves freed Arrow pages the allocator keeps
            pa.default_memory_pool().release_unused()
            result = run(prepared, config)
            seeds, notes = seed_lots(prepared, result)
            if seeds or notes:
                result = run(prepared, config, seeds, notes)
    finally:
        if collecting:
            gc.enable()
    return result


def run(prepared: Prepared, config: LedgerConfig, seeds: Iterable[SeedLot] = (),
        notes: Iterable[tuple] = ()) -> LedgerResult:
    """One pass over the prepared events (seeded with opening-balance lots, if any)."""
    engine = _Engine(prepared, config, [*prepared.flags, *notes])
    engine.seed(seeds)
    others = prepared.events
    n_others = len(others)
    i = 0
    next_key = others[0].key if others else None
    trade = engine.trade
    for ts_, tid_, acc_, con_, qty_, net_, fx_ in prepared.trades.batches():
        for ts, tid, account, conid, qty, net, fx in zip(ts_, tid_, acc_, con_, qty_, net_, fx_,
                                                         strict=True):
            # other events go first when their key is smaller (the tiebreak only matters,
            # and is only built, on a timestamp tie)
            while next_key is not None and (next_key[0] < ts or (
                    next_key[0] == ts and next_key < (ts, PRIO_TRADE, tiebreak(tid)))):
                engine.event(others[i])
                i += 1
                next_key = others[i].key if i < n_others else None
            trade(ts, ts // US_PER_DAY, tid, account, conid, qty, net, fx, "TRADE")
    for event in others[i:]:
        engine.event(event)
    return engine.finish()


class _Engine:
    def __init__(self, prepared: Prepared, config: LedgerConfig, flag_rows: list[tuple]) -> None:
        self.config = config
        self.instruments = prepared.instruments
        self.closed_lots = prepared.closed_lots
        self.books: dict[tuple[str, str], Book] = {}
        self.realized = TableSink(RAW_REALIZED, TWINS["realized"])
        self.positions = TableSink(POSITIONS, TWINS["positions"])
        self.history = TableSink(RAW_HISTORY, TWINS["position_history"])
        self.flags = Flags(flag_rows)
        self.day: int | None = None
        self.seq = 0  # lots opened, in replay order
        self.rseq = 0  # realized rows, in replay order
        self.split_ids: dict[str, int] = {}
        self.in_transit: dict[str, list[Piece]] = {}
        self.wash = None if config.wash_sales is WashMode.NONE else WashTracker(
            config, self.realized.append, self.new_lot_id)
        self.handlers = {
            ev.OptionEvent: self.option_event,
            ev.TransferEvent: self.transfer,
            ev.SplitEvent: self.split,
            ev.MarkEvent: self.mark,
        }

    # --- books and ids ------------------------------------------------------------------

    def book(self, account_id: str, conid: str) -> Book:
        book = self.books.get((account_id, conid))
        if book is None:
            inst = self.instruments.get(conid) or unknown(conid)
            method = self.config.method(account_id)
            book = self.books[(account_id, conid)] = Book(len(self.books), account_id, conid,
                                                         inst, method, PICKERS.get(method))
        return book

    def new_lot_id(self, lot: Lot) -> str:
        """Id of a lot split off `lot`: same opening, next sequence number."""
        base = lot.lot_id.rpartition("|")[0]
        n = self.split_ids.get(base, 0) + 1
        self.split_ids[base] = n
        return f"{base}|{n}"

    def at(self, day: int) -> None:
        if day != self.day:
            self.day = day
            if self.wash is not None:
                self.wash.expire(day)

    def flag(self, level: str, source: str, reason: str, book: Book, tid: str | None,
             ts: int | None) -> None:
        self.flags.add(level, source, reason, book.account_id, book.conid, tid, ts)

    # --- executions ---------------------------------------------------------------------

    def trade(self, ts: int, day: int, tid: str, account_id: str, conid: str, qty: Decimal,
              net: Decimal, fx: Decimal | None, reason: str) -> None:
        """An execution of signed `qty` moving `net` cash (proceeds + commission)."""
        if day != self.day:
            self.at(day)
        book = self.books.get((account_id, conid)) or self.book(account_id, conid)
        if book.day == day:  # `pos.touch` on a day already touched, inlined: the hot path
            book.dirty = True
        else:
            pos.touch(book, day, self.history)
        held = book.qty
        if not held or (held > ZERO) is (qty > ZERO):
            self.open(book, ts, day, tid, qty, -net, fx)
            return
        size = qty if qty > ZERO else -qty
        held_size = held if held > ZERO else -held
        if size <= held_size:
            self.close(book, ts, day, tid, size, net, fx, reason)
        else:  # closes the position and opens the other side (IB's "C;O")
            closing_cash = part(net, held_size, size)
            self.close(book, ts, day, tid, held_size, closing_cash, fx, reason)
            self.open(book, ts, day, tid, qty + held, closing_cash - net, fx)

    def open(self, book: Book, ts: int, day: int, tid: str, qty: Decimal, cost: Decimal,
             fx: Decimal | None) -> None:
        self.seq += 1
        origin = f"{book.account_id}|{book.conid}|{tid}"
        lot = Lot(origin + "|0", origin, self.seq, ts, day, qty, cost, to_base(cost, fx))
        book.add(lot)
        pos.opened(book, ts, qty, cost)
        if self.wash is not None and qty > ZERO:
            self.wash.acquired(book, lot, day)

    def close(self, book: Book, ts: int, day: int, tid: str, size: Decimal, net: Decimal,
              fx: Decimal | None, reason: str, at_cost: bool = False) -> Decimal:
        """Closes `size` units for `net` cash, writing a realized row per lot piece; returns
        the cost of the lots closed. `at_cost`: proceeds equal cost (an option whose premium
        moves to the stock)."""
        pieces = book.take(size, book.picker) if book.picker is not None \
            else self.take_specific(book, size, tid, ts)
        last = len(pieces) - 1
        allocated = closed_cost = realized = realized_base = ZERO
        base_is_local = True  # every piece's base P&L is its local one (see `money`)
        wash_sales = self.wash
        for i, (lot, q, cost, cost_base, wash, wash_base) in enumerate(pieces):
            if at_cost:
                proceeds = cost
            elif i == last:
                proceeds = net - allocated
            else:
                proceeds = part(net, q if q > ZERO else -q, size)
                allocated += proceeds
            closed_cost += cost
            proceeds_base = to_base(proceeds, fx)
            pnl = proceeds - cost
            pnl_base = pnl if proceeds_base is proceeds and cost_base is cost \
                else proceeds_base - cost_base
            realized += pnl
            realized_base += pnl_base
            base_is_local = base_is_local and pnl_base is pnl
            self.rseq += 1
            row = (self.rseq, book.index, lot.lot_id, tid, lot.open_ts, lot.open_day, ts,
                   lot.hp_day, q, cost, cost_base, proceeds, proceeds_base, wash, wash_base, ZERO,
                   ZERO, "LONG" if day >= first_long_term_day(lot.hp_day) else "SHORT", reason,
                   lot.opening_balance)
            # a loss on a long lot (tax basis: cost plus wash adjustments) may be a wash sale
            if wash_sales is not None and q > ZERO and pnl < wash:
                wash_sales.loss(book, lot, day, q, wash - pnl,
                                max(wash_base - pnl_base, ZERO), row)
            else:
                self.realized.append(row)
        pos.realized(book, realized, realized if base_is_local else realized_base)
        pos.closed(book, ts, reason, self.positions)
        return closed_cost

    def take_specific(self, book: Book, size: Decimal, tid: str, ts: int) -> list[Piece]:
        """Lots for a SPECIFIC account: those IB's CLOSED_LOT rows name for this trade."""
        wanted = self.closed_lots.get(tid)
        missed = [wanted is None]
        pieces: list[Piece] = []
        for open_ts, qty in wanted or ():
            if not size:
                break
            k = min(qty, size)
            pieces += book.take(k, opened_at(open_ts, missed))
            size -= k
        if size:
            missed[0] = True
            pieces += book.take(size, fifo)
        if missed[0]:
            self.flag("WARN", "closed_lots", "SPECIFIC: IB's closed lots for this trade do not "
                      "match the open lots; FIFO used for the rest", book, tid, ts)
        return pieces

    # --- other events -------------------------------------------------------------------

    def event(self, event: ev.Event) -> None:
        self.at(day_of(event.key[0]))
        self.handlers[type(event)](event)

    def option_event(self, e: ev.OptionEvent) -> None:
        """Expiry closes the option at its cash (0): the premium is realized. Exercise and
        assignment close it at cost and move the premium into the stock leg: a put
        assigned buys stock at strike x 100 - premium received (DOMAIN.md §6)."""
        stock_cash_adjustment = ZERO
        opt = e.option
        if opt is not None:
            book = self.book(opt.account_id, opt.conid)
            pos.touch(book, opt.day, self.history)
            held = book.qty
            size = abs(opt.qty)
            closable = abs(held) if held and (held > ZERO) is not (opt.qty > ZERO) else ZERO
            moves_premium = e.stock is not None
            if closable:
                closing = min(size, closable)
                cash = opt.net_cash if closing == size else part(opt.net_cash, closing, size)
                cost = self.close(book, opt.ts, opt.day, opt.transaction_id, closing,
                                  cash, opt.fx, e.action, at_cost=moves_premium)
                if moves_premium:
                    stock_cash_adjustment = cash - cost
            if closable < size:
                self.flag("ERROR", "option_events", f"{e.action}: no open option lots for "
                          f"{size - closable} of {size} contracts", book, opt.transaction_id,
                          opt.ts)
        stock = e.stock
        if stock is not None:
            self.trade(stock.ts, stock.day, stock.transaction_id, stock.account_id,
                       stock.conid, stock.qty, stock.net_cash + stock_cash_adjustment,
                       stock.fx, e.action)

    def transfer(self, e: ev.TransferEvent) -> None:
        leg = e.leg
        book = self.book(leg.account_id, leg.conid)
        pos.touch(book, leg.day, self.history)
        held = book.qty
        if leg.qty < ZERO:
            size = -leg.qty
            if held <= ZERO or held < size:
                self.flag("ERROR", "transfers", f"transfer out of {size} exceeds the "
                          f"{max(held, ZERO)} held", book, leg.transaction_id, leg.ts)
            pieces = book.take(min(size, max(held, ZERO)), book.picker or fifo)
            if e.pair is not None:
                self.in_transit[e.pair] = pieces
            pos.closed(book, leg.ts, "TRANSFERRED_OUT", self.positions)
            return
        if held < ZERO:
            self.flag("ERROR", "transfers", "transfer in onto a short position: skipped", book,
                      leg.transaction_id, leg.ts)
            return
        carried = self.in_transit.pop(e.pair, None) if e.pair is not None else None
        base = f"{book.account_id}|{book.conid}|{leg.transaction_id}"
        if carried:  # internal transfer: the lots keep their basis, dates and wash history
            for n, (old, q, cost, cost_base, wash, wash_base) in enumerate(carried):
                self.seq += 1
                lot = Lot(f"{base}|{n}", old.origin, self.seq, old.open_ts, old.open_day, q,
                          cost, cost_base, old.opening_balance)
                lot.hp_day, lot.wash, lot.wash_base = old.hp_day, wash, wash_base
                lot.replacement = old.replacement
                book.add(lot)
                pos.opened(book, leg.ts, q, cost, old.opening_balance)
            self.split_ids[base] = len(carried) - 1
            return
        open_ts = e.open_ts if e.open_ts is not None else leg.ts
        self.seq += 1
        lot = Lot(f"{base}|0", base, self.seq, open_ts, day_of(open_ts), leg.qty,
                  -leg.net_cash, e.basis_base)
        if e.holding_ts is not None:
            lot.hp_day = day_of(e.holding_ts)
        book.add(lot)
        pos.opened(book, leg.ts, leg.qty, lot.cost)

    def split(self, e: ev.SplitEvent) -> None:
        book = self.book(e.account_id, e.conid)
        ts = e.key[0]
        day = day_of(ts)
        pos.touch(book, day, self.history)
        before = book.qty
        book.scale(e.num, e.den)
        if e.new_conid is None:
            pos.resized(book)
            if book.qty - before != e.reported:
                self.flag("WARN", "corporate_actions", f"split {e.num} for {e.den}: IB added "
                          f"{e.reported}, the ledger's holding became {book.qty} from {before}",
                          book, e.transaction_id, ts)
            return
        target = self.book(e.account_id, e.new_conid)
        pos.touch(target, day, self.history)
        moved = list(book.lots)
        book.lots.clear()
        book.qty = book.cost = book.cost_base = ZERO
        pos.closed(book, ts, "CORPORATE_ACTION", self.positions)
        for lot in moved:
            target.add(lot)
            pos.opened(target, ts, lot.qty, lot.cost, lot.opening_balance)
        if target.qty != e.reported:
            self.flag("WARN", "corporate_actions", f"split {e.num} for {e.den} into conid "
                      f"{e.new_conid}: IB reports {e.reported}, the ledger moved "
                      f"{sum((lot.qty for lot in moved), ZERO)}", book, e.transaction_id, ts)

    def mark(self, e: ev.MarkEvent) -> None:
        book = self.books.get((e.account_id, e.conid))
        if book is not None:
            pos.touch(book, day_of(e.key[0]), self.history, change=False)
            book.mark = e.mark

    def seed(self, seeds: Iterable[SeedLot]) -> None:
        for s in seeds:
            book = self.book(s.account_id, s.conid)
            pos.touch(book, day_of(s.at_ts), self.history)
            base = f"{s.account_id}|{s.conid}|OB:{s.source_id}"
            self.seq += 1
            self.split_ids[base] = self.split_ids.get(base, -1) + 1
            known = s.open_ts if s.open_ts is not None else s.at_ts
            lot = Lot(f"{base}|{self.split_ids[base]}", base, self.seq, s.open_ts,
                      day_of(known), s.qty, s.cost, s.cost_base, opening_balance=True)
            if s.holding_ts is not None:
                lot.hp_day = day_of(s.holding_ts)
            book.add(lot)
            pos.opened(book, s.open_ts if s.open_ts is not None else s.at_ts, s.qty, s.cost,
                       opening_balance=True)

    # --- results ------------------------------------------------------------------------

    def finish(self) -> LedgerResult:
        if self.wash is not None:
            self.wash.finish()
        lots = TableSink(LOTS, TWINS["lots"])
        for book in self.books.values():
            pos.flush(book, self.history)
            pos.still_open(book, self.positions)
            inst = book.inst
            for lot in book.lots:
                lots.append((lot.lot_id, book.account_id, book.conid, inst.symbol,
                             inst.asset_category, inst.currency, inst.multiplier, lot.open_ts,
                             lot.open_day, lot.hp_day, lot.qty, lot.cost, lot.cost_base,
                             lot.wash, lot.wash_base,
                             lot.cost + lot.wash if lot.wash else lot.cost,
                             lot.cost_base + lot.wash_base if lot.wash_base else lot.cost_base,
                             lot.opening_balance,
                             lot.replacement, book.method.value))
        sink = TableSink(BOOKS)
        for b in self.books.values():
            sink.append((b.index, b.account_id, b.conid, b.inst.symbol, b.inst.asset_category,
                         b.inst.currency, b.inst.multiplier, b.method.value))
        books = sink.table()
        by_book = [("account_id", "ascending"), ("conid", "ascending")]
        return LedgerResult(
            lots=lots.table([*by_book, ("open_date_time", "ascending"), ("lot_id", "ascending")]),
            realized=realized_table(self.realized.table(), books),
            positions=self.positions.table([*by_book, ("opened_at", "ascending"),
                                            ("episode_id", "ascending")]),
            position_history=history_table(self.history.table(), books),
            flags=self.flags.table(),
        )

