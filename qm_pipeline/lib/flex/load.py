"""One report into the warehouse, in one transaction, while it streams in.

Raw rows are written chunk by chunk as the reader produces them; typed core rows are kept
(as compact Arrow columns) until the end of the report, where they are numbered, deduplicated
(newest report wins) and upserted; then the ingest log, statements and file rows.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc

from qm_pipeline.lib.flex.archive import ArchivedReport
from qm_pipeline.lib.flex.cast import cast_rows
from qm_pipeline.lib.flex.core_tables import CORE_BY_NAME, CORE_TABLES, INSTRUMENT_SOURCES
from qm_pipeline.lib.flex.dates import (
    DateOrder,
    DateOrderDecision,
    NeedDateOrder,
    has_slashed,
    parse_datetimes,
)
from qm_pipeline.lib.flex.keys import newest_per_key, number_repeats
from qm_pipeline.lib.flex.prepare import (
    account_row,
    core_parts,
    instrument_candidates,
    merge_instruments,
    raw_rows,
    raw_table_name,
)
from qm_pipeline.lib.flex.reader import GroupKey, ReportHeader
from qm_pipeline.lib.flex.schema import Kind, known_sections, row_schema
from qm_pipeline.lib.warehouse.engine import Tx, qualified
from qm_pipeline.lib.warehouse.migrations import FILES, INGEST_LOG, STATEMENTS
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


@dataclass
class LogEntry:
    account_id: str
    section: str
    row_tag: str
    rows_seen: int = 0
    core_rows: dict[str, int] = field(default_factory=dict)
    unknown_attributes: set[str] = field(default_factory=set)
    unknown_codes: set[str] = field(default_factory=set)
    notes: set[str] = field(default_factory=set)


def already_loaded(tx: Tx, sha256: str) -> bool:
    return bool(tx.scalar("SELECT count(*) FROM raw.flex_files WHERE file_sha256 = :s",
                          {"s": sha256}))


class ReportLoader:
    """Receives a report's chunks (`on_chunk`) inside an open transaction; `finish` completes
    the load. `order` None means the d/M order is not known yet: fine unless a slashed date
    turns up (then cast raises NeedDateOrder and the caller scans the file first)."""

    def __init__(self, tx: Tx, report: ArchivedReport, order: DateOrderDecision | None) -> None:
        self.tx, self.report, self.decision = tx, report, order
        self.header = ReportHeader()
        self.log: dict[tuple[str, str, str], LogEntry] = {}
        self.raw_known: dict[str, set[str]] = {}
        self.parts: dict[str, list[pa.Table]] = {}
        self.accounts: set[str] = set()
        self.instruments: list[pa.Table] = []
        self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qm-raw-writer")
        self.pending: list[Future] = []
        self.generated: dict[int | None, pa.Scalar] = {}

    @property
    def order(self) -> DateOrder | None:
        return self.decision.order if self.decision else None

    def statement_attr(self, index: int | None, attr: str) -> str | None:
        return None if index is None else self.header.statements[index].attrs.get(attr)

    def generated_at(self, index: int | None) -> pa.Scalar:
        if index not in self.generated:
            text = pa.array([self.statement_attr(index, "whenGenerated")], pa.string())
            if self.order is None and has_slashed(text):
                raise NeedDateOrder("whenGenerated")
            self.generated[index] = parse_datetimes(text, self.order or DateOrder.MDY)[0][0]
        return self.generated[index]

    def on_chunk(self, key: GroupKey, strings: pa.Table) -> None:
        account = self.statement_attr(key.statement, "accountId")
        entry = self.log.setdefault((account or "", key.section, key.tag),
                                    LogEntry(account or "", key.section, key.tag))
        entry.rows_seen += strings.num_rows
        self.write_raw(raw_table_name(key.tag), raw_rows(
            key, strings, self.report.sha256, account,
            self.statement_attr(key.statement, "whenGenerated")))
        if key.section not in known_sections() and key.statement is not None:
            entry.notes.add(f"unknown section {key.section}")
        schema = row_schema(key.tag)
        if schema is None:
            entry.notes.add(f"unknown row tag {key.tag}")
            return
        typed = cast_rows(strings, schema, self.order, self.report.original_name)
        entry.unknown_attributes.update(typed.unknown_attributes)
        entry.unknown_codes.update(typed.unknown_codes)
        if typed.zone_suffix:
            entry.notes.add("time zone suffix ignored: times are kept as printed")
        for spec, part in core_parts(key, strings, typed, self.report.sha256, account,
                                     self.generated_at(key.statement)):
            self.stage(spec.name, part)
            entry.core_rows[spec.name] = entry.core_rows.get(spec.name, 0) + part.num_rows

    def stage(self, name: str, part: pa.Table) -> None:
        self.parts.setdefault(name, []).append(part)
        if name == "accounts":
            self.accounts.update(a for a in part.column("account_id").to_pylist() if a)
        if name in INSTRUMENT_SOURCES:
            self.instruments.append(instrument_candidates(INSTRUMENT_SOURCES.index(name), part))

    def write_raw(self, table: str, rows: pa.Table) -> None:
        """Queue a raw chunk for the writer thread: the database copies one chunk (releasing
        the GIL) while this thread parses the next. At most two chunks wait, so memory stays
        bounded; the writer is the only user of the transaction until `drain`."""
        if len(self.pending) >= 2:
            self.pending.pop(0).result()
        self.pending.append(self.writer.submit(self._write_raw, table, rows))

    def _write_raw(self, table: str, rows: pa.Table) -> None:
        known = self.raw_known.get(table)
        if known is None or not known.issuperset(rows.column_names):
            self.tx.ensure_table("raw", table, rows.schema)
            # (a catalog query costs about as much as inserting a chunk: ask once per table)
            self.raw_known[table] = (known or set()) | set(rows.column_names)
        self.tx.insert("raw", table, rows)

    def drain(self) -> None:
        """Wait for the queued raw writes; re-raise the first that failed."""
        while self.pending:
            self.pending.pop(0).result()

    def __enter__(self) -> ReportLoader:
        return self

    def __exit__(self, kind: object, error: object, traceback: object) -> None:
        # The transaction must not end (commit or roll back) under a running write.
        try:
            self.drain()
        except Exception:
            if kind is None:
                raise
        finally:
            self.writer.shutdown(wait=True)

    def add_missing_accounts(self) -> None:
        """Every statement's account is in core.accounts, even without AccountInformation."""
        spec = CORE_BY_NAME["accounts"]
        for statement in self.header.statements:
            account = statement.attrs.get("accountId")
            if account and account not in self.accounts:
                key = GroupKey(statement.index, "FlexStatement", "", "FlexStatement")
                self.stage("accounts", account_row(
                    spec, account, key, self.report.sha256, self.generated_at(statement.index)))

    def finish(self, run_id: str) -> LoadResult:
        self.drain()
        self.add_missing_accounts()
        decision = self.decision or DateOrderDecision(DateOrder.MDY, "not needed",
                                                      "no d/M/y or M/d/y dates")
        accounts = sorted({s.attrs["accountId"] for s in self.header.statements
                           if s.attrs.get("accountId")})
        result = LoadResult(self.report.sha256, self.report.original_name, "loaded", accounts,
                            len(self.header.statements),
                            sum(e.rows_seen for e in self.log.values()))
        for spec in CORE_TABLES:
            if spec.name in self.parts:
                rows = keyed_rows(pa.concat_tables(self.parts.pop(spec.name)))
                result.core_rows[spec.name] = upsert_newest(self.tx, "core", spec.name, rows)
        merge_attributes(self.tx, "core", "instruments", merge_instruments(self.instruments),
                         "conid")
        self.write_bookkeeping(result, decision, run_id)
        return result

    def loaded_counts(self) -> dict[tuple[str, str, str], int]:
        counts: dict[tuple[str, str, str], int] = {}
        for table in self.raw_known:
            rows = self.tx.execute(
                "SELECT COALESCE(statement_account_id, ''), section, row_tag, count(*) "
                f"FROM {qualified('raw', table)} WHERE file_sha256 = :s GROUP BY 1, 2, 3",
                {"s": self.report.sha256})
            counts.update({(a, s, t): n for a, s, t, n in rows})
        return counts

    def write_bookkeeping(self, result: LoadResult, decision: DateOrderDecision,
                          run_id: str) -> None:
        now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
        counts = self.loaded_counts()
        log_rows = []
        for key, entry in sorted(self.log.items()):
            loaded = counts.get(key, 0)
            result.rows_loaded += loaded
            result.drift += [f"{entry.row_tag}.{a}" for a in sorted(entry.unknown_attributes)]
            result.drift += [f"{entry.row_tag}: {n}" for n in sorted(entry.notes)
                             if "unknown" in n]
            log_rows.append({
                "file_sha256": self.report.sha256, "account_id": entry.account_id,
                "section": entry.section, "row_tag": entry.row_tag,
                "raw_table": raw_table_name(entry.row_tag), "rows_seen": entry.rows_seen,
                "rows_loaded": loaded, "core_tables": ",".join(sorted(entry.core_rows)) or None,
                "core_rows": sum(entry.core_rows.values()),
                "unknown_attributes": ",".join(sorted(entry.unknown_attributes)) or None,
                "unknown_codes": ",".join(sorted(entry.unknown_codes)) or None,
                "notes": "; ".join(sorted(entry.notes)) or None,
                "date_order": decision.order.value, "date_order_source": decision.source,
                "ingested_at": now,
            })
        self.tx.insert("raw", "flex_ingest_log", pa.Table.from_pylist(log_rows, INGEST_LOG))
        self.tx.insert("raw", "flex_statements", self.statements_table())
        if decision.source == "fallback":
            result.notes.append(f"d/M order could not be told from the dates; used "
                                f"{decision.order.value} ({decision.evidence})")
        header, report = self.header, self.report
        if header.declared_statements not in (None, str(len(header.statements))):
            result.notes.append(f"FlexStatements count={header.declared_statements} but "
                                f"{len(header.statements)} statements found (all loaded)")
        self.tx.insert("raw", "flex_files", pa.Table.from_pylist([{
            "file_sha256": report.sha256, "original_name": report.original_name,
            "source": report.source, "archive_path": str(report.path),
            "size_bytes": report.path.stat().st_size, "query_name": header.root.get("queryName"),
            "query_type": header.root.get("type"),
            "statements_declared": header.declared_statements,
            "statements_found": len(header.statements), "accounts": ",".join(result.accounts),
            "date_order": decision.order.value, "date_order_source": decision.source,
            "rows_seen": result.rows_seen, "rows_loaded": result.rows_loaded,
            "ingested_at": now, "run_id": run_id,
        }], FILES))

    def statements_table(self) -> pa.Table:
        rows = [{
            "file_sha256": self.report.sha256, "statement_index": s.index,
            "account_id": s.attrs.get("accountId"), "from_date": s.attrs.get("fromDate"),
            "to_date": s.attrs.get("toDate"), "period": s.attrs.get("period"),
            "when_generated": s.attrs.get("whenGenerated"),
            "when_generated_at": self.generated_at(s.index).as_py(),
            "sections": ",".join(s.sections),
        } for s in self.header.statements]
        return pa.Table.from_pylist(rows, STATEMENTS)


def keyed_rows(table: pa.Table) -> pa.Table:
    """A report's rows of one core table: repeats numbered, the newest version per key."""
    keys = number_repeats(table.column("natural_key").combine_chunks(),
                          pc.fill_null(table.column("statement_index"), -1).combine_chunks(),
                          pc.fill_null(table.column("source_line"), 0).combine_chunks())
    table = table.set_column(table.schema.get_field_index("natural_key"), "natural_key", keys)
    return newest_per_key(table, "natural_key", "when_generated", "statement_index",
                          "source_line")


def date_columns(key: GroupKey, strings: pa.Table) -> list[pa.Array]:
    """The text columns of a chunk that the registry types as dates (for the order scan)."""
    schema = row_schema(key.tag)
    if schema is None:
        return []
    return [strings.column(name).combine_chunks() for name in strings.column_names
            if (spec := schema.fields.get(name)) and spec.kind in (Kind.DATE, Kind.DATETIME)]

