"""Position episodes and end-of-day position history of a lot book.

An episode runs from the moment a (account, conid) position leaves zero to the moment
it returns to zero; a trade that crosses zero ends one episode and starts the next on
the other side. Its exit reason is what closed it (SOLD, COVERED, EXPIRED, ASSIGNED,
EXERCISED, TRANSFERRED_OUT, CORPORATE_ACTION); status CLOSED_EXTERNALLY is left to
reconciliation (DOMAIN.md §4).

History has one row per position and date on which the position changed or a mark
exists: the state at the end of that day. The engine calls `touch` before it changes a
book; the first touch on a new day writes the previous day's row.
"""

from __future__ import annotations

from qm_pipeline.lib.ledger.lots import Book
from qm_pipeline.lib.ledger.money import SCALE, div
from qm_pipeline.lib.ledger.outputs import LOW, HistorySink, TableSink

EXIT_BY_TRADE = {True: "SOLD", False: "COVERED"}


class Episode:
    __slots__ = ("episode_id", "long", "max_abs", "opened_abs", "opened_cost", "opened_ts",
                 "opening_balance", "realized", "realized_base")

    def __init__(self, episode_id: str, opened_ts: int | None, long: bool,
                 opening_balance: bool) -> None:
        self.episode_id = episode_id
        self.opened_ts = opened_ts
        self.long = long
        self.opening_balance = opening_balance
        self.max_abs = 0
        self.opened_abs = 0
        self.opened_cost = 0
        self.realized = 0
        self.realized_base = 0


def opened(book: Book, ts: int | None, qty: int, cost: int,
           opening_balance: bool = False) -> None:
    """Quantity `qty` at `cost` was added to `book` (after `book.add`)."""
    ep = book.episode
    if ep is None:
        book.episodes += 1
        ep = book.episode = Episode(f"{book.account_id}|{book.conid}|{book.episodes}", ts,
                                    qty > 0, opening_balance)
    ep.opened_abs += qty if qty > 0 else -qty
    ep.opened_cost += cost
    size = book.qty if book.qty > 0 else -book.qty
    if size > ep.max_abs:
        ep.max_abs = size


def realized(book: Book, pnl: int, pnl_base: int) -> None:
    ep = book.episode
    assert ep is not None  # a closing had lots to close, so an episode
    if pnl_base is pnl and ep.realized_base is ep.realized:
        ep.realized += pnl
        ep.realized_base = ep.realized
    else:
        ep.realized += pnl
        ep.realized_base += pnl_base


def resized(book: Book) -> None:
    """The book's quantity changed without trading (a split)."""
    ep = book.episode
    size = book.qty if book.qty > 0 else -book.qty
    if ep is not None and size > ep.max_abs:
        ep.max_abs = size


def closed(book: Book, ts: int, reason: str, sink: TableSink) -> None:
    """Ends the episode if `book` is flat after a closing by `reason` ("TRADE" for trades)."""
    ep = book.episode
    if book.qty or ep is None:
        return
    exit_reason = EXIT_BY_TRADE[ep.long] if reason == "TRADE" else reason
    sink.append(_row(book, ep, "EXPIRED" if reason == "EXPIRED" else "CLOSED", ts, exit_reason))
    book.episode = None


def still_open(book: Book, sink: TableSink) -> None:
    if book.episode is not None:
        sink.append(_row(book, book.episode, "OPEN", None, None))


def _row(book: Book, ep: Episode, status: str, closed_ts: int | None,
         exit_reason: str | None) -> tuple:
    inst = book.inst
    units = ep.opened_abs * book.multiplier  # in QUANTUMs squared
    average = abs(div(ep.opened_cost * SCALE * SCALE, units)) if units else None
    return (ep.episode_id, book.account_id, book.conid, inst.symbol, inst.asset_category,
            inst.currency, book.multiplier, status, "LONG" if ep.long else "SHORT", book.qty,
            ep.max_abs, book.cost, book.cost_base, average, ep.opened_ts, closed_ts,
            exit_reason, ep.realized, ep.realized_base, ep.opening_balance)


def touch(book: Book, day: int, sink: HistorySink, change: bool = True) -> None:
    """Call before `book` changes (or gets a mark, change=False) on `day`."""
    if book.day != day:
        if book.day is not None:
            _history_row(book, sink)
        book.day = day
        book.dirty = False
        book.mark = None
    if change:
        book.dirty = True


def flush(book: Book, sink: HistorySink) -> None:
    if book.day is not None:
        _history_row(book, sink)


def _history_row(book: Book, sink: HistorySink) -> None:
    mark = book.mark
    qty = book.qty
    if not (book.dirty or (mark is not None and qty)):
        return
    cost = book.cost
    cost_base = book.cost_base
    if cost_base is not cost:
        sink.base.add(sink.base.pack(sink.next_row(), cost_base >> 64, cost_base & LOW))
    if mark is not None:
        value = div(qty * mark * book.multiplier, SCALE * SCALE)
        unrealized = value - cost
        sink.marks.add(sink.marks.pack(sink.next_row(), mark >> 64, value >> 64,
                                       unrealized >> 64, mark & LOW, value & LOW,
                                       unrealized & LOW))
    rows = sink.rows
    rows.add(rows.pack(book.index, book.day, book.episodes, qty >> 64, cost >> 64, qty & LOW,
                       cost & LOW))
