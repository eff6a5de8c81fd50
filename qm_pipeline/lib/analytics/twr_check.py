"""Does our TWR reproduce IB's `ChangeInNAV.twr` for a statement period, and if not, why?

IB reports the period's time-weighted return as a percentage (DOMAIN.md §5). Linking our
daily returns over the same dates must give it within 1 basis point. When it does not, a
person needs the days to look at, so the check names them:

- weekdays of the period (and the close it starts from) with no NAV: the return across
  such a gap is still exact, but IB links each day and may have had a flow in between,
  and a missing opening NAV makes the first return reach back before the period;
- then the days whose alternative treatment closes the gap best: leaving the day's
  return out (a NAV IB did not have, a boundary day counted differently), or, on a day
  with an external flow, counting the flow at the end of the day instead of the start.
  Each comes with the gap that would remain, so the best explanation reads first.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from qm_pipeline.lib.analytics.boundary import DateLike, to_timestamp
from qm_pipeline.lib.analytics.returns import link

BP = 1e-4
MISSING_NAV, LEFT_OUT, FLOW_AT_END = "missing NAV", "return left out", "flow at end of day"


@dataclass(frozen=True)
class GapDay:
    """A day that may explain a gap: what to look at and how much it would explain."""

    date: dt.date
    reason: str  # MISSING_NAV, LEFT_OUT or FLOW_AT_END
    daily_return: float | None
    external_flow: float
    remaining_gap_bp: float | None  # our TWR minus IB's under that treatment; None if unknown


@dataclass(frozen=True)
class TwrCheck:
    """Result of comparing one period's linked TWR with IB's reported figure."""

    start: dt.date
    end: dt.date
    computed: float  # fraction, e.g. 0.0123
    reported: float  # fraction (IB's percentage / 100)
    gap_bp: float  # (computed - reported) in basis points
    matches: bool  # |gap| <= tolerance
    return_days: int
    days: tuple[GapDay, ...]  # empty when it matches


def check_period_twr(
    daily: pd.DataFrame,
    start: DateLike,
    end: DateLike,
    reported_twr_pct: float,
    tolerance_bp: float = 1.0,
    max_days: int = 5,
) -> TwrCheck:
    """Compare the linked daily returns of [start, end] with IB's `twr` (a percentage).

    `daily` is one account's `returns.portfolio_daily` table (columns `nav`,
    `external_flow`, `daily_return`, indexed by date).
    """
    first, last = to_timestamp(start), to_timestamp(end)
    period = daily.loc[first:last].dropna(subset=["daily_return"])
    computed, reported = link(period["daily_return"]), reported_twr_pct / 100.0
    gap_bp = (computed - reported) / BP
    matches = bool(abs(gap_bp) <= tolerance_bp)
    days = () if matches else _explain(daily, period, first, last, reported)[:max_days]
    return TwrCheck(first.date(), last.date(), computed, reported, gap_bp, matches,
                    len(period), tuple(days))


def _explain(daily: pd.DataFrame, period: pd.DataFrame, first: pd.Timestamp,
             last: pd.Timestamp, reported: float) -> list[GapDay]:
    missing = [GapDay(d.date(), MISSING_NAV, None, 0.0, None)
               for d in _missing_weekdays(daily.index, first, last)]
    growth = float(np.prod(1.0 + period["daily_return"]))
    candidates = [
        day for t, row in period.iterrows() for day in _alternatives(t, row, growth, reported)
    ]
    return missing + sorted(candidates, key=lambda g: abs(g.remaining_gap_bp or 0.0))


def _alternatives(date: pd.Timestamp, row: pd.Series, growth: float,
                  reported: float) -> list[GapDay]:
    """This day under each alternative treatment, with the gap the period would keep."""
    r, flow = float(row["daily_return"]), float(row["external_flow"])
    others = growth / (1.0 + r)  # the period's growth without this day
    days = [GapDay(date.date(), LEFT_OUT, r, flow, (others - 1.0 - reported) / BP)]
    start_nav = row["nav"] - row["pnl"] - flow  # NAV_{t-1}
    if flow != 0.0 and start_nav != 0.0:
        twr = others * (1.0 + row["pnl"] / start_nav) - 1.0
        days.append(GapDay(date.date(), FLOW_AT_END, r, flow, (twr - reported) / BP))
    return days


def _missing_weekdays(dates: pd.DatetimeIndex, first: pd.Timestamp,
                      last: pd.Timestamp) -> list[pd.Timestamp]:
    """Weekdays from the close the period starts from to its end that have no NAV.

    Exchange holidays show up too: the check cannot know every calendar, and a person
    reading a failed check tells a holiday from a gap at a glance.
    """
    opening = first - pd.offsets.BDay(1)
    weekdays = pd.bdate_range(opening, last)
    return list(weekdays.difference(dates))
