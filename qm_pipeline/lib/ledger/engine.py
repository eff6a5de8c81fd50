"""The replay driver: normalised events, in order, through the lot books.

`replay(inputs, config)` is the entry point. It normalises the inputs once (trades in
Arrow, the other sources as event objects), replays them in `(ts, priority, tiebreak)`
order, and returns the ledger as Arrow tables. When open positions are supplied and the
event history does not explain them (Flex windows are 365 days, holdings can be older),
it derives opening-balance lots (`opening`) and replays again with them seeded.

The per-execution path is `executions.Executions.replay_trades`, compiled: the book
found by list index (the stream numbers the (account, conid) pairs), 128-bit integer
arithmetic on amounts in QUANTUMs (`quanta`), lots consumed from a queue, realized rows
packed into the output's words as they are made (`outputs.Rows`). Events and opening
balances are Decimal; they are converted where the engine applies them.
"""

from __future__ import annotations

import decimal
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from qm_pipeline.lib.collector import cycle_collection_paused
from qm_pipeline.lib.heap import map_large_blocks
from qm_pipeline.lib.ledger import events as ev
from qm_pipeline.lib.ledger import inputs as src
from qm_pipeline.lib.ledger import positions as pos
from qm_pipeline.lib.ledger import transfer_lots
from qm_pipeline.lib.ledger.config import LedgerConfig, WashMode
from qm_pipeline.lib.ledger.executions import Executions
from qm_pipeline.lib.ledger.instruments import Instrument, collect, unknown
from qm_pipeline.lib.ledger.lots import PICKERS, Book, Lot, Piece, fifo
from qm_pipeline.lib.ledger.money import ledger_context, to_decimal, units
from qm_pipeline.lib.ledger.opening import SeedLot, seed_lots
from qm_pipeline.lib.ledger.outputs import (
    BOOKS,
    POSITIONS,
    RAW_LOTS,
    REASON_CODE,
    TWINS,
    Flags,
    HistorySink,
    RealizedSink,
    TableSink,
    lots_table,
)
from qm_pipeline.lib.ledger.quanta import share_of
from qm_pipeline.lib.ledger.timeline import day_of
from qm_pipeline.lib.ledger.trades import TradeStream, normalise
from qm_pipeline.lib.ledger.wash_sales import WashTracker


@dataclass(frozen=True)
class LedgerResult:
    """The ledger as Arrow tables (schemas in `outputs`; `.to_pylist()` gives row dicts):
    open lots, realized pieces (in the order they became final, base-currency rows first
    within each chunk of `outputs.CHUNK`; `seq` is sale order), position episodes,
    end-of-day position history, and flags."""

    lots: pa.Table
    realized: pa.Table
    positions: pa.Table
    position_history: pa.Table
    flags: pa.Table


@dataclass(frozen=True)
class Prepared:
    """Inputs normalised once, replayed once or twice. `tables` holds the sources other
    than trades (those live on in `trades`)."""

    tables: dict[str, pa.Table]
    trades: TradeStream
    events: list[ev.Event]
    instruments: dict[str, Instrument]
    closed_lots: dict[str, list[tuple[int | None, int]]]  # by closing transaction id
    flags: list[tuple]
    claimed: frozenset[tuple]  # IB's lot rows transfers in took (`transfer_lots`)


def prepare(inputs: src.LedgerInputs, config: LedgerConfig) -> Prepared:
    tables = {name: src.table(getattr(inputs, name), cols)
              for name, cols in src.ALL_INPUTS.items()}
    flags = Flags()
    instruments = collect(tables[n] for n in ("trades", "transfers", "corporate_actions",
                                              "option_events", "open_positions"))
    trades = normalise(tables.pop("trades"), config.excluded_asset_categories, flags)
    events = ev.in_order(
        ev.option_events(trades.eae_rows, tables["option_events"], instruments, flags),
        ev.transfer_events(tables["transfers"]),
        ev.corporate_action_events(tables["corporate_actions"], flags),
        ev.mark_events(tables["marks"]),
    )
    events, claimed = transfer_lots.resolve(events, tables["open_positions"],
                                            tables["closed_lots"], trades, flags)
    closed: dict[str, list[tuple[int | None, int]]] = {}
    for r in src.rows(tables["closed_lots"]):
        if r["transaction_id"] is not None and r["quantity"] is not None:
            closed.setdefault(r["transaction_id"], []).append((r["open_date_time"],
                                                               units(abs(r["quantity"]))))
    for wanted in closed.values():
        wanted.sort(key=lambda w: (-1 if w[0] is None else w[0], w[1]))
    return Prepared(tables, trades, events, instruments, closed, flags.rows, claimed)


def replay(inputs: src.LedgerInputs, config: LedgerConfig | None = None) -> LedgerResult:
    """Replays `inputs` into lots, realized pieces, position episodes and history."""
    config = config or LedgerConfig()
    # The replay's Arrow buffers come from the C allocator: Arrow's default (mimalloc) ends
    # a million-execution replay holding about 120 MB more, and cannot reuse heap the
    # caller freed. The default pool is process-wide, so it is restored at the end (a
    # buffer always goes back to the pool that made it). Pages the caller's pool keeps for
    # reuse are returned first: the replay is the process's high-water mark (the bench's
    # synthesis leaves 26 MB there).
    pool = pa.default_memory_pool()
    pool.release_unused()
    pa.set_memory_pool(pa.system_memory_pool())
    map_large_blocks()  # and freed large blocks of that allocator go back at once
    try:
        with decimal.localcontext(ledger_context()), cycle_collection_paused():
            prepared = prepare(inputs, config)
            # normalising a million executions leaves freed Arrow pages the allocator keeps
            pa.default_memory_pool().release_unused()
            first = run(prepared, config)
            seeds, notes = seed_lots(prepared, first)
            if not (seeds or notes):
                return first
            del first  # the second replay replaces it: do not hold both
            return run(prepared, config, seeds, notes)
    finally:
        pa.set_memory_pool(pool)


def run(prepared: Prepared, config: LedgerConfig, seeds: Iterable[SeedLot] = (),
        notes: Iterable[tuple] = ()) -> LedgerResult:
    """One pass over the prepared events (seeded with opening-balance lots, if any)."""
    engine = _Engine(prepared, config, [*prepared.flags, *notes])
    engine.seed(seeds)
    others = prepared.events
    for event in others[engine.replay_trades(prepared.trades, others, engine.event):]:
        engine.event(event)
    return engine.finish()


class _Engine(Executions):
    def __init__(self, prepared: Prepared, config: LedgerConfig, flag_rows: list[tuple]) -> None:
        self.config = config
        self.instruments = prepared.instruments
        self.books: dict[tuple[str, str], Book] = {}
        self._book_table: pa.Table | None = None
        self.tids = prepared.trades.ids()
        # IB's closed lots by the code of their closing transaction (an execution's, else
        # the one its event gets)
        executions = prepared.trades.codes(set(prepared.closed_lots))
        self.closed_lots = {executions[tid] if tid in executions else self.tids.code(tid): wanted
                            for tid, wanted in prepared.closed_lots.items()}
        self.flags = Flags(flag_rows)
        self.in_transit: dict[str, list[Piece]] = {}
        realized = RealizedSink(self.book_table, self.tids.strings)
        super().__init__(realized, HistorySink(self.book_table),
                         TableSink(POSITIONS, TWINS["positions"]),
                         None if config.wash_sales is WashMode.NONE
                         else WashTracker(config, realized))
        self.handlers: dict[type, Callable[[Any], None]] = {  # by event type
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
            book = self.books[(account_id, conid)] = Book(
                len(self.books), account_id, conid, inst, method, PICKERS.get(method),
                units(inst.multiplier))
        return book

    def book_table(self) -> pa.Table:
        """BOOKS, rebuilt when books were added since it was last built."""
        if self._book_table is None or self._book_table.num_rows != len(self.books):
            sink = TableSink(BOOKS)
            for b in self.books.values():
                sink.append((b.index, b.account_id, b.conid, b.inst.symbol,
                             b.inst.asset_category, b.inst.currency, b.multiplier,
                             b.method.value))
            self._book_table = sink.table()
        return self._book_table

    def flag(self, level: str, source: str, reason: str, book: Book, tid: str | None,
             ts: int | None) -> None:
        self.flags.add(level, source, reason, book.account_id, book.conid, tid, ts)

    # --- other events (Decimal amounts, converted here) ---------------------------------

    def event(self, event: ev.Event) -> None:
        self.at(day_of(event.key[0]))
        self.handlers[type(event)](event)

    def option_event(self, e: ev.OptionEvent) -> None:
        """Expiry closes the option at its cash (0): the premium is realized. Exercise and
        assignment close it at cost and move the premium into the stock leg: a put
        assigned buys stock at strike x 100 - premium received (DOMAIN.md §6)."""
        stock_cash_adjustment = 0
        reason = REASON_CODE[e.action]
        opt = e.option
        if opt is not None:
            book = self.book(opt.account_id, opt.conid)
            pos.touch(book, opt.day, self.history)
            held = book.qty
            qty, net_cash = units(opt.qty), units(opt.net_cash)
            size = abs(qty)
            closable = abs(held) if held and (held > 0) is not (qty > 0) else 0
            moves_premium = e.stock is not None
            if closable:
                closing = min(size, closable)
                cash = net_cash if closing == size else share_of(net_cash, closing, size)
                cost = self.close(book, opt.ts, opt.day, self.tids.code(opt.transaction_id),
                                  closing, cash, units(opt.fx), reason, at_cost=moves_premium)
                if moves_premium:
                    stock_cash_adjustment = cash - cost
            if closable < size:
                self.flag("ERROR", "option_events", f"{e.action}: no open option lots for "
                          f"{to_decimal(size - closable)} of {to_decimal(size)} contracts", book,
                          opt.transaction_id, opt.ts)
        stock = e.stock
        if stock is not None:
            self.trade(self.book(stock.account_id, stock.conid), stock.ts, stock.day,
                       self.tids.code(stock.transaction_id), units(stock.qty),
                       units(stock.net_cash) + stock_cash_adjustment, units(stock.fx), reason)

    def transfer(self, e: ev.TransferEvent) -> None:
        leg = e.leg
        book = self.book(leg.account_id, leg.conid)
        pos.touch(book, leg.day, self.history)
        held = book.qty
        qty = units(leg.qty)
        if qty < 0:
            size = -qty
            if held <= 0 or held < size:
                self.flag("ERROR", "transfers", f"transfer out of {to_decimal(size)} exceeds "
                          f"the {to_decimal(max(held, 0))} held", book, leg.transaction_id,
                          leg.ts)
            pieces = book.take(min(size, max(held, 0)), book.picker or fifo)
            if e.pair is not None:
                self.in_transit[e.pair] = pieces
            pos.closed(book, leg.ts, "TRANSFERRED_OUT", self.positions)
            return
        if held < 0:
            self.flag("ERROR", "transfers", "transfer in onto a short position: skipped", book,
                      leg.transaction_id, leg.ts)
            return
        carried = self.in_transit.pop(e.pair, None) if e.pair is not None else None
        code = self.tids.code(leg.transaction_id)
        if carried:  # internal transfer: the lots keep their basis, dates and wash history
            splits = [len(carried) - 1]  # lots split off them are numbered after them
            for n, piece in enumerate(carried):
                old = piece.lot
                self.seq += 1
                lot = Lot(code, n, old.origin, self.seq, old.open_ts, old.open_day, piece.qty,
                          piece.cost, piece.cost_base, book, old.opening_balance)
                lot.hp_day, lot.wash, lot.wash_base = old.hp_day, piece.wash, piece.wash_base
                lot.replacement = old.replacement
                lot.splits = splits
                book.add(lot)
                pos.opened(book, leg.ts, piece.qty, piece.cost, old.opening_balance)
            return
        self.bring_in(book, e, code)

    def bring_in(self, book: Book, e: ev.TransferEvent, code: int) -> None:
        """The lots of a transfer in from outside, with the open dates and basis IB keeps
        for them (`transfer_lots`, DOMAIN.md §6)."""
        leg = e.leg
        splits = [len(e.lots) - 1]  # the lots of one transfer share its id and numbers
        for n, brought in enumerate(e.lots):
            open_ts = brought.open_ts if brought.open_ts is not None else leg.ts
            seq = self.seq = self.seq + 1
            cost, cost_base = units(brought.cost), units(brought.cost_base)
            open_day = day_of(open_ts)
            lot = Lot(code, n, seq, seq, open_ts, open_day, units(brought.qty), cost, cost_base,
                      book)
            lot.splits = splits
            if brought.holding_ts is not None:
                lot.hp_day = day_of(brought.holding_ts)
            book.add(lot)
            pos.opened(book, leg.ts, lot.qty, cost)

    def split(self, e: ev.SplitEvent) -> None:
        book = self.book(e.account_id, e.conid)
        ts = e.key[0]
        day = day_of(ts)
        pos.touch(book, day, self.history)
        before = book.qty
        reported = units(e.reported)
        book.scale(units(e.num), units(e.den))
        if e.new_conid is None:
            pos.resized(book)
            if book.qty - before != reported:
                self.flag("WARN", "corporate_actions", f"split {e.num} for {e.den}: IB added "
                          f"{e.reported}, the ledger's holding became {to_decimal(book.qty)} "
                          f"from {to_decimal(before)}", book, e.transaction_id, ts)
            return
        target = self.book(e.account_id, e.new_conid)
        pos.touch(target, day, self.history)
        moved = list(book.lots)
        book.lots.clear()
        book.qty = book.cost = book.cost_base = 0
        pos.closed(book, ts, "CORPORATE_ACTION", self.positions)
        for lot in moved:
            target.add(lot)
            pos.opened(target, ts, lot.qty, lot.cost, lot.opening_balance)
        if target.qty != reported:
            self.flag("WARN", "corporate_actions", f"split {e.num} for {e.den} into conid "
                      f"{e.new_conid}: IB reports {e.reported}, the ledger moved "
                      f"{to_decimal(sum(lot.qty for lot in moved))}", book, e.transaction_id,
                      ts)

    def mark(self, e: ev.MarkEvent) -> None:
        book = self.books.get((e.account_id, e.conid))
        if book is not None:
            pos.touch(book, day_of(e.key[0]), self.history, change=False)
            book.mark = units(e.mark)

    def seed(self, seeds: Iterable[SeedLot]) -> None:
        numbers: dict[tuple[int, int], list[int]] = {}  # the lots of one source share an id
        for s in seeds:
            book = self.book(s.account_id, s.conid)
            pos.touch(book, day_of(s.at_ts), self.history)
            code = self.tids.code(f"OB:{s.source_id}")
            splits = numbers.setdefault((book.index, code), [-1])
            splits[0] += 1
            n = splits[0]
            seq = self.seq = self.seq + 1
            open_day = day_of(s.open_ts if s.open_ts is not None else s.at_ts)
            cost, cost_base = units(s.cost), units(s.cost_base)
            lot = Lot(code, n, seq, seq, s.open_ts, open_day, units(s.qty), cost, cost_base, book,
                      opening_balance=True)
            lot.splits = splits
            if s.holding_ts is not None:
                lot.hp_day = day_of(s.holding_ts)
            book.add(lot)
            pos.opened(book, s.open_ts if s.open_ts is not None else s.at_ts, lot.qty, cost,
                       opening_balance=True)

    # --- results ------------------------------------------------------------------------

    def finish(self) -> LedgerResult:
        if self.wash is not None:
            self.wash.finish()
        lots = TableSink(RAW_LOTS, TWINS["lots"])
        for book in self.books.values():
            pos.flush(book, self.history)
            pos.still_open(book, self.positions)
            inst = book.inst
            for lot in book.lots:
                lots.append((lot.id_book, lot.tid, lot.n, book.account_id, book.conid,
                             inst.symbol, inst.asset_category, inst.currency, book.multiplier,
                             lot.open_ts, lot.open_day, lot.hp_day, lot.qty, lot.cost,
                             lot.cost_base, lot.wash, lot.wash_base,
                             lot.cost + lot.wash if lot.wash else lot.cost,
                             lot.cost_base + lot.wash_base if lot.wash_base else lot.cost_base,
                             lot.opening_balance, lot.replacement, book.method.value))
        by_book = [("account_id", "ascending"), ("conid", "ascending")]
        return LedgerResult(
            lots=lots_table(lots.table(), self.book_table(), self.tids.strings).sort_by(
                [*by_book, ("open_date_time", "ascending"), ("lot_id", "ascending")]),
            realized=self.realized.table(),
            positions=self.positions.table([*by_book, ("opened_at", "ascending"),
                                            ("episode_id", "ascending")]),
            position_history=self.history.table(),
            flags=self.flags.table(),
        )
