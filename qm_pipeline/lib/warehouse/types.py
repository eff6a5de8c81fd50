"""Arrow types to SQL column types, the same table shape on DuckDB and PostgreSQL."""

from __future__ import annotations

import pyarrow as pa


def sql_type(arrow: pa.DataType, dialect: str) -> str:
    if pa.types.is_dictionary(arrow):  # an encoding of its values (the ledger's repeated text)
        return sql_type(arrow.value_type, dialect)
    if pa.types.is_decimal(arrow):
        return f"{'DECIMAL' if dialect == 'duckdb' else 'NUMERIC'}({arrow.precision},{arrow.scale})"
    if pa.types.is_string(arrow) or pa.types.is_large_string(arrow) or pa.types.is_null(arrow):
        return "VARCHAR" if dialect == "duckdb" else "TEXT"
    if pa.types.is_boolean(arrow):
        return "BOOLEAN"
    if pa.types.is_date(arrow):
        return "DATE"
    if pa.types.is_timestamp(arrow):
        return "TIMESTAMPTZ" if arrow.tz else "TIMESTAMP"
    if pa.types.is_time(arrow):
        return "TIME"
    if pa.types.is_integer(arrow):
        return "BIGINT"
    if pa.types.is_floating(arrow):
        return "DOUBLE PRECISION"
    raise TypeError(f"no SQL type for Arrow {arrow}")
