"""Shared fixtures: settings, a migrated warehouse on DuckDB and PostgreSQL, the Flex corpus.

PostgreSQL is the real server (default `postgresql+psycopg://postgres@127.0.0.1:5432/postgres`,
override with `QM_TEST_POSTGRES_URL`). Each run creates its own `qm_test_<hex>` database and
drops it at the end. An unreachable server skips the Postgres tests, except under `CI=true`,
where it fails them: they are required there.

Isolation: `warehouse_url` is an empty warehouse (DuckDB: a new file; PostgreSQL: every
non-system schema dropped). `warehouse` is that warehouse migrated. Migrating takes a quarter
of a second, so it is done once per run and reused: DuckDB copies a migrated file; PostgreSQL
empties the tables of the migrated schema when a test left its shape as `migrate` made it
(extra raw tables, which ingestion adds, are dropped), and otherwise starts over.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from qm_pipeline.lib.settings import Settings, load_settings
from qm_pipeline.lib.warehouse.engine import Warehouse
from qm_pipeline.lib.warehouse.migrations import migrate
from qm_pipeline.runner import prepare_dagster_home

REPO = Path(__file__).resolve().parents[1]
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
_ENV_LEAKS = ("QM_DATE_ORDER", "QM_DATE_ORDER_FALLBACK", "QM_DATA_DIR", "QM_DATABASE_URL")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def unavailable(message: str) -> None:
    """Skip locally; fail under CI=true, where nothing required may be skipped."""
    if in_ci():
        pytest.fail(f"{message} (required when CI=true)", pytrace=False)
    pytest.skip(message)


def _libpq(url: str) -> str:
    """A SQLAlchemy URL as a libpq connection string for psycopg."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _connect(url: str) -> psycopg.Connection:
    return psycopg.connect(_libpq(url), autocommit=True, connect_timeout=5)


class PostgresServer:
    """The admin side of the test server: creates and drops this run's databases."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.created: list[str] = []

    def create_database(self, purpose: str = "") -> str:
        name = f"qm_test_{uuid.uuid4().hex[:12]}{'_' + purpose if purpose else ''}"
        with _connect(self.admin_url) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)

    def drop_database(self, name: str) -> None:
        with _connect(self.admin_url) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if name in self.created:
            self.created.remove(name)

    def drop_all(self) -> None:
        for name in list(self.created):
            self.drop_database(name)


_SHAPE = """
SELECT c.table_schema, c.table_name, c.column_name, c.data_type, c.ordinal_position,
       t.table_type
FROM information_schema.columns c
JOIN information_schema.tables t USING (table_schema, table_name)
WHERE c.table_schema NOT IN ('pg_catalog', 'information_schema')
  AND c.table_schema NOT LIKE 'pg\\_%'
ORDER BY 1, 2, 5
"""
_INDEXES = ("SELECT schemaname, tablename, indexname, indexdef FROM pg_indexes "
            "WHERE schemaname NOT IN ('pg_catalog') ORDER BY 1, 2, 3")


class PostgresDatabase:
    """This run's database, handed out empty or migrated."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.shape: list[tuple] | None = None  # columns and indexes right after migrate
        self.contents: dict[str, list[tuple]] = {}  # tables migrate itself filled

    def empty(self) -> None:
        """Drop everything the pipeline made (any non-system schema)."""
        with _connect(self.url) as conn:
            _terminate_others(conn)
            schemas = [name for (name,) in conn.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' "
                "AND nspname NOT IN ('information_schema', 'public')").fetchall()]
            for schema in schemas:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
            in_public = conn.execute("SELECT count(*) FROM pg_class c JOIN pg_namespace n ON "
                                     "n.oid = c.relnamespace WHERE n.nspname = 'public'"
                                     ).fetchone()
            if in_public and in_public[0]:
                conn.execute("DROP SCHEMA public CASCADE")
                conn.execute("CREATE SCHEMA public")

    def migrated(self) -> None:
        """As `migrate` leaves a new warehouse: fast when the last test kept its shape."""
        if self.shape is not None and self._empty_tables():
            return
        self.empty()
        warehouse = Warehouse(self.url)
        try:
            migrate(warehouse)
        finally:
            warehouse.dispose()
        with _connect(self.url) as conn:
            self.shape = self._shape(conn)
            self.contents = {}
            for schema, table in self._base_tables(conn):
                found = conn.execute(f'SELECT * FROM "{schema}"."{table}"').fetchall()
                if found:
                    self.contents[f"{schema}.{table}"] = sorted(found, key=repr)

    @staticmethod
    def _shape(conn: psycopg.Connection, skip_raw: frozenset[str] = frozenset()) -> list[tuple]:
        columns = [r for r in conn.execute(_SHAPE).fetchall()
                   if not (r[0] == "raw" and r[1] in skip_raw)]
        indexes = [r for r in conn.execute(_INDEXES).fetchall()
                   if not (r[0] == "raw" and r[1] in skip_raw)]
        return [*columns, ("indexes",), *indexes]

    @staticmethod
    def _base_tables(conn: psycopg.Connection) -> list[tuple[str, str]]:
        return [(s, t) for s, t in conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_type = 'BASE TABLE' AND table_schema NOT IN "
            "('pg_catalog', 'information_schema') AND table_schema NOT LIKE 'pg\\_%' "
            "ORDER BY 1, 2").fetchall()]

    def _empty_tables(self) -> bool:
        """Empty the migrated tables if the warehouse still has migrate's shape."""
        with _connect(self.url) as conn:
            _terminate_others(conn)
            tables = self._base_tables(conn)
            known = {(r[0], r[1]) for r in self.shape or [] if len(r) == 6}
            extra = frozenset(t for s, t in tables if s == "raw" and ("raw", t) not in known)
            if self._shape(conn, extra) != self.shape:
                return False
            for name, expected in self.contents.items():
                schema, table = name.split(".")
                found = conn.execute(f'SELECT * FROM "{schema}"."{table}"').fetchall()
                if sorted(found, key=repr) != expected:
                    return False
            for table in sorted(extra):
                conn.execute(f'DROP TABLE "raw"."{table}" CASCADE')
            emptied = [f'"{s}"."{t}"' for s, t in tables
                       if (s, t) in known and f"{s}.{t}" not in self.contents]
            if emptied:
                conn.execute(f"TRUNCATE {', '.join(emptied)}")
        return True


def _terminate_others(conn: psycopg.Connection) -> None:
    conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                 "WHERE datname = current_database() AND pid <> pg_backend_pid()")


@pytest.fixture(scope="session", autouse=True)
def dagster_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every Dagster run in the tests uses a home whose dagster.yaml turns telemetry off
    (Dagster reads that switch only from $DAGSTER_HOME/dagster.yaml)."""
    home = tmp_path_factory.mktemp("dagster_home")
    previous = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)
    prepare_dagster_home(home)
    yield home
    if previous is None:
        os.environ.pop("DAGSTER_HOME", None)
    else:
        os.environ["DAGSTER_HOME"] = previous


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    admin_url = os.environ.get("QM_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    server = PostgresServer(admin_url)
    try:
        with _connect(admin_url) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        shown = make_url(admin_url).render_as_string(hide_password=True)
        unavailable(f"PostgreSQL not reachable at {shown}: {str(exc).strip()}")
    try:
        yield server
    finally:
        server.drop_all()


@pytest.fixture(scope="session")
def postgres_database(postgres_server: PostgresServer) -> PostgresDatabase:
    """This run's database (one per session), reset by `warehouse_url` for every test."""
    return PostgresDatabase(postgres_server.create_database())


@pytest.fixture(params=[
    pytest.param("duckdb", id="duckdb"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
])
def warehouse_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty warehouse of each kind (migrated instead when the test uses `warehouse`)."""
    if request.param == "duckdb":
        return f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    database: PostgresDatabase = request.getfixturevalue("postgres_database")
    if "warehouse" in request.fixturenames:
        database.migrated()
    else:
        database.empty()
    return database.url


@pytest.fixture
def settings(tmp_path: Path, warehouse_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in _ENV_LEAKS:  # a developer's shell must not change what the tests see
        monkeypatch.delenv(name, raising=False)
    return load_settings(tmp_path / "qm_data", warehouse_url)


@pytest.fixture(scope="session")
def duckdb_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DuckDB file as `migrate` leaves a new warehouse, made once per run."""
    path = tmp_path_factory.mktemp("duckdb_template") / "warehouse.duckdb"
    template = Warehouse(f"duckdb:///{path}")
    try:
        migrate(template)
        with template.transaction() as tx:
            tx.execute("CHECKPOINT")  # everything in the file, nothing in a WAL beside it
    finally:
        template.dispose()
    return path


@pytest.fixture
def warehouse(warehouse_url: str, request: pytest.FixtureRequest) -> Iterator[Warehouse]:
    """A migrated warehouse (what `migrate` makes of a new one)."""
    database = make_url(warehouse_url).database
    if warehouse_url.startswith("duckdb"):
        assert database and not Path(database).exists()
        shutil.copyfile(request.getfixturevalue("duckdb_template"), database)
    found = Warehouse(warehouse_url)
    try:
        yield found
    finally:
        found.dispose()


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    override = os.environ.get("QM_FLEX_CORPUS")
    folder = Path(override) if override else REPO.parent / "shared" / "flex_corpus"
    if not (folder / "MANIFEST.tsv").is_file():
        unavailable(f"Flex corpus not found at {folder} (set QM_FLEX_CORPUS)")
    return folder
