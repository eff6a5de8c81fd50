"""Natural keys: key attributes (typed), content digests where they are missing, repeats
numbered within a statement, and the newest report's row kept per key."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa

from qm_pipeline.lib.flex.cast import cast_rows
from qm_pipeline.lib.flex.core_tables import CORE_BY_NAME, core_table_for
from qm_pipeline.lib.flex.dates import DateOrder
from qm_pipeline.lib.flex.keys import natural_keys, newest_per_key, number_repeats
from qm_pipeline.lib.flex.reader import LINE_COLUMN
from qm_pipeline.lib.flex.schema import row_schema
from qm_pipeline.lib.settings import Settings
from qm_pipeline.lib.warehouse.engine import Warehouse
from qm_pipeline_tests.helpers import (
    ingest_files,
    report,
    row,
    rows,
    scalar,
    section,
    sha256_of,
    statement,
    trade,
    write,
)

CONTENT_KEY = re.compile(r"^content:[0-9a-f]{32}$")


def typed(tag: str, records: list[dict[str, str]]) -> pa.Table:
    names = sorted({k for r in records for k in r})
    strings = pa.table({**{n: pa.array([r.get(n) for r in records], pa.string())
                           for n in names},
                        LINE_COLUMN: pa.array(range(1, len(records) + 1), pa.int64())})
    schema = row_schema(tag)
    assert schema is not None
    return cast_rows(strings, schema, DateOrder.MDY, "keys.xml").table


def test_key_attributes_make_the_key() -> None:
    keys = natural_keys(typed("Trade", [trade("T1"), trade("T2", quantity="3")]),
                        CORE_BY_NAME["trades"])
    assert keys.to_pylist() == ["T1", "T2"]


def test_typed_keys_ignore_the_date_format() -> None:
    spec = CORE_BY_NAME["open_positions"]
    assert spec.key == ("accountId", "reportDate", "conid")
    positions = typed("OpenPosition", [
        {"accountId": "U1", "reportDate": "20240105", "conid": "42", "levelOfDetail": "SUMMARY",
         "position": "10"},
        {"accountId": "U1", "reportDate": "2024-01-05", "conid": "42",
         "levelOfDetail": "SUMMARY", "position": "10"},
        {"accountId": "U1", "reportDate": "01/05/2024", "conid": "42",
         "levelOfDetail": "LOT", "originatingTransactionID": "99",
         "openDateTime": "20231201;093000", "position": "4"},
    ])
    assert natural_keys(positions, spec).to_pylist() == [
        "U1|2024-01-05|42|SUMMARY||", "U1|2024-01-05|42|SUMMARY||",
        "U1|2024-01-05|42|LOT|99|2023-12-01 09:30:00"]


def test_rows_without_their_key_get_a_content_key() -> None:
    cash = {"accountId": "U1", "currency": "USD", "amount": "5", "type": "Dividends",
            "reportDate": "20240110", "conid": "7"}
    keys = natural_keys(typed("CashTransaction", [
        cash, {**cash, "transactionID": "C9"}, dict(cash), {**cash, "amount": "5.00"},
        {**cash, "amount": "6"}, {**cash, "reportDate": "2024-01-10"},
    ]), CORE_BY_NAME["cash_transactions"]).to_pylist()
    assert keys[1] == "C9"
    content = [keys[i] for i in (0, 2, 3, 4, 5)]
    assert all(CONTENT_KEY.match(k) for k in content)
    # same values (typed: 5 == 5.00, 20240110 == 2024-01-10) give the same key
    assert content[0] == content[1] == content[2] == content[4]
    assert content[3] != content[0]


def test_repeats_are_numbered_within_a_statement_in_file_order() -> None:
    keys = pa.array(["a", "a", "b", "a", "a", "b"])
    statements = pa.array([0, 0, 0, 1, 0, -1])
    lines = pa.array([12, 10, 11, 5, 30, 2])
    assert number_repeats(keys, statements, lines).to_pylist() == [
        "a#1", "a", "b", "a", "a#2", "b"]
    unique = pa.array(["a", "b"])
    assert number_repeats(unique, pa.array([0, 0]), pa.array([1, 2])) is unique


def test_newest_per_key() -> None:
    table = pa.table({
        "natural_key": ["k1", "k1", "k2", "k1", "k3", "k3", "k2"],
        "when_generated": pa.array([datetime(2024, 1, 1), datetime(2024, 3, 1), None,
                                    datetime(2024, 2, 1), datetime(2024, 1, 1),
                                    datetime(2024, 1, 1), datetime(2023, 1, 1)],
                                   pa.timestamp("s")),
        "statement_index": [0, 1, 0, 2, 0, 1, 0],
        "source_line": [5, 6, 7, 8, 9, 3, 4],
        "value": ["old", "newest", "undated", "middle", "first", "second statement", "dated"],
    })
    kept = newest_per_key(table, "natural_key", "when_generated", "statement_index",
                          "source_line")
    assert kept.column("value").to_pylist() == ["newest", "second statement", "dated"]
    assert kept.column("natural_key").to_pylist() == ["k1", "k3", "k2"]  # in input order
    single = table.slice(0, 1)
    assert newest_per_key(single, "natural_key", "when_generated") is single


def test_core_routing() -> None:
    assert core_table_for("Trade", "EXECUTION").name == "trades"
    assert core_table_for("Trade", None).name == "trades"
    assert core_table_for("Trade", "CLOSED_LOT").name == "closed_lots"
    assert core_table_for("Lot", "CLOSED_LOT").name == "closed_lots"
    for level in ("ORDER", "SYMBOL_SUMMARY", "ASSET_SUMMARY"):
        assert core_table_for("Trade", level) is None
    assert core_table_for("Order", "ORDER") is None
    assert core_table_for("CashTransaction", "SUMMARY") is None


# --- through ingestion, on both warehouses ------------------------------------------------


def closed_lot(quantity: str = "100", opened: str = "20231115;093000") -> dict[str, str]:
    return {"accountId": "U1234567", "currency": "USD", "assetCategory": "STK",
            "symbol": "ACME", "conid": "1001", "transactionID": "T2", "quantity": quantity,
            "openDateTime": opened, "levelOfDetail": "CLOSED_LOT", "tradePrice": "10",
            "buySell": "SELL"}


def lots_statement(when: str) -> str:
    return statement(section(
        "Trades",
        row("Trade", trade("T2", quantity="-200", buySell="SELL")),
        row("Lot", closed_lot()), row("Lot", closed_lot()),
        row("Lot", closed_lot(quantity="50", opened="20231116;100000"))),
        when_generated=when)


def test_identical_closed_lots_are_numbered_not_merged(warehouse: Warehouse,
                                                       settings: Settings,
                                                       tmp_path: Path) -> None:
    first = write(tmp_path / "lots.xml", report(lots_statement("20240201;120000")))
    (result,) = ingest_files(warehouse, settings, first)
    assert result.core_rows == {"accounts": 1, "trades": 1, "closed_lots": 3}
    got = rows(warehouse, "SELECT natural_key, quantity, statement_index FROM core.closed_lots "
               "ORDER BY source_line")
    base = "T2|2023-11-15 09:30:00|100.000000000000"
    assert got == [(base, Decimal("100"), 0), (f"{base}#1", Decimal("100"), 0),
                   ("T2|2023-11-16 10:00:00|50.000000000000", Decimal("50"), 0)]
    # the same period reported again in two newer statements: still three lots, the newest
    again = write(tmp_path / "lots_again.xml", report(lots_statement("20240301;120000"),
                                                      lots_statement("20240302;120000")))
    (second,) = ingest_files(warehouse, settings, again)
    assert second.core_rows["closed_lots"] == 3
    assert rows(warehouse, "SELECT count(*), min(statement_index), max(statement_index), "
                "min(file_sha256), max(when_generated) FROM core.closed_lots") == [
        (3, 1, 1, sha256_of(again), datetime(2024, 3, 2, 12))]
    assert scalar(warehouse, "SELECT count(*) FROM raw.lot") == 9


def cash_row(amount: str = "5", **extra: str) -> str:
    return row("CashTransaction", {"accountId": "U1234567", "currency": "USD",
                                   "amount": amount, "type": "Dividends",
                                   "reportDate": "20240110", "conid": "7", **extra})


def test_content_keys_dedupe_across_statements_and_files(warehouse: Warehouse,
                                                         settings: Settings,
                                                         tmp_path: Path) -> None:
    text = report(
        statement(section("CashTransactions", cash_row(), cash_row("6")),
                  when_generated="20240201;120000"),
        statement(section("CashTransactions", cash_row(), cash_row("7")),
                  when_generated="20240202;120000"))
    (result,) = ingest_files(warehouse, settings, write(tmp_path / "overlap.xml", text))
    assert result.core_rows["cash_transactions"] == 3
    got = rows(warehouse, "SELECT amount, statement_index, when_generated FROM "
               "core.cash_transactions ORDER BY amount")
    assert got == [(Decimal("5"), 1, datetime(2024, 2, 2, 12)),
                   (Decimal("6"), 0, datetime(2024, 2, 1, 12)),
                   (Decimal("7"), 1, datetime(2024, 2, 2, 12))]
    keys = [k for (k,) in rows(warehouse, "SELECT natural_key FROM core.cash_transactions")]
    assert all(CONTENT_KEY.match(k) for k in keys)
    # a later file repeating one of them, printed differently: no new row, the newer wins
    later = report(statement(section("CashTransactions", cash_row("5.000",
                                                                  reportDate="2024-01-10")),
                             when_generated="20240301;120000"))
    path = write(tmp_path / "later.xml", later)
    (again,) = ingest_files(warehouse, settings, path)
    assert again.core_rows["cash_transactions"] == 1
    assert rows(warehouse, "SELECT amount, file_sha256, when_generated FROM "
                "core.cash_transactions ORDER BY amount") == [
        (Decimal("5"), sha256_of(path), datetime(2024, 3, 1, 12)),
        (Decimal("6"), result.sha256, datetime(2024, 2, 1, 12)),
        (Decimal("7"), result.sha256, datetime(2024, 2, 2, 12))]
    assert sorted(k for (k,) in rows(warehouse, "SELECT natural_key FROM "
                                     "core.cash_transactions")) == sorted(keys)
    assert scalar(warehouse, "SELECT count(*) FROM raw.cash_transaction") == 5


def test_same_transaction_in_two_statements_keeps_the_newer(warehouse: Warehouse,
                                                           settings: Settings,
                                                           tmp_path: Path) -> None:
    text = report(
        statement(section("Trades", row("Trade", trade("T1", quantity="10"))),
                  when_generated="20240205;120000"),
        statement(section("Trades", row("Trade", trade("T1", quantity="11"))),
                  when_generated="20240201;120000"),
        statement(section("Trades", row("Trade", trade("T5", quantity="1")),
                          row("Trade", trade("T5", quantity="2"))),
                  when_generated="20240201;120000"))
    (result,) = ingest_files(warehouse, settings, write(tmp_path / "t.xml", text))
    assert result.core_rows["trades"] == 3
    assert rows(warehouse, "SELECT natural_key, quantity, statement_index, trade_date FROM "
                "core.trades ORDER BY 1") == [
        ("T1", Decimal("10"), 0, date(2024, 1, 15)),
        ("T5", Decimal("1"), 2, date(2024, 1, 15)),
        ("T5#1", Decimal("2"), 2, date(2024, 1, 15))]
