"""Tax lots and the lot book of one (account, conid): opening, matching, splitting.

A lot is one opening (a buy, a short sale, a transfer in, an opening balance) with its
own quantity, cost, dates and wash-sale adjustment. Quantity and cost are signed alike
(short lots are negative, their cost is minus the cash received), so for every closed
piece `realized = proceeds - cost` whatever the side. Amounts are integers of QUANTUM
(see `money`).

The book keeps its lots in a deque in acquisition order (open time, then replay order)
and running totals of quantity and cost, so the hot path never sums lots. The lot
methods only differ in which lot the next closing unit takes (DOMAIN.md §6).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from qm_pipeline.lib.ledger.config import LotMethod
from qm_pipeline.lib.ledger.instruments import Instrument
from qm_pipeline.lib.ledger.money import div, share

if TYPE_CHECKING:  # the modules that own these Book fields import this one
    from qm_pipeline.lib.ledger.positions import Episode
    from qm_pipeline.lib.ledger.wash_sales import Groups

# A closed piece: (lot, signed quantity, cost, cost_base, wash, wash_base).
Piece = tuple["Lot", int, int, int, int, int]
# Given the book's lots, the index of the lot the next closing unit comes from.
Picker = Callable[[deque["Lot"]], int]


class Lot:
    __slots__ = ("book", "cost", "cost_base", "hp_day", "n", "open_day", "open_ts", "opening",
                 "opening_balance", "origin", "qty", "replacement", "seq", "splits", "wash",
                 "wash_base")

    def __init__(self, opening: bytes, n: int, origin: int, seq: int, open_ts: int | None,
                 open_day: int, qty: int, cost: int, cost_base: int, book: Book,
                 opening_balance: bool = False) -> None:
        # the fields realized rows copy from the opening (`outputs.opening_fields`): the lot
        # id's book and transaction, open time and day, opening balance or not. The lot id
        # is "account|conid|transaction id|n", n its number among the lots split off it.
        self.opening = opening
        self.n = n
        # [the last number given], shared by the lots split off one another (None until
        # the first split)
        self.splits: list[int] | None = None
        # the opening this lot descends from (its `seq`): shares of one opening never
        # replace each other (wash-sale rule)
        self.origin = origin
        self.seq = seq  # replay order of the opening: FIFO tie-break
        self.open_ts = open_ts  # None: unknown (opening balance from a SUMMARY position)
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

    def order(self) -> tuple[int, int]:
        return (-1 if self.open_ts is None else self.open_ts, self.seq)


class Book:
    """Open lots and running totals of one (account, conid)."""

    __slots__ = ("account_id", "conid", "cost", "cost_base", "day", "dirty", "episode",
                 "episodes", "index", "inst", "lots", "mark", "method", "multiplier", "picker",
                 "qty", "wash_groups")

    def __init__(self, index: int, account_id: str, conid: str, inst: Instrument,
                 method: LotMethod, picker: Picker | None, multiplier: int) -> None:
        self.index = index  # row of the book in the output's BOOKS table
        self.account_id = account_id
        self.conid = conid
        self.inst = inst
        self.multiplier = multiplier  # inst.multiplier in QUANTUMs
        self.method = method
        self.picker = picker  # None: SPECIFIC, lot by lot as IB's closed lots say
        self.lots: deque[Lot] = deque()
        self.qty = 0
        self.cost = 0
        self.cost_base = 0
        # position tracking, owned by `positions`
        self.episode: Episode | None = None
        self.episodes = 0
        self.day: int | None = None
        self.dirty = False
        self.mark: int | None = None
        self.wash_groups: Groups | None = None  # owned by `wash_sales`

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

    def _move(self, qty: int, cost: int, cost_base: int) -> None:
        """Adds to the running totals (subtracts with negated arguments), keeping base
        total and local total one object while every amount is in base currency."""
        self.qty += qty
        if cost_base is cost and self.cost_base is self.cost:
            self.cost += cost
            self.cost_base = self.cost
        else:
            self.cost += cost
            self.cost_base += cost_base

    def take(self, amount: int, pick: Picker) -> list[Piece]:
        """Removes `amount` units (a positive magnitude) from the lots `pick` chooses."""
        lots = self.lots
        pieces: list[Piece] = []
        append = pieces.append
        taken = cost = cost_base = 0
        while amount and lots:
            i = 0 if pick is fifo else pick(lots)
            lot = lots[i]
            lot_qty = lot.qty
            size = lot_qty if lot_qty > 0 else -lot_qty
            if size <= amount:
                if i == 0:
                    lots.popleft()
                elif i == len(lots) - 1:
                    lots.pop()
                else:
                    del lots[i]
                amount -= size
                piece = (lot, lot_qty, lot.cost, lot.cost_base, lot.wash, lot.wash_base)
                lot.qty = 0
            else:
                piece = shave(lot, amount if lot_qty > 0 else -amount, size)
                amount = 0
            append(piece)
            taken += piece[1]
            cost += piece[2]
            cost_base += piece[3]
        # as `_move`: equal base and local totals stay one object
        twin = self.cost_base is self.cost and cost_base == cost
        self.qty -= taken
        self.cost -= cost
        self.cost_base = self.cost if twin else self.cost_base - cost_base
        return pieces

    def split_off(self, lot: Lot, size: int) -> Lot:
        """Splits `size` units of `lot` into a new lot placed just before it (same opening
        and dates, the next number)."""
        splits = lot.splits
        if splits is None:
            splits = lot.splits = [lot.n]
        splits[0] += 1
        lot_qty = lot.qty
        whole = lot_qty if lot_qty > 0 else -lot_qty
        _, q, c, cb, w, wb = shave(lot, size if lot_qty > 0 else -size, whole)
        new = Lot(lot.opening, splits[0], lot.origin, lot.seq, lot.open_ts, lot.open_day, q, c,
                  cb, self, lot.opening_balance)
        new.splits = splits
        new.hp_day = lot.hp_day
        new.wash = w
        new.wash_base = wb
        new.replacement = lot.replacement
        lots = self.lots
        lots.insert(0 if lots[0] is lot else lots.index(lot), new)
        return new

    def scale(self, num: int, den: int) -> None:
        """Split: every lot's quantity times num/den, cost unchanged (DOMAIN.md §6). The
        book total is the exact product; rounding of single lots goes to the last one."""
        if not self.lots:
            return
        target = div(self.qty * num, den)
        total = 0
        for lot in self.lots:
            lot.qty = div(lot.qty * num, den)
            total += lot.qty
        self.lots[-1].qty += target - total
        self.qty = target


def shave(lot: Lot, qty: int, size: int) -> Piece:
    """Takes signed `qty` (|qty| < size = |lot.qty|) off `lot`, pro rata; the lot keeps the
    remainders, so its amounts and the piece's add up exactly to what it had."""
    k = qty if qty > 0 else -qty
    same = lot.cost_base is lot.cost
    c = share(lot.cost, k, size)
    lot.cost -= c
    if same:
        cb = c
        lot.cost_base = lot.cost
    else:
        cb = share(lot.cost_base, k, size)
        lot.cost_base -= cb
    w = wb = 0
    if lot.wash or lot.wash_base:
        w = share(lot.wash, k, size)
        wb = share(lot.wash_base, k, size)
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
    sold cheapest. Both realize the smallest gain; ties go to the oldest lot. The unit is
    cost / |quantity| (a short lot's cost is negative), compared as exact fractions."""
    best, best_cost, best_qty = 0, 0, 0
    for i, lot in enumerate(lots):
        qty = lot.qty if lot.qty > 0 else -lot.qty
        cost = lot.cost
        if not best_qty or cost * best_qty > best_cost * qty:
            best, best_cost, best_qty = i, cost, qty
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
