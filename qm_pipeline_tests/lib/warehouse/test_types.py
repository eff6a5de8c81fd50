"""Dictionary-encoded text (the ledger's repeated strings) is plain text in the warehouse."""

from __future__ import annotations

import pyarrow as pa

from qm_pipeline.lib.warehouse.engine import Warehouse
from qm_pipeline.lib.warehouse.types import sql_type
from qm_pipeline_tests.helpers import rows

CODES = pa.dictionary(pa.int8(), pa.string())


def test_a_dictionary_column_has_its_values_sql_type() -> None:
    assert sql_type(CODES, "duckdb") == "VARCHAR"
    assert sql_type(CODES, "postgresql") == "TEXT"
    assert sql_type(pa.dictionary(pa.int32(), pa.decimal128(38, 18)), "postgresql") \
        == "NUMERIC(38,18)"


def test_dictionary_columns_are_stored_as_their_strings(warehouse: Warehouse) -> None:
    """Two batches with different dictionaries, as the ledger's sinks make them."""
    first = pa.DictionaryArray.from_arrays(pa.array([1, 0, 1], pa.int8()), ["SHORT", "LONG"])
    second = pa.DictionaryArray.from_arrays(pa.array([0, None], pa.int8()), ["TRADE"])
    schema = pa.schema([("n", pa.int64()), ("code", CODES)])
    data = pa.Table.from_batches([
        pa.RecordBatch.from_arrays([pa.array([1, 2, 3]), first], schema=schema),
        pa.RecordBatch.from_arrays([pa.array([4, 5]), second], schema=schema),
    ])
    with warehouse.transaction() as tx:
        tx.execute("CREATE SCHEMA IF NOT EXISTS probe")
        tx.ensure_table("probe", "codes", schema)
        assert tx.insert("probe", "codes", data) == 5
    assert rows(warehouse, "SELECT n, code FROM probe.codes ORDER BY n") == [
        (1, "LONG"), (2, "SHORT"), (3, "LONG"), (4, "TRADE"), (5, None)]
