"""Executions through the lot books: the replay's hot path, compiled.

`engine._Engine` replays every event; the executions (a million in the bench) and the
closings other events cause come here. Amounts are 128-bit integers of QUANTUM
(`quanta`); realized rows are packed into the output's words as they are made
(`outputs.Rows`), with base and wash amounts written only where they are not the local
amount and 0 (`outputs.Sparse`).
"""

from qm_pipeline.lib.ledger.lots import fifo, opened_at
from qm_pipeline.lib.ledger.outputs import REASONS, opening_fields

from qm_pipeline.lib.ledger.lots cimport NO_TIME, Book, Lot, Piece
from qm_pipeline.lib.ledger.positions cimport closed, opened, realized, touch
from qm_pipeline.lib.ledger.quanta cimport LOW, i128, in_base, share
from qm_pipeline.lib.ledger.wash_sales cimport WashTracker


cdef class Executions:
    """The state executions change (`seq`: lots opened, in replay order; `rseq`: realized
    rows written, the row number of the next; `wash`: None without wash sales);
    `engine._Engine` adds the other events."""

    def __cinit__(self):
        self.today = NO_TIME

    @property
    def day(self):
        return None if self.today == NO_TIME else self.today

    cpdef at(self, long long day):
        if day != self.today:
            self.today = day
            if self.wash is not None:
                self.wash.expire(day)

    cpdef trade(self, Book book, long long ts, long long day, long long code, i128 qty,
                i128 net, object fx, int reason):
        """An execution (transaction id `code`) of signed `qty` moving `net` cash (proceeds
        + commission); `fx` QUANTUMs of base currency per unit (None: none to convert)."""
        if day != self.today:
            self.at(day)
        touch(book, day, self.history)
        cdef i128 held = book.qty
        if not held or (held > 0) == (qty > 0):
            self.open(book, ts, day, code, qty, -net, fx)
            return
        cdef i128 size = qty if qty > 0 else -qty
        cdef i128 held_size = held if held > 0 else -held
        cdef i128 closing_cash
        if size <= held_size:
            self.close(book, ts, day, code, size, net, fx, reason)
        else:  # closes the position and opens the other side (IB's "C;O")
            closing_cash = share(net, held_size, size)
            self.close(book, ts, day, code, held_size, closing_cash, fx, reason)
            self.open(book, ts, day, code, qty + held, closing_cash - net, fx)

    cdef open(self, Book book, long long ts, long long day, long long code, i128 qty,
              i128 cost, object fx):
        self.seq += 1
        cdef Lot lot = Lot(opening_fields(book.index, code, ts, day, False), 0, self.seq,
                           self.seq, ts, day, qty, cost,
                           cost if fx is None else in_base(cost, fx), book)
        book.add(lot)
        opened(book, ts, qty, cost)
        if self.wash is not None and qty > 0:
            self.wash.acquired(book, lot, day)

    cpdef i128 close(self, Book book, long long ts, long long day, long long code, i128 size,
                     i128 net, object fx, int reason, bint at_cost=False) except? -1:
        """Closes `size` units for `net` cash, writing a realized row per lot piece; returns
        the cost of the lots closed. `at_cost`: proceeds equal cost (an option whose premium
        moves to the stock)."""
        cdef list pieces = book.take(size, book.picker) if book.picker is not None \
            else self.take_specific(book, size, code, ts)
        cdef Py_ssize_t i, last = len(pieces) - 1
        cdef i128 allocated = 0, closed_cost = 0, total = 0, total_base = 0
        cdef i128 q, cost, cost_base, wash, wash_base, proceeds, proceeds_base, pnl, pnl_base
        cdef i128 rate = 0 if fx is None else fx
        cdef long long row
        cdef Piece piece
        cdef Lot lot
        sink = self.realized
        add, pack = sink.rows.add, sink.rows.pack
        base, washes = sink.base, sink.wash
        for i in range(last + 1):
            piece = pieces[i]
            lot, q, cost, cost_base = piece.lot, piece.qty, piece.cost, piece.cost_base
            wash, wash_base = piece.wash, piece.wash_base
            if at_cost:
                proceeds = cost
            elif i == last:
                proceeds = net - allocated
            else:
                proceeds = share(net, q if q > 0 else -q, size)
                allocated += proceeds
            closed_cost += cost
            proceeds_base = proceeds if fx is None else in_base(proceeds, rate)
            pnl = proceeds - cost
            pnl_base = proceeds_base - cost_base
            total += pnl
            total_base += pnl_base
            row = self.rseq
            self.rseq = row + 1
            add(pack(book.index, lot.n, code, ts, lot.hp_day, reason, _high(q), _high(cost),
                     _high(proceeds), _low(q), _low(cost), _low(proceeds)))
            add(lot.opening)
            if cost_base != cost or proceeds_base != proceeds:
                base.add(base.pack(row, _high(cost_base), _high(proceeds_base), _low(cost_base),
                                   _low(proceeds_base)))
            if wash or wash_base:
                washes.add(washes.pack(row, _high(wash), _high(wash_base), _low(wash),
                                       _low(wash_base)))
            # a loss on a long lot (tax basis: cost plus wash adjustments) may be a wash sale
            if self.wash is not None and q > 0 and pnl < wash:
                self.wash.loss(book, lot, day, q, wash - pnl,
                               wash_base - pnl_base if wash_base > pnl_base else 0, row)
            else:
                sink.emit(row)
        realized(book, total, total_base)
        closed(book, ts, REASONS[reason], self.positions)
        return closed_cost

    cdef list take_specific(self, Book book, i128 size, long long code, long long ts):
        """Lots for a SPECIFIC account: those IB's CLOSED_LOT rows name for this trade."""
        wanted = self.closed_lots.get(code)
        missed = [wanted is None]
        cdef list pieces = []
        cdef i128 k
        for open_ts, qty in wanted or ():
            if not size:
                break
            k = qty if qty < size else size
            pieces += book.take(k, opened_at(open_ts, missed))
            size -= k
        if size:
            missed[0] = True
            pieces += book.take(size, fifo)
        if missed[0]:
            self.flag("WARN", "closed_lots", "SPECIFIC: IB's closed lots for this trade do not "
                      "match the open lots; FIFO used for the rest", book,
                      self.tids.string(code), ts)
        return pieces


cdef inline long long _high(i128 amount) noexcept:
    """The amount's high word (`outputs.Rows`)."""
    return <long long>(amount >> 64)


cdef inline unsigned long long _low(i128 amount) noexcept:
    return <unsigned long long>(amount & LOW)
