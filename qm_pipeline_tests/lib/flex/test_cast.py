"""Typing Flex text with ibflex's registry: exact decimals, null markers, booleans, and enum
drift reported rather than fatal."""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from qm_pipeline.lib.flex.cast import DECIMAL, cast_rows
from qm_pipeline.lib.flex.dates import DateOrder, NeedDateOrder
from qm_pipeline.lib.flex.errors import FlexInputError
from qm_pipeline.lib.flex.reader import LINE_COLUMN
from qm_pipeline.lib.flex.schema import Kind, row_schema
from qm_pipeline.lib.settings import Settings
from qm_pipeline.lib.warehouse.engine import Warehouse
from qm_pipeline_tests.helpers import ingest_files, report, row, rows, section, statement, write

TRADE = row_schema("Trade")
CASH = row_schema("CashTransaction")


def strings(columns: dict[str, list[str | None]], first_line: int = 10) -> pa.Table:
    count = len(next(iter(columns.values())))
    data = {name: pa.array(values, pa.string()) for name, values in columns.items()}
    data[LINE_COLUMN] = pa.array(range(first_line, first_line + count), pa.int64())
    return pa.table(data)


def cast(columns: dict[str, list[str | None]], schema=TRADE, order=DateOrder.MDY):
    return cast_rows(strings(columns), schema, order, "report.xml")


def test_registry_types() -> None:
    assert TRADE is not None and CASH is not None
    kinds = {a: f.kind for a, f in TRADE.fields.items()}
    assert kinds["quantity"] is Kind.DECIMAL and kinds["tradeDate"] is Kind.DATE
    assert kinds["dateTime"] is Kind.DATETIME and kinds["tradeTime"] is Kind.TIME
    assert kinds["isAPIOrder"] is Kind.BOOL and kinds["buySell"] is Kind.ENUM
    assert kinds["notes"] is Kind.CODES and kinds["symbol"] is Kind.TEXT
    assert TRADE.fields["ibCommission"].column == "ib_commission"


def test_decimals_are_exact_with_thousands_separators() -> None:
    typed = cast({"quantity": ["1,234,567.891", "-0.000000000001", "5000", "+7", ".5",
                               "99999999999999999999999999.999999999999", "1e3"]}).table
    assert typed.schema.field("quantity").type == DECIMAL
    assert typed.column("quantity").to_pylist() == [
        Decimal("1234567.891"), Decimal("-1E-12"), Decimal("5000"), Decimal("7"),
        Decimal("0.5"), Decimal("99999999999999999999999999.999999999999"), Decimal("1000")]


def test_every_registry_field_is_a_column_even_when_absent() -> None:
    typed = cast({"symbol": ["A"]}).table
    assert typed.column_names == [f.column for f in TRADE.fields.values()]
    assert typed.column("quantity").to_pylist() == [None]
    assert typed.schema.field("trade_date").type == pa.date32()
    assert typed.schema.field("date_time").type == pa.timestamp("s")
    assert typed.schema.field("trade_time").type == pa.time32("s")


@pytest.mark.parametrize("marker", ["", "-", "--", "N/A"])
def test_null_markers(marker: str) -> None:
    typed = cast({"quantity": [marker, "1"], "tradeDate": [marker, "20240105"],
                  "dateTime": [marker, "20240105;101112"], "tradeTime": [marker, "101112"],
                  "isAPIOrder": [marker, "Y"], "symbol": [marker, "X"],
                  "buySell": [marker, "SELL"]})
    got = typed.table.select(["quantity", "trade_date", "date_time", "trade_time",
                              "is_api_order", "symbol", "buy_sell"]).to_pylist()
    assert got == [
        dict.fromkeys(["quantity", "trade_date", "date_time", "trade_time", "is_api_order",
                       "symbol", "buy_sell"]),
        {"quantity": Decimal("1"), "trade_date": date(2024, 1, 5),
         "date_time": datetime(2024, 1, 5, 10, 11, 12), "trade_time": time(10, 11, 12),
         "is_api_order": True, "symbol": "X", "buy_sell": "SELL"},
    ]
    assert typed.unknown_codes == []


def test_multi_is_no_date() -> None:
    typed = cast({"tradeDate": ["MULTI", "20240105"], "dateTime": ["MULTI", "20240105"]}).table
    assert typed.column("trade_date").to_pylist() == [None, date(2024, 1, 5)]
    assert typed.column("date_time").to_pylist() == [None, datetime(2024, 1, 5)]


def test_booleans() -> None:
    typed = cast({"isAPIOrder": ["Y", "N", "Yes", "No", "true", "false", "1", "0"]}).table
    assert typed.column("is_api_order").to_pylist() == [True, False] * 4


@pytest.mark.parametrize(("attr", "value", "why"), [
    ("quantity", "abc", "not a number"),
    ("quantity", "1.2.3", "not a number"),
    ("quantity", " 5", "not a number"),  # Python's Decimal would take it; Flex never pads
    ("quantity", "5_000", "not a number"),
    ("quantity", "NaN", "number out of range"),
    ("quantity", "Infinity", "number out of range"),
    ("quantity", "1e30", "number out of range"),
    ("tradePrice", "0.1234567890123", "more than 12 decimal places"),
    ("isAPIOrder", "maybe", "not a yes/no value (Y, N, Yes, No)"),
    ("tradeDate", "2024-13-01", "not a date in a known Flex format"),
    ("dateTime", "20240105;256000", "not a date in a known Flex format"),
    ("tradeTime", "10h11", "not a time (HHmmss or HH:mm:ss)"),
])
def test_bad_values_name_line_field_and_value(attr: str, value: str, why: str) -> None:
    good = {"quantity": "1", "tradePrice": "2.5", "isAPIOrder": "N", "tradeDate": "20240105",
            "dateTime": "20240105;101112", "tradeTime": "101112"}
    columns = {a: [v, v, v] for a, v in good.items()}
    columns[attr][1] = value  # the second row, at line 11
    with pytest.raises(FlexInputError) as caught:
        cast(columns)
    error = caught.value
    assert (error.path, error.line, error.row_tag, error.field, error.value) == (
        "report.xml", 11, "Trade", attr, value)
    assert str(error) == f"report.xml, line 11, <Trade>, field {attr!r}, value {value!r}: {why}"


def test_twelve_decimal_places_are_fine_and_trailing_zeros_count_as_exact() -> None:
    typed = cast({"tradePrice": ["0.123456789012", "0.1234567890120"]}).table
    assert typed.column("trade_price").to_pylist() == [Decimal("0.123456789012")] * 2


def test_the_first_bad_value_is_the_one_reported() -> None:
    with pytest.raises(FlexInputError) as caught:
        cast({"quantity": ["1", "0.1234567890120", "x", "0.1234567890123"]})
    assert (caught.value.line, caught.value.value) == (12, "x")


def test_unknown_enum_values_and_codes_are_reported_not_fatal() -> None:
    typed = cast({"buySell": ["BUY", "HOLD", "SELL", "HOLD"],
                  "assetCategory": ["STK", "RAINBOW", "CRYPTO", None],
                  "notes": ["P;", "P;ZZ", "O;C;", "QQ,P"],
                  "openCloseIndicator": ["O", "C", "", "X"]})
    assert sorted(typed.unknown_codes) == ["assetCategory=RAINBOW", "buySell=HOLD", "notes=QQ",
                                           "notes=ZZ", "openCloseIndicator=X"]
    table = typed.table
    assert table.column("buy_sell").to_pylist() == ["BUY", "HOLD", "SELL", "HOLD"]
    assert table.column("notes").to_pylist() == ["P;", "P;ZZ", "O;C;", "QQ,P"]
    assert table.column("open_close_indicator").to_pylist() == ["O", "C", None, "X"]


def test_unknown_attributes_are_drift() -> None:
    typed = cast({"symbol": ["A"], "orderPlacementTime": [""], "brandNewField": ["x"]})
    assert typed.unknown_attributes == ["brandNewField", "orderPlacementTime"]
    assert "brand_new_field" not in typed.table.column_names


def test_slashed_dates_without_a_known_order_ask_for_one() -> None:
    with pytest.raises(NeedDateOrder):
        cast({"tradeDate": ["20240105", "01/02/2024"]}, order=None)
    assert cast({"tradeDate": ["20240105"]}, order=None).table.column(
        "trade_date").to_pylist() == [date(2024, 1, 5)]


def test_cash_action_drift_in_a_real_report(warehouse: Warehouse, settings: Settings,
                                            tmp_path: Path) -> None:
    text = report(statement(section(
        "CashTransactions",
        row("CashTransaction", {"currency": "EUR", "amount": "1,000.50", "type": "Dividends",
                                "transactionID": "D1", "code": "Po;Re", "dateTime": "20240105"}),
        row("CashTransaction", {"currency": "EUR", "amount": "-", "type": "Crypto Airdrop",
                                "transactionID": "D2", "code": "ZZ", "dateTime": "20240106"}),
    )))
    (result,) = ingest_files(warehouse, settings, write(tmp_path / "drift.xml", text))
    assert result.status == "loaded"
    assert rows(warehouse, "SELECT unknown_codes, unknown_attributes FROM raw.flex_ingest_log"
                ) == [("code=ZZ,type=Crypto Airdrop", None)]
    assert rows(warehouse, "SELECT transaction_id, amount, type, code FROM "
                "core.cash_transactions ORDER BY 1") == [
        ("D1", Decimal("1000.50"), "Dividends", "Po;Re"),
        ("D2", None, "Crypto Airdrop", "ZZ")]
    assert rows(warehouse, "SELECT amount FROM raw.cash_transaction ORDER BY ordinal") == [
        ("1,000.50",), ("-",)]
