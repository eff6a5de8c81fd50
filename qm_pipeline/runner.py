"""Run the code location's jobs in this process, for the CLI: the same assets as the UI runs,
on the instance under DAGSTER_HOME (so CLI runs show in the UI), telemetry off."""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass
from pathlib import Path

_DAGSTER_YAML = """\
telemetry:
  enabled: false
concurrency:
  runs:
    max_concurrent_runs: 1  # DuckDB has one writer: one run at a time
  pools:
    default_limit: 1  # the "warehouse" pool: one step writes at a time
"""


def prepare_dagster_home(data_dir: Path) -> Path:
    """Use DAGSTER_HOME if set, else one under the data folder; make sure telemetry is off."""
    home = Path(os.environ.get("DAGSTER_HOME") or (data_dir / "dagster_home")).resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(_DAGSTER_YAML)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


@dataclass
class RunOutcome:
    run_id: str
    success: bool
    errors: list[str]


def run_job(job_name: str, *, partition_key: str | None = None,
            run_config: dict | None = None, log_level: str = "WARNING") -> RunOutcome:
    import dagster as dg

    from qm_pipeline.definitions import defs

    # Dagster and the definitions (200,000 objects) live as long as the process: kept out
    # of the collector's full passes while the run allocates (0.3 s of a large ingest), and
    # handed back after it (frozen at exit, DuckDB's objects would be reported as leaked).
    gc.freeze()
    try:
        with dg.DagsterInstance.get() as instance:
            quiet = {"loggers": {"console": {"config": {"log_level": log_level}}}}
            result = defs.resolve_job_def(job_name).execute_in_process(
                run_config={**quiet, **(run_config or {})}, instance=instance,
                partition_key=partition_key, raise_on_error=False,
            )
    finally:
        gc.unfreeze()
    errors = []
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data:
            failure = event.step_failure_data.error
            errors.append(failure.message.strip() if failure else "step failed")
            meta = event.step_failure_data.user_failure_data
            if meta and "errors" in meta.metadata:
                errors += list(meta.metadata["errors"].value)
    return RunOutcome(result.run_id, result.success, errors)
