"""Flex dates and date-times, typed column by column, with the d/M order decided per file.

IB prints dates as yyyyMMdd, yyyy-MM-dd, MM/dd/yyyy or dd/MM/yyyy (a query setting) and
date-times with ';', ' ', ', ' or 'T' between date and time, sometimes with a zone suffix
(DOMAIN.md section 1). Slashed dates are ambiguous: the order is inferred from values that can
only be read one way (a day above 12), a file that shows both orders is refused, and a file
that cannot tell uses the configured order and says so. Never a silent guess, never mixed.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc


class DateOrder(enum.StrEnum):
    MDY = "MDY"
    DMY = "DMY"


@dataclass(frozen=True)
class DateOrderDecision:
    order: DateOrder
    # inferred | configured (a setting forces it) | fallback (no value could tell: reported)
    # | not needed (no slashed dates in the file)
    source: str
    evidence: str


class AmbiguousDatesError(ValueError):
    pass


_SLASHED = r"^(?P<first>\d{1,2})/(?P<second>\d{1,2})/(?P<year>\d{2}|\d{4})(?:\D|$)"
_DATE_PART = r"(?P<d>\d{8}|\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}/\d{2,4}|\d{1,2}-[A-Za-z]{3}-\d{2,4})"
_TIME_PART = r"(?P<t>\d{1,2}:?\d{2}(?::?\d{2})?)"
_COMPACT_DATETIME = r"^\d{8};\d{4}[0-5]\d$"  # (a leap second, :60, takes the general path)
_DATETIME = rf"^{_DATE_PART}(?:(?:;|,\s*|\s+|T){_TIME_PART})?(?:\s*(?P<z>[A-Za-z][A-Za-z_/]*))?$"


def _formats(order: DateOrder) -> list[tuple[str, str]]:
    """(pattern with the day as group `day`, strptime format) per accepted date format."""
    day_month = ("%d/%m", "%m/%d") if order is DateOrder.DMY else ("%m/%d", "%d/%m")
    slashed = (r"^(?P<day>\d{1,2})/\d{1,2}/" if order is DateOrder.DMY
               else r"^\d{1,2}/(?P<day>\d{1,2})/")
    return [
        (r"^\d{6}(?P<day>\d{2})$", "%Y%m%d"),
        (r"^\d{4}-\d{2}-(?P<day>\d{2})$", "%Y-%m-%d"),
        (slashed + r"\d{4}$", f"{day_month[0]}/%Y"),
        (slashed + r"\d{2}$", f"{day_month[0]}/%y"),
        (r"^(?P<day>\d{1,2})-[A-Za-z]{3}-\d{4}$", "%d-%b-%Y"),
        (r"^(?P<day>\d{1,2})-[A-Za-z]{3}-\d{2}$", "%d-%b-%y"),
    ]


class NeedDateOrder(Exception):
    """Slashed dates met before the file's d/M order is known: scan the file first."""


class DateEvidence:
    """Counts, over a file's date columns, the slashed values only one order can read."""

    def __init__(self) -> None:
        self.day_first = self.month_first = self.slashed = 0

    def add(self, column: pa.Array) -> None:
        found = pc.extract_regex(column, _SLASHED)
        if found.null_count == len(found):
            return
        self.slashed += len(found) - found.null_count
        first = pc.cast(pc.struct_field(found, [0]), pa.int32())
        second = pc.cast(pc.struct_field(found, [1]), pa.int32())
        self.day_first += pc.sum(pc.greater(first, 12)).as_py() or 0
        self.month_first += pc.sum(pc.greater(second, 12)).as_py() or 0

    def decide(self, fallback: DateOrder) -> DateOrderDecision:
        evidence = f"{self.day_first} values read only as d/M, {self.month_first} only as M/d"
        if self.day_first and self.month_first:
            raise AmbiguousDatesError(f"dates in both d/M and M/d order ({evidence})")
        if self.day_first:
            return DateOrderDecision(DateOrder.DMY, "inferred", evidence)
        if self.month_first:
            return DateOrderDecision(DateOrder.MDY, "inferred", evidence)
        if self.slashed:
            return DateOrderDecision(fallback, "fallback", evidence)
        return DateOrderDecision(fallback, "not needed", "no d/M/y or M/d/y dates")


def configured_order(setting: str) -> DateOrderDecision | None:
    """The order a setting forces (QM_DATE_ORDER=MDY|DMY), or None for `auto`."""
    if setting.upper() in DateOrder.__members__:
        return DateOrderDecision(DateOrder(setting.upper()), "configured", "set by QM_DATE_ORDER")
    return None


def has_slashed(values: pa.Array) -> bool:
    return bool(pc.any(pc.match_substring(values, "/")).as_py())


def parse_dates(values: pa.Array, order: DateOrder) -> pa.Array:
    """Date strings (nulls already applied) to timestamp[s]; unreadable values become null
    (the caller compares null counts to report them)."""
    result = pa.nulls(len(values), pa.timestamp("s"))
    for pattern, fmt in _formats(order):
        if result.null_count == values.null_count:
            break  # every value read: the other formats cannot change anything
        matches = pc.match_substring_regex(values, pattern)
        if not pc.any(matches).as_py():
            continue
        candidates = pc.if_else(matches, values, None)
        parsed = pc.strptime(candidates, format=fmt, unit="s", error_is_null=True)
        # strptime rolls a day the month lacks over (Feb 30 -> Mar 1): refuse it instead
        day = pc.cast(pc.struct_field(pc.extract_regex(candidates, pattern), [0]), pa.int64())
        parsed = pc.if_else(pc.equal(pc.day(parsed), day), parsed, None)
        result = pc.coalesce(result, parsed)
    return result


def _seconds_of_day(times: pa.Array) -> pa.Array:
    # "9:34" is 09:34, not 00:09:34: pad a one-digit hour before the colons go
    digits = pc.replace_substring(pc.replace_substring_regex(times, r"^(\d):", r"0\1:"), ":", "")
    digits = pc.if_else(pc.equal(pc.utf8_length(digits), 4), pc.binary_join_element_wise(
        digits, "00", ""), digits)
    digits = pc.utf8_lpad(digits, 6, "0")
    hours = pc.cast(pc.utf8_slice_codeunits(digits, 0, 2), pa.int64())
    minutes = pc.cast(pc.utf8_slice_codeunits(digits, 2, 4), pa.int64())
    seconds = pc.cast(pc.utf8_slice_codeunits(digits, 4, 6), pa.int64())
    valid = pc.and_(pc.less(hours, 24), pc.and_(pc.less(minutes, 60), pc.less(seconds, 61)))
    total = pc.add(pc.add(pc.multiply(hours, 3600), pc.multiply(minutes, 60)), seconds)
    return pc.if_else(valid, total, None)


def parse_datetimes(values: pa.Array, order: DateOrder) -> tuple[pa.Array, bool]:
    """Date-time strings to timestamp[s] as IB printed them (naive, the statement's zone).

    Returns the values and whether any carried a zone suffix (ignored, and reported)."""
    if pc.all(pc.match_substring_regex(values, _COMPACT_DATETIME)).as_py() is not False:
        return _compact_datetimes(values), False
    parts = pc.extract_regex(values, _DATETIME)
    dates = parse_dates(pc.struct_field(parts, [0]), order)
    times = pc.struct_field(parts, [1])
    has_time = pc.invert(pc.is_null(times))
    seconds = pc.if_else(has_time, _seconds_of_day(pc.fill_null(times, "000000")), 0)
    stamps = pc.cast(pc.add(pc.cast(dates, pa.int64()), seconds), pa.timestamp("s"))
    zones = pc.struct_field(parts, [2])  # "" where the optional group did not take part
    return stamps, bool(pc.any(pc.not_equal(zones, "")).as_py())


def _compact_datetimes(values: pa.Array) -> pa.Array:
    """yyyyMMdd;HHmmss, IB's default form, read in one pass (the general path takes about
    five times as long) to the same values: out-of-range fields are null, and so is a day
    the month lacks (strptime would roll it over)."""
    parsed = pc.strptime(values, format="%Y%m%d;%H%M%S", unit="s", error_is_null=True)
    day = pc.cast(pc.utf8_slice_codeunits(values, 6, 8), pa.int64())
    return pc.if_else(pc.equal(pc.day(parsed), day), parsed, None)


def parse_times(values: pa.Array) -> pa.Array:
    readable = pc.match_substring_regex(values, rf"^{_TIME_PART}$")
    seconds = _seconds_of_day(pc.if_else(readable, values, None))
    return pc.cast(pc.cast(seconds, pa.int32()), pa.time32("s"))
