"""The `flex_ingest` job end to end on DuckDB, as the nightly schedule and the CLI run it: real
corpus files by path, a malformed file beside good ones, a re-run, the analysts' published
copy, and a pull from the (fake) Flex Web Service with the token kept out of every record."""

from __future__ import annotations

import csv
import hashlib
import json
import logging
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest

from qm_pipeline.definitions import defs
from qm_pipeline.defs.ingest.assets import ARCHIVE, CORE_KEYS, INGEST_LOG, RAW_ROWS
from qm_pipeline.defs.resources import FlexWebServiceResource, WarehouseResource
from qm_pipeline.lib.flex.sample import SampleSpec, write_reports
from qm_pipeline.lib.settings import Settings
from qm_pipeline.lib.sim.flex_service import FakeFlexService
from qm_pipeline.lib.warehouse.engine import Warehouse, qualified
from qm_pipeline_tests.helpers import rows, scalar, sha256_of, snapshot

pytestmark = pytest.mark.parametrize("warehouse_url", ["duckdb"], indirect=True)

GOOD = ("001_pp01_2013_fx_opt_ca.xml", "013_pp20_2023_asset_symbol_order_summary.xml",
        "018_pp26_2025_two_accounts.xml")
KNOWN_DRIFT = ["SymbolSummary.fxPnl", "Trade.orderPlacementTime"]  # attributes ibflex lacks
CORE = [key.path[-1] for key in CORE_KEYS]
TOKEN = "4f3c2b1a09e8d7c6b5a4f3e2d1c0b9a8"  # a made-up Flex Web Service token
QUERY = "987654"


def run_ingest(instance: dg.DagsterInstance, settings: Settings, config: dict[str, Any],
               flex_web_service: FlexWebServiceResource | None = None
               ) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def("flex_ingest").execute_in_process(
        instance=instance, partition_key=date.today().isoformat(), raise_on_error=False,
        run_config={"ops": {"raw__flex_archive": {"config": config}},
                    "loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        resources={
            "warehouse": WarehouseResource(database_url=settings.database_url,
                                           data_dir=str(settings.data_dir)),
            "flex_web_service": flex_web_service or FlexWebServiceResource(),
        },
    )


def by_paths(*paths: Path) -> dict[str, Any]:
    return {"paths": [str(p) for p in paths], "use_web_service": False, "use_drop_folder": False}


def metadata(result: dg.ExecuteInProcessResult, key: dg.AssetKey) -> dict[str, Any]:
    (found,) = [m for m in result.get_asset_materialization_events()
                if m.asset_key == key]
    return {k: v.value for k, v in found.materialization.metadata.items()}


def checks(result: dg.ExecuteInProcessResult) -> dict[str, tuple[bool, str]]:
    return {e.check_name: (e.passed, e.severity.value)
            for e in result.get_asset_check_evaluations()}


def core_counts(source: Warehouse | duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Rows per core table, in the warehouse or in a plain DuckDB connection to a copy."""
    if isinstance(source, Warehouse):
        with source.transaction() as tx:
            return {t: tx.scalar(f"SELECT count(*) FROM {qualified('core', t)}") for t in CORE}
    return {t: source.execute(f'SELECT count(*) FROM core."{t}"').fetchone()[0] for t in CORE}


def manifest(corpus_dir: Path) -> dict[str, dict[str, str]]:
    with (corpus_dir / "MANIFEST.tsv").open(newline="") as stream:
        return {r["file"]: r for r in csv.DictReader(stream, delimiter="\t")}


def assert_published(settings: Settings, warehouse: Warehouse, files: int) -> None:
    """The analysts' copy opens read-only and holds what the warehouse holds."""
    published = settings.published_path
    assert published == settings.data_dir / "published" / "warehouse.duckdb"
    assert published.stat().st_mode & 0o222 == 0  # read-only on disk too
    with duckdb.connect(str(published), read_only=True) as copy:
        assert core_counts(copy) == core_counts(warehouse)
        assert copy.execute("SELECT count(*) FROM raw.flex_files").fetchone()[0] == files
        with pytest.raises(duckdb.Error, match="read-only"):
            copy.execute("DELETE FROM core.trades")


def test_flex_ingest_loads_checks_publishes_and_reruns_as_a_no_op(
        settings: Settings, instance: dg.DagsterInstance, corpus_dir: Path,
        tmp_path: Path) -> None:
    good = [corpus_dir / name for name in GOOD]
    expected = manifest(corpus_dir)

    first = run_ingest(instance, settings, by_paths(*good))

    assert first.success
    warehouse = Warehouse(settings.database_url)  # the job made and migrated it
    try:
        archived = metadata(first, ARCHIVE)
        assert (archived["reports"], archived["new_reports"], archived["names"]) == (
            3, 3, list(GOOD))
        landed = metadata(first, RAW_ROWS)
        assert landed["reports_loaded"] == 3
        assert landed["rows"] == sum(int(expected[n]["rows"]) for n in GOOD) == 41 + 18 + 6
        assert metadata(first, INGEST_LOG)["schema_drift"] == KNOWN_DRIFT
        loaded = rows(warehouse, "SELECT original_name, source, rows_seen, rows_loaded, "
                      "statements_found, run_id FROM raw.flex_files ORDER BY 1")
        assert loaded == [(n, "cli", int(expected[n]["rows"]), int(expected[n]["rows"]),
                           int(expected[n]["n_statements"]), first.run_id) for n in GOOD]
        trades = core_counts(warehouse)["trades"]
        assert trades > 0 and metadata(first, dg.AssetKey(["core", "trades"])) == {
            "rows_written": trades}
        evaluated = checks(first)
        assert len(evaluated) == 17
        drift = evaluated.pop("flex_ingest_log_schema_drift")
        assert drift == (False, "WARN")  # reported, never a failure
        assert all(passed for passed, _ in evaluated.values()), evaluated
        assert {severity for _, severity in evaluated.values()} == {"ERROR"}
        (drift_event,) = [e for e in first.get_asset_check_evaluations()
                          if e.check_name == "flex_ingest_log_schema_drift"]
        assert drift_event.metadata["drift"].value == KNOWN_DRIFT
        assert drift_event.metadata["count"].value == 2
        assert_published(settings, warehouse, files=3)

        # a malformed report beside a good one: the run fails naming it, the good one loads
        bad = tmp_path / "broken_export.xml"
        text = (corpus_dir / "007_pp13_cfd.xml").read_text()
        bad.write_text(text.replace("<Trade ", "<Trade <oops ", 1))
        bad_sha = sha256_of(bad)
        before = snapshot(warehouse)

        second = run_ingest(instance, settings, by_paths(bad, corpus_dir / "007_pp13_cfd.xml"))

        assert not second.success
        (failure,) = [e for e in second.all_events if e.is_step_failure]
        assert failure.step_key == "flex_warehouse"
        data = failure.step_failure_data.user_failure_data
        assert data.description == ("1 report(s) could not be loaded and left the warehouse "
                                    "unchanged: broken_export.xml")
        (error,) = data.metadata["errors"].value
        archived_bad = settings.archive_dir / bad_sha[:2] / f"{bad_sha}.xml"
        assert error.startswith(f"broken_export.xml: {archived_bad}, line ")
        assert "malformed or truncated XML" in error
        marker = json.loads((settings.archive_dir / "failed" / f"{bad_sha}.json").read_text())
        assert marker["original_name"] == "broken_export.xml" and marker["error"] in error
        assert metadata(second, RAW_ROWS)["reports_loaded"] == 1
        assert rows(warehouse, "SELECT original_name, run_id FROM raw.flex_files "
                    "WHERE run_id = :r", r=second.run_id) == [("007_pp13_cfd.xml", second.run_id)]
        after = snapshot(warehouse)
        for table, (_, table_rows) in after.items():
            names = [c for c, _ in after[table][0]]
            if "file_sha256" in names:  # nothing anywhere from the broken file
                at = names.index("file_sha256")
                assert all(r[at] != bad_sha for r in table_rows), table
        assert len(after["raw.trade"][1]) == len(before["raw.trade"][1]) + 1
        assert after["raw.flex_files"][1] != before["raw.flex_files"][1]

        # the same files again: nothing new, nothing changed, checks still pass
        settled = snapshot(warehouse)
        third = run_ingest(instance, settings, by_paths(*good))

        assert third.success
        archived = metadata(third, ARCHIVE)
        assert (archived["reports"], archived["new_reports"]) == (3, 0)
        assert (metadata(third, RAW_ROWS)["reports_loaded"], metadata(third, RAW_ROWS)["rows"]
                ) == (0, 0)
        assert snapshot(warehouse) == settled
        assert not list((settings.archive_dir / "pending").glob("*.json"))
        assert all(passed or name == "flex_ingest_log_schema_drift"
                   for name, (passed, _) in checks(third).items())
        assert_published(settings, warehouse, files=4)  # now with the CFD report too
    finally:
        warehouse.dispose()


def test_web_service_pull_is_archived_and_loaded_without_the_token(
        settings: Settings, instance: dg.DagsterInstance, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    spec = SampleSpec(accounts=("U1000001",), start=date(2024, 1, 2), end=date(2024, 1, 31),
                      trades_per_day=2, seed=3)
    (generated,) = write_reports(spec, tmp_path / "generated")
    payload = generated.read_bytes()
    windows: list[tuple[date | None, date | None]] = []

    def serve(fd: date | None, td: date | None) -> bytes:
        windows.append((fd, td))
        return payload

    monkeypatch.setenv("QM_FLEX_TOKEN", TOKEN)  # as in production: a secret from the env
    with FakeFlexService({QUERY: serve}, tokens=TOKEN) as service:
        source = FlexWebServiceResource(token=dg.EnvVar("QM_FLEX_TOKEN"), query_id=QUERY,
                                        base_url=service.base_url)
        result = run_ingest(instance, settings, {"from_date": "2024-01-02",
                                                 "to_date": "2024-01-31",
                                                 "use_drop_folder": False}, source)
        requests = service.requests

    assert result.success
    assert windows == [(date(2024, 1, 2), date(2024, 1, 31))]
    assert [r.endpoint for r in requests] == ["SendRequest", "GetStatement"]
    assert all(r.params["t"] == "***" for r in requests)  # the fake saw the real one
    name = f"flex_{QUERY}_20240102_20240131.xml"
    assert metadata(result, ARCHIVE)["names"] == [name]
    sha = hashlib.sha256(payload).hexdigest()
    assert (settings.archive_dir / sha[:2] / f"{sha}.xml").read_bytes() == payload

    warehouse = Warehouse(settings.database_url)
    try:
        assert rows(warehouse, "SELECT original_name, source, accounts, file_sha256 FROM "
                    "raw.flex_files") == [(name, "web-service", "U1000001", sha)]
        trade_rows = payload.count(b"<Trade ")
        assert trade_rows > 0
        assert scalar(warehouse, "SELECT count(*) FROM raw.trade") == trade_rows
        assert scalar(warehouse, "SELECT count(*) FROM core.accounts") == 1
        assert all(passed for name, (passed, _) in checks(result).items()
                   if name != "flex_ingest_log_schema_drift")
        stored = snapshot(warehouse, ("raw", "core", "meta", "live"))
        assert stored["raw.flex_files"][1] and TOKEN not in repr(stored)
    finally:
        warehouse.dispose()

    # nowhere in Dagster's records: events, run config, compute logs, the instance's files
    records = instance.all_logs(result.run_id)
    assert len(records) > 20
    assert not [r for r in records if TOKEN in dg.serialize_value(r)]
    run = instance.get_run_by_id(result.run_id)
    assert run is not None and TOKEN not in dg.serialize_value(run)
    for folder in (Path(instance.root_directory), settings.data_dir):
        for path in folder.rglob("*"):
            if path.is_file() and path.suffix != ".duckdb":
                assert TOKEN.encode() not in path.read_bytes(), path
    assert TOKEN not in caplog.text  # nor in any Python log line (httpx logs its URLs)
    assert any("GetStatement" in r.getMessage() for r in caplog.records)
