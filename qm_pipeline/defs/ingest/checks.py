"""Data-quality checks on the Flex landing: row fidelity, key uniqueness, schema drift."""


import dagster as dg

from qm_pipeline.defs.ingest.assets import INGEST_LOG
from qm_pipeline.defs.resources import WarehouseResource
from qm_pipeline.lib.flex.core_tables import CORE_TABLES


@dg.asset_check(asset=INGEST_LOG, name="flex_ingest_log_row_fidelity", blocking=True,
                description="Every row seen in a report is in raw (rows_seen == rows_loaded).")
def row_fidelity(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.get().transaction() as tx:
        rows = tx.execute(
            "SELECT file_sha256, account_id, section, row_tag, rows_seen, rows_loaded "
            "FROM raw.flex_ingest_log WHERE rows_seen <> rows_loaded ORDER BY 1, 2, 3, 4")
        checked = tx.scalar("SELECT count(*) FROM raw.flex_ingest_log")
    return dg.AssetCheckResult(passed=not rows, metadata={
        "log_rows_checked": checked, "mismatches": len(rows),
        "first_mismatches": dg.MetadataValue.json([list(map(str, r)) for r in rows[:20]]),
    })


@dg.asset_check(asset=INGEST_LOG, name="flex_ingest_log_schema_drift",
                description="Attributes, row tags or sections the Flex registry does not know: "
                            "kept in raw and reported here, never a failure.")
def schema_drift(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.get().transaction() as tx:
        rows = tx.execute(
            "SELECT row_tag, unknown_attributes, notes FROM raw.flex_ingest_log "
            "WHERE unknown_attributes IS NOT NULL OR notes LIKE '%unknown%' "
            "GROUP BY 1, 2, 3 ORDER BY 1")
    drift = sorted({f"{tag}.{a}" for tag, attrs, _ in rows for a in (attrs or "").split(",")
                    if a} | {f"{tag}: {notes}" for tag, _, notes in rows if notes})
    return dg.AssetCheckResult(
        passed=not drift, severity=dg.AssetCheckSeverity.WARN,
        metadata={"drift": dg.MetadataValue.json(drift), "count": len(drift)},
    )


_KEY_COLUMNS = {**{t.name: "natural_key" for t in CORE_TABLES}, "instruments": "conid"}


@dg.multi_asset_check(
    specs=[dg.AssetCheckSpec(f"{name}_key_unique", asset=dg.AssetKey(["core", name]),
                             blocking=True, description=f"core.{name}: one row per {key}.")
           for name, key in _KEY_COLUMNS.items()],
)
def key_uniqueness(warehouse: WarehouseResource):
    """One step and one transaction for all core tables (each check is one SQL count)."""
    with warehouse.get().transaction() as tx:
        for name, key in _KEY_COLUMNS.items():
            total, distinct = tx.execute(
                f'SELECT count(*), count(DISTINCT "{key}") FROM core."{name}"')[0]
            yield dg.AssetCheckResult(
                asset_key=dg.AssetKey(["core", name]), check_name=f"{name}_key_unique",
                passed=total == distinct,
                metadata={"rows": total, "duplicate_keys": total - distinct},
            )
