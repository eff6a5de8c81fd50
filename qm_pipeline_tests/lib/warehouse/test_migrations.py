"""Schema migrations: versioned steps run once, and an existing warehouse upgrades in place."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

import qm_pipeline.lib.warehouse.migrations as migrations
from qm_pipeline.lib.flex.core_tables import CORE_TABLES
from qm_pipeline.lib.flex.prepare import core_schema, instruments_schema
from qm_pipeline.lib.settings import Settings
from qm_pipeline.lib.warehouse.engine import Warehouse
from qm_pipeline.lib.warehouse.migrations import migrate
from qm_pipeline_tests.helpers import (
    ingest_files,
    report,
    row,
    rows,
    section,
    snapshot,
    statement,
    trade,
    write,
)

FOUNDATION = "1: raw bookkeeping, core tables from the Flex registry, instruments"
EVERY = [f"{version}: {name}" for version, name, _ in migrations.MIGRATIONS]
VERSIONS = [(version, name) for version, name, _ in migrations.MIGRATIONS]
NEXT = max(version for version, _ in VERSIONS) + 1


def test_fresh_warehouse_gets_every_table(warehouse_url: str) -> None:
    warehouse = Warehouse(warehouse_url)
    try:
        assert migrate(warehouse) == EVERY
        assert EVERY[0] == FOUNDATION
        with warehouse.transaction() as tx:
            assert tx.tables("raw") == ["flex_files", "flex_ingest_log", "flex_statements"]
            assert tx.tables("core") == sorted([s.name for s in CORE_TABLES] + ["instruments"])
            for spec in CORE_TABLES:
                assert list(tx.columns("core", spec.name)) == core_schema(spec).names
            assert list(tx.columns("core", "instruments")) == instruments_schema().names
            assert tx.execute("SELECT version, name FROM meta.schema_migrations "
                              "ORDER BY version") == VERSIONS
            if warehouse.dialect == "postgresql":
                indexes = {name for (name,) in tx.execute(
                    "SELECT indexname FROM pg_indexes WHERE schemaname = 'core'")}
                assert indexes == {f"{s.name}_natural_key" for s in CORE_TABLES} | {
                    "instruments_conid"}
    finally:
        warehouse.dispose()


def test_migrating_again_is_a_no_op(warehouse: Warehouse, settings: Settings,
                                    tmp_path: Path) -> None:
    (result,) = ingest_files(warehouse, settings, write(tmp_path / "t.xml", report(statement(
        section("Trades", row("Trade", trade("T1")))))))
    assert result.status == "loaded"
    before = snapshot(warehouse)
    assert migrate(warehouse) == []
    assert migrate(warehouse) == []
    assert snapshot(warehouse) == before


def test_dropped_columns_come_back_and_rows_stay(warehouse: Warehouse, settings: Settings,
                                                 tmp_path: Path) -> None:
    """A warehouse made before the registry knew some columns upgrades in place."""
    (result,) = ingest_files(warehouse, settings, write(tmp_path / "t.xml", report(statement(
        section("Trades", row("Trade", trade("T1")))))))
    assert result.status == "loaded"
    with warehouse.transaction() as tx:
        tx.execute('ALTER TABLE core.trades DROP COLUMN "trade_price"')
        tx.execute('ALTER TABLE core.instruments DROP COLUMN "isin"')
    before = rows(warehouse, "SELECT transaction_id, quantity, natural_key FROM core.trades")
    assert before == [("T1", Decimal("10"), "T1")]

    assert migrate(warehouse) == ["added column core.trades.trade_price",
                                  "added column core.instruments.isin"]
    with warehouse.transaction() as tx:
        kinds = tx.columns("core", "trades")
        assert set(kinds) == set(core_schema(next(s for s in CORE_TABLES
                                                   if s.name == "trades")).names)
        assert kinds["trade_price"].upper() in ("DECIMAL(38,12)", "NUMERIC")
    assert rows(warehouse, "SELECT transaction_id, quantity, natural_key, trade_price "
                "FROM core.trades") == [("T1", Decimal("10"), "T1", None)]
    assert rows(warehouse, "SELECT conid, symbol, isin FROM core.instruments") == [
        ("1001", "ACME", None)]
    # and the next report fills it
    newer = statement(section("Trades", row("Trade", trade(
        "T1", tradePrice="13.75", isin="US0000000001"))), when_generated="20240301;120000")
    ingest_files(warehouse, settings, write(tmp_path / "t2.xml", report(newer)))
    assert rows(warehouse, "SELECT trade_price FROM core.trades") == [(Decimal("13.75"),)]
    assert rows(warehouse, "SELECT isin FROM core.instruments") == [("US0000000001",)]
    assert migrate(warehouse) == []


def test_upgrade_from_an_older_registry(warehouse_url: str,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Version 1 applied by a release whose ibflex lacked fields: rows written then survive."""
    spec = next(s for s in CORE_TABLES if s.name == "cash_transactions")
    full = core_schema(spec)
    missing = ["amount", "settle_date", "level_of_detail"]
    older = pa.schema([f for f in full if f.name not in missing])

    def older_core_schema(table):
        return older if table.name == spec.name else core_schema(table)

    warehouse = Warehouse(warehouse_url)
    try:
        with monkeypatch.context() as patch:
            patch.setattr(migrations, "core_schema", older_core_schema)
            assert migrate(warehouse) == EVERY
        with warehouse.transaction() as tx:
            assert "amount" not in tx.columns("core", "cash_transactions")
            old_row = {f.name: None for f in older}
            old_row.update(natural_key="C1", transaction_id="C1", currency="EUR",
                           when_generated=datetime(2023, 5, 1), statement_index=0)
            tx.insert("core", "cash_transactions", pa.Table.from_pylist([old_row], older))
        assert migrate(warehouse) == [f"added column core.cash_transactions.{c}"
                                      for c in missing]
        with warehouse.transaction() as tx:
            assert list(tx.columns("core", "cash_transactions")) == older.names + missing
        assert rows(warehouse, "SELECT natural_key, currency, when_generated, amount, "
                    "settle_date, level_of_detail FROM core.cash_transactions") == [
            ("C1", "EUR", datetime(2023, 5, 1), None, None, None)]
        assert rows(warehouse, "SELECT version, name FROM meta.schema_migrations "
                    "ORDER BY version") == VERSIONS
    finally:
        warehouse.dispose()


def test_a_new_migration_runs_once_and_a_failed_one_leaves_nothing(
        warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch) -> None:
    def scratch(tx) -> None:
        tx.execute("CREATE SCHEMA IF NOT EXISTS scratch")
        tx.execute("CREATE TABLE scratch.entries (id BIGINT)")

    def broken(tx) -> None:
        tx.execute("CREATE TABLE core.half_done (id BIGINT)")
        raise RuntimeError("the broken step failed")  # (the message, not the number)

    before = snapshot(warehouse)
    shipped = list(migrations.MIGRATIONS)
    monkeypatch.setattr(migrations, "MIGRATIONS",
                        [*shipped, (NEXT, "scratch", scratch), (NEXT + 1, "broken", broken)])
    with pytest.raises(RuntimeError, match="the broken step failed"):
        migrate(warehouse)
    assert snapshot(warehouse) == before  # one transaction: the good step did not stick
    with warehouse.transaction() as tx:
        assert tx.tables("scratch") == []
    monkeypatch.setattr(migrations, "MIGRATIONS", [*shipped, (NEXT, "scratch", scratch)])
    assert migrate(warehouse) == [f"{NEXT}: scratch"]
    assert migrate(warehouse) == []
    assert rows(warehouse, "SELECT version, name FROM meta.schema_migrations ORDER BY 1") == [
        *VERSIONS, (NEXT, "scratch")]
    with warehouse.transaction() as tx:
        assert tx.tables("scratch") == ["entries"]


# --- the test fixtures themselves: every test starts from what `migrate` makes -------------------


def _stable(found: dict) -> dict:
    """A snapshot without migration timestamps (they differ between two migrations)."""
    columns, applied = found["meta.schema_migrations"]
    return {**found, "meta.schema_migrations": (columns, [r[:2] for r in applied])}


def test_fixture_warehouse_is_a_freshly_migrated_one(warehouse: Warehouse,
                                                     postgres_server_or_none,
                                                     tmp_path: Path) -> None:
    if warehouse.dialect == "duckdb":
        fresh_url = f"duckdb:///{tmp_path / 'fresh.duckdb'}"
    else:
        fresh_url = postgres_server_or_none.create_database("fresh")
    fresh = Warehouse(fresh_url)
    try:
        assert migrate(fresh) == EVERY
        assert _stable(snapshot(warehouse)) == _stable(snapshot(fresh))
    finally:
        fresh.dispose()
        if warehouse.dialect != "duckdb":
            postgres_server_or_none.drop_database(fresh_url.rsplit("/", 1)[1])
    assert migrate(warehouse) == []


@pytest.fixture
def postgres_server_or_none(warehouse_url: str, request: pytest.FixtureRequest):
    return None if warehouse_url.startswith("duckdb") else request.getfixturevalue(
        "postgres_server")


@pytest.mark.postgres
def test_postgres_reset_between_tests(postgres_database, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    postgres_database.migrated()
    warehouse = Warehouse(postgres_database.url)
    try:
        base = snapshot(warehouse, ("raw", "core", "meta", "public"))
        settings = Settings(tmp_path / "qm_data", postgres_database.url)
        text = report(statement(section("Trades", row("Trade", trade("T1"))),
                                section("Novel", row("Thing", {"a": "1"}))))
        (result,) = ingest_files(warehouse, settings, write(tmp_path / "t.xml", text))
        assert result.status == "loaded"
        assert snapshot(warehouse) != base
        warehouse.dispose()  # (the reset ends other connections)
        postgres_database.migrated()  # same shape: tables emptied, extra raw tables dropped
        assert snapshot(warehouse, ("raw", "core", "meta", "public")) == base
        with warehouse.transaction() as tx:
            tx.execute('ALTER TABLE core.trades DROP COLUMN "quantity"')
            tx.execute("CREATE TABLE public.stray (x int)")
        warehouse.dispose()
        postgres_database.migrated()  # another shape: dropped and migrated again
        assert _stable(snapshot(warehouse, ("raw", "core", "meta", "public"))) == _stable(base)
        warehouse.dispose()
        postgres_database.empty()
        with warehouse.transaction() as tx:
            assert tx.scalar("SELECT count(*) FROM information_schema.tables WHERE "
                             "table_schema NOT IN ('pg_catalog', 'information_schema')") == 0
    finally:
        warehouse.dispose()


def test_an_upgrade_redefines_the_views(warehouse: Warehouse) -> None:
    """A warehouse made with an older view definition gets the current one on migrate."""
    with warehouse.transaction() as tx:
        tx.execute("DROP VIEW live.latest_position_snapshots")
        tx.execute("DROP VIEW live.latest_account_snapshots")
        tx.execute("CREATE VIEW live.latest_account_snapshots AS SELECT 'stale' AS account_id")
    migrate(warehouse)
    with warehouse.transaction() as tx:
        columns = tx.columns("live", "latest_account_snapshots")
        rows = tx.execute("SELECT count(*) FROM live.latest_account_snapshots")
    assert {"snapshot_id", "net_liquidation", "total_cash", "buying_power"} <= set(columns)
    assert rows == [(0,)]
