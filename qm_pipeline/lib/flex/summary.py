"""What a run loaded, per report, for the CLI's closing table."""

from __future__ import annotations

from qm_pipeline.lib.warehouse.engine import Warehouse


def run_summary(warehouse: Warehouse, run_id: str) -> list[tuple]:
    with warehouse.transaction() as tx:
        return tx.execute(
            "SELECT f.original_name, f.accounts, f.statements_found, f.rows_seen, f.rows_loaded,"
            " sum(l.core_rows), CASE WHEN f.date_order_source = 'not needed' THEN '-'"
            " ELSE f.date_order || ' ' || f.date_order_source END,"
            " string_agg(DISTINCT l.row_tag || '.' || l.unknown_attributes, '; ')"
            " FROM raw.flex_files f JOIN raw.flex_ingest_log l USING (file_sha256)"
            " WHERE f.run_id = :r GROUP BY f.original_name, f.accounts, f.statements_found,"
            " f.rows_seen, f.rows_loaded, f.date_order, f.date_order_source ORDER BY 1",
            {"r": run_id},
        )
