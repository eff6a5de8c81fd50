"""One account's simulation, advanced a business day at a time.

The simulator lives for the whole spec and is advanced window by window, so a later window
starts exactly where the previous one ended: same lots, cash, accruals and id sequences.
Each day runs in a fixed order: events booked before the open (`events.Lifecycle`), the
option program's opens, the random orders, the day's option expiries after the close,
interest accrual, then the end-of-day valuation that becomes the EquitySummary row.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import date
from decimal import Decimal

from qm_pipeline.lib.flex.sample import dates
from qm_pipeline.lib.flex.sample.events import Lifecycle
from qm_pipeline.lib.flex.sample.ids import IdSource
from qm_pipeline.lib.flex.sample.instruments import Instrument
from qm_pipeline.lib.flex.sample.market import CURRENCIES, Market
from qm_pipeline.lib.flex.sample.money import HUNDRED, ZERO, cents, derived, to_base
from qm_pipeline.lib.flex.sample.options import OptionDesk
from qm_pipeline.lib.flex.sample.portfolio import OpenLot, Portfolio
from qm_pipeline.lib.flex.sample.records import DayResult, PositionLine, Valuation
from qm_pipeline.lib.flex.sample.spec import AccountProfile, SampleSpec
from qm_pipeline.lib.flex.sample.trading import Booker, Clock, Trader


class AccountSimulator:
    def __init__(self, spec: SampleSpec, market: Market, profile: AccountProfile) -> None:
        self.profile = profile
        self._market = market
        self._portfolio = Portfolio()
        self._rng = random.Random(f"{spec.seed}:{profile.account_id}")
        ids = IdSource(profile.index)
        booker = Booker(self._portfolio, market, ids)
        self._lifecycle = Lifecycle(spec, market, profile, self._portfolio, ids)
        self._options = OptionDesk(market, self._portfolio, booker, self._rng, spec.start)
        self._trader = Trader(market, self._portfolio, booker, self._rng)
        self._slots = spec.trades_per_day
        self._first_day = dates.on_or_after(spec.start)
        prior = market.days[0]
        self.valuation = Valuation(prior, self._rates(prior), {}, {})

    def _rates(self, day: date) -> dict[str, Decimal]:
        return {currency: self._market.rate(currency, day) for currency in CURRENCIES}

    def accrued_interest(self) -> dict[str, Decimal]:
        return {ccy: self._lifecycle.interest.balance(ccy) for ccy in CURRENCIES}

    def unsettled(self) -> dict[str, Decimal]:
        """Trade cash not yet settled at the last valuation (for `endingSettledCash`)."""
        return {ccy: self._portfolio.unsettled(ccy, self.valuation.day) for ccy in CURRENCIES}

    def instruments(self) -> list[Instrument]:
        return [instrument for instrument, _ in self._portfolio.holdings()]

    def run_day(self, day: date) -> DayResult:
        result = DayResult(day, self._rates(day))
        self._lifecycle.start_of_day(day, result, self.valuation.total)
        if self._slots:
            clock = Clock(day, self._rng, self._slots)
            nav = self._nav(day, result.rates)
            if day == self._first_day:
                result.trades += self._trader.build_core(day, nav, clock)
            result.trades += self._options.opens(day, nav, clock)
            result.trades += self._options.trim(day, clock)
            remaining = max(0, self._slots - len(result.trades))
            result.trades += self._trader.orders(day, remaining, nav, clock)
        booked, result.option_events = self._options.expire(day)
        result.trades += booked
        self._lifecycle.end_of_day(day, result)
        result.movements = self._portfolio.take_movements()
        self._portfolio.settle(day)
        self.valuation = result.valuation = self._value(day, result.rates)
        return result

    def _nav(self, day: date, rates: dict[str, Decimal]) -> Decimal:
        """NAV at the open, in base: what the day's orders are sized against."""
        cash = sum((amount * rates[ccy] for ccy, amount in self._portfolio.cash.items()), ZERO)
        positions = sum(
            (
                held * self._market.reference(i, day) * i.multiplier * rates[i.currency]
                for i, held in self._portfolio.holdings()
            ),
            ZERO,
        )
        return max(cash + positions, ZERO)

    def _value(self, day: date, rates: dict[str, Decimal]) -> Valuation:
        """Cash and positions at the day's close; each (currency, class, side) bucket is
        converted to base once, so the printed parts add up to the printed total."""
        cash = dict(sorted(self._portfolio.cash.items()))
        buckets: dict[tuple[str, str, bool], Decimal] = defaultdict(Decimal)
        by_currency: dict[str, Decimal] = defaultdict(Decimal)
        for instrument, held in self._portfolio.holdings():
            value = held * self._market.close(instrument, day) * instrument.multiplier
            buckets[(instrument.currency, instrument.category, held > 0)] += value
            by_currency[instrument.currency] += value

        def total(category: str, long: bool) -> Decimal:
            return sum(
                (to_base(v, rates[c]) for (c, k, side), v in buckets.items()
                 if k == category and side == long),
                ZERO,
            )

        cash_base = {ccy: to_base(amount, rates[ccy]) for ccy, amount in cash.items()}
        return Valuation(
            day=day,
            rates=rates,
            cash_by_currency=cash,
            positions_by_currency=dict(sorted(by_currency.items())),
            cash_long=sum((v for v in cash_base.values() if v > 0), ZERO),
            cash_short=sum((v for v in cash_base.values() if v < 0), ZERO),
            stock_long=total("STK", True),
            stock_short=total("STK", False),
            options_long=total("OPT", True),
            options_short=total("OPT", False),
        )

    def open_positions(self) -> list[PositionLine]:
        """`OpenPositions` at the last valuation: a SUMMARY row per conid, then its lots."""
        lines = []
        holdings = sorted(self._portfolio.holdings(), key=lambda h: (h[0].category, h[0].symbol))
        for instrument, held in holdings:
            lots = self._portfolio.lots(instrument)
            lines.append(self._line(instrument, held, sum((lot.cost for lot in lots), ZERO)))
            lines += [self._line(instrument, lot.quantity, lot.cost, lot) for lot in lots]
        return lines

    def _line(
        self, instrument: Instrument, quantity: Decimal, basis: Decimal, lot: OpenLot | None = None
    ) -> PositionLine:
        day, nav = self.valuation.day, self.valuation.total
        mark = self._market.close(instrument, day)
        rate = self.valuation.rates[instrument.currency]
        value = quantity * mark * instrument.multiplier
        return PositionLine(
            level="LOT" if lot else "SUMMARY",
            instrument=instrument,
            day=day,
            quantity=quantity,
            mark=mark,
            value=value,
            cost_basis=basis,
            cost_price=derived(basis / (quantity * instrument.multiplier)),
            fx_rate=rate,
            percent_of_nav=cents(to_base(value, rate) / nav * HUNDRED) if nav > 0 else ZERO,
            opened=lot.opened if lot else None,
            open_transaction_id=lot.transaction_id if lot else "",
            open_order_id=lot.order_id if lot else "",
        )
