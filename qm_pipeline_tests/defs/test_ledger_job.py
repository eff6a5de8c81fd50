"""The ledger in Dagster: `ledger_rebuild` materializes every ledger table and its checks
against IB pass, or fail with the count while `ledger.check_failures` keeps both values;
the lot method comes from the resource; the Flex ingest runs with a rebuild in one job; and
`qm ledger` rebuilds and prints the summary."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from qm_pipeline.definitions import defs
from qm_pipeline.defs.ledger.assets import SPECS
from qm_pipeline.defs.ledger.resources import LedgerResource
from qm_pipeline.defs.resources import WarehouseResource
from qm_pipeline.lib.settings import Settings
from qm_pipeline.lib.warehouse.engine import Warehouse
from qm_pipeline_tests.helpers import ingest_files, rows, scalar
from qm_pipeline_tests.lib.ledger.test_store import base_report

D = Decimal
LEDGER_KEYS = sorted(spec.key.to_user_string() for spec in SPECS)
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
duckdb_only = pytest.mark.parametrize("warehouse_url", ["duckdb"], indirect=True)


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.get() as found:  # the tests' DAGSTER_HOME, telemetry off
        yield found


def run(instance: dg.DagsterInstance, settings: Settings, job: str = "ledger_rebuild",
        run_config: dict[str, Any] | None = None, **kwargs: Any) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def(job).execute_in_process(
        instance=instance, raise_on_error=False, run_config={**QUIET, **(run_config or {})},
        resources={"warehouse": WarehouseResource(database_url=settings.database_url,
                                                  data_dir=str(settings.data_dir)),
                   "ledger": LedgerResource()},
        **kwargs)


def checks(result: dg.ExecuteInProcessResult) -> dict[str, tuple[bool, dict[str, Any]]]:
    return {e.check_name: (e.passed, {k: v.value for k, v in e.metadata.items()})
            for e in result.get_asset_check_evaluations()}


def materialized(result: dg.ExecuteInProcessResult) -> dict[str, dict[str, Any]]:
    return {m.asset_key.to_user_string(): {k: v.value for k, v in
                                           m.materialization.metadata.items()}
            for m in result.get_asset_materialization_events()}


def test_rebuild_job_writes_every_table_and_passes_its_checks(
        instance: dg.DagsterInstance, warehouse: Warehouse, settings: Settings,
        tmp_path: Path) -> None:
    ingest_files(warehouse, settings, base_report(tmp_path))

    result = run(instance, settings)

    assert result.success
    found = materialized(result)
    assert sorted(found) == LEDGER_KEYS
    assert found["ledger/positions"]["rows_written"] == 2
    assert found["ledger/positions"]["open_positions"] == 1
    assert found["ledger/realized"]["rows_written"] == 1
    assert found["ledger/lots"]["executions_replayed"] == 3
    assert found["ledger/check_failures"]["rows_written"] == 0
    assert found["ledger/audit_log"]["rows_written"] == 2  # two episodes inserted
    assert {name: passed for name, (passed, _) in checks(result).items()} == {
        "realized_fifo_pnl_matches_ib": True, "realized_closed_lots_match_ib": True,
        "position_history_open_positions_match_ib": True, "flags_no_errors": True}
    assert scalar(warehouse, "SELECT run_id FROM ledger.runs") == result.run_id


def test_a_disagreement_with_ib_fails_its_check_with_both_values(
        instance: dg.DagsterInstance, warehouse: Warehouse, settings: Settings,
        tmp_path: Path) -> None:
    ingest_files(warehouse, settings, base_report(tmp_path, fifo_t2="199"))  # IB says 199

    result = run(instance, settings)

    assert result.success  # the checks report; they do not stop the run
    found = checks(result)
    passed, metadata = found["realized_fifo_pnl_matches_ib"]
    assert not passed and metadata["mismatches"] == 1
    assert metadata["by_check"] == {"realized_pnl": 1}
    assert metadata["run_id"] == result.run_id
    assert found["position_history_open_positions_match_ib"][0]
    assert rows(warehouse, "SELECT check_name, account_id, conid, key, ours, ibs, difference, "
                           "run_id FROM ledger.check_failures") == [
        ("realized_pnl", "U1234567", "1001", "T2", D(198), D(199), D(-1), result.run_id)]


@duckdb_only
def test_lot_method_and_wash_mode_come_from_the_resource(
        instance: dg.DagsterInstance, warehouse: Warehouse, settings: Settings,
        tmp_path: Path) -> None:
    ingest_files(warehouse, settings, base_report(tmp_path, fifo_t2="199"))
    config = {"resources": {"ledger": {"config": {"method": "LIFO", "wash_sales": "none"}}}}

    result = run(instance, settings, run_config=config)

    assert result.success
    # IB's fifoPnlRealized is a FIFO number: a LIFO account is not compared with it
    assert checks(result)["realized_fifo_pnl_matches_ib"][0]
    assert rows(warehouse, "SELECT DISTINCT method FROM ledger.realized") == [("LIFO",)]
    assert rows(warehouse, "SELECT default_method, wash_sales FROM ledger.runs") == [
        ("LIFO", "none")]

    bad = run(instance, settings, run_config={
        "resources": {"ledger": {"config": {"methods": "U1234567=FILO"}}}})
    assert not bad.success
    (failure,) = [e for e in bad.all_events if e.is_step_failure]
    assert "unknown lot method 'FILO'" in failure.step_failure_data.error.message


@duckdb_only
def test_flex_ingest_then_ledger_in_one_job(instance: dg.DagsterInstance, warehouse: Warehouse,
                                            settings: Settings, tmp_path: Path) -> None:
    path = base_report(tmp_path)
    config = {"ops": {"raw__flex_archive": {"config": {
        "paths": [str(path)], "use_web_service": False, "use_drop_folder": False}}}}

    result = run(instance, settings, job="flex_ingest_ledger", run_config=config,
                 partition_key=date.today().isoformat())

    assert result.success
    assert set(LEDGER_KEYS) <= set(materialized(result))
    assert scalar(warehouse, "SELECT count(*) FROM core.trades") == 3
    assert rows(warehouse, "SELECT episode_id, status FROM ledger.positions ORDER BY 1") == [
        ("U1234567|1001|1", "CLOSED"), ("U1234567|2002|1", "OPEN")]


@duckdb_only
def test_qm_ledger_rebuilds_and_prints_the_summary(warehouse: Warehouse, settings: Settings,
                                                   tmp_path: Path) -> None:
    ingest_files(warehouse, settings, base_report(tmp_path))
    env = {k: v for k, v in os.environ.items() if not k.startswith("QM_")}
    env.update(QM_DATA_DIR=str(settings.data_dir), QM_DATABASE_URL=settings.database_url)
    qm = [str(Path(sys.executable).with_name("qm")), "ledger"]

    done = subprocess.run(qm, env=env, capture_output=True, text=True, timeout=120,
                          check=False)

    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for text in ("Lot method FIFO, wash sales broker", "Ledger accounts",
                 "Realized P&L by year and term", "Cross-checks with IB: no mismatch"):
        assert text in out, out
    (account,) = [line for line in out.splitlines() if "U1234567" in line and "FIFO" in line]
    assert [c.strip() for c in account.strip("│ ").split("│")] == [
        "U1234567", "FIFO", "1", "2", "198.00", "0"]
    (year,) = [line for line in out.splitlines() if "2024" in line and "SHORT" in line]
    assert "198.00" in year

    refused = subprocess.run([*qm, "--method", "FILO"], env=env, capture_output=True,
                             text=True, timeout=60, check=False)
    assert refused.returncode == 2 and "unknown lot method 'FILO'" in refused.stdout
