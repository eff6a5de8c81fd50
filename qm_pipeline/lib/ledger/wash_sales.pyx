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

cimport cython

from qm_pipeline.lib.ledger.config import WashMode

from qm_pipeline.lib.ledger.lots cimport Book, Lot
from qm_pipeline.lib.ledger.queues cimport Queue
from qm_pipeline.lib.ledger.quanta cimport SCALE, i128, muldiv, share
from qm_pipeline.lib.ledger.words cimport push, sparse2


@cython.no_gc  # made by the million, refers to no container
cdef class WashLoss:
    """A loss sale still open to replacements, with its realized row (number)."""


cdef class Bought:
    """A purchase in a group, open to waiting losses for 30 days, with the group's units
    per unit of the lot (in QUANTUMs)."""


cdef class Group:
    """Purchases (`Bought`, in purchase order) and waiting losses (in sale order)."""

    def __cinit__(self):
        self.bought = Queue()
        self.waiting = Queue()


cdef class Buys:
    """A group a book's purchases go to, with the group's units per unit of the lot (in
    QUANTUMs: a call buys `multiplier` shares of its underlying)."""


cdef class Groups:
    """A book's group of its sales and the `Buys` of its purchases, cached on the book."""


cdef class WashTracker:
    def __init__(self, config, sink):
        """`sink`: the `outputs.RealizedSink` the losses' rows are emitted to."""
        self.taxpayer = config.wash_sales is WashMode.TAXPAYER
        self.config = config
        self.window = config.wash_window_days
        self.emitted, self.disallowed = sink.emitted, sink.disallowed.data
        self.groups = {}
        self.open = Queue()  # every waiting loss, in sale order

    cdef Groups _groups(self, Book book):
        """The book's `Groups`, made on first use."""
        cdef Groups groups = book.wash_groups
        if groups is None:
            groups = Groups.__new__(Groups)
            if self.taxpayer:
                owner = self.config.owner(book.account_id)
                groups.own = self._group((owner, self.config.identity(book.conid)))
                groups.buys = [_buys(groups.own, SCALE)]
                inst = book.inst
                if inst.is_call and inst.underlying_conid:
                    underlying = (owner, self.config.identity(inst.underlying_conid))
                    groups.buys.append(_buys(self._group(underlying), book.multiplier))
            else:
                groups.own = self._group((book.account_id, book.conid))
                groups.buys = [_buys(groups.own, SCALE)]
            book.wash_groups = groups
        return groups

    cdef Group _group(self, tuple key):
        cdef Group group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = Group()
        return group

    cpdef loss(self, Book book, Lot lot, long long day, i128 qty, i128 loss, i128 loss_base,
               long long row):
        """A long lot piece of `qty` sold at a (tax) loss on `day`; `row` is its realized row,
        emitted once the disallowed amounts are known."""
        cdef WashLoss rec = WashLoss.__new__(WashLoss)
        rec.row, rec.currency, rec.day, rec.held_days, rec.origin = row, book.currency, \
            day, day - lot.hp_day, lot.origin
        rec.units = rec.remaining = qty  # sold quantity in the group's units; not yet replaced
        rec.loss, rec.loss_base = loss, loss_base  # positive magnitude, lot currency
        rec.disallowed = rec.disallowed_base = 0
        rec.done = False
        cdef Group group = self._groups(book).own
        cdef Queue bought = group.bought
        cdef long long oldest = day - self.window
        while bought.size() and (<Bought>bought.get(0)).day < oldest:
            bought.popleft()
        cdef Bought b
        cdef Py_ssize_t i
        for i in range(bought.size()):  # splitting a candidate does not touch `bought`
            b = bought.get(i)
            candidate = b.lot
            if candidate.qty > 0 and not candidate.replacement \
                    and candidate.origin != rec.origin:
                self._replace(rec, candidate, b.units)
                if not rec.remaining:
                    break
        if rec.remaining:
            group.waiting.push(rec)
            self.open.push(rec)
        else:
            self._finish(rec)

    cpdef acquired(self, Book book, Lot lot, long long day):
        """A long lot bought on `day`: waiting losses take it as replacement, in sale order."""
        cdef Buys buys
        cdef Group group
        cdef WashLoss rec
        cdef Bought b
        cdef i128 units
        cdef Queue waiting
        cdef Py_ssize_t i
        cdef long long oldest = day - self.window
        for buys in self._groups(book).buys:
            group, units = buys.group, buys.units
            waiting = group.waiting
            while waiting.size() and ((<WashLoss>waiting.get(0)).done
                                      or (<WashLoss>waiting.get(0)).day < oldest):
                waiting.popleft()
            for i in range(waiting.size()):
                rec = waiting.get(i)
                if lot.replacement:
                    break
                if not rec.done and rec.origin != lot.origin:
                    self._replace(rec, lot, units)
                    if not rec.remaining:
                        self._finish(rec)
            if not lot.replacement:
                b = Bought.__new__(Bought)
                b.day, b.lot, b.units = day, lot, units
                group.bought.push(b)

    cdef _replace(self, WashLoss rec, Lot lot, i128 units):
        """`lot` (or the part of it the loss needs) becomes a replacement of `rec`."""
        cdef i128 available = lot.qty if units == SCALE else muldiv(lot.qty, units, SCALE)
        cdef i128 use = available if available < rec.remaining else rec.remaining
        cdef i128 disallowed, disallowed_base
        if use < available:
            lot = lot.book.split_off(lot, use if units == SCALE else muldiv(use, SCALE, units))
        rec.remaining -= use
        if rec.remaining:
            disallowed = share(rec.loss, use, rec.units)
            disallowed_base = share(rec.loss_base, use, rec.units)
        else:  # the last replacement takes the remainder: no rounding residue
            disallowed = rec.loss - rec.disallowed
            disallowed_base = rec.loss_base - rec.disallowed_base
        rec.disallowed += disallowed
        rec.disallowed_base += disallowed_base
        if lot.cost_base and lot.book.currency != rec.currency:
            disallowed = muldiv(disallowed_base, lot.cost, lot.cost_base)
        lot.wash += disallowed
        lot.wash_base += disallowed_base
        lot.hp_day = lot.open_day - rec.held_days
        lot.replacement = True

    cdef _finish(self, WashLoss rec):
        rec.done = True
        if rec.disallowed or rec.disallowed_base:  # by position in the emitted rows
            sparse2(self.disallowed, len(self.emitted), rec.disallowed, rec.disallowed_base)
        push(self.emitted, rec.row)

    cpdef expire(self, long long day):
        """Emits the rows of the losses whose 30 days after the sale are over before `day`."""
        cdef long long oldest = day - self.window
        cdef WashLoss rec
        cdef Queue pending = self.open
        while pending.size() and ((<WashLoss>pending.get(0)).done
                                  or (<WashLoss>pending.get(0)).day < oldest):
            rec = pending.popleft()
            if not rec.done:
                self._finish(rec)

    def finish(self):
        cdef WashLoss rec
        while self.open.size():
            rec = self.open.popleft()
            if not rec.done:
                self._finish(rec)


cdef Buys _buys(Group group, i128 units):
    cdef Buys buys = Buys.__new__(Buys)
    buys.group, buys.units = group, units
    return buys
