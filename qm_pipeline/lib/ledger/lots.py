"""Tax lots and the lot book of one (account, conid): opening, matching, splitting.

A lot is one opening (a buy, a short sale, a transfer in, an opening balance) with its
own quantity, cost, dates and wash-sale adjustment. Quantity and cost are signed alike
(short lots are negative, their cost is minus the cash received), so for every closed
piece `realized = proceeds - cost` whatever the side.

The book keeps its lots in a deque in acquisition order (open time, then replay order)
and running totals of quantity and cost, so the hot path never sums lots. The lot
methods only differ in which lot the next closing unit takes (DOMAIN.md §6).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from decimal import Decimal

from qm_pipeline.lib.ledger.config import LotMethod
from qm_pipeline.lib.ledger.instruments import Instrument
from qm_pipeline.lib.ledger.money import QUANTUM, ZERO, part

# A closed piece: (lot, signed quantity, cost, cost_base, wash, wash_base).
Piece = tuple["Lot", Decimal, Decimal, Decimal, Decimal, Decimal]
# Given the book's lots, the index of the lot the next closing unit comes from.
Picker = Callable[[deque["Lot"]], int]


class Lot:
    __slots__ = ("book", "cost", "cost_base", "hp_day", "lot_id", "open_day", "open_ts",
                 "opening_balance", "origin", "qty", "replacement", "seq", "wash", "wash_base")

    def __init__(self, lot_id: str, origin: str, seq: int, open_ts: int | None, open_day: int,
                 qty: Decimal, cost: Decimal, cost_base: Decimal,
                 opening_balance: bool = False) -> None:
        self.lot_id = lot_id
        self.origin = origin  # id of the opening this lot descends from (wash-sale rule)
        self.seq = seq  # replay order of the opening: FIFO tie-break
        self.open_ts = open_ts  # None: unknown (opening balance from a SUMMARY position)
        self.open_day = open_day
        self.hp_day = open_day  # holding period start; moves back on a wash replacement
        self.qty = qty
        self.cost = cost
        self.cost_base = cost_base
        self.wash = ZERO
        self.wash_base = ZERO
        self.opening_balance = opening_balance
        self.replacement = False  # already a wash-sale replacement (a share replaces once)
        self.book: Book | None = None  # the book holding it (set by Book.add)

    def order(self) -> tuple[int, int]:
        return (-1 if self.open_ts is None else self.open_ts, self.seq)


class Book:
    """Open lots and running totals of one (account, conid)."""

    __slots__ = ("account_id", "conid", "cost", "cost_base", "day", "dirty", "episode",
                 "episodes", "index", "inst", "lots", "mark", "method", "picker", "qty",
                 "wash_groups")

    def __init__(self, index: int, account_id: str, conid: str, inst: Instrument,
                 method: LotMethod, picker: Picker | None) -> None:
        self.index = index  # row of the book in the output's BOOKS table
        self.account_id = account_id
        self.conid = conid
        self.inst = inst
        self.method = method
        self.picker = picker  # None: SPECIFIC, lot by lot as IB's closed lots say
        self.lots: deque[Lot] = deque()
        self.qty = ZERO
        self.cost = ZERO
        self.cost_base = ZERO
        # position tracking, owned by `positions`
        self.episode = None
        self.episodes = 0
        self.day: int | None = None
        self.dirty = False
        self.mark: Decimal | None = None
        self.wash_groups = None  # owned by `wash_sales`

    def add(self, lot: Lot) -> None:
        """Adds a lot in acquisition order (transferred-in and opening lots can be older)."""
        lot.book = self
        lots = self.lots
        last = lots[-1] if lots else None
        if last is None or (lot.open_ts is not None and last.open_ts is not None
                            and last.open_ts <= lot.open_ts and last.seq <= lot.seq):
            lots.append(lot)
        else:
            i = len(lots)
            while i and lots[i - 1].order() > lot.order():
                i -= 1
            lots.insert(i, lot)
        self._move(lot.qty, lot.cost, lot.cost_base)

    def _move(self, qty: Decimal, cost: Decimal, cost_base: Decimal) -> None:
        """Adds to the running totals (subtracts with negated arguments), keeping base
        total and local total one object while every amount is in base currency."""
        self.qty += qty
        if cost_base is cost and self.cost_base is self.cost:
            self.cost += cost
            self.cost_base = self.cost
        else:
            self.cost += cost
            self.cost_base += cost_base

    def take(self, amount: Decimal, pick: Picker) -> list[Piece]:
        """Removes `amount` units (a positive magnitude) from the lots `pick` chooses."""
        lots = self.lots
        pieces: list[Piece] = []
        taken = cost = ZERO
        twins = True  # every piece's base amount is its local one (see `money`)
        while amount and lots:
            i = 0 if pick is fifo else pick(lots)
            lot = lots[i]
            lot_qty = lot.qty
            size = lot_qty if lot_qty > ZERO else -lot_qty
            if size <= amount:
                if i == 0:
                    lots.popleft()
                elif i == len(lots) - 1:
                    lots.pop()
                else:
                    del lots[i]
                amount -= size
                piece = (lot, lot_qty, lot.cost, lot.cost_base, lot.wash, lot.wash_base)
                lot.qty = ZERO
            else:
                piece = _shave(lot, amount if lot_qty > ZERO else -amount, size)
                amount = ZERO
            pieces.append(piece)
            taken += piece[1]
            cost += piece[2]
            twins = twins and piece[3] is piece[2]
        neg = -cost
        self._move(-taken, neg, neg if twins else -sum((p[3] for p in pieces), ZERO))
        return pieces

    def split_off(self, lot: Lot, size: Decimal, lot_id: str) -> Lot:
        """Splits `size` units of `lot` into a new lot placed just before it (same dates)."""
        lot_qty = lot.qty
        whole = lot_qty if lot_qty > ZERO else -lot_qty
        _, q, c, cb, w, wb = _shave(lot, size if lot_qty > ZERO else -size, whole)
        new = Lot(lot_id, lot.origin, lot.seq, lot.open_ts, lot.open_day, q, c, cb,
                  lot.opening_balance)
        new.hp_day = lot.hp_day
        new.wash = w
        new.wash_base = wb
        new.replacement = lot.replacement
        new.book = self
        self.lots.insert(self.lots.index(lot), new)
        return new

    def scale(self, num: Decimal, den: Decimal) -> None:
        """Split: every lot's quantity times num/den, cost unchanged (DOMAIN.md §6). The
        book total is the exact product; rounding of single lots goes to the last one."""
        if not self.lots:
            return
        target = (self.qty * num / den).quantize(QUANTUM)
        total = ZERO
        for lot in self.lots:
            lot.qty = (lot.qty * num / den).quantize(QUANTUM)
            total += lot.qty
        self.lots[-1].qty += target - total
        self.qty = target


def _shave(lot: Lot, qty: Decimal, size: Decimal) -> Piece:
    """Takes signed `qty` (|qty| < size = |lot.qty|) off `lot`, pro rata; the lot keeps the
    remainders, so its amounts and the piece's add up exactly to what it had."""
    k = qty if qty > ZERO else -qty
    same = lot.cost_base is lot.cost
    c = part(lot.cost, k, size)
    lot.cost -= c
    if same:
        cb = c
        lot.cost_base = lot.cost
    else:
        cb = part(lot.cost_base, k, size)
        lot.cost_base -= cb
    w = wb = ZERO
    if lot.wash or lot.wash_base:
        w = part(lot.wash, k, size)
        wb = part(lot.wash_base, k, size)
        lot.wash -= w
        lot.wash_base -= wb
    lot.qty -= qty
    return (lot, qty, c, cb, w, wb)


def fifo(lots: deque[Lot]) -> int:
    return 0


def lifo(lots: deque[Lot]) -> int:
    return len(lots) - 1


def hifo(lots: deque[Lot]) -> int:
    """Highest cost per unit first: for long lots the costliest, for short lots the one
    sold cheapest. Both realize the smallest gain; ties go to the oldest lot."""
    best, best_unit = 0, None
    for i, lot in enumerate(lots):
        unit = lot.cost / lot.qty
        if lot.qty < ZERO:
            unit = -unit
        if best_unit is None or unit > best_unit:
            best, best_unit = i, unit
    return best


def opened_at(open_ts: int | None, missed: list[bool]) -> Picker:
    """Picker for SPECIFIC lots: the first lot opened at `open_ts` (IB's CLOSED_LOT rows name
    lots by open time). When none is left it falls back to FIFO and sets `missed[0]`."""

    def pick(lots: deque[Lot]) -> int:
        for i, lot in enumerate(lots):
            if lot.open_ts == open_ts:
                return i
        missed[0] = True
        return 0

    return pick


PICKERS: dict[LotMethod, Picker] = {
    LotMethod.FIFO: fifo,
    LotMethod.LIFO: lifo,
    LotMethod.HIFO: hifo,
}
