"""The monthly option program: short puts on one stock, long calls on another.

On the first business day of each month the account sells puts and buys calls expiring on
that month's third Friday; now and then it sells one call early (a partial close). At expiry
IB books each contract as a `BookTrade` and reports it in `OptionEAE` too (DOMAIN.md: replay
one of them): out of the money it expires (notes Ep); in the money a short put is assigned
(A) and a long call exercised (Ex), and the stock is delivered at the strike by a second
BookTrade whose lot carries the option's basis. Strikes are picked knowing the close at
expiry (the market is precomputed) so that every fourth month ends in the money on purpose:
any spec covering a few months shows expiries, an assignment and an exercise.
"""

from __future__ import annotations

import random
from datetime import date, datetime
from decimal import Decimal

from qm_pipeline.lib.flex.sample import dates
from qm_pipeline.lib.flex.sample.instruments import (
    CALL_UNDERLYING,
    PUT_UNDERLYING,
    Instrument,
    Stock,
    option,
)
from qm_pipeline.lib.flex.sample.market import Market
from qm_pipeline.lib.flex.sample.money import ONE, ZERO, ceil_to, cents, floor_to
from qm_pipeline.lib.flex.sample.portfolio import Portfolio
from qm_pipeline.lib.flex.sample.records import OptionEventRecord, TradeRecord
from qm_pipeline.lib.flex.sample.trading import BOOKING_TIME, Booker, Clock, commission

_NOTES = {"Expiration": "Ep", "Assignment": "A", "Exercise": "Ex"}
_VENUES = ("CBOE", "PHLX", "ISE", "AMEX", "BOX")
_MIN_PREMIUM = Decimal("0.05")
_NOTIONAL_WEIGHT = Decimal("0.06")  # of NAV, per leg
_TRIM_PROBABILITY = 0.1


def _strike_step(price: Decimal) -> Decimal:
    return Decimal(5) if price >= 100 else ONE


class OptionDesk:
    def __init__(
        self,
        market: Market,
        portfolio: Portfolio,
        booker: Booker,
        rng: random.Random,
        start: date,
    ) -> None:
        self._market = market
        self._portfolio = portfolio
        self._booker = booker
        self._rng = rng
        self._start = start

    def opens(self, day: date, nav: Decimal, clock: Clock) -> list[TradeRecord]:
        """Write this month's puts and buy its calls on its first business day."""
        expiry = dates.third_friday(day.year, day.month)
        if day != dates.on_or_after(dates.month_start(day)) or (expiry - day).days < 7:
            return []
        month = (day.year - self._start.year) * 12 + day.month - self._start.month
        put = self._contract(PUT_UNDERLYING, day, expiry, "P", in_the_money=month % 4 == 1)
        call = self._contract(CALL_UNDERLYING, day, expiry, "C", in_the_money=month % 4 == 2)
        # Two calls at least, so one can be sold early; puts stay small (assignment is cash).
        return [
            self._trade(put, -self._contracts(put, nav, minimum=1), day, clock),
            self._trade(call, self._contracts(call, nav, minimum=2), day, clock),
        ]

    def trim(self, day: date, clock: Clock) -> list[TradeRecord]:
        """Sometimes sell one of two or more long calls before expiry: a partial close."""
        if self._rng.random() >= _TRIM_PROBABILITY:
            return []
        for instrument, held in self._portfolio.holdings():
            if instrument.is_option and held >= 2 and instrument.expiry and instrument.expiry > day:
                return [self._trade(instrument, -ONE, day, clock)]
        return []

    def expire(self, day: date) -> tuple[list[TradeRecord], list[OptionEventRecord]]:
        """Book the contracts expiring today: expiry, assignment or exercise."""
        trades: list[TradeRecord] = []
        events: list[OptionEventRecord] = []
        when = datetime.combine(day, BOOKING_TIME)
        for instrument, held in self._portfolio.holdings():
            if not instrument.is_option or instrument.expiry != day:
                continue
            assert instrument.underlying is not None and instrument.strike is not None
            intrinsic = self._market.close(instrument, day)
            kind = "Expiration" if not intrinsic else "Assignment" if held < 0 else "Exercise"
            closing = self._booker.book(
                instrument, -held, ZERO, when,
                fee=ZERO, notes=_NOTES[kind], roll_basis=kind != "Expiration",
            )
            trades.append(closing)
            events.append(self._event(kind, closing, mark=ZERO))
            if kind == "Expiration":
                continue
            # Short puts and long calls take delivery; short calls and long puts deliver.
            receives = (instrument.put_call == "P") == (held < 0)
            shares = abs(held) * instrument.multiplier * (ONE if receives else -ONE)
            delivery = self._booker.book(
                instrument.underlying, shares, instrument.strike, when,
                fee=ZERO, notes=_NOTES[kind], basis_adjustment=-closing.cost,
            )
            trades.append(delivery)
            events.append(
                self._event("Buy" if receives else "Sell", delivery, mark=delivery.close_price)
            )
        return trades, events

    def _contract(
        self, underlying: Stock, day: date, expiry: date, put_call: str, *, in_the_money: bool
    ) -> Instrument:
        spot = self._market.close(underlying.instrument, day)
        final = self._market.close(underlying.instrument, expiry)
        step = _strike_step(spot)
        if put_call == "P":
            strike = (
                ceil_to(final * Decimal("1.02"), step)
                if in_the_money
                else floor_to(min(spot, final) * Decimal("0.95"), step)
            )
        else:
            strike = (
                floor_to(final * Decimal("0.98"), step)
                if in_the_money
                else ceil_to(max(spot, final) * Decimal("1.05"), step)
            )
        return option(underlying, expiry, max(strike, step), put_call)

    def _contracts(self, contract: Instrument, nav: Decimal, *, minimum: int) -> Decimal:
        assert contract.strike is not None
        notional = contract.strike * contract.multiplier
        wanted = floor_to(nav * _NOTIONAL_WEIGHT / notional, ONE)
        return min(Decimal(4), max(Decimal(minimum), wanted))

    def _trade(
        self, contract: Instrument, quantity: Decimal, day: date, clock: Clock
    ) -> TradeRecord:
        noise = Decimal(self._rng.randint(-10, 10)) / 1000
        price = max(_MIN_PREMIUM, cents(self._market.close(contract, day) * (ONE + noise)))
        return self._booker.book(
            contract, quantity, price, clock.next(),
            fee=commission(contract, quantity, price),
            exchange=self._rng.choice(_VENUES),
            order_type="LMT",
            order=self._booker.new_order(),
        )

    @staticmethod
    def _event(kind: str, trade: TradeRecord, *, mark: Decimal) -> OptionEventRecord:
        return OptionEventRecord(
            kind=kind,
            instrument=trade.instrument,
            day=trade.when.date(),
            quantity=trade.quantity,
            trade_price=trade.price,
            mark_price=mark,
            proceeds=trade.proceeds,
            commission=trade.commission,
            cost_basis=trade.cost,
            realized=trade.realized,
            mtm=trade.mtm,
            trade_id=trade.trade_id,
            fx_rate=trade.fx_rate,
        )
