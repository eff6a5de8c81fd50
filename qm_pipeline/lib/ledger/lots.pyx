"""Tax lots and the lot book of one (account, conid): opening, matching, splitting.

A lot is one opening (a buy, a short sale, a transfer in, an opening balance) with its
own quantity, cost, dates and wash-sale adjustment. Quantity and cost are signed alike
(short lots are negative, their cost is minus the cash received), so for every closed
piece `realized = proceeds - cost` whatever the side. Amounts are integers of QUANTUM
(see `money`), held in 128-bit C integers (`quanta`): Python code reads and sets them as
Python integers.

The book keeps its lots in a queue (`queues`) in acquisition order (open time, then replay order)
and running totals of quantity and cost, so the hot path never sums lots. The lot
methods only differ in which lot the next closing unit takes (DOMAIN.md §6).
"""

cimport cython

from qm_pipeline.lib.ledger.config import LotMethod
from qm_pipeline.lib.ledger.money import div as money_div

from qm_pipeline.lib.ledger.queues cimport Queue
from qm_pipeline.lib.ledger.quanta cimport i128, mul_overflow, share


cdef class Lot:
    def __init__(self, long long tid, long long n, long long origin, long long seq,
                 object open_ts, long long open_day, i128 qty, i128 cost, i128 cost_base,
                 Book book, bint opening_balance=False):
        self.init(tid, n, origin, seq, NO_TIME if open_ts is None else open_ts, open_day, qty,
                  cost, cost_base, book, opening_balance)

    cdef init(self, long long tid, long long n, long long origin, long long seq,
              long long open_time, long long open_day, i128 qty, i128 cost, i128 cost_base,
              Book book, bint opening_balance):
        """A lot opened by transaction `tid` (its code) in `book`, the `n`th lot of that
        opening. Its id ("account|conid|transaction id|n", `outputs.lot_ids`) is made of
        `id_book`, `tid` and `n`, and stays when the lot moves to another book."""
        self.id_book = book.index
        self.tid = tid
        self.n = n
        # [the last number given], shared by the lots split off one another (None until
        # the first split)
        self.splits = None
        # the opening this lot descends from (its `seq`): shares of one opening never
        # replace each other (wash-sale rule)
        self.origin = origin
        self.seq = seq  # replay order of the opening: FIFO tie-break
        self.open_time = open_time
        self.open_day = open_day
        self.hp_day = open_day  # holding period start; moves back on a wash replacement
        self.qty = qty
        self.cost = cost
        self.cost_base = cost_base
        self.wash = 0
        self.wash_base = 0
        self.opening_balance = opening_balance
        self.replacement = False  # already a wash-sale replacement (a share replaces once)
        self.book = book  # the book holding it

    @property
    def open_ts(self) -> int | None:
        """None: unknown (an opening balance from a SUMMARY position)."""
        return None if self.open_time == NO_TIME else self.open_time

    def order(self) -> tuple[int, int]:
        return (-1 if self.open_time == NO_TIME else self.open_time, self.seq)


@cython.no_gc  # made and dropped by the million; refers to its lot, never in a cycle
cdef class Piece:
    """A closed part of a lot: its signed quantity and its share of the lot's amounts
    (`Book.take` makes them)."""


cdef class Book:
    """Open lots and running totals of one (account, conid)."""

    def __init__(self, long long index, str account_id, str conid, object inst,
                 object method, object picker, i128 multiplier):
        self.index = index  # row of the book in the output's BOOKS table
        self.account_id = account_id
        self.conid = conid
        self.inst = inst
        self.currency = inst.currency  # read for every wash-sale loss
        self.multiplier = multiplier  # inst.multiplier in QUANTUMs
        self.method = method
        self.picker = picker  # None: SPECIFIC, lot by lot as IB's closed lots say
        self.lots = Queue()
        self.qty = 0
        self.cost = 0
        self.cost_base = 0
        # position tracking, owned by `positions`
        self.episode = None
        self.episodes = 0
        self.today = NO_TIME
        self.dirty = False
        self.has_mark = False
        self.wash_groups = None  # owned by `wash_sales`

    @property
    def mark(self) -> int | None:
        """The day's mark price, if one came (`positions`)."""
        return self.marked if self.has_mark else None

    @mark.setter
    def mark(self, value):
        self.has_mark = value is not None
        self.marked = value if self.has_mark else 0

    cpdef add(self, Lot lot):
        """Adds a lot in acquisition order (transferred-in and opening lots can be older)."""
        lot.book = self
        lots = self.lots
        cdef Lot last = lots.get(-1) if lots.size() else None
        cdef Py_ssize_t i
        if last is None or (lot.open_time != NO_TIME and last.open_time != NO_TIME
                            and last.open_time <= lot.open_time and last.seq <= lot.seq):
            lots.push(lot)
        else:
            i = lots.size()
            while i and (<Lot>lots.get(i - 1)).order() > lot.order():
                i -= 1
            lots.insert(i, lot)
        self.qty += lot.qty
        self.cost += lot.cost
        self.cost_base += lot.cost_base

    cpdef list take(self, i128 amount, object pick):
        """Removes `amount` units (a positive magnitude) from the lots `pick` chooses, as
        `Piece`s."""
        lots = self.lots
        cdef list pieces = []
        cdef Lot lot
        cdef Piece piece
        cdef i128 lot_qty, size
        cdef Py_ssize_t i
        cdef bint first = pick is fifo
        while amount and lots.size():
            i = 0 if first else pick(lots)
            lot = lots.get(i)
            lot_qty = lot.qty
            size = lot_qty if lot_qty > 0 else -lot_qty
            if size <= amount:
                lots.pop_at(i)
                amount -= size
                piece = Piece.__new__(Piece)
                piece.lot, piece.qty, piece.cost, piece.cost_base = lot, lot_qty, lot.cost, \
                    lot.cost_base
                piece.wash, piece.wash_base = lot.wash, lot.wash_base
                lot.qty = 0
            else:
                piece = shave(lot, amount if lot_qty > 0 else -amount, size)
                amount = 0
            pieces.append(piece)
            self.qty -= piece.qty
            self.cost -= piece.cost
            self.cost_base -= piece.cost_base
        return pieces

    cpdef Lot split_off(self, Lot lot, i128 size):
        """Splits `size` units of `lot` into a new lot placed just before it (same opening
        and dates, the next number)."""
        splits = lot.splits
        if splits is None:
            splits = lot.splits = [lot.n]
        splits[0] += 1
        cdef i128 whole = lot.qty if lot.qty > 0 else -lot.qty
        cdef Piece p = shave(lot, size if lot.qty > 0 else -size, whole)
        cdef Lot new = Lot.__new__(Lot)
        new.id_book, new.tid, new.n, new.splits, new.origin, new.seq = lot.id_book, lot.tid, \
            splits[0], splits, lot.origin, lot.seq
        new.open_time, new.open_day, new.hp_day = lot.open_time, lot.open_day, lot.hp_day
        new.qty, new.cost, new.cost_base, new.wash, new.wash_base = p.qty, p.cost, \
            p.cost_base, p.wash, p.wash_base
        new.opening_balance, new.replacement, new.book = lot.opening_balance, \
            lot.replacement, self
        # a replacement is mostly the newest lot: `find` starts there
        self.lots.insert(0 if self.lots.get(0) is lot else self.lots.find(lot), new)
        return new

    def scale(self, num, den):
        """Split: every lot's quantity times num/den, cost unchanged (DOMAIN.md §6). The
        book total is the exact product; rounding of single lots goes to the last one.
        Python integers: the products need not fit 128 bits."""
        if not self.lots:
            return
        target = money_div(self.qty * num, den)
        total = 0
        for lot in self.lots:
            lot.qty = money_div(lot.qty * num, den)
            total += lot.qty
        self.lots.get(-1).qty += target - total
        self.qty = target


cdef Piece shave(Lot lot, i128 qty, i128 size):
    """Takes signed `qty` (|qty| < size = |lot.qty|) off `lot`, pro rata; the lot keeps the
    remainders, so its amounts and the piece's add up exactly to what it had."""
    cdef i128 k = qty if qty > 0 else -qty
    cdef Piece p = Piece.__new__(Piece)
    p.lot = lot
    p.qty = qty
    cdef bint same = lot.cost_base == lot.cost
    p.cost = share(lot.cost, k, size)
    p.cost_base = p.cost if same else share(lot.cost_base, k, size)
    lot.cost -= p.cost
    lot.cost_base -= p.cost_base
    p.wash = p.wash_base = 0
    if lot.wash or lot.wash_base:
        p.wash = share(lot.wash, k, size)
        p.wash_base = share(lot.wash_base, k, size)
        lot.wash -= p.wash
        lot.wash_base -= p.wash_base
    lot.qty -= qty
    return p


def fifo(Queue lots) -> int:
    return 0


def lifo(Queue lots) -> int:
    return lots.size() - 1


def hifo(Queue lots) -> int:
    """Highest cost per unit first: for long lots the costliest, for short lots the one
    sold cheapest. Both realize the smallest gain; ties go to the oldest lot. The unit is
    cost / |quantity| (a short lot's cost is negative), compared as exact fractions."""
    cdef Py_ssize_t i, best = 0
    cdef i128 best_cost = 0, best_qty = 0, qty
    cdef Lot lot
    for i in range(lots.size()):
        lot = lots.get(i)
        qty = lot.qty if lot.qty > 0 else -lot.qty
        if not best_qty or _greater(lot.cost, best_qty, best_cost, qty):
            best, best_cost, best_qty = i, lot.cost, qty
    return best


cdef bint _greater(i128 a, i128 b, i128 c, i128 d) except -1:
    """a * b > c * d, exactly (Python integers when a product does not fit)."""
    cdef i128 left, right
    if mul_overflow(a, b, &left) or mul_overflow(c, d, &right):
        return <object>a * <object>b > <object>c * <object>d
    return left > right


def opened_at(open_ts, missed):
    """Picker for SPECIFIC lots: the first lot opened at `open_ts` (IB's CLOSED_LOT rows name
    lots by open time). When none is left it falls back to FIFO and sets `missed[0]`."""
    cdef long long wanted = NO_TIME if open_ts is None else open_ts

    def pick(Queue lots) -> int:
        cdef Py_ssize_t i
        for i in range(lots.size()):
            if (<Lot>lots.get(i)).open_time == wanted:
                return i
        missed[0] = True
        return 0

    return pick


PICKERS = {
    LotMethod.FIFO: fifo,
    LotMethod.LIFO: lifo,
    LotMethod.HIFO: hifo,
}
