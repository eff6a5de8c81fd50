"""The reporting windows of `analytics.performance`: MTD, QTD, YTD, 1Y, 3Y, since
inception and each calendar year, for an as-of date and an inception date.

A window is the inclusive range of return dates it covers: a window starting on 1 March
links the returns dated 1 March on, i.e. it starts from the close of the last day of
February. Inception (the first NAV date) has no return, so every window starts there at
the earliest. To-date windows and calendar years are clipped to inception (the first
calendar year is then partial, as is the current one); trailing 1Y and 3Y windows exist
only when the history covers them, since a "1Y" figure over eight months would mislead.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd

from qm_pipeline.lib.analytics.boundary import DateLike, to_timestamp


@dataclass(frozen=True)
class Window:
    """A named range of return dates, both ends included."""

    name: str  # MTD, QTD, YTD, 1Y, 3Y, SI or a year such as 2023
    start: dt.date
    end: dt.date


def windows(as_of: DateLike, inception: DateLike) -> list[Window]:
    """Every window to report as of `as_of` for a history starting at `inception`."""
    end, first = to_timestamp(as_of).date(), to_timestamp(inception).date()
    if end < first:
        return []
    quarter_month = 3 * ((end.month - 1) // 3) + 1
    to_date = {
        "MTD": end.replace(day=1),
        "QTD": end.replace(month=quarter_month, day=1),
        "YTD": end.replace(month=1, day=1),
    }
    found = [Window(name, max(start, first), end) for name, start in to_date.items()]
    for years in (1, 3):
        # The close the window starts from: a year (three) before as_of.
        opening = (pd.Timestamp(end) - pd.DateOffset(years=years)).date()
        if opening >= first:
            found.append(Window(f"{years}Y", opening + dt.timedelta(days=1), end))
    found.append(Window("SI", first, end))
    return found + [_calendar_year(year, first, end) for year in range(first.year, end.year + 1)]


def _calendar_year(year: int, first: dt.date, end: dt.date) -> Window:
    start, last = max(dt.date(year, 1, 1), first), min(dt.date(year, 12, 31), end)
    return Window(str(year), start, last)
