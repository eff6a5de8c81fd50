"""Versioned schema changes, so an existing warehouse upgrades in place without losing rows.

Numbered migrations run once each, in order, recorded in `meta.schema_migrations`. After them,
core tables are brought up to the Flex registry (ibflex's types): a newer ibflex that knows more
attributes adds columns; nothing is ever dropped or retyped implicitly.
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa

from qm_pipeline.lib.flex.core_tables import CORE_TABLES
from qm_pipeline.lib.flex.prepare import core_schema, instruments_schema
from qm_pipeline.lib.warehouse.engine import Tx, Warehouse, q, qualified

FILES = pa.schema([
    ("file_sha256", pa.string()), ("original_name", pa.string()), ("source", pa.string()),
    ("archive_path", pa.string()), ("size_bytes", pa.int64()), ("query_name", pa.string()),
    ("query_type", pa.string()), ("statements_declared", pa.string()),
    ("statements_found", pa.int64()), ("accounts", pa.string()), ("date_order", pa.string()),
    ("date_order_source", pa.string()), ("rows_seen", pa.int64()), ("rows_loaded", pa.int64()),
    ("ingested_at", pa.timestamp("s")), ("run_id", pa.string()),
])
STATEMENTS = pa.schema([
    ("file_sha256", pa.string()), ("statement_index", pa.int64()), ("account_id", pa.string()),
    ("from_date", pa.string()), ("to_date", pa.string()), ("period", pa.string()),
    ("when_generated", pa.string()), ("when_generated_at", pa.timestamp("s")),
    ("sections", pa.string()),
])
INGEST_LOG = pa.schema([
    ("file_sha256", pa.string()), ("account_id", pa.string()), ("section", pa.string()),
    ("row_tag", pa.string()), ("raw_table", pa.string()), ("rows_seen", pa.int64()),
    ("rows_loaded", pa.int64()), ("core_tables", pa.string()), ("core_rows", pa.int64()),
    ("unknown_attributes", pa.string()), ("unknown_codes", pa.string()),
    ("notes", pa.string()), ("date_order", pa.string()), ("date_order_source", pa.string()),
    ("ingested_at", pa.timestamp("s")),
])


def _v1_foundation(tx: Tx) -> None:
    for schema in ("raw", "core"):
        tx.execute(f"CREATE SCHEMA IF NOT EXISTS {q(schema)}")
    tx.ensure_table("raw", "flex_files", FILES)
    tx.ensure_table("raw", "flex_statements", STATEMENTS)
    tx.ensure_table("raw", "flex_ingest_log", INGEST_LOG)
    for spec in CORE_TABLES:
        tx.ensure_table("core", spec.name, core_schema(spec))
    tx.ensure_table("core", "instruments", instruments_schema())
    if tx.dialect == "postgresql":  # DuckDB's hash joins need no index for the upserts
        for spec in CORE_TABLES:
            tx.execute(f"CREATE INDEX IF NOT EXISTS {q(f'{spec.name}_natural_key')} "
                       f"ON {qualified('core', spec.name)} (natural_key)")
        tx.execute("CREATE INDEX IF NOT EXISTS instruments_conid ON core.instruments (conid)")


def _v2_live(tx: Tx) -> None:
    from qm_pipeline.lib.live.store import create_live_schema

    create_live_schema(tx)


def _v3_ledger(tx: Tx) -> None:
    from qm_pipeline.lib.ledger.store import create_ledger_schema

    create_ledger_schema(tx)


def _v4_recon(tx: Tx) -> None:
    from qm_pipeline.lib.recon.store import create_recon_schema

    create_recon_schema(tx)


MIGRATIONS: list[tuple[int, str, Callable[[Tx], None]]] = [
    (1, "raw bookkeeping, core tables from the Flex registry, instruments", _v1_foundation),
    (2, "live snapshots from TWS / IB Gateway, with history and latest views", _v2_live),
    (3, "ledger: lots, realized, positions with audit log, history, balances, checks",
     _v3_ledger),
    (4, "reconciliation: runs, breaks across runs, actions, proposals; ledger.orders",
     _v4_recon),
    (5, "live: IB's option model values per snapshot, daily bars from historical data",
     _v2_live),  # additive: creates the tables the live schema gained since v2
]


def sync_registry_columns(tx: Tx) -> list[str]:
    """Add columns the registry gained since the tables were made. Returns what was added."""
    added = []
    for spec in CORE_TABLES:
        added += [f"core.{spec.name}.{c}" for c in tx.ensure_table("core", spec.name,
                                                                    core_schema(spec))]
    added += [f"core.instruments.{c}" for c in tx.ensure_table("core", "instruments",
                                                               instruments_schema())]
    return added


def migrate(warehouse: Warehouse) -> list[str]:
    """Bring the warehouse to the current version, in one transaction. Returns what ran."""
    done = []
    with warehouse.transaction() as tx:
        tx.execute("CREATE SCHEMA IF NOT EXISTS meta")
        tx.ensure_table("meta", "schema_migrations", pa.schema([
            ("version", pa.int64()), ("name", pa.string()), ("applied_at", pa.timestamp("s")),
        ]))
        applied = {v for (v,) in tx.execute("SELECT version FROM meta.schema_migrations")}
        for version, name, step in MIGRATIONS:
            if version in applied:
                continue
            step(tx)
            tx.execute("INSERT INTO meta.schema_migrations VALUES (:v, :n, CURRENT_TIMESTAMP)",
                       {"v": version, "n": name})
            done.append(f"{version}: {name}")
        done += [f"added column {c}" for c in sync_registry_columns(tx)]
        refresh_views(tx)
    return done


def refresh_views(tx: Tx) -> None:
    """Views carry no data: an upgraded warehouse gets the current definitions."""
    from qm_pipeline.lib.live.store import create_live_views

    create_live_views(tx)
