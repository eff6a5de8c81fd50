"""Wash sales (IRC 1091): losses disallowed and moved onto replacement lots, in one pass.

A loss on the sale of a long lot is (partly) disallowed when substantially identical
securities were bought within 30 days before or after the sale (DOMAIN.md §6):
- losses are matched in sale order, replacements in purchase order; a replacement
  smaller than the loss disallows pro rata, and a share is a replacement only once;
- shares of the sold lot's own opening are never its replacements;
- the disallowed loss is added to the replacement's basis (1091(d)) and the sold
  shares' holding period is tacked onto the replacement's (IRC 1223(3)): its holding
  period starts that many days before its purchase;
- a replacement must still be held at the sale, or be bought after it (a purchase
  already sold again before the loss sale replaces nothing: what brokers implement).

The replay is a single forward pass, so the two directions are handled when they
happen: at a loss sale, purchases of the last 30 days still held are replacements
(look-back); the rest of the loss waits, and each later purchase within 30 days is
offered to the waiting losses in sale order (look-forward). A realized row becomes final
(`outputs.RealizedSink`) once its loss can no longer change: fully replaced, or 30 days
after the sale. Because a replacement's basis is adjusted when it is bought or
(look-back) at the loss sale, a later sale of it sees the adjusted basis, so chains of
wash sales fall out.

Broker mode groups by (account, conid): what IB reports with notes code LD. Taxpayer
mode groups by (owner, instrument identity) across the owner's accounts, and a long
call counts as a purchase of its underlying (an option to acquire, 1091(a)), in shares:
contracts x multiplier. Wash sales of short sales (1091(e)) are not modelled.

Loss and disallowance are decided in the lot's currency (what the broker computes per
security) and carried in base currency alongside. Amounts and units are integers of
QUANTUM (see `money`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from qm_pipeline.lib.ledger.config import LedgerConfig, WashMode
from qm_pipeline.lib.ledger.lots import Book, Lot
from qm_pipeline.lib.ledger.money import SCALE, div, share


class WashLoss:
    """A loss sale still open to replacements, with its realized row (number)."""

    __slots__ = ("currency", "day", "disallowed", "disallowed_base", "done", "held_days", "loss",
                 "loss_base", "origin", "remaining", "row", "units")

    def __init__(self, row: int, currency: str | None, day: int, held_days: int, origin: int,
                 units: int, loss: int, loss_base: int) -> None:
        self.row = row
        self.currency = currency
        self.day = day
        self.held_days = held_days
        self.origin = origin
        self.units = units  # sold quantity in the group's units
        self.remaining = units  # not yet replaced
        self.loss = loss  # positive magnitude, lot currency
        self.loss_base = loss_base
        self.disallowed = 0
        self.disallowed_base = 0
        self.done = False


class _Group:
    __slots__ = ("bought", "waiting")

    def __init__(self) -> None:
        self.bought: deque[tuple[int, Lot, int]] = deque()  # (day, lot, units per lot qty)
        self.waiting: deque[WashLoss] = deque()  # in sale order


# A book's (group of its sales, [(group of its purchases, the group's units per unit of the
# lot, in QUANTUMs)]), cached on the book.
Groups = tuple[_Group, list[tuple[_Group, int]]]


class WashTracker:
    def __init__(self, config: LedgerConfig, emit: Callable[[int, int, int], None]) -> None:
        self.taxpayer = config.wash_sales is WashMode.TAXPAYER
        self.config = config
        self.window = config.wash_window_days
        self.emit = emit  # (realized row, disallowed, disallowed in base currency)
        self.groups: dict[tuple[str, str], _Group] = {}
        self.open: deque[WashLoss] = deque()  # every waiting loss, in sale order

    def _groups(self, book: Book) -> Groups:
        """The book's `Groups`, made on first use."""
        groups = book.wash_groups
        if groups is None:
            if self.taxpayer:
                owner = self.config.owner(book.account_id)
                own = self._group((owner, self.config.identity(book.conid)))
                buys = [(own, SCALE)]
                inst = book.inst
                if inst.is_call and inst.underlying_conid:
                    underlying = (owner, self.config.identity(inst.underlying_conid))
                    buys.append((self._group(underlying), book.multiplier))
            else:
                own = self._group((book.account_id, book.conid))
                buys = [(own, SCALE)]
            groups = book.wash_groups = (own, buys)
        return groups

    def _group(self, key: tuple[str, str]) -> _Group:
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = _Group()
        return group

    def loss(self, book: Book, lot: Lot, day: int, qty: int, loss: int, loss_base: int,
             row: int) -> None:
        """A long lot piece of `qty` sold at a (tax) loss on `day`; `row` is its realized row,
        emitted once the disallowed amounts are known."""
        rec = WashLoss(row, book.inst.currency, day, day - lot.hp_day, lot.origin, qty, loss,
                       loss_base)
        group = (book.wash_groups or self._groups(book))[0]
        bought = group.bought
        oldest = day - self.window
        while bought and bought[0][0] < oldest:
            bought.popleft()
        for _, candidate, units in bought:  # splitting a candidate does not touch `bought`
            if candidate.qty > 0 and not candidate.replacement \
                    and candidate.origin != rec.origin:
                self._replace(rec, candidate, units)
                if not rec.remaining:
                    break
        if rec.remaining:
            group.waiting.append(rec)
            self.open.append(rec)
        else:
            self._finish(rec)

    def acquired(self, book: Book, lot: Lot, day: int) -> None:
        """A long lot bought on `day`: waiting losses take it as replacement, in sale order."""
        for group, units in (book.wash_groups or self._groups(book))[1]:
            waiting = group.waiting
            oldest = day - self.window
            while waiting and (waiting[0].done or waiting[0].day < oldest):
                waiting.popleft()
            for rec in waiting:
                if lot.replacement:
                    break
                if not rec.done and rec.origin != lot.origin:
                    self._replace(rec, lot, units)
                    if not rec.remaining:
                        self._finish(rec)
            if not lot.replacement:
                group.bought.append((day, lot, units))

    def _replace(self, rec: WashLoss, lot: Lot, units: int) -> None:
        """`lot` (or the part of it the loss needs) becomes a replacement of `rec`."""
        available = lot.qty if units == SCALE else div(lot.qty * units, SCALE)
        use = min(available, rec.remaining)
        if use < available:
            size = use if units == SCALE else div(use * SCALE, units)
            lot = lot.book.split_off(lot, size)
        rec.remaining -= use
        if rec.remaining:
            disallowed = share(rec.loss, use, rec.units)
            disallowed_base = share(rec.loss_base, use, rec.units)
        else:  # the last replacement takes the remainder: no rounding residue
            disallowed = rec.loss - rec.disallowed
            disallowed_base = rec.loss_base - rec.disallowed_base
        rec.disallowed += disallowed
        rec.disallowed_base += disallowed_base
        if lot.book.inst.currency != rec.currency and lot.cost_base:
            disallowed = div(disallowed_base * lot.cost, lot.cost_base)
        lot.wash += disallowed
        lot.wash_base += disallowed_base
        lot.hp_day = lot.open_day - rec.held_days
        lot.replacement = True

    def _finish(self, rec: WashLoss) -> None:
        rec.done = True
        self.emit(rec.row, rec.disallowed, rec.disallowed_base)

    def expire(self, day: int) -> None:
        """Emits the rows of the losses whose 30 days after the sale are over before `day`."""
        oldest = day - self.window
        pending = self.open
        while pending and (pending[0].done or pending[0].day < oldest):
            rec = pending.popleft()
            if not rec.done:
                self._finish(rec)

    def finish(self) -> None:
        while self.open:
            rec = self.open.popleft()
            if not rec.done:
                self._finish(rec)
