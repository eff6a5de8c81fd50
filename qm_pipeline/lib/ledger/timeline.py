"""Time in the ledger: integer microseconds and day numbers, and the sort key of events.

Inside a replay a timestamp is an int of microseconds since 1970-01-01 (naive, the
report's own clock) and a date is an int of days since then, which is what Arrow
stores: conversion is a cast, comparisons and the 30-day wash window are integer
arithmetic.

Every event sorts by `(ts, priority, tiebreak)`. The tiebreak is the transaction id
left-padded with zeros, so numeric Flex ids order numerically and the order never
depends on the order rows arrived in (replay determinism).
"""

from __future__ import annotations

import datetime as dt

import numpy as np

US_PER_DAY = 86_400_000_000
_EPOCH = dt.date(1970, 1, 1)
_EPOCH_ORDINAL = _EPOCH.toordinal()
TIEBREAK_WIDTH = 20

# Same-timestamp order. A transfer out precedes the matching transfer in; splits apply
# before trades stamped with the same second; an option's expiry, exercise or
# assignment comes after that day's trades in it (IB books them after the close);
# marks are end-of-day values.
PRIO_TRANSFER_OUT = 0
PRIO_TRANSFER_IN = 1
PRIO_CORPORATE_ACTION = 2
PRIO_TRADE = 3
PRIO_OPTION_EVENT = 4
PRIO_MARK = 5


def tiebreak(transaction_id: str) -> str:
    """Sort key of an id; Arrow's `utf8_lpad(width=TIEBREAK_WIDTH, padding="0")` twin."""
    return transaction_id.rjust(TIEBREAK_WIDTH, "0")


def day_of(ts: int) -> int:
    return ts // US_PER_DAY


def end_of_day(day: int) -> int:
    """Timestamp of a date-only event: last microsecond of its day."""
    return (day + 1) * US_PER_DAY - 1


def to_date(day: int) -> dt.date:
    return dt.date.fromordinal(_EPOCH_ORDINAL + day)


def to_datetime(ts: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=ts)


def day_number(date: dt.date) -> int:
    return date.toordinal() - _EPOCH_ORDINAL


def first_long_term_days(holding_start: np.ndarray) -> np.ndarray:
    """First sale day that is long term for holding periods starting on the days
    `holding_start` (day numbers, int64).

    More than one year held is long term (IRC 1222): a sale on the anniversary is still
    short term, the day after is long. A 29 February start has its anniversary on
    28 February (the last day of that month a year later).
    """
    start = holding_start.astype("datetime64[D]")
    month = start.astype("datetime64[M]")
    in_month = start - month.astype("datetime64[D]")
    anniversary = np.minimum((month + 12).astype("datetime64[D]") + in_month,
                             (month + 13).astype("datetime64[D]") - 1)
    return anniversary.astype(np.int64) + 1
