"""One account's books: cash by currency, FIFO tax lots, positions and pending settlements.

The lot rules are DOMAIN.md section 1 and 6: a lot's basis includes its opening commission
(long lots carry a positive cost, short lots the negative net proceeds); a closing fill
consumes lots first-in first-out and each consumed part realizes its share of the fill's net
cash minus its basis, so a trade's `fifoPnlRealized` is the exact sum of its `Lot` rows.
Assignment and exercise close the option at no P&L and roll its basis into the stock lot;
a split scales the quantity and opening price of open lots and keeps their basis.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from qm_pipeline.lib.flex.sample.instruments import Instrument
from qm_pipeline.lib.flex.sample.money import ONE, ZERO, derived
from qm_pipeline.lib.flex.sample.records import ClosedLot, Movement


@dataclass
class OpenLot:
    quantity: Decimal  # long lots positive, short lots negative
    cost: Decimal  # basis money incl. opening commission: long +, short -
    price: Decimal  # opening trade price (per unit, restated by splits)
    opened: datetime
    transaction_id: str  # originatingTransactionID
    order_id: str  # originatingOrderID


@dataclass(frozen=True)
class Fill:
    """What a fill did to the lots: the fields of the `Trade` row that depend on history."""

    closed: tuple[ClosedLot, ...]
    cost: Decimal
    realized: Decimal
    open_close: str
    rolled_basis: Decimal  # basis carried out of the closed lots when `roll_basis` is set


class Portfolio:
    def __init__(self) -> None:
        self.cash: dict[str, Decimal] = {}
        self._lots: dict[Instrument, deque[OpenLot]] = {}
        self._positions: dict[Instrument, Decimal] = {}
        self._movements: list[Movement] = []
        self._unsettled: deque[tuple[date, str, Decimal]] = deque()
        self._kept: dict[Instrument, tuple[Decimal | None, date]] = {}

    # --- cash -------------------------------------------------------------------------------
    def post(self, currency: str, line: str, amount: Decimal) -> None:
        """Change a currency's cash; every change is tagged with its CashReport line."""
        if amount:
            self.cash[currency] = self.cash.get(currency, ZERO) + amount
            self._movements.append(Movement(currency, line, amount))

    def take_movements(self) -> list[Movement]:
        movements, self._movements = self._movements, []
        return movements

    def settle_later(self, settle_date: date, currency: str, amount: Decimal) -> None:
        self._unsettled.append((settle_date, currency, amount))

    def settle(self, as_of: date) -> None:
        """Forget trade cash settled by the end of `as_of` (entries are roughly in date order:
        a later T+1 may sit behind a T+2, and waits a day longer)."""
        while self._unsettled and self._unsettled[0][0] <= as_of:
            self._unsettled.popleft()

    def unsettled(self, currency: str, as_of: date) -> Decimal:
        """Trade cash of `currency` booked but not yet settled at the end of `as_of`."""
        return sum(
            (amt for day, ccy, amt in self._unsettled if ccy == currency and day > as_of), ZERO
        )

    # --- positions --------------------------------------------------------------------------
    def position(self, instrument: Instrument) -> Decimal:
        return self._positions.get(instrument, ZERO)

    def holdings(self) -> list[tuple[Instrument, Decimal]]:
        return list(self._positions.items())

    def lots(self, instrument: Instrument) -> tuple[OpenLot, ...]:
        return tuple(self._lots.get(instrument, ()))

    def keep(self, instrument: Instrument, quantity: Decimal | None, until: date) -> None:
        """The account holds on to `quantity` of `instrument` (None: all of it) before
        `until`: the trader sells only what is above it, and FIFO still decides which lots
        a sale takes."""
        self._kept[instrument] = (quantity, until)

    def kept(self, instrument: Instrument, day: date) -> Decimal:
        quantity, until = self._kept.get(instrument, (ZERO, day))
        if day >= until:
            return ZERO
        return self.position(instrument) if quantity is None else quantity

    def _set_position(self, instrument: Instrument, quantity: Decimal) -> None:
        if quantity:
            self._positions[instrument] = quantity
        else:
            self._positions.pop(instrument, None)
            self._lots.pop(instrument, None)

    def fill(
        self,
        instrument: Instrument,
        quantity: Decimal,
        net_cash: Decimal,
        price: Decimal,
        when: datetime,
        transaction_id: str,
        order_id: str,
        *,
        roll_basis: bool = False,
        basis_adjustment: Decimal = ZERO,
    ) -> Fill:
        """Apply a fill of signed `quantity` whose cash effect is `net_cash`.

        The closing part gets the pro-rata share of `net_cash`; the opening part (if any)
        becomes a new lot whose basis is minus its share of `net_cash` plus
        `basis_adjustment` (an option's rolled basis on assignment or exercise).
        """
        lots = self._lots.setdefault(instrument, deque())
        held = self.position(instrument)
        size = abs(quantity)
        closing = min(size, abs(held)) if held and (held > 0) != (quantity > 0) else ZERO
        opening = size - closing
        if basis_adjustment and not opening:
            raise ValueError("a basis adjustment needs an opening fill")
        net_close = net_cash if not opening else derived(net_cash * closing / size)
        closed: list[ClosedLot] = []
        remaining, net_left, closed_cost = closing, net_close, ZERO
        while remaining:
            lot = lots[0]
            side = ONE if lot.quantity > 0 else -ONE
            take = min(remaining, abs(lot.quantity))
            if take == abs(lot.quantity):
                cost = lot.cost
                lots.popleft()
            else:
                cost = derived(lot.cost * take / abs(lot.quantity))
                lot.cost -= cost
                lot.quantity -= side * take
            remaining -= take
            net = net_left if not remaining else derived(net_close * take / closing)
            net_left -= net
            closed_cost += cost
            realized = ZERO if roll_basis else net - cost
            closed.append(
                ClosedLot(side * take, cost, realized, lot.price, lot.opened, lot.transaction_id)
            )
        open_cost = ZERO
        if opening:
            open_cost = net_close - net_cash + basis_adjustment
            side = ONE if quantity > 0 else -ONE
            lots.append(OpenLot(side * opening, open_cost, price, when, transaction_id, order_id))
        self._set_position(instrument, held + quantity)
        open_close = "O" if not closing else "C" if not opening else "C;O"
        return Fill(
            closed=tuple(closed),
            cost=open_cost - closed_cost,
            realized=sum((c.realized for c in closed), ZERO),
            open_close=open_close,
            rolled_basis=closed_cost if roll_basis else ZERO,
        )

    def split(self, instrument: Instrument, ratio: int) -> Decimal:
        """Forward split: lots keep their basis, quantity scales up. Returns shares added."""
        held = self.position(instrument)
        for lot in self._lots.get(instrument, ()):
            lot.quantity *= ratio
            lot.price = derived(lot.price / ratio)
        self._set_position(instrument, held * ratio)
        return held * (ratio - 1)

    def receive(self, instrument: Instrument, lots: list[OpenLot]) -> None:
        """A transfer in: lots arrive with their own open dates and basis."""
        queue = self._lots.setdefault(instrument, deque())
        # FIFO is by acquisition: transferred lots are older than anything bought here.
        self._lots[instrument] = deque(sorted([*queue, *lots], key=lambda lot: lot.opened))
        added = sum((lot.quantity for lot in lots), ZERO)
        self._set_position(instrument, self.position(instrument) + added)
