"""The warehouse: one SQLAlchemy URL, DuckDB (embedded default) or PostgreSQL, same tables.

Bulk data moves as Arrow: registered with DuckDB, streamed with COPY to PostgreSQL. Each
`transaction()` is one database transaction; what it loads is all there or none of it is.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from itertools import count
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import sqlalchemy as sa
from sqlalchemy.engine import Connection, make_url

from qm_pipeline.lib.warehouse.types import sql_type

_names = count()
# Rows turned into CSV text at a time for PostgreSQL's COPY: the text of a million-row
# ledger table at once would be some 700 MB beside its Arrow form.
COPY_ROWS = 65_536
# Statements that can change the catalog `Tx._column_names` keeps.
_DDL = re.compile(r"\s*(CREATE|ALTER|DROP|COMMENT)\b", re.IGNORECASE)


def q(identifier: str) -> str:
    """Quote an identifier (Flex names can be SQL keywords: `order`, `type`, `date`)."""
    return '"' + identifier.replace('"', '""') + '"'


def qualified(schema: str, table: str) -> str:
    return f"{q(schema)}.{q(table)}"


class Tx:
    """One open transaction, with the bulk operations the loaders need."""

    def __init__(self, conn: Connection, dialect: str) -> None:
        self.conn = conn
        self.dialect = dialect
        self.scratch: list[str] = []
        self._table_columns: dict[tuple[str, str], list[str]] | None = None

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple]:
        """Run SQL and fetch every row (DuckDB refuses new work while a result is unread)."""
        if _DDL.match(sql):
            self._table_columns = None  # (`ensure_table` keeps its own changes in it)
        result = self.conn.execute(sa.text(sql), dict(params or {}))
        return [tuple(row) for row in result.fetchall()] if result.returns_rows else []

    def scalar(self, sql: str, params: Mapping[str, Any] | None = None) -> Any:
        rows = self.execute(sql, params)
        return rows[0][0] if rows else None

    def arrow(self, sql: str, params: Mapping[str, Any] | None = None) -> pa.Table:
        result = self.conn.execute(sa.text(sql), dict(params or {}))
        names = list(result.keys())
        rows = result.fetchall()
        return pa.table({n: [r[i] for r in rows] for i, n in enumerate(names)})

    def columns(self, schema: str, table: str) -> dict[str, str]:
        rows = self.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = :s AND table_name = :t ORDER BY ordinal_position",
            {"s": schema, "t": table},
        )
        return {name: kind for name, kind in rows}

    def tables(self, schema: str) -> list[str]:
        rows = self.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = :s "
            "ORDER BY table_name", {"s": schema},
        )
        return [name for (name,) in rows]

    def ensure_table(self, schema: str, table: str, columns: pa.Schema) -> list[str]:
        """Create the table, or add the columns it lacks (additive: nothing is dropped).

        Returns the columns added to an existing table."""
        known = self._column_names()
        existing = known.get((schema, table), [])
        if not existing:
            body = ", ".join(f"{q(f.name)} {sql_type(f.type, self.dialect)}" for f in columns)
            self.execute(f"CREATE TABLE {qualified(schema, table)} ({body})")
            added = []
            known[(schema, table)] = columns.names
        else:
            new = [f for f in columns if f.name not in existing]
            for f in new:
                self.execute(f"ALTER TABLE {qualified(schema, table)} "
                             f"ADD COLUMN {q(f.name)} {sql_type(f.type, self.dialect)}")
            added = [f.name for f in new]
            known[(schema, table)] = existing + added
        self._table_columns = known  # what this method did keeps the snapshot true
        return added

    def _column_names(self) -> dict[tuple[str, str], list[str]]:
        """Every table's column names, read in one catalog query and kept until other DDL
        runs: a new warehouse's migrations ask after a hundred tables, at 2 ms a query."""
        if self._table_columns is None:
            self._table_columns = {}
            for schema, table, name in self.execute(
                    "SELECT table_schema, table_name, column_name FROM information_schema.columns "
                    "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') "
                    "ORDER BY table_schema, table_name, ordinal_position"):
                self._table_columns.setdefault((schema, table), []).append(name)
        return self._table_columns

    def insert(self, schema: str, table: str, data: pa.Table) -> int:
        """Append `data` (its columns by name) in bulk; returns the rows written."""
        return self.insert_into(qualified(schema, table), data)

    def insert_into(self, target: str, data: pa.Table) -> int:
        """Append to an already quoted relation (a table or a temporary table)."""
        if data.num_rows == 0:
            return 0
        target = f"{target} ({', '.join(q(n) for n in data.column_names)})"
        if self.dialect == "duckdb":
            return self._insert_duckdb(target, data)
        return self._copy_postgres(target, data)

    def scratch_table(self, columns: pa.Schema, prefix: str = "qm_stage") -> str:
        """A table for this transaction only (dropped before it ends); returns its name.

        The database holds what is staged there, not this process. PostgreSQL uses a
        temporary table; DuckDB a table in `meta`, because DuckDB writes large appends to
        ordinary tables out to disk as they come, while temporary tables stay in memory."""
        plain = f"{prefix}_{next(_names)}"
        fields = [f.with_type(pa.string()) if pa.types.is_null(f.type) else f for f in columns]
        body = ", ".join(f"{q(f.name)} {sql_type(f.type, self.dialect)}" for f in fields)
        if self.dialect == "duckdb":
            name = qualified("meta", plain)
            self.execute(f"CREATE TABLE {name} ({body})")
        else:
            name = q(plain)
            self.execute(f"CREATE TEMPORARY TABLE {name} ({body}) ON COMMIT DROP")
        self.scratch.append(name)
        return name

    def drop_scratch(self) -> None:
        while self.scratch:
            self.execute(f"DROP TABLE IF EXISTS {self.scratch.pop()}")

    def staged(self, data: pa.Table) -> str:
        """`data` in a scratch table SQL can read until the transaction ends (bulk copy)."""
        name = self.scratch_table(data.schema)
        self.insert_into(name, data)
        return name

    @contextmanager
    def readable(self, data: pa.Table) -> Iterator[str]:
        """`data` as a relation SQL can read inside the block; yields its name.

        DuckDB scans the Arrow data where it is (no copy: staging a report's core rows took
        longer than upserting them); PostgreSQL reads a staged temporary table."""
        if self.dialect != "duckdb":
            yield self.staged(data)
            return
        name = f"qm_arrow_{next(_names)}"
        driver = self.conn.connection.driver_connection
        driver.register(name, data)
        try:
            yield q(name)
        finally:
            driver.unregister(name)

    def _insert_duckdb(self, target: str, data: pa.Table) -> int:
        # DuckDB reads `qm_rows` through its replacement scan of this frame's locals. Not
        # `register()`: a registered view is a catalog entry, and a dropped one (with the
        # Arrow data it holds) lives until the transaction commits, which for a large report
        # kept its whole raw text in memory.
        qm_rows = data  # noqa: F841 (read by DuckDB by name)
        driver = self.conn.connection.driver_connection
        driver.execute(f"INSERT INTO {target} SELECT * FROM qm_rows").fetchall()
        return data.num_rows

    def _copy_postgres(self, target: str, data: pa.Table) -> int:
        options = pacsv.WriteOptions(include_header=False)
        driver = self.conn.connection.driver_connection
        with driver.cursor() as cursor, cursor.copy(
            f"COPY {target} FROM STDIN WITH (FORMAT csv)"
        ) as copy:
            for rows in range(0, data.num_rows, COPY_ROWS):
                buffer = io.BytesIO()
                pacsv.write_csv(data.slice(rows, COPY_ROWS), buffer, options)
                view = buffer.getbuffer()
                for start in range(0, len(view), 1 << 20):
                    copy.write(view[start:start + (1 << 20)])
                del view  # it holds this piece's text, which goes before the next is made
        return data.num_rows


# Rows per row group for the DuckDB file. DuckDB writes a large uncommitted append to disk a
# row group at a time ("optimistic writes"); with its default (122,880 rows, five buffered) a
# whole report's rows would sit in memory until commit.
DUCKDB_ROW_GROUP_ROWS = 16_384


def _duckdb_engine(database: str | None) -> sa.Engine:
    """DuckDB: the warehouse file attached with small row groups, memory kept modest.

    DuckDB would cache up to 80% of RAM; an embedded warehouse stays modest and spills
    (QM_DUCKDB_MEMORY_LIMIT, e.g. "4GB", raises it for large analyses)."""
    config = {"memory_limit": os.environ.get("QM_DUCKDB_MEMORY_LIMIT", "160MB"),
              "write_buffer_row_group_count": 1,
              # checkpoint when publishing (one CHECKPOINT per run), not inside each load
              "checkpoint_threshold": os.environ.get("QM_DUCKDB_CHECKPOINT", "1GB")}
    if database in (None, "", ":memory:"):
        return sa.create_engine("duckdb:///:memory:", poolclass=sa.pool.NullPool,
                                connect_args={"config": config})
    path = Path(database)
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine("duckdb:///:memory:", poolclass=sa.pool.NullPool,
                              connect_args={"config": config})
    escaped = str(path).replace("'", "''")

    @sa.event.listens_for(engine, "connect")
    def attach(dbapi_connection, _record) -> None:
        dbapi_connection.execute(
            f"ATTACH '{escaped}' AS warehouse (ROW_GROUP_SIZE {DUCKDB_ROW_GROUP_ROWS})")
        dbapi_connection.execute("USE warehouse")

    return engine


class Warehouse:
    """Connection factory for one warehouse URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        if self.dialect not in ("duckdb", "postgresql"):
            raise ValueError(f"unsupported warehouse {self.dialect!r}: use duckdb or postgresql")
        if self.dialect == "duckdb":
            self.engine = _duckdb_engine(parsed.database)
        else:
            self.engine = sa.create_engine(url)

    @property
    def duckdb_path(self) -> Path | None:
        database = make_url(self.url).database
        return Path(database) if self.dialect == "duckdb" and database else None

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        with self.engine.begin() as conn:
            tx = Tx(conn, self.dialect)
            yield tx
            tx.drop_scratch()

    def describe(self) -> str:
        """The URL without its password, for logs and metadata."""
        return make_url(self.url).render_as_string(hide_password=True)

    def dispose(self) -> None:
        self.engine.dispose()
