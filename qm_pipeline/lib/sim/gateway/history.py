"""Which daily bars a REQ_HISTORICAL_DATA asks for: its end date and its duration.

TWS reads `endDateTime` as `YYYYMMDD HH:MM:SS[ zone]` or `YYYYMMDD-HH:MM:SS` (UTC), empty
meaning now, and `durationStr` as `<n> <unit>` with unit S, D, W, M or Y. For daily bars
only the dates matter: the window is the `n` units that end on the end date.
"""

from __future__ import annotations

import re
from calendar import monthrange
from datetime import date, datetime, timedelta

from qm_pipeline.lib.sim.gateway.state import Bar

_DURATION = re.compile(r"^\s*(\d+)\s+([SDWMY])\s*$")


class BadHistoryRequest(ValueError):
    """The request is not one TWS would accept (its text is what TWS's error says)."""


def end_date(text: str, now: datetime) -> date:
    if not text.strip():
        return now.date()
    try:
        return datetime.strptime(text.strip()[:8], "%Y%m%d").date()
    except ValueError as exc:
        raise BadHistoryRequest(f"invalid end date/time {text!r}") from exc


def start_date(duration: str, end: date) -> date:
    """The first date inside the window (exclusive lower bound plus one day)."""
    match = _DURATION.match(duration)
    if not match:
        raise BadHistoryRequest(f"invalid duration {duration!r}: expected '<n> S|D|W|M|Y'")
    n, unit = int(match[1]), match[2]
    if unit in "MY":
        return _months_back(end, n * (12 if unit == "Y" else 1)) + timedelta(days=1)
    days = {"S": -(-n // 86_400), "D": n, "W": 7 * n}[unit]
    return end - timedelta(days=max(days, 1) - 1)


def _months_back(day: date, months: int) -> date:
    """The same day of the month `months` earlier (the month's last day if it is shorter)."""
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(day.day, monthrange(year, month + 1)[1]))


def window(bars: list[Bar], start: date, end: date) -> list[Bar]:
    return [b for b in bars if start <= b.day <= end]
