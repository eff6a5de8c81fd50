"""Executions: IB's commission schedule, booking fills into `Trade` records, the random trader.

The trader is random but bounded ("a quiet market"): buys are sized to the cash left above
a reserve, short stock is capped at a share of NAV, and only the stocks cast as shortable are
ever shorted. It still produces what a ledger must cope with: partial and full closes,
shorts and covers, a long flipped to a short in one fill (openCloseIndicator C;O), orders
filled in two executions that share a tradeID, and buy-backs within 30 days of a sale at a
loss (wash-sale candidates).
"""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from qm_pipeline.lib.flex.sample import dates
from qm_pipeline.lib.flex.sample.ids import IdSource
from qm_pipeline.lib.flex.sample.instruments import SPLIT_STOCK, STOCKS, Instrument, Stock, stock
from qm_pipeline.lib.flex.sample.market import Market
from qm_pipeline.lib.flex.sample.money import CENT, ONE, ZERO, cents, floor_to
from qm_pipeline.lib.flex.sample.portfolio import Portfolio
from qm_pipeline.lib.flex.sample.records import TradeRecord

BOOKING_TIME = time(16, 20)  # when IB books expiries, assignments and exercises
_SESSION_SECONDS = 6 * 3600 + 1800
_CASH_RESERVE = Decimal("0.05")  # of NAV, kept in cash when buying
_SHORT_CAP = Decimal("0.15")  # of NAV, the most short stock the trader holds
_LOAN_CAP = Decimal("0.25")  # of NAV, the most it borrows in one currency to buy in it
_WASH_WINDOW_DAYS = 30
_US_VENUES = ("NASDAQ", "NYSE", "ARCA", "BATS", "IBKRATS", "DARK")
_CORE = (("NVLT", Decimal("0.06")), ("LUMF", Decimal("0.04")), ("MDWL", Decimal("0.03")))


class Clock:
    """Execution times of one day: increasing, inside the regular session (09:30-16:00).

    Gaps are sized for the day's orders plus a few scheduled ones and split fills, so the
    times spread over the session; the cap only matters on an unusually busy day.
    """

    def __init__(self, day: date, rng: random.Random, slots: int) -> None:
        self._now = datetime.combine(day, time(9, 30))
        self._last = datetime.combine(day, time(15, 59, 59))
        self._max_gap = max(2, _SESSION_SECONDS // (slots + 8))
        self._rng = rng

    def next(self) -> datetime:
        gap = timedelta(seconds=self._rng.randint(1, self._max_gap))
        self._now = min(self._now + gap, self._last)
        return self._now


def commission(instrument: Instrument, quantity: Decimal, price: Decimal) -> Decimal:
    """IB Pro fixed rates: USD 0.005/share (min 1, max 1% of value), options 0.65/contract
    (min 1), European stocks 0.05% of value (min 1.25). Returned negative, as IB prints it."""
    units = abs(quantity)
    if instrument.is_option:
        fee = max(ONE, Decimal("0.65") * units)
    elif instrument.currency == "USD":
        fee = min(max(ONE, Decimal("0.005") * units), units * price / 100)
    else:
        value_fee = (units * price * Decimal("0.0005")).quantize(Decimal("0.0001"), ROUND_HALF_UP)
        fee = max(Decimal("1.25"), value_fee)
    return -fee


class Booker:
    """Turns a fill into cash movements, FIFO lot changes and its `Trade` record."""

    def __init__(self, portfolio: Portfolio, market: Market, ids: IdSource) -> None:
        self._portfolio = portfolio
        self._market = market
        self._ids = ids

    def new_order(self) -> tuple[str, str]:
        """(tradeID, ibOrderID) shared by the executions of one order."""
        return self._ids.trade(), self._ids.order()

    def book(
        self,
        instrument: Instrument,
        quantity: Decimal,
        price: Decimal,
        when: datetime,
        *,
        fee: Decimal,
        exchange: str = "--",
        order_type: str = "",
        notes: str = "",
        order: tuple[str, str] | None = None,
        roll_basis: bool = False,
        basis_adjustment: Decimal = ZERO,
    ) -> TradeRecord:
        """Book an execution; without `order` it is a BookTrade (expiry, assignment...)."""
        day = when.date()
        currency = instrument.currency
        proceeds = -quantity * price * instrument.multiplier
        net_cash = proceeds + fee
        transaction_id = self._ids.transaction()
        trade_id, order_id = order or (self._ids.trade(), "")
        fill = self._portfolio.fill(
            instrument, quantity, net_cash, price, when, transaction_id, order_id,
            roll_basis=roll_basis, basis_adjustment=basis_adjustment,
        )
        self._portfolio.post(
            currency, "netTradesSales" if proceeds > 0 else "netTradesPurchases", proceeds
        )
        self._portfolio.post(currency, "commissions", fee)
        settle = dates.settlement(day, currency)
        self._portfolio.settle_later(settle, currency, net_cash)
        close = self._market.close(instrument, day)
        return TradeRecord(
            instrument=instrument,
            when=when,
            settle=settle,
            transaction_type="ExchTrade" if order else "BookTrade",
            exchange=exchange,
            order_type=order_type,
            quantity=quantity,
            price=price,
            proceeds=proceeds,
            commission=fee,
            net_cash=net_cash,
            cost=fill.cost,
            realized=fill.realized,
            close_price=close,
            mtm=(close - price) * quantity * instrument.multiplier,
            open_close=fill.open_close,
            notes=notes,
            transaction_id=transaction_id,
            trade_id=trade_id,
            order_id=order_id,
            exec_id=self._ids.execution() if order else "",
            fx_rate=self._market.rate(currency, day),
            lots=fill.closed,
        )


class Trader:
    """Chooses and executes the day's random stock orders for one account."""

    def __init__(
        self, market: Market, portfolio: Portfolio, booker: Booker, rng: random.Random
    ) -> None:
        self._market = market
        self._portfolio = portfolio
        self._booker = booker
        self._rng = rng
        self._loss_exits: dict[Instrument, date] = {}

    def build_core(self, day: date, nav: Decimal, clock: Clock) -> list[TradeRecord]:
        """First-day buys: the stock that will split (so the split hits a held position) and
        a euro stock (so the account borrows euros and pays debit interest)."""
        records = []
        for symbol, weight in _CORE:
            instrument = stock(symbol).instrument
            price = self._price(instrument, day)
            unit = self._unit(instrument, day, price)
            wanted = floor_to(nav * weight / unit, ONE)
            quantity = self._affordable(day, wanted, instrument, unit, nav)
            if quantity:
                records += self._execute(instrument, quantity, price, day, clock)
                if instrument == SPLIT_STOCK.instrument:  # held through the split
                    self._portfolio.keep(instrument, quantity, self._market.split.ex_date)
        return records

    def orders(self, day: date, count: int, nav: Decimal, clock: Clock) -> list[TradeRecord]:
        records: list[TradeRecord] = []
        for _ in range(count):
            records += self._order(day, nav, clock)
        return records

    def _order(self, day: date, nav: Decimal, clock: Clock) -> list[TradeRecord]:
        buyback = self._buyback(day)
        chosen = buyback or self._rng.choice(STOCKS)
        instrument = chosen.instrument
        price = self._price(instrument, day)
        unit = self._unit(instrument, day, price)
        budget = nav * Decimal(self._rng.randint(10, 40)) / 1000  # 1% to 4% of NAV
        target = max(ONE, floor_to(budget / unit, ONE))
        if buyback:
            quantity = self._affordable(day, target, instrument, unit, nav)
        else:
            quantity = self._decide(chosen, day, target, unit, nav)
        if not quantity:
            return self._raise_cash(day, budget, clock)
        return self._execute(instrument, quantity, price, day, clock)

    def _decide(
        self, chosen: Stock, day: date, target: Decimal, unit: Decimal, nav: Decimal
    ) -> Decimal:
        """Signed quantity for one order on `chosen` given what the account holds."""
        rng = self._rng
        instrument = chosen.instrument
        held = self._portfolio.position(instrument)
        free = self._free(chosen, day)
        short_value = target * unit
        if held > 0:
            if free and rng.random() < 0.5:
                roll = rng.random()
                if chosen.shortable and roll < 0.15 and self._short_room(day, nav, short_value):
                    return -(held + target)  # sells the long and opens a short: C;O
                return -free if roll < 0.4 else -min(free, target)
            return self._affordable(day, target, instrument, unit, nav)
        if held < 0:
            if rng.random() < 0.6 or not self._short_room(day, nav, short_value):
                cover = -held if rng.random() < 0.4 else min(-held, target)
                return self._affordable(day, cover, instrument, unit, nav)
            return -target
        if chosen.shortable and rng.random() < 0.35 and self._short_room(day, nav, short_value):
            return -target
        return self._affordable(day, target, instrument, unit, nav)

    def _execute(
        self, instrument: Instrument, quantity: Decimal, price: Decimal, day: date, clock: Clock
    ) -> list[TradeRecord]:
        rng = self._rng
        order = self._booker.new_order()
        exchange = (
            rng.choice(_US_VENUES) if instrument.currency == "USD" else instrument.listing_exchange
        )
        order_type = rng.choice(("LMT", "LMT", "MKT"))
        parts = [quantity]
        if abs(quantity) >= 10 and rng.random() < 0.1:
            first = floor_to(quantity * Decimal(rng.randint(2, 8)) / 10, ONE)
            parts = [first, quantity - first]
        records = []
        for number, part in enumerate(parts):
            fill_price = price if not number else max(CENT, price + CENT * rng.choice((-1, 1)))
            record = self._booker.book(
                instrument, part, fill_price, clock.next(),
                fee=commission(instrument, part, fill_price),
                exchange=exchange,
                order_type=order_type,
                notes="P" if len(parts) > 1 else "",
                order=order,
            )
            if record.realized < 0 and any(lot.quantity > 0 for lot in record.lots):
                self._loss_exits[instrument] = day
            records.append(record)
        return records

    def _buyback(self, day: date) -> Stock | None:
        """Now and then, buy back a stock sold at a loss in the last 30 days."""
        recent = [
            instrument
            for instrument, sold in self._loss_exits.items()
            if (day - sold).days <= _WASH_WINDOW_DAYS and self._portfolio.position(instrument) >= 0
        ]
        self._loss_exits = {i: d for i, d in self._loss_exits.items() if i in recent}
        if recent and self._rng.random() < 0.3:
            return self._market.stock_of(self._rng.choice(recent))
        return None

    def _raise_cash(self, day: date, budget: Decimal, clock: Clock) -> list[TradeRecord]:
        """No cash for the buy it wanted: sell `budget` worth of the largest long instead."""
        longs = []
        for instrument, held in self._portfolio.holdings():
            if held > 0 and not instrument.is_option:
                free = self._free(self._market.stock_of(instrument), day)
                unit = self._unit(instrument, day, self._market.reference(instrument, day))
                if free:
                    longs.append((held * unit, instrument.conid, instrument, free, unit))
        if not longs:
            return []
        _, _, instrument, free, unit = max(longs)
        quantity = -min(free, max(ONE, floor_to(budget / unit, ONE)))
        return self._execute(instrument, quantity, self._price(instrument, day), day, clock)

    def _free(self, chosen: Stock, day: date) -> Decimal:
        """Shares that may be sold: those above what the account keeps (`Portfolio.keep`)."""
        held = max(self._portfolio.position(chosen.instrument), ZERO)
        return max(held - self._portfolio.kept(chosen.instrument, day), ZERO)

    def _price(self, instrument: Instrument, day: date) -> Decimal:
        """An intraday price between where the day opened and where it closes, with noise."""
        start = self._market.reference(instrument, day)
        close = self._market.close(instrument, day)
        along = Decimal(self._rng.randint(0, 1000)) / 1000
        noise = Decimal(self._rng.randint(-20, 20)) / 10_000
        return max(CENT, cents((start + (close - start) * along) * (ONE + noise)))

    def _unit(self, instrument: Instrument, day: date, price: Decimal) -> Decimal:
        """Base-currency value of one unit at `price`."""
        return price * instrument.multiplier * self._market.rate(instrument.currency, day)

    def _cash_base(self, day: date) -> Decimal:
        cash = self._portfolio.cash
        return sum((amount * self._market.rate(ccy, day) for ccy, amount in cash.items()), ZERO)

    def _affordable(
        self, day: date, wanted: Decimal, instrument: Instrument, unit: Decimal, nav: Decimal
    ) -> Decimal:
        """At most `wanted` units, as many as the cash above the reserve pays for, without
        borrowing more than the loan cap in the instrument's currency."""
        currency = instrument.currency
        own = self._portfolio.cash.get(currency, ZERO) * self._market.rate(currency, day)
        room = min(self._cash_base(day) - _CASH_RESERVE * nav, own + _LOAN_CAP * nav)
        quantity = min(wanted, floor_to(room / unit, ONE)) if room > 0 else ZERO
        return quantity if quantity >= 1 else ZERO

    def _short_room(self, day: date, nav: Decimal, adding: Decimal) -> bool:
        short = sum(
            (
                -held * self._market.reference(i, day) * self._market.rate(i.currency, day)
                for i, held in self._portfolio.holdings()
                if held < 0 and not i.is_option
            ),
            ZERO,
        )
        return short + adding <= _SHORT_CAP * nav
