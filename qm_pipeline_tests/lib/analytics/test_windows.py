"""Reporting windows for an as-of date and an inception date."""

from __future__ import annotations

import datetime as dt

from qm_pipeline.lib.analytics.windows import Window, windows

D = dt.date


def test_long_history_on_a_leap_day() -> None:
    assert windows("2024-02-29", "2020-03-15") == [
        Window("MTD", D(2024, 2, 1), D(2024, 2, 29)),
        Window("QTD", D(2024, 1, 1), D(2024, 2, 29)),
        Window("YTD", D(2024, 1, 1), D(2024, 2, 29)),
        Window("1Y", D(2023, 3, 1), D(2024, 2, 29)),  # from the close of 2023-02-28
        Window("3Y", D(2021, 3, 1), D(2024, 2, 29)),
        Window("SI", D(2020, 3, 15), D(2024, 2, 29)),
        Window("2020", D(2020, 3, 15), D(2020, 12, 31)),
        Window("2021", D(2021, 1, 1), D(2021, 12, 31)),
        Window("2022", D(2022, 1, 1), D(2022, 12, 31)),
        Window("2023", D(2023, 1, 1), D(2023, 12, 31)),
        Window("2024", D(2024, 1, 1), D(2024, 2, 29)),
    ]


def test_short_history_has_no_trailing_years_and_clips_to_date_windows() -> None:
    found = {w.name: (w.start, w.end) for w in windows(D(2024, 8, 20), D(2024, 8, 5))}
    assert found == {
        "MTD": (D(2024, 8, 5), D(2024, 8, 20)),
        "QTD": (D(2024, 8, 5), D(2024, 8, 20)),
        "YTD": (D(2024, 8, 5), D(2024, 8, 20)),
        "SI": (D(2024, 8, 5), D(2024, 8, 20)),
        "2024": (D(2024, 8, 5), D(2024, 8, 20)),
    }


def test_exactly_one_year_of_history_has_1y() -> None:
    names = [w.name for w in windows(D(2024, 6, 28), D(2023, 6, 28))]
    assert "1Y" in names and "3Y" not in names
    assert windows(D(2023, 1, 1), D(2024, 1, 1)) == []
