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

from qm_pipeline.lib.ledger.money import SCALE, div

from qm_pipeline.lib.ledger.lots cimport NO_TIME, Book
from qm_pipeline.lib.ledger.quanta cimport i128
from qm_pipeline.lib.ledger.words cimport append, high, low, sparse1


cdef struct History:  # a row of `outputs.HistorySink.rows`
    long long book, date, episode
    long long high[2]  # quantity, cost basis
    unsigned long long low[2]

EXIT_BY_TRADE = {True: "SOLD", False: "COVERED"}


cdef class Episode:
    def __init__(self, str episode_id, object opened_ts, bint long, bint opening_balance):
        self.episode_id = episode_id
        self.opened_ts = opened_ts
        self.long = long
        self.opening_balance = opening_balance
        self.max_abs = 0
        self.opened_abs = 0
        self.opened_cost = 0
        self.realized = 0
        self.realized_base = 0


cpdef opened(Book book, object ts, i128 qty, i128 cost, bint opening_balance=False):
    """Quantity `qty` at `cost` was added to `book` (after `book.add`)."""
    cdef Episode ep = book.episode
    if ep is None:
        book.episodes += 1
        ep = book.episode = Episode(f"{book.account_id}|{book.conid}|{book.episodes}", ts,
                                    qty > 0, opening_balance)
    ep.opened_abs += qty if qty > 0 else -qty
    ep.opened_cost += cost
    cdef i128 size = book.qty if book.qty > 0 else -book.qty
    if size > ep.max_abs:
        ep.max_abs = size


cpdef realized(Book book, i128 pnl, i128 pnl_base):
    cdef Episode ep = book.episode
    assert ep is not None  # a closing had lots to close, so an episode
    ep.realized += pnl
    ep.realized_base += pnl_base


def resized(Book book):
    """The book's quantity changed without trading (a split)."""
    cdef Episode ep = book.episode
    cdef i128 size = book.qty if book.qty > 0 else -book.qty
    if ep is not None and size > ep.max_abs:
        ep.max_abs = size


cpdef closed(Book book, long long ts, str reason, object sink):
    """Ends the episode if `book` is flat after a closing by `reason` ("TRADE" for trades)."""
    cdef Episode ep = book.episode
    if book.qty or ep is None:
        return
    exit_reason = EXIT_BY_TRADE[ep.long] if reason == "TRADE" else reason
    sink.append(_row(book, ep, "EXPIRED" if reason == "EXPIRED" else "CLOSED", ts, exit_reason))
    book.episode = None


def still_open(Book book, sink):
    if book.episode is not None:
        sink.append(_row(book, book.episode, "OPEN", None, None))


cdef tuple _row(Book book, Episode ep, str status, object closed_ts, object exit_reason):
    inst = book.inst
    units = <object>ep.opened_abs * <object>book.multiplier  # in QUANTUMs squared
    average = abs(div(<object>ep.opened_cost * SCALE * SCALE, units)) if units else None
    return (ep.episode_id, book.account_id, book.conid, inst.symbol, inst.asset_category,
            inst.currency, book.multiplier, status, "LONG" if ep.long else "SHORT", book.qty,
            ep.max_abs, book.cost, book.cost_base, average, ep.opened_ts, closed_ts,
            exit_reason, ep.realized, ep.realized_base, ep.opening_balance)


cpdef touch(Book book, long long day, object sink, bint change=True):
    """Call before `book` changes (or gets a mark, change=False) on `day`."""
    if book.today != day:
        if book.today != NO_TIME:
            _history_row(book, sink)
        book.today = day
        book.dirty = False
        book.has_mark = False
    if change:
        book.dirty = True


def flush(Book book, sink):
    if book.today != NO_TIME:
        _history_row(book, sink)


cdef _history_row(Book book, sink):
    cdef i128 qty = book.qty, cost = book.cost, cost_base = book.cost_base
    if not (book.dirty or (book.has_mark and qty)):
        return
    if cost_base != cost:
        sparse1(sink.base.data, sink.next_row(), cost_base)
    if book.has_mark:
        mark = book.mark
        value = div(<object>qty * mark * <object>book.multiplier, SCALE * SCALE)
        sink.marks.add(sink.next_row(), mark, value, value - <object>cost)
    cdef History w
    w.book, w.date, w.episode = book.index, book.today, book.episodes
    w.high[0], w.high[1], w.low[0], w.low[1] = high(qty), high(cost), low(qty), low(cost)
    append(sink.rows.data, &w, sizeof(w))
