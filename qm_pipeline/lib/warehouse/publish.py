"""The analysts' copy: DuckDB allows one writer, so analysts read a published, read-only copy.

The copy is built beside the target and swapped in with an atomic rename at the end of a run,
so a query never blocks the pipeline and never sees half a run (an open reader keeps the old
file). PostgreSQL needs no copy: analysts query it directly.
"""

from __future__ import annotations

import os
from pathlib import Path

from qm_pipeline.lib.warehouse.engine import Warehouse


def publish_copy(warehouse: Warehouse, target: Path) -> Path | None:
    """Copy the whole DuckDB warehouse to `target`; None for warehouses that need no copy."""
    if warehouse.dialect != "duckdb":
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.incoming")
    staging.unlink(missing_ok=True)
    with warehouse.engine.connect() as conn:
        driver = conn.connection.driver_connection
        source = driver.execute("SELECT current_database()").fetchone()[0]
        escaped = str(staging).replace("'", "''")
        driver.execute(f"ATTACH '{escaped}' AS qm_published")
        try:
            driver.execute(f'COPY FROM DATABASE "{source}" TO qm_published')
        finally:
            driver.execute("DETACH qm_published")
    os.replace(staging, target)
    return target
