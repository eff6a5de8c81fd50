"""What a warehouse rebuild replays: the `core.*` tables (and live marks) as Arrow tables.

Rows leave the database column by column, never as Python objects per row: DuckDB hands
over Arrow directly; PostgreSQL streams `COPY ... TO STDOUT` as CSV, which Arrow parses
with the column types the warehouse declared (exact decimals, no floats). Both paths give
the same Arrow types, so the replay cannot tell the databases apart.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping

import pyarrow as pa
import pyarrow.csv as pacsv

from qm_pipeline.lib.flex.core_tables import CORE_BY_NAME
from qm_pipeline.lib.flex.prepare import core_schema
from qm_pipeline.lib.ledger import inputs as src
from qm_pipeline.lib.ledger.inputs import LedgerInputs
from qm_pipeline.lib.warehouse.engine import Tx, q, qualified

# Where the accounts of a rebuild come from (every core table keyed by account).
ACCOUNT_SOURCES = (*src.CORE_INPUTS, "cash_balances", "nav_daily")
MARKET_TIMEZONE = "America/New_York"  # live snapshots are UTC; Flex dates are New York days

MARKS_TYPES = {"account_id": pa.string(), "conid": pa.string(), "date": pa.date32(),
               "mark": pa.decimal128(38, 12)}


def read_arrow(tx: Tx, sql: str, types: Mapping[str, pa.DataType]) -> pa.Table:
    """The rows of `sql` (its columns named as `types`' keys) as an Arrow table of `types`."""
    if tx.dialect == "duckdb":
        table = tx.conn.connection.driver_connection.sql(sql).to_arrow_table()
    else:
        table = _copy_out(tx, sql, types)
    schema = pa.schema(list(types.items()))
    return table.select(schema.names).cast(schema)


def _copy_out(tx: Tx, sql: str, types: Mapping[str, pa.DataType]) -> pa.Table:
    buffer = io.BytesIO()
    driver = tx.conn.connection.driver_connection
    tx.execute("SET LOCAL DateStyle = 'ISO, YMD'")  # the text form Arrow parses
    with driver.cursor() as cursor, cursor.copy(
        f"COPY ({sql}) TO STDOUT WITH (FORMAT csv, HEADER true)"
    ) as copy:
        for block in copy:
            buffer.write(block)
    buffer.seek(0)
    # COPY writes NULL unquoted and empty, an empty string as "": only the former is null.
    options = pacsv.ConvertOptions(column_types=dict(types), null_values=[""],
                                   strings_can_be_null=True, quoted_strings_can_be_null=False,
                                   true_values=["t"], false_values=["f"])
    return pacsv.read_csv(buffer, convert_options=options)


def account_filter(accounts: Iterable[str] | None, alias: str = "") -> str:
    """A SQL condition keeping the rows of `accounts` (TRUE for all accounts)."""
    if accounts is None:
        return "TRUE"
    quoted = ", ".join("'" + a.replace("'", "''") + "'" for a in sorted(set(accounts)))
    column = f"{alias}.account_id" if alias else "account_id"
    return f"{column} IN ({quoted})" if quoted else "FALSE"


def accounts_in(tx: Tx) -> list[str]:
    """Every account the core tables know of."""
    union = " UNION ".join(f"SELECT account_id FROM {qualified('core', t)}"
                           for t in ACCOUNT_SOURCES)
    return sorted(a for (a,) in tx.execute(f"SELECT DISTINCT account_id FROM ({union}) u "
                                           "WHERE account_id IS NOT NULL AND account_id <> '-'"))


def read_inputs(tx: Tx, accounts: Iterable[str] | None = None,
                timezone: str = MARKET_TIMEZONE) -> LedgerInputs:
    """The replay's inputs from `core.*` (and marks), for `accounts` (None: all)."""
    where = account_filter(accounts)
    tables = {}
    # each core table is read with the engine's columns it has
    for name, wanted in src.CORE_INPUTS.items():
        declared = {f.name: f.type for f in core_schema(CORE_BY_NAME[name])}
        types = {c: declared[c] for c in wanted if c in declared}
        select = ", ".join(q(c) for c in types)
        tables[name] = read_arrow(
            tx, f"SELECT {select} FROM {qualified('core', name)} WHERE {where}", types)
    return LedgerInputs(**tables, marks=read_marks(tx, accounts, timezone))


def read_marks(tx: Tx, accounts: Iterable[str] | None = None,
               timezone: str = MARKET_TIMEZONE) -> pa.Table:
    """End-of-day marks per (account, conid, date), one each, best source first: IB's
    OpenPositions markPrice, then the trade's closePrice, then the latest complete live
    snapshot's market price that day (its UTC time taken as a `timezone` date)."""
    where = account_filter(accounts)
    live_where = account_filter(accounts, "p")
    zone = timezone.replace("'", "''")
    sql = f"""
        SELECT account_id, conid, "date", mark FROM (
          SELECT account_id, conid, "date", mark, ROW_NUMBER() OVER (
            PARTITION BY account_id, conid, "date" ORDER BY priority, seen_at DESC, mark) AS pick
          FROM (
            SELECT account_id, conid, report_date AS "date", mark_price AS mark, 1 AS priority,
                   TIMESTAMP '1900-01-01 00:00:00' AS seen_at
            FROM core.open_positions
            WHERE mark_price IS NOT NULL AND report_date IS NOT NULL AND {where}
            UNION ALL
            SELECT account_id, conid, trade_date, close_price, 2,
                   COALESCE(date_time, TIMESTAMP '1900-01-01 00:00:00')
            FROM core.trades
            WHERE close_price IS NOT NULL AND trade_date IS NOT NULL AND {where}
            UNION ALL
            SELECT p.account_id, p.conid,
                   CAST((s.taken_at AT TIME ZONE 'UTC') AT TIME ZONE '{zone}' AS DATE),
                   p.market_price, 3, s.taken_at
            FROM live.portfolio_items p JOIN live.snapshots s ON s.snapshot_id = p.snapshot_id
            WHERE s.status = 'complete' AND p.market_price IS NOT NULL AND {live_where}
          ) m
        ) ranked WHERE pick = 1"""
    return read_arrow(tx, sql, MARKS_TYPES)
