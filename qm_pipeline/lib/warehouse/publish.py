"""The analysts' copy: DuckDB allows one writer, so analysts read a published, read-only copy.

The copy is built beside the target and swapped in with an atomic rename at the end of a run,
so a query never blocks the pipeline and never sees half a run (an open reader keeps the old
file). PostgreSQL needs no copy: analysts query it directly.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from qm_pipeline.lib.warehouse.engine import Warehouse


def publish_copy(warehouse: Warehouse, target: Path) -> Path | None:
    """Copy the whole DuckDB warehouse to `target`; None for warehouses that need no copy.

    After a CHECKPOINT the database file is complete on its own (the WAL is empty), and this
    process is the only writer, so a file copy is a consistent snapshot; it is much faster
    than re-encoding every table with COPY FROM DATABASE."""
    source = warehouse.duckdb_path
    if source is None:
        return None
    with warehouse.transaction() as tx:
        tx.execute("CHECKPOINT")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.incoming")
    shutil.copyfile(source, staging)
    staging.chmod(0o444)
    os.replace(staging, target)
    return target
