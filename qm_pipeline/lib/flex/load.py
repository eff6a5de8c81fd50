"""One report into the warehouse, in one transaction: raw rows, core upserts, the ingest log."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import pyarrow as pa

from qm_pipeline.lib.flex.archive import ArchivedReport
from qm_pipeline.lib.flex.prepare import LoadPlan
from qm_pipeline.lib.warehouse.engine import Tx, qualified
from qm_pipeline.lib.warehouse.migrations import FILES, INGEST_LOG
from qm_pipeline.lib.warehouse.upsert import merge_attributes, upsert_newest


@dataclass
class LoadResult:
    sha256: str
    name: str
    status: str  # loaded | duplicate | failed
    accounts: list[str] = field(default_factory=list)
    statements: int = 0
    rows_seen: int = 0
    rows_loaded: int = 0
    core_rows: dict[str, int] = field(default_factory=dict)
    drift: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0


def already_loaded(tx: Tx, sha256: str) -> bool:
    return bool(tx.scalar("SELECT count(*) FROM raw.flex_files WHERE file_sha256 = :s",
                          {"s": sha256}))


def _loaded_counts(tx: Tx, plan: LoadPlan) -> dict[tuple[str, str, str], int]:
    counts: dict[tuple[str, str, str], int] = {}
    for table in plan.raw:
        rows = tx.execute(
            "SELECT COALESCE(statement_account_id, ''), section, row_tag, count(*) "
            f"FROM {qualified('raw', table)} WHERE file_sha256 = :s GROUP BY 1, 2, 3",
            {"s": plan.sha256},
        )
        counts.update({(a, s, t): n for a, s, t, n in rows})
    return counts


def load_plan(tx: Tx, plan: LoadPlan, report: ArchivedReport, run_id: str) -> LoadResult:
    """Write everything `plan` holds. The caller owns the transaction (all or nothing)."""
    result = LoadResult(plan.sha256, report.original_name, "loaded", plan.accounts,
                        plan.statements.num_rows, plan.rows_seen)
    for table, parts in plan.raw.items():
        for part in parts:
            tx.ensure_table("raw", table, part.schema)
            tx.insert("raw", table, part)
    counts = _loaded_counts(tx, plan)
    for name, rows in plan.core.items():
        result.core_rows[name] = upsert_newest(tx, "core", name, rows)
    merge_attributes(tx, "core", "instruments", plan.instruments, "conid")
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    log_rows = []
    for key, entry in sorted(plan.log.items()):
        loaded = counts.get(key, 0)
        result.rows_loaded += loaded
        result.drift += [f"{entry.row_tag}.{a}" for a in sorted(entry.unknown_attributes)]
        result.drift += [f"{entry.row_tag}: {n}" for n in sorted(entry.notes) if "unknown" in n]
        log_rows.append({
            "file_sha256": plan.sha256, "account_id": entry.account_id,
            "section": entry.section, "row_tag": entry.row_tag, "raw_table": entry.raw_table,
            "rows_seen": entry.rows_seen, "rows_loaded": loaded,
            "core_tables": ",".join(sorted(entry.core_rows)) or None,
            "core_rows": sum(entry.core_rows.values()),
            "unknown_attributes": ",".join(sorted(entry.unknown_attributes)) or None,
            "unknown_codes": ",".join(sorted(entry.unknown_codes)) or None,
            "notes": "; ".join(sorted(entry.notes)) or None,
            "date_order": plan.date_order.order.value,
            "date_order_source": plan.date_order.source, "ingested_at": now,
        })
    tx.insert("raw", "flex_ingest_log", pa.Table.from_pylist(log_rows, INGEST_LOG))
    tx.insert("raw", "flex_statements", plan.statements)
    if plan.date_order.source == "fallback":
        result.notes.append(
            f"d/M order could not be told from the dates; used {plan.date_order.order.value}"
        )
    tx.insert("raw", "flex_files", pa.Table.from_pylist([{
        "file_sha256": plan.sha256, "original_name": report.original_name,
        "source": report.source, "archive_path": str(report.path),
        "size_bytes": report.path.stat().st_size, "query_name": plan.root.get("queryName"),
        "query_type": plan.root.get("type"), "statements_declared": plan.declared_statements,
        "statements_found": plan.statements.num_rows, "accounts": ",".join(plan.accounts),
        "date_order": plan.date_order.order.value, "date_order_source": plan.date_order.source,
        "rows_seen": result.rows_seen, "rows_loaded": result.rows_loaded, "ingested_at": now,
        "run_id": run_id,
    }], FILES))
    if plan.declared_statements not in (None, str(plan.statements.num_rows)):
        result.notes.append(f"FlexStatements count={plan.declared_statements} but "
                            f"{plan.statements.num_rows} statements found (all loaded)")
    return result
