"""Executions through the lot books: the replay's hot path, compiled.

`engine._Engine` replays the events; the executions (a million in the bench) go through
`replay_trades` here, and so do the closings and openings the other events cause
(`trade`, `close`). Amounts are 128-bit integers of QUANTUM (`quanta`), read from the
stream's decimal words (`trades.Batch`); realized rows are packed into the output's words
as they are made (`outputs.Rows`), with base and wash amounts written only where they
are not the local amount and 0 (`outputs.Sparse`).
"""

from qm_pipeline.lib.ledger.lots import fifo, opened_at
from qm_pipeline.lib.ledger.outputs import REASON_CODE, REASONS
from qm_pipeline.lib.ledger.timeline import PRIO_TRADE, tiebreak

from qm_pipeline.lib.ledger.lots cimport NO_TIME, Book, Lot, Piece
from qm_pipeline.lib.ledger.positions cimport closed, opened, realized, touch
from qm_pipeline.lib.ledger.quanta cimport i128, in_base, mul_overflow, share
from qm_pipeline.lib.ledger.wash_sales cimport WashTracker
from qm_pipeline.lib.ledger.words cimport append, high, low, push, sparse2

cdef int TRADE = REASON_CODE["TRADE"]
cdef long long NEVER = (1 << 63) - 1  # later than any timestamp


cdef struct Realized:  # a row of `outputs.RealizedSink.rows`
    long long book, lot_n, tid, close_ts, hp_day, reason
    long long high[3]  # quantity, cost, proceeds
    unsigned long long low[3]
    long long lot_book, lot_tid, open_ts, open_day, opening_balance  # the lot's opening


cdef struct Amounts:  # a `inputs.UnitWords` column of a batch
    const unsigned long long *low
    const long long *high
    const unsigned char *valid
    i128 factor  # 10**exponent


cdef class Executions:
    """The state executions change (`seq`: lots opened, in replay order; `rseq`: realized
    rows written, the row number of the next; `wash`: None without wash sales);
    `engine._Engine` adds the other events."""

    def __cinit__(self):
        self.today = NO_TIME

    def __init__(self, realized, history, positions, WashTracker wash):
        self.realized, self.history, self.positions, self.wash = realized, history, positions, \
            wash
        if realized.rows.width * 8 != sizeof(Realized):
            raise TypeError("outputs.REALIZED's words differ from executions.Realized")
        self.rows, self.base, self.washes = realized.rows.data, realized.base.data, \
            realized.wash.data
        self.emitted = realized.emitted

    cpdef at(self, long long day):
        if day != self.today:
            self.today = day
            if self.wash is not None:
                self.wash.expire(day)

    def replay_trades(self, stream, list others, event) -> int:
        """Replays the executions of `stream` (a `trades.TradeStream`) and, before each, the
        `others` events (in key order) whose key is smaller, calling `event`; returns how
        many of `others` were replayed."""
        cdef Py_ssize_t i = 0, j, n_others = len(others)
        cdef long long next_ts = others[0].key[0] if others else NEVER
        cdef long long t, key
        cdef i128 q, n, f
        cdef const long long[::1] ts, day, code, keys
        cdef Amounts qty, net, fx
        cdef list pairs = stream.books
        cdef list books = [None] * len(pairs)
        cdef Book book
        for batch in stream.batches():
            ts, day, code, keys = batch.ts, batch.day, batch.code, batch.key
            qty, net, fx = _amounts(batch.qty), _amounts(batch.net), _amounts(batch.fx)
            for j in range(ts.shape[0]):
                t = ts[j]
                # other events go first when their key is smaller (the tiebreak only
                # matters, and is only built, on a timestamp tie)
                while next_ts <= t and (next_ts < t or others[i].key < (
                        t, PRIO_TRADE, tiebreak(self.tids.string(code[j])))):
                    event(others[i])
                    i += 1
                    next_ts = others[i].key[0] if i < n_others else NEVER
                key = keys[j]
                book = books[key]
                if book is None:
                    book = books[key] = self.book(*pairs[key])
                try:
                    q, n = _unit(&qty, j, "quantity"), _unit(&net, j, "cash")
                    f = _unit(&fx, j, "FX rate") if fx.valid[j] else 0
                except OverflowError as exc:
                    raise OverflowError(f"transaction {self.tids.string(code[j])}: {exc}") \
                        from None
                self._trade(book, t, day[j], code[j], q, n, fx.valid[j], f, TRADE)
            self.realized.spill()
            self.history.spill()
            self.positions.spill()
        return i

    def trade(self, Book book, long long ts, long long day, long long code, i128 qty,
              i128 net, fx, int reason):
        """An execution (transaction id `code`) of signed `qty` moving `net` cash (proceeds
        + commission); `fx` QUANTUMs of base currency per unit (None: none to convert)."""
        self._trade(book, ts, day, code, qty, net, fx is not None, fx or 0, reason)

    def close(self, Book book, long long ts, long long day, long long code, i128 size,
              i128 net, fx, int reason, bint at_cost=False) -> int:
        """Closes `size` units for `net` cash, writing a realized row per lot piece; returns
        the cost of the lots closed. `at_cost`: proceeds equal cost (an option whose premium
        moves to the stock)."""
        return self._close(book, ts, day, code, size, net, fx is not None, fx or 0, reason,
                           at_cost)

    cdef _trade(self, Book book, long long ts, long long day, long long code, i128 qty,
                i128 net, bint has_fx, i128 fx, int reason):
        if day != self.today:
            self.at(day)
        touch(book, day, self.history)
        cdef i128 held = book.qty
        if not held or (held > 0) == (qty > 0):
            self._open(book, ts, day, code, qty, -net, has_fx, fx)
            return
        cdef i128 size = qty if qty > 0 else -qty
        cdef i128 held_size = held if held > 0 else -held
        cdef i128 closing_cash
        if size <= held_size:
            self._close(book, ts, day, code, size, net, has_fx, fx, reason, False)
        else:  # closes the position and opens the other side (IB's "C;O")
            closing_cash = share(net, held_size, size)
            self._close(book, ts, day, code, held_size, closing_cash, has_fx, fx, reason, False)
            self._open(book, ts, day, code, qty + held, closing_cash - net, has_fx, fx)

    cdef _open(self, Book book, long long ts, long long day, long long code, i128 qty,
               i128 cost, bint has_fx, i128 fx):
        self.seq += 1
        cdef Lot lot = Lot.__new__(Lot)
        lot.init(code, 0, self.seq, self.seq, ts, day, qty, cost,
                 in_base(cost, fx) if has_fx else cost, book, False)
        book.add(lot)
        opened(book, ts, qty, cost)
        if self.wash is not None and qty > 0:
            self.wash.acquired(book, lot, day)

    cdef i128 _close(self, Book book, long long ts, long long day, long long code, i128 size,
                     i128 net, bint has_fx, i128 fx, int reason, bint at_cost) except? -1:
        cdef list pieces = book.take(size, book.picker) if book.picker is not None \
            else self._take_specific(book, size, code, ts)
        cdef Py_ssize_t i, last = len(pieces) - 1
        cdef i128 allocated = 0, closed_cost = 0, total = 0, total_base = 0
        cdef i128 q, cost, cost_base, wash, wash_base, proceeds, proceeds_base, pnl, pnl_base
        cdef Realized w
        w.book, w.tid, w.close_ts, w.reason = book.index, code, ts, reason
        cdef long long row
        cdef Piece piece
        cdef Lot lot
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
            proceeds_base = in_base(proceeds, fx) if has_fx else proceeds
            pnl = proceeds - cost
            pnl_base = proceeds_base - cost_base
            total += pnl
            total_base += pnl_base
            row = self.rseq
            self.rseq = row + 1
            w.lot_n, w.hp_day = lot.n, lot.hp_day
            w.high[0], w.high[1], w.high[2] = high(q), high(cost), high(proceeds)
            w.low[0], w.low[1], w.low[2] = low(q), low(cost), low(proceeds)
            w.lot_book, w.lot_tid, w.open_ts, w.open_day = lot.id_book, lot.tid, lot.open_time, \
                lot.open_day
            w.opening_balance = lot.opening_balance
            append(self.rows, &w, sizeof(w))
            if cost_base != cost or proceeds_base != proceeds:
                sparse2(self.base, row, cost_base, proceeds_base)
            if wash or wash_base:
                sparse2(self.washes, row, wash, wash_base)
            # a loss on a long lot (tax basis: cost plus wash adjustments) may be a wash sale
            if self.wash is not None and q > 0 and pnl < wash:
                self.wash.loss(book, lot, day, q, wash - pnl,
                               wash_base - pnl_base if wash_base > pnl_base else 0, row)
            else:
                push(self.emitted, row)
        realized(book, total, total_base)
        closed(book, ts, REASONS[reason], self.positions)
        return closed_cost

    cdef list _take_specific(self, Book book, i128 size, long long code, long long ts):
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


cdef Amounts _amounts(words) except *:
    """A batch column's pointers (`words` keeps the arrays alive meanwhile)."""
    cdef const unsigned long long[:] low = words.low
    cdef const long long[:] high = words.high
    cdef const unsigned char[::1] valid = words.valid
    if low.strides[0] != 16 and low.shape[0] > 1:
        raise ValueError("decimal words are not interleaved")
    cdef Amounts a
    a.low = &low[0] if low.shape[0] else NULL
    a.high = &high[0] if high.shape[0] else NULL
    a.valid = &valid[0] if valid.shape[0] else NULL
    a.factor = 1
    for _ in range(words.exponent):
        a.factor *= 10
    return a


cdef inline i128 _unit(Amounts *a, Py_ssize_t j, str field) except? -1:
    """Value `j` of the column, in QUANTUMs (2 words 16 bytes apart: Arrow's decimal128)."""
    cdef i128 value = ((<i128>a.high[2 * j]) << 64) | <i128>a.low[2 * j]
    if a.factor != 1 and mul_overflow(value, a.factor, &value):
        raise OverflowError(f"{field} beyond decimal128(38, 18) at 18 decimal places")
    return value
