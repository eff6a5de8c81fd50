"""The analytics boundary: warehouse money (Decimal) in, float64 date-indexed series out.

The warehouse keeps money exact as Decimal (DOMAIN.md §1). Returns, volatilities and
ratios are statistics: float64 is exact enough for them (a 15-significant-digit NAV gives
a daily return good to about 1e-13) and lets numpy, pandas and scipy do the work. So the
conversion happens once, here, and every function of this package takes and returns
float64. Nothing computed past this boundary is written back as money.

A series here is a `pd.Series` of float64 indexed by a sorted, unique `pd.DatetimeIndex`
of dates (midnight, no time zone). Missing values are dropped, never filled with zero
(DOMAIN.md §5): a day without a NAV is a day we know nothing about, not a flat day.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal

import pandas as pd

Number = Decimal | float | int
DateLike = dt.date | pd.Timestamp | str


def to_series(values: pd.Series | Mapping[DateLike, Number | None]) -> pd.Series:
    """A float64 series on a sorted DatetimeIndex, missing values dropped.

    Accepts a Series or a mapping of date to Decimal/float/None. Duplicate dates are an
    error: two NAVs for one day mean the input was not deduplicated upstream, and picking
    one silently would hide that.
    """
    series = dated(values)
    return series.map(float).astype("float64").sort_index()


def dated(values: pd.Series | Mapping[DateLike, Number | None]) -> pd.Series:
    """The values as they are (Decimal stays Decimal), on a sorted, unique DatetimeIndex,
    missing ones dropped: the exact twin of `to_series` for money columns."""
    series = values.copy() if isinstance(values, pd.Series) else pd.Series(dict(values))
    series.index = pd.DatetimeIndex(pd.to_datetime(series.index)).normalize()
    if series.index.has_duplicates:
        dupes = series.index[series.index.duplicated()].unique()
        raise ValueError(f"duplicate dates: {[d.date().isoformat() for d in dupes]}")
    return series[series.notna()].sort_index()


def to_timestamp(day: DateLike) -> pd.Timestamp:
    """A date as the midnight Timestamp the series here are indexed by."""
    return pd.Timestamp(day).normalize()


def daily_sums(amounts: pd.Series | Iterable[tuple[DateLike, Number]]) -> pd.Series:
    """Amounts summed per date (e.g. several deposits on one day), as a float64 series.

    Unlike `to_series`, repeated dates are expected here: flows are rows, not a daily fact.
    """
    return _sums(amounts, lambda values: [float(v) for v in values], "float64")


def exact_daily_sums(amounts: pd.Series | Iterable[tuple[DateLike, Number]]) -> pd.Series:
    """`daily_sums` keeping the amounts' type (Decimal sums stay exact)."""
    return _sums(amounts, list, "object")


def _sums(amounts: pd.Series | Iterable[tuple[DateLike, Number]],
          convert: Callable[[pd.Series], list], dtype: str) -> pd.Series:
    series = amounts if isinstance(amounts, pd.Series) else _pairs_series(list(amounts))
    if series.empty:
        return pd.Series(dtype=dtype, index=pd.DatetimeIndex([]))
    index = pd.DatetimeIndex(pd.to_datetime(series.index)).normalize()
    values = pd.Series(convert(series), index=index, dtype=dtype)
    return values[values.notna()].groupby(level=0).sum().sort_index()


def _pairs_series(pairs: list[tuple[DateLike, Number]]) -> pd.Series:
    return pd.Series([v for _, v in pairs], index=[d for d, _ in pairs], dtype="object")
