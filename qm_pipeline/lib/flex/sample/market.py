"""The simulated market every account trades in: closes, EUR.USD, a split, dividends, option marks.

One `Market` per spec, shared by all accounts, so two accounts holding the same conid on the
same day mark it at the same price. Paths are seeded and built with integer draws and
`Decimal` arithmetic only (no floats, no platform maths), so a spec gives the same prices on
every machine.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from qm_pipeline.lib.flex.sample import dates
from qm_pipeline.lib.flex.sample.instruments import SPLIT_STOCK, STOCKS, Instrument, Stock
from qm_pipeline.lib.flex.sample.money import (
    CENT,
    FX_QUANTUM,
    ONE,
    ZERO,
    cents,
    decimal_context,
)

SUPPORTED_BASES = ("USD", "EUR")
CURRENCIES = ("EUR", "USD")  # alphabetical, the order of per-currency rows
_SPLIT_RATIO = 4
_DAILY_DRIFT = Decimal("0.0006")  # above sigma^2/2 for most names: most paths drift up
_EURUSD_START = Decimal("1.09500")
_EURUSD_DAILY_VOL = Decimal("0.004")
# Irwin-Hall: the sum of four uniform draws on 0..1000, centred, over its standard deviation.
_DRAWS, _DRAW_MAX, _DRAW_SD = 4, 1000, Decimal("577.9")
# Enough path past the spec's end to know the close on the last option expiry.
_LOOKAHEAD = timedelta(days=45)
_ATM_TIME_VALUE = Decimal("0.4")  # ~ 1/sqrt(2*pi): Black-Scholes at the money


@dataclass(frozen=True)
class Split:
    stock: Stock
    ex_date: date
    ratio: int


@dataclass(frozen=True)
class Dividend:
    stock: Stock
    ex_date: date
    pay_date: date
    rate: Decimal  # per share, in the stock's currency
    action_id: str  # IB's corporate-action id: groups the dividend with its tax


def _normal(rng: random.Random) -> Decimal:
    draws = sum(rng.randrange(_DRAW_MAX + 1) for _ in range(_DRAWS))
    return Decimal(draws - _DRAWS * _DRAW_MAX // 2) / _DRAW_SD


class Market:
    """Prices and rates by business day from the day before `start` to past `end`."""

    def __init__(self, seed: int, start: date, end: date, base_currency: str) -> None:
        if base_currency not in SUPPORTED_BASES:
            raise ValueError(f"base currency must be one of {SUPPORTED_BASES}")
        self.base_currency = base_currency
        self.days = dates.business_days(dates.before(start), end + _LOOKAHEAD)
        self._position = {day: i for i, day in enumerate(self.days)}
        self.split = Split(
            SPLIT_STOCK, dates.on_or_after(start + (end - start) * 9 // 20), _SPLIT_RATIO
        )
        rng = random.Random(f"{seed}:market")
        with decimal_context():
            self._closes = {s.instrument.conid: self._path(rng, s) for s in STOCKS}
            self._eurusd = self._fx_path(rng)
        self._stocks = {s.instrument.conid: s for s in STOCKS}
        self.dividends = tuple(
            sorted(self._dividends(start, end), key=lambda d: (d.ex_date, d.stock.index))
        )

    def _path(self, rng: random.Random, stock: Stock) -> list[Decimal]:
        vol = stock.annual_volatility / Decimal(252).sqrt()
        level = stock.start_price
        closes = []
        for day in self.days:
            if closes:
                level = max(ONE, (level * (ONE + _DAILY_DRIFT + vol * _normal(rng))))
                level = level.quantize(Decimal("0.000001"))
            split = stock is self.split.stock and day >= self.split.ex_date
            closes.append(cents(level / self.split.ratio if split else level))
        return closes

    def _fx_path(self, rng: random.Random) -> list[Decimal]:
        rate, path = _EURUSD_START, []
        for _ in self.days:
            if path:
                rate = (rate * (ONE + _EURUSD_DAILY_VOL * _normal(rng))).quantize(FX_QUANTUM)
            path.append(rate)
        return path

    def _dividends(self, start: date, end: date) -> list[Dividend]:
        found = []
        for s in STOCKS:
            months = {4: (2, 5, 8, 11), 1: (5,)}.get(s.payments_per_year, ())
            for year in range(start.year, end.year + 1):
                for month in months:
                    ex_date = dates.on_or_after(date(year, month, 8 + s.index))
                    if start <= ex_date <= end:
                        action = 150_000_000 + s.index * 100_000 + (year - 2000) * 12 + month
                        pay_date = dates.on_or_after(ex_date + timedelta(days=18))
                        found.append(Dividend(s, ex_date, pay_date, s.dividend, str(action)))
        return found

    def stock_of(self, instrument: Instrument) -> Stock:
        return self._stocks[instrument.conid]

    def close(self, instrument: Instrument, day: date) -> Decimal:
        """The day's closing price (`closePrice`, `markPrice`)."""
        if instrument.is_option:
            return self._option_mark(instrument, day)
        return self._closes[instrument.conid][self._position[day]]

    def reference(self, instrument: Instrument, day: date) -> Decimal:
        """Where the day opens: the previous close, restated for a split effective today."""
        previous = self.days[self._position[day] - 1] if self._position[day] else day
        if instrument.is_option:
            return self._option_mark(instrument, previous, as_of=day)
        price = self.close(instrument, previous)
        if instrument == self.split.stock.instrument and day == self.split.ex_date:
            price = cents(price / self.split.ratio)
        return price

    def eurusd(self, day: date) -> Decimal:
        return self._eurusd[self._position[day]]

    def rate(self, currency: str, day: date) -> Decimal:
        """`fxRateToBase`: one unit of `currency` in the base currency."""
        if currency == self.base_currency:
            return ONE
        eurusd = self.eurusd(day)
        if currency == "EUR":
            return eurusd
        return (ONE / eurusd).quantize(FX_QUANTUM)

    def _option_mark(self, option: Instrument, day: date, as_of: date | None = None) -> Decimal:
        """Intrinsic value plus a time value that peaks at the money and fades with moneyness
        and time: close enough to Black-Scholes for a quiet sample, and pure `Decimal`."""
        assert option.underlying is not None and option.strike is not None
        assert option.expiry is not None
        spot = self.close(option.underlying, day)
        moneyness = spot - option.strike if option.put_call == "C" else option.strike - spot
        intrinsic = max(moneyness, ZERO)
        days_left = (option.expiry - (as_of or day)).days
        if days_left <= 0:
            return cents(intrinsic)
        with decimal_context():
            vol = self.stock_of(option.underlying).annual_volatility
            spread = spot * vol * (Decimal(days_left) / 365).sqrt()
            distance = moneyness / spread
            time_value = _ATM_TIME_VALUE * spread / (ONE + distance * distance)
        return max(cents(intrinsic + time_value), CENT)
