"""The text report of a reconciliation run, for the CLI."""

from __future__ import annotations

from pathlib import Path

from qm_pipeline.lib.warehouse.engine import Warehouse


def latest_report(database_url: str, run_id: str) -> str | None:
    """The run's text report (None when the run wrote none, e.g. it failed before)."""
    warehouse = Warehouse(database_url)
    try:
        with warehouse.transaction() as tx:
            if "runs" not in tx.tables("recon"):
                return None
            found = tx.execute("SELECT report_text FROM recon.runs WHERE run_id = :r",
                               {"r": run_id})
    finally:
        warehouse.dispose()
    path = Path(found[0][0]) if found and found[0][0] else None
    return path.read_text(encoding="utf-8") if path and path.exists() else None
