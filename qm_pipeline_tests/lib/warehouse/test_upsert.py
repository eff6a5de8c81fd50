"""Newest-wins upserts and attribute merges, on DuckDB and PostgreSQL alike."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pyarrow as pa
import pytest

from qm_pipeline.lib.flex.cast import DECIMAL
from qm_pipeline.lib.warehouse.engine import Warehouse
from qm_pipeline.lib.warehouse.upsert import merge_attributes, upsert_newest
from qm_pipeline_tests.helpers import rows

ITEMS = pa.schema([("natural_key", pa.string()), ("when_generated", pa.timestamp("s")),
                   ("amount", DECIMAL), ("note", pa.string())])
JAN, FEB, MAR = datetime(2024, 1, 1), datetime(2024, 2, 1), datetime(2024, 3, 1)


def items(*records: tuple) -> pa.Table:
    return pa.Table.from_pylist(
        [dict(zip(ITEMS.names, r, strict=True)) for r in records], ITEMS)


@pytest.fixture
def table(warehouse: Warehouse) -> Warehouse:
    with warehouse.transaction() as tx:
        tx.execute("CREATE SCHEMA IF NOT EXISTS probe")
        tx.ensure_table("probe", "items", ITEMS)
    return warehouse


def upsert(warehouse: Warehouse, data: pa.Table) -> int:
    with warehouse.transaction() as tx:
        return upsert_newest(tx, "probe", "items", data)


def content(warehouse: Warehouse) -> list[tuple]:
    return rows(warehouse, "SELECT natural_key, when_generated, amount, note FROM probe.items "
                "ORDER BY natural_key")


def test_insert_then_idempotent(table: Warehouse) -> None:
    batch = items(("a", FEB, Decimal("1.5"), "first"), ("b", FEB, Decimal("-2"), None))
    assert upsert(table, batch) == 2
    expected = [("a", FEB, Decimal("1.5"), "first"), ("b", FEB, Decimal("-2"), None)]
    assert content(table) == expected
    assert upsert(table, batch) == 2  # replaced by themselves
    assert content(table) == expected
    assert upsert(table, items()) == 0
    assert content(table) == expected


def test_older_never_overwrites_newer_does(table: Warehouse) -> None:
    upsert(table, items(("a", FEB, Decimal("1"), "feb"), ("b", FEB, Decimal("2"), "feb")))
    assert upsert(table, items(("a", JAN, Decimal("9"), "jan backfill"),
                               ("c", JAN, Decimal("3"), "jan new"))) == 1
    assert content(table) == [("a", FEB, Decimal("1"), "feb"), ("b", FEB, Decimal("2"), "feb"),
                              ("c", JAN, Decimal("3"), "jan new")]
    assert upsert(table, items(("b", MAR, Decimal("2.25"), "mar restated"))) == 1
    assert upsert(table, items(("a", FEB, Decimal("1.1"), "feb again"))) == 1  # same version
    assert content(table) == [("a", FEB, Decimal("1.1"), "feb again"),
                              ("b", MAR, Decimal("2.25"), "mar restated"),
                              ("c", JAN, Decimal("3"), "jan new")]


def test_undated_rows_are_older_than_any_dated_one(table: Warehouse) -> None:
    upsert(table, items(("a", None, Decimal("1"), "undated"), ("b", JAN, Decimal("2"), "jan")))
    assert upsert(table, items(("a", JAN, Decimal("5"), "dated"),
                               ("b", None, Decimal("6"), "undated"))) == 1
    assert content(table) == [("a", JAN, Decimal("5"), "dated"),
                              ("b", JAN, Decimal("2"), "jan")]


def test_upsert_rolls_back_with_its_transaction(table: Warehouse) -> None:
    upsert(table, items(("a", JAN, Decimal("1"), "kept")))
    with pytest.raises(RuntimeError), table.transaction() as tx:
        upsert_newest(tx, "probe", "items", items(("a", FEB, Decimal("2"), "lost"),
                                                   ("z", FEB, Decimal("3"), "lost")))
        raise RuntimeError("later failure")
    assert content(table) == [("a", JAN, Decimal("1"), "kept")]


def test_many_decimals_round_trip_exactly(table: Warehouse) -> None:
    values = [Decimal("62.905297533"), Decimal("-0.000000000001"),
              Decimal("12345678901234567890123456.123456789012")]
    upsert(table, items(*[(f"k{i}", JAN, v, None) for i, v in enumerate(values)]))
    assert [r[2] for r in content(table)] == values


ATTRS = pa.schema([("conid", pa.string()), ("symbol", pa.string()), ("strike", DECIMAL),
                   ("first_seen", pa.timestamp("s")), ("last_seen", pa.timestamp("s"))])


def merge(warehouse: Warehouse, *records: tuple) -> int:
    data = pa.Table.from_pylist([dict(zip(ATTRS.names, r, strict=True)) for r in records], ATTRS)
    with warehouse.transaction() as tx:
        return merge_attributes(tx, "probe", "attrs", data, "conid")


def test_merge_attributes_newer_values_win_unless_empty(warehouse: Warehouse) -> None:
    with warehouse.transaction() as tx:
        tx.execute("CREATE SCHEMA IF NOT EXISTS probe")
        tx.ensure_table("probe", "attrs", ATTRS)
    assert merge(warehouse, ("1", "OLD", None, FEB, FEB), ("2", "TWO", Decimal("5"), FEB, FEB)) == 2
    merge(warehouse, ("1", "NEW", Decimal("10"), MAR, MAR),  # newer: wins where it has values
          ("2", None, Decimal("6"), JAN, JAN))  # older: only fills what is empty
    assert rows(warehouse, "SELECT * FROM probe.attrs ORDER BY conid") == [
        ("1", "NEW", Decimal("10"), FEB, MAR),
        ("2", "TWO", Decimal("5"), JAN, FEB)]
    merge(warehouse, ("1", None, None, None, None))  # an undated report adds nothing
    assert rows(warehouse, "SELECT * FROM probe.attrs WHERE conid = '1'") == [
        ("1", "NEW", Decimal("10"), FEB, MAR)]
