"""Bulk inserts: PostgreSQL's COPY streams a table in pieces, and every row arrives."""

from __future__ import annotations

from decimal import Decimal

import pyarrow as pa
import pytest

from qm_pipeline.lib.warehouse import engine
from qm_pipeline.lib.warehouse.engine import Warehouse
from qm_pipeline_tests.helpers import rows

SCHEMA = pa.schema([("n", pa.int64()), ("amount", pa.decimal128(38, 18)),
                    ("note", pa.string())])


def test_a_table_of_many_copy_pieces_arrives_whole(warehouse: Warehouse,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "COPY_ROWS", 3)
    data = pa.Table.from_pylist([
        {"n": i, "amount": Decimal(i) / 8, "note": None if i % 4 == 0 else f'say "{i}", ok'}
        for i in range(10)], schema=SCHEMA).combine_chunks()
    with warehouse.transaction() as tx:
        tx.execute("CREATE SCHEMA IF NOT EXISTS probe")
        tx.ensure_table("probe", "pieces", SCHEMA)
        assert tx.insert("probe", "pieces", data) == 10
    assert rows(warehouse, "SELECT n, amount, note FROM probe.pieces ORDER BY n") == [
        (i, Decimal(i) / 8, None if i % 4 == 0 else f'say "{i}", ok') for i in range(10)]
