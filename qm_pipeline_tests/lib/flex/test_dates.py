"""Flex dates: every printed format, and the d/M order decided per file, never guessed silently."""

from __future__ import annotations

from datetime import date, datetime, time
from pathlib import Path

import pyarrow as pa
import pytest

from qm_pipeline.lib.flex.dates import (
    AmbiguousDatesError,
    DateEvidence,
    DateOrder,
    DateOrderDecision,
    configured_order,
    parse_dates,
    parse_datetimes,
    parse_times,
)
from qm_pipeline.lib.settings import Settings, load_settings
from qm_pipeline.lib.warehouse.engine import Warehouse
from qm_pipeline_tests.helpers import (
    ingest_files,
    line_of,
    report,
    row,
    rows,
    section,
    snapshot,
    statement,
    write,
)

MDY, DMY = DateOrder.MDY, DateOrder.DMY


def one(values: list[str | None], order: DateOrder = MDY) -> list:
    return parse_dates(pa.array(values, pa.string()), order).to_pylist()


@pytest.mark.parametrize(("text", "order", "expected"), [
    ("20240213", MDY, datetime(2024, 2, 13)),
    ("20240213", DMY, datetime(2024, 2, 13)),
    ("2024-02-13", MDY, datetime(2024, 2, 13)),
    ("02/13/2024", MDY, datetime(2024, 2, 13)),
    ("13/02/2024", DMY, datetime(2024, 2, 13)),
    ("01/02/2024", MDY, datetime(2024, 1, 2)),
    ("01/02/2024", DMY, datetime(2024, 2, 1)),
    ("1/2/2024", MDY, datetime(2024, 1, 2)),
    ("1/2/2024", DMY, datetime(2024, 2, 1)),
    ("02/13/24", MDY, datetime(2024, 2, 13)),
    ("13/02/24", DMY, datetime(2024, 2, 13)),
    ("12/31/99", MDY, datetime(1999, 12, 31)),
    ("13-Feb-2024", MDY, datetime(2024, 2, 13)),
    ("13-Feb-24", DMY, datetime(2024, 2, 13)),
    ("20240229", MDY, datetime(2024, 2, 29)),  # leap day
])
def test_date_formats(text: str, order: DateOrder, expected: datetime) -> None:
    assert one([text], order) == [expected]


@pytest.mark.parametrize("text", [
    "20240230",  # no such day: never rolled over to March 1
    "20230229",  # not a leap year
    "2024-04-31", "20241301", "2024-00-10",
    "02/30/2024", "31-Apr-2024", "2/30/24",
    "13/02/2024",  # read as M/d: month 13
    "2024/02/13", "2024-2-13", "garbage", "MULTI",
])
def test_impossible_or_unknown_dates_are_null(text: str) -> None:
    assert one([text], MDY) == [None]


def test_dmy_refuses_what_only_mdy_reads() -> None:
    assert one(["02/13/2024", "31/04/2024", "30/04/2024"], DMY) == [
        None, None, datetime(2024, 4, 30)]


def test_nulls_stay_null() -> None:
    assert one([None, "20240101", None]) == [None, datetime(2024, 1, 1), None]


@pytest.mark.parametrize(("text", "expected", "zoned"), [
    ("20240213;101112", datetime(2024, 2, 13, 10, 11, 12), False),
    ("20240213;1011", datetime(2024, 2, 13, 10, 11), False),
    ("20240213 10:11:12", datetime(2024, 2, 13, 10, 11, 12), False),
    ("2024-02-13, 10:11:12", datetime(2024, 2, 13, 10, 11, 12), False),
    ("2024-02-13,10:11:12", datetime(2024, 2, 13, 10, 11, 12), False),
    ("20240213T101112", datetime(2024, 2, 13, 10, 11, 12), False),
    ("2024-02-13;9:05", datetime(2024, 2, 13, 9, 5), False),
    ("20240213", datetime(2024, 2, 13), False),
    ("02/13/2024 10:11:12", datetime(2024, 2, 13, 10, 11, 12), False),
    ("20240213;101112 EST", datetime(2024, 2, 13, 10, 11, 12), True),
    ("2024-02-13, 10:11:12 US/Eastern", datetime(2024, 2, 13, 10, 11, 12), True),
    ("20240213 101112 Europe/London", datetime(2024, 2, 13, 10, 11, 12), True),
])
def test_date_time_separators_and_zone_suffix(text: str, expected: datetime,
                                              zoned: bool) -> None:
    values, has_zone = parse_datetimes(pa.array([text]), MDY)
    assert values.to_pylist() == [expected]
    assert has_zone is zoned  # times are kept as printed; a suffix is only reported


def test_zone_flag_is_per_column() -> None:
    values, has_zone = parse_datetimes(
        pa.array(["20240213;101112", None, "20240214;101112 EST"]), MDY)
    assert values.to_pylist() == [datetime(2024, 2, 13, 10, 11, 12), None,
                                  datetime(2024, 2, 14, 10, 11, 12)]
    assert has_zone is True
    assert parse_datetimes(pa.array(["20240213;101112", None]), MDY)[1] is False


@pytest.mark.parametrize("text", ["20240213;251112", "20240213;106112", "20240230;101112",
                                  "20240213;10", "20240213x101112", "13/02/2024;101112"])
def test_unreadable_date_times_are_null(text: str) -> None:
    assert parse_datetimes(pa.array([text]), MDY)[0].to_pylist() == [None]


def test_times() -> None:
    values = ["093406", "09:34:06", "0934", "09:34", "9:34", "9:34:06", "235959", "240000",
              "096000", "12:60", "ab", None]
    assert parse_times(pa.array(values)).to_pylist() == [
        time(9, 34, 6), time(9, 34, 6), time(9, 34), time(9, 34), time(9, 34),
        time(9, 34, 6), time(23, 59, 59), None, None, None, None, None]


def decide(*columns: list[str | None], fallback: DateOrder = MDY) -> DateOrderDecision:
    evidence = DateEvidence()
    for column in columns:
        evidence.add(pa.array(column, pa.string()))
    return evidence.decide(fallback)


def test_order_inferred_from_values_only_one_order_reads() -> None:
    dmy = decide(["01/02/2024", None], ["13/02/2024;101112"], ["20240105"])
    assert dmy == DateOrderDecision(DMY, "inferred",
                                    "1 values read only as d/M, 0 only as M/d")
    mdy = decide(["01/02/2024", "02/13/24", "12/31/2024"])
    assert (mdy.order, mdy.source) == (MDY, "inferred")
    assert mdy.evidence == "0 values read only as d/M, 2 only as M/d"


def test_both_orders_in_one_file_are_refused() -> None:
    with pytest.raises(AmbiguousDatesError, match=r"dates in both d/M and M/d order \(1 values "
                       r"read only as d/M, 1 only as M/d\)"):
        decide(["13/02/2024"], ["02/13/2024"])


@pytest.mark.parametrize("fallback", [MDY, DMY])
def test_only_ambiguous_values_use_the_fallback_and_say_so(fallback: DateOrder) -> None:
    found = decide(["01/02/2024", "12/11/2024"], fallback=fallback)
    assert found == DateOrderDecision(fallback, "fallback",
                                      "0 values read only as d/M, 0 only as M/d")


def test_no_slashed_dates_need_no_order() -> None:
    assert decide(["20240213", "2024-02-13, 10:11:12", None]).source == "not needed"
    assert decide().source == "not needed"


def test_configured_order() -> None:
    assert configured_order("DMY") == DateOrderDecision(DMY, "configured",
                                                        "set by QM_DATE_ORDER")
    assert configured_order("mdy").order is MDY
    assert configured_order("auto") is None
    assert configured_order("") is None


# --- per file, through ingestion -----------------------------------------------------------------


def dated_report(*dates: str, statements: int = 1) -> str:
    """Cash transactions on the given report dates (spread over `statements` statements)."""
    parts = []
    per = -(-len(dates) // statements)
    for index in range(statements):
        chunk = dates[index * per:(index + 1) * per]
        parts.append(statement(section("CashTransactions", *[
            row("CashTransaction", {"accountId": "U1234567", "currency": "USD",
                                    "amount": "1.5", "type": "Dividends",
                                    "transactionID": f"C{index}{n}", "reportDate": d})
            for n, d in enumerate(chunk)
        ]), when_generated=f"2024030{index + 1};120000"))
    return report(*parts)


def typed_dates(warehouse: Warehouse) -> dict[str, date]:
    return dict(rows(warehouse, "SELECT transaction_id, report_date FROM core.cash_transactions"))


def decision_rows(warehouse: Warehouse) -> list[tuple]:
    found = rows(warehouse, "SELECT DISTINCT date_order, date_order_source FROM raw.flex_files")
    assert rows(warehouse, "SELECT DISTINCT date_order, date_order_source FROM "
                "raw.flex_ingest_log") == found
    return found


def test_file_with_a_day_above_12_is_read_day_first(warehouse: Warehouse, settings: Settings,
                                                    tmp_path: Path) -> None:
    # the first statement has no slashed date: its raw rows are written before the loader
    # meets one, then the load starts over with the order known; nothing is written twice
    path = write(tmp_path / "dmy.xml", dated_report(
        "20240105", "20240106", "01/02/2024", "13/02/2024", statements=2))
    (result,) = ingest_files(warehouse, settings, path)
    assert result.status == "loaded" and result.notes == []
    assert decision_rows(warehouse) == [("DMY", "inferred")]
    assert typed_dates(warehouse) == {"C00": date(2024, 1, 5), "C01": date(2024, 1, 6),
                                      "C10": date(2024, 2, 1), "C11": date(2024, 2, 13)}
    assert rows(warehouse, "SELECT count(*), count(DISTINCT transaction_id) "
                "FROM raw.cash_transaction") == [(4, 4)]
    assert rows(warehouse, "SELECT report_date FROM raw.cash_transaction "
                "WHERE transaction_id = 'C10'") == [("01/02/2024",)]


def test_file_with_both_orders_fails(warehouse: Warehouse, settings: Settings,
                                     tmp_path: Path) -> None:
    before = snapshot(warehouse)
    path = write(tmp_path / "mixed.xml", dated_report("13/02/2024", "02/13/2024"))
    (result,) = ingest_files(warehouse, settings, path)
    assert result.status == "failed"
    assert result.error == ("mixed.xml: dates in both d/M and M/d order (1 values read only as "
                            "d/M, 1 only as M/d): set QM_DATE_ORDER to MDY or DMY")
    assert snapshot(warehouse) == before


@pytest.mark.parametrize(("fallback", "expected"), [("MDY", date(2024, 1, 2)),
                                                    ("DMY", date(2024, 2, 1))])
def test_file_that_cannot_tell_uses_the_fallback_and_says_so(
        warehouse: Warehouse, settings: Settings, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, fallback: str, expected: date) -> None:
    monkeypatch.setenv("QM_DATE_ORDER_FALLBACK", fallback)
    configured = load_settings(settings.data_dir, settings.database_url)
    assert configured.date_order_fallback == fallback
    path = write(tmp_path / "ambiguous.xml", dated_report("01/02/2024", "03/04/2024"))
    (result,) = ingest_files(warehouse, configured, path)
    assert result.status == "loaded"
    assert result.notes == [f"d/M order could not be told from the dates; used {fallback} "
                            "(0 values read only as d/M, 0 only as M/d)"]
    assert decision_rows(warehouse) == [(fallback, "fallback")]
    assert typed_dates(warehouse)["C00"] == expected


def test_setting_forces_the_order(warehouse: Warehouse, settings: Settings, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QM_DATE_ORDER", "DMY")
    forced = load_settings(settings.data_dir, settings.database_url)
    assert forced.date_order == "DMY"
    path = write(tmp_path / "forced.xml", dated_report("01/02/2024", "03/04/2024"))
    (result,) = ingest_files(warehouse, forced, path)
    assert result.status == "loaded" and result.notes == []
    assert decision_rows(warehouse) == [("DMY", "configured")]
    assert typed_dates(warehouse) == {"C00": date(2024, 2, 1), "C01": date(2024, 4, 3)}
    # a value the forced order cannot read is an error at its line, not a silent swap
    text = dated_report("20240105", "02/13/2024")
    before = snapshot(warehouse)
    (failed,) = ingest_files(warehouse, forced, write(tmp_path / "month_first.xml", text))
    assert failed.status == "failed"
    assert failed.error == (f"month_first.xml, line {line_of(text, '02/13/2024')}, "
                            "<CashTransaction>, field 'reportDate', value '02/13/2024': "
                            "not a date in a known Flex format")
    assert snapshot(warehouse) == before


def test_file_without_slashed_dates_needs_no_order(warehouse: Warehouse, settings: Settings,
                                                   tmp_path: Path) -> None:
    path = write(tmp_path / "iso.xml", dated_report("20240105", "2024-01-06"))
    (result,) = ingest_files(warehouse, settings, path)
    assert result.notes == []
    assert decision_rows(warehouse) == [("MDY", "not needed")]
    assert typed_dates(warehouse) == {"C00": date(2024, 1, 5), "C01": date(2024, 1, 6)}


def test_impossible_date_in_a_file_fails_at_its_line(warehouse: Warehouse, settings: Settings,
                                                     tmp_path: Path) -> None:
    text = dated_report("20240105", "20240230")
    (result,) = ingest_files(warehouse, settings, write(tmp_path / "feb30.xml", text))
    assert result.status == "failed"
    assert result.error == (f"feb30.xml, line {line_of(text, '20240230')}, <CashTransaction>, "
                            "field 'reportDate', value '20240230': not a date in a known Flex "
                            "format")


def test_zone_suffix_is_kept_as_printed_and_noted(warehouse: Warehouse, settings: Settings,
                                                  tmp_path: Path) -> None:
    text = report(statement(section("CashTransactions", *[
        row("CashTransaction", {"currency": "USD", "amount": "2", "type": "Dividends",
                                "transactionID": tid, "dateTime": stamp})
        for tid, stamp in [("Z1", "20240213;101112 EST"), ("Z2", "2024-02-14, 09:00:00")]
    ])))
    (result,) = ingest_files(warehouse, settings, write(tmp_path / "zoned.xml", text))
    assert result.status == "loaded"
    assert rows(warehouse, "SELECT transaction_id, date_time FROM core.cash_transactions "
                "ORDER BY 1") == [("Z1", datetime(2024, 2, 13, 10, 11, 12)),
                                  ("Z2", datetime(2024, 2, 14, 9))]
    assert rows(warehouse, "SELECT row_tag, notes FROM raw.flex_ingest_log") == [
        ("CashTransaction", "time zone suffix ignored: times are kept as printed")]


@pytest.mark.parametrize("text", [
    "20240115;093005", "20240229;000000", "20230229;000000", "20240230;120000",
    "20240115;240000", "20240115;236000", "20240115;235960", "20240115;235961",
    "20241301;000000", "20240100;000000", "00010101;000000", "99991231;235959",
])
def test_the_compact_form_reads_as_the_general_path_reads_it(text: str) -> None:
    """A column all in yyyyMMdd;HHmmss takes a one-pass path; mixed with another form (here a
    second value), the general one: the same value either way, null where it is invalid."""
    alone, _ = parse_datetimes(pa.array([text, None]), DateOrder.MDY)
    mixed, _ = parse_datetimes(pa.array([text, "20240115 09:30"]), DateOrder.MDY)
    assert alone.cast(pa.int64())[0] == mixed.cast(pa.int64())[0]
