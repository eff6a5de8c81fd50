"""The sample's calendar: business days, statement windows, expiries and settlement.

Business days are Monday to Friday; exchange holidays are ignored on purpose so the
calendar needs no data file and every spec is reproducible anywhere.
"""

from __future__ import annotations

from datetime import date, timedelta

_DAY = timedelta(days=1)
_SATURDAY = 5
_FRIDAY = 4
# US equities and listed options settle T+1 from this date (SEC rule 15c6-1), T+2 before.
_US_T1_FROM = date(2024, 5, 28)


def is_business_day(day: date) -> bool:
    return day.weekday() < _SATURDAY


def on_or_after(day: date) -> date:
    """The first business day at or after `day`."""
    while not is_business_day(day):
        day += _DAY
    return day


def before(day: date) -> date:
    """The last business day strictly before `day`."""
    day -= _DAY
    while not is_business_day(day):
        day -= _DAY
    return day


def add_business_days(day: date, count: int) -> date:
    for _ in range(count):
        day = on_or_after(day + _DAY)
    return day


def business_days(start: date, end: date) -> list[date]:
    """Business days in [start, end]."""
    days = []
    day = on_or_after(start)
    while day <= end:
        days.append(day)
        day = on_or_after(day + _DAY)
    return days


def third_friday(year: int, month: int) -> date:
    """Monthly equity option expiry."""
    first = date(year, month, 1)
    return first + timedelta(days=(_FRIDAY - first.weekday()) % 7 + 14)


def month_start(day: date) -> date:
    return day.replace(day=1)


def windows(start: date, end: date, days: int) -> list[tuple[date, date]]:
    """Consecutive [from, to] windows of at most `days` calendar days covering [start, end],
    like the requests of a Flex Web Service backfill (at most 365 days each)."""
    if days < 1:
        raise ValueError("window_days must be at least 1")
    spans = []
    while start <= end:
        stop = min(end, start + timedelta(days=days - 1))
        spans.append((start, stop))
        start = stop + _DAY
    return spans


def settlement(trade_date: date, currency: str) -> date:
    """`settleDateTarget`: T+1 for US securities from 2024-05-28, T+2 otherwise."""
    lag = 1 if currency == "USD" and trade_date >= _US_T1_FROM else 2
    return add_business_days(trade_date, lag)
