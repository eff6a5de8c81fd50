"""Data-quality checks on the Flex landing: row fidelity, key uniqueness, schema drift.

They are evaluated inside the landing step (check specs of the multi-asset): one short SQL
each in one transaction, without a Dagster step apiece (each step costs about 0.3 s).
"""

from collections.abc import Iterator

import dagster as dg

from qm_pipeline.defs.ingest.keys import INGEST_LOG
from qm_pipeline.lib.flex.core_tables import CORE_TABLES
from qm_pipeline.lib.warehouse.engine import Tx

_KEY_COLUMNS = {**{t.name: "natural_key" for t in CORE_TABLES}, "instruments": "conid"}

ROW_FIDELITY = dg.AssetCheckSpec(
    "flex_ingest_log_row_fidelity", asset=INGEST_LOG, blocking=True,
    description="Every row seen in a report is in raw (rows_seen == rows_loaded).")
SCHEMA_DRIFT = dg.AssetCheckSpec(
    "flex_ingest_log_schema_drift", asset=INGEST_LOG,
    description="Attributes, row tags or sections the Flex registry does not know: kept in "
                "raw and reported here, never a failure.")
KEY_UNIQUE = [dg.AssetCheckSpec(f"{name}_key_unique", asset=dg.AssetKey(["core", name]),
                                blocking=True, description=f"core.{name}: one row per {key}.")
              for name, key in _KEY_COLUMNS.items()]
CHECK_SPECS = [ROW_FIDELITY, SCHEMA_DRIFT, *KEY_UNIQUE]


def row_fidelity(tx: Tx) -> dg.AssetCheckResult:
    rows = tx.execute(
        "SELECT file_sha256, account_id, section, row_tag, rows_seen, rows_loaded "
        "FROM raw.flex_ingest_log WHERE rows_seen <> rows_loaded ORDER BY 1, 2, 3, 4")
    checked = tx.scalar("SELECT count(*) FROM raw.flex_ingest_log")
    return dg.AssetCheckResult(
        asset_key=INGEST_LOG, check_name=ROW_FIDELITY.name, passed=not rows,
        metadata={"log_rows_checked": checked, "mismatches": len(rows),
                  "first_mismatches": dg.MetadataValue.json([list(map(str, r))
                                                             for r in rows[:20]])})


def schema_drift(tx: Tx) -> dg.AssetCheckResult:
    rows = tx.execute(
        "SELECT row_tag, unknown_attributes, notes FROM raw.flex_ingest_log "
        "WHERE unknown_attributes IS NOT NULL OR notes LIKE '%unknown%' "
        "GROUP BY 1, 2, 3 ORDER BY 1")
    drift = sorted({f"{tag}.{a}" for tag, attrs, _ in rows for a in (attrs or "").split(",")
                    if a} | {f"{tag}: {notes}" for tag, _, notes in rows if notes})
    return dg.AssetCheckResult(
        asset_key=INGEST_LOG, check_name=SCHEMA_DRIFT.name, passed=not drift,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"drift": dg.MetadataValue.json(drift), "count": len(drift)})


def key_uniqueness(tx: Tx) -> Iterator[dg.AssetCheckResult]:
    for name, key in _KEY_COLUMNS.items():
        total, distinct = tx.execute(
            f'SELECT count(*), count(DISTINCT "{key}") FROM core."{name}"')[0]
        yield dg.AssetCheckResult(
            asset_key=dg.AssetKey(["core", name]), check_name=f"{name}_key_unique",
            passed=total == distinct, metadata={"rows": total, "duplicate_keys": total - distinct})


def landing_checks(tx: Tx) -> Iterator[dg.AssetCheckResult]:
    yield row_fidelity(tx)
    yield schema_drift(tx)
    yield from key_uniqueness(tx)
