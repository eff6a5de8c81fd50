"""A parsed report turned into what the warehouse receives: raw rows, core rows, the log.

Everything that can fail on bad input fails here, before the warehouse is touched.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from qm_pipeline.lib.flex.cast import TypedRows, arrow_type, cast_rows
from qm_pipeline.lib.flex.core_tables import (
    CORE_BY_NAME,
    CORE_TABLES,
    INSTRUMENT_ATTRIBUTES,
    INSTRUMENT_SOURCES,
    CoreTable,
    core_table_for,
)
from qm_pipeline.lib.flex.dates import (
    AmbiguousDatesError,
    DateOrder,
    DateOrderDecision,
    decide_order,
    parse_datetimes,
)
from qm_pipeline.lib.flex.errors import FlexInputError
from qm_pipeline.lib.flex.keys import natural_keys, newest_per_key
from qm_pipeline.lib.flex.reader import LINE_COLUMN, OFFSET_COLUMN, GroupKey, ParsedReport
from qm_pipeline.lib.flex.schema import Kind, known_sections, row_schema, row_schemas
from qm_pipeline.lib.naming import snake_case

RAW_LINEAGE = (
    "file_sha256", "statement_index", "statement_account_id", "when_generated", "section",
    "row_tag", "parent", "ordinal", "source_line",
)
CORE_LINEAGE = pa.schema([
    ("natural_key", pa.string()), ("file_sha256", pa.string()),
    ("statement_index", pa.int64()), ("when_generated", pa.timestamp("s")),
    ("source_line", pa.int64()),
])


def core_schema(spec: CoreTable) -> pa.Schema:
    """Columns of a core table: ibflex's fields, typed, then lineage."""
    fields = [pa.field(f.column, arrow_type(f.kind)) for f in spec.schema.fields.values()]
    return pa.schema(fields + list(CORE_LINEAGE))


def instruments_schema() -> pa.Schema:
    kinds = {}
    for name in INSTRUMENT_SOURCES:
        for attr, spec in CORE_BY_NAME[name].schema.fields.items():
            kinds.setdefault(attr, spec.kind)
    fields = [pa.field(snake_case(a), arrow_type(kinds[a])) for a in INSTRUMENT_ATTRIBUTES]
    return pa.schema([pa.field("conid", pa.string()), *fields,
                      ("first_seen", pa.timestamp("s")), ("last_seen", pa.timestamp("s")),
                      ("file_sha256", pa.string())])


def raw_table_name(tag: str) -> str:
    return snake_case(tag)


def raw_columns(attrs: list[str]) -> dict[str, str]:
    """Attribute -> raw column: snake_case, never colliding with lineage or each other."""
    taken = set(RAW_LINEAGE)
    mapping = {}
    for attr in attrs:
        name = snake_case(attr)
        if name in taken:
            name = f"{name}_attr"
        while name in taken:
            name += "_"
        taken.add(name)
        mapping[attr] = name
    return mapping


@dataclass
class LogEntry:
    account_id: str
    section: str
    row_tag: str
    raw_table: str
    rows_seen: int = 0
    core_rows: dict[str, int] = field(default_factory=dict)
    unknown_attributes: set[str] = field(default_factory=set)
    unknown_codes: set[str] = field(default_factory=set)
    notes: set[str] = field(default_factory=set)


@dataclass
class LoadPlan:
    sha256: str
    path: str
    root: dict[str, str]
    declared_statements: str | None
    statements: pa.Table
    date_order: DateOrderDecision
    raw: dict[str, list[pa.Table]]
    core: dict[str, pa.Table]
    instruments: pa.Table
    log: dict[tuple[str, str, str], LogEntry]

    @property
    def accounts(self) -> list[str]:
        return sorted({a for a in self.statements.column("account_id").to_pylist() if a})

    @property
    def rows_seen(self) -> int:
        return sum(entry.rows_seen for entry in self.log.values())


def _date_columns(report: ParsedReport) -> list[pa.Array]:
    found = [pa.array([s.attrs.get(k) for s in report.statements for k in
                       ("fromDate", "toDate", "whenGenerated")], pa.string())]
    for key, table in report.tables.items():
        schema = row_schema(key.tag)
        for name in table.column_names:
            spec = schema.fields.get(name) if schema else None
            if spec and spec.kind in (Kind.DATE, Kind.DATETIME):
                found.append(table.column(name).combine_chunks())
    return found


def _statements_table(report: ParsedReport, sha256: str, order: DateOrder) -> pa.Table:
    statements = report.statements
    generated = pa.array([s.attrs.get("whenGenerated") for s in statements], pa.string())
    return pa.table({
        "file_sha256": pa.array([sha256] * len(statements), pa.string()),
        "statement_index": pa.array([s.index for s in statements], pa.int64()),
        "account_id": pa.array([s.attrs.get("accountId") for s in statements], pa.string()),
        "from_date": pa.array([s.attrs.get("fromDate") for s in statements], pa.string()),
        "to_date": pa.array([s.attrs.get("toDate") for s in statements], pa.string()),
        "period": pa.array([s.attrs.get("period") for s in statements], pa.string()),
        "when_generated": generated,
        "when_generated_at": parse_datetimes(generated, order)[0],
        "sections": pa.array([",".join(s.sections) for s in statements], pa.string()),
    })


class _Planner:
    def __init__(self, report: ParsedReport, sha256: str, path: str,
                 decision: DateOrderDecision) -> None:
        self.report, self.sha256, self.path, self.decision = report, sha256, path, decision
        self.statements = _statements_table(report, sha256, decision.order)
        self.raw: dict[str, list[pa.Table]] = defaultdict(list)
        self.core_parts: dict[str, list[pa.Table]] = defaultdict(list)
        self.log: dict[tuple[str, str, str], LogEntry] = {}

    def statement_attr(self, index: int | None, attr: str) -> str | None:
        return None if index is None else self.report.statements[index].attrs.get(attr)

    def generated_at(self, index: int | None) -> pa.Scalar:
        if index is None:
            return pa.scalar(None, pa.timestamp("s"))
        return self.statements.column("when_generated_at")[index]

    def add(self, key: GroupKey, strings: pa.Table) -> None:
        if strings.num_rows > 1 and strings.column(OFFSET_COLUMN).num_chunks > 1:
            strings = strings.sort_by(OFFSET_COLUMN)
        account = self.statement_attr(key.statement, "accountId") or ""
        entry = self.log.setdefault(
            (account, key.section, key.tag),
            LogEntry(account, key.section, key.tag, raw_table_name(key.tag)),
        )
        entry.rows_seen += strings.num_rows
        self.raw[raw_table_name(key.tag)].append(self.raw_rows(key, strings))
        schema = row_schema(key.tag)
        if key.section not in known_sections() and key.statement is not None:
            entry.notes.add(f"unknown section {key.section}")
        if schema is None:
            entry.notes.add(f"unknown row tag {key.tag}")
            return
        typed = cast_rows(strings, schema, self.decision.order, self.path)
        entry.unknown_attributes.update(typed.unknown_attributes)
        entry.unknown_codes.update(typed.unknown_codes)
        if typed.zone_suffix:
            entry.notes.add("time zone suffix ignored: times are kept as printed")
        self.route(key, strings, typed, entry)

    def raw_rows(self, key: GroupKey, strings: pa.Table) -> pa.Table:
        attrs = [n for n in strings.column_names if n not in (LINE_COLUMN, OFFSET_COLUMN)]
        names = raw_columns(attrs)
        count = strings.num_rows

        def const(value: object, kind: pa.DataType | None = None) -> pa.Array:
            return pa.repeat(pa.scalar(value, kind or pa.string()), count)

        lineage = {
            "file_sha256": const(self.sha256),
            "statement_index": const(key.statement, pa.int64()),
            "statement_account_id": const(self.statement_attr(key.statement, "accountId")),
            "when_generated": const(self.statement_attr(key.statement, "whenGenerated")),
            "section": const(key.section),
            "row_tag": const(key.tag),
            "parent": const(key.parent),
            "ordinal": pa.array(np.arange(count, dtype=np.int64)),
            "source_line": strings.column(LINE_COLUMN),
        }
        return pa.table({**lineage, **{names[a]: strings.column(a) for a in attrs}})

    def route(self, key: GroupKey, strings: pa.Table, typed: TypedRows, entry: LogEntry) -> None:
        data = typed.table
        levels = data.column("level_of_detail") if "level_of_detail" in data.column_names \
            else pa.nulls(data.num_rows, pa.string())
        for level in pc.unique(levels).to_pylist():
            spec = core_table_for(key.tag, level)
            if spec is None:
                continue
            mask = pc.is_null(levels) if level is None else pc.equal(levels, level)
            part = data.filter(mask) if len(pc.unique(levels)) > 1 else data
            lines = strings.column(LINE_COLUMN).filter(mask) if part is not data \
                else strings.column(LINE_COLUMN)
            self.core_parts[spec.name].append(self.core_rows(key, spec, part, lines))
            entry.core_rows[spec.name] = entry.core_rows.get(spec.name, 0) + part.num_rows

    def core_rows(self, key: GroupKey, spec: CoreTable, data: pa.Table,
                  lines: pa.ChunkedArray) -> pa.Table:
        target = core_schema(spec)
        columns = {f.name: data.column(f.name) for f in target if f.name in data.column_names}
        count = data.num_rows
        account = self.statement_attr(key.statement, "accountId")
        if account and "account_id" in columns:  # rows inherit their statement's account
            columns["account_id"] = pc.fill_null(columns["account_id"], account)
        columns.update(
            natural_key=pa.nulls(count, pa.string()),
            file_sha256=pa.repeat(pa.scalar(self.sha256), count),
            statement_index=pa.repeat(pa.scalar(key.statement, pa.int64()), count),
            when_generated=pa.repeat(self.generated_at(key.statement), count),
            source_line=lines,
        )
        return pa.table(columns).select(target.names).cast(target)

    def accounts_without_information(self) -> None:
        """Every statement's account is in core.accounts, even without AccountInformation."""
        have = set()
        for part in self.core_parts.get("accounts", []):
            have.update(part.column("account_id").to_pylist())
        spec = CORE_BY_NAME["accounts"]
        for statement in self.report.statements:
            account = statement.attrs.get("accountId")
            if not account or account in have:
                continue
            have.add(account)
            row = pa.table({"account_id": [account]}).cast(pa.schema([("account_id",
                                                                      pa.string())]))
            key = GroupKey(statement.index, "FlexStatement", "", "FlexStatement")
            typed = pa.table({f.name: pa.nulls(1, f.type) for f in core_schema(spec)
                              if f.name not in CORE_LINEAGE.names})
            typed = typed.set_column(typed.schema.get_field_index("account_id"), "account_id",
                                     row.column("account_id"))
            self.core_parts["accounts"].append(
                self.core_rows(key, spec, typed, pa.chunked_array([pa.array([None], pa.int64())]))
            )

    def core(self) -> dict[str, pa.Table]:
        tables = {}
        for spec in CORE_TABLES:
            parts = self.core_parts.get(spec.name)
            if not parts:
                continue
            table = pa.concat_tables(parts)
            keys = natural_keys(table, spec, pc.fill_null(table.column("statement_index"), -1)
                                .combine_chunks(), table.column("source_line").combine_chunks())
            table = table.set_column(table.schema.get_field_index("natural_key"),
                                     "natural_key", keys)
            tables[spec.name] = newest_per_key(table, "natural_key", "when_generated",
                                               "statement_index", "source_line")
        return tables


def instrument_rows(core: dict[str, pa.Table]) -> pa.Table:
    """One row per conid with the most authoritative non-empty value of each attribute."""
    target = instruments_schema()
    parts = []
    for priority, name in enumerate(INSTRUMENT_SOURCES):
        table = core.get(name)
        if table is None:
            continue
        table = table.filter(pc.is_valid(table.column("conid")))
        columns = {f.name: table.column(f.name) if f.name in table.column_names
                   else pa.nulls(table.num_rows, f.type) for f in target
                   if f.name not in ("first_seen", "last_seen")}
        columns["last_seen"] = table.column("when_generated")
        columns["priority"] = pa.repeat(pa.scalar(priority, pa.int64()), table.num_rows)
        parts.append(pa.table(columns))
    if not parts:
        return target.empty_table()
    rows = pa.concat_tables(parts).sort_by(
        [("conid", "ascending"), ("priority", "ascending"), ("last_seen", "descending")]
    )
    conids = rows.column("conid").to_numpy(zero_copy_only=False)
    starts = np.flatnonzero(np.r_[True, conids[1:] != conids[:-1]])
    position = np.arange(rows.num_rows)
    merged = {"conid": pa.array(conids[starts], pa.string())}
    for name in target.names[1:-3]:
        valid = rows.column(name).is_valid().to_numpy(zero_copy_only=False)
        first = np.minimum.reduceat(np.where(valid, position, rows.num_rows), starts)
        merged[name] = pc.take(rows.column(name), pa.array(
            np.where(first < rows.num_rows, first, 0)).cast(pa.int64()))
        merged[name] = pc.if_else(pa.array(first < rows.num_rows), merged[name], None)
    seen = rows.column("last_seen").cast(pa.int64()).to_numpy(zero_copy_only=False)
    seen = np.where(rows.column("last_seen").is_valid().to_numpy(zero_copy_only=False), seen,
                    np.iinfo(np.int64).min)
    merged["first_seen"] = pa.array(np.minimum.reduceat(seen, starts)).cast(pa.timestamp("s"))
    merged["last_seen"] = pa.array(np.maximum.reduceat(seen, starts)).cast(pa.timestamp("s"))
    merged["file_sha256"] = pc.take(rows.column("file_sha256"), pa.array(starts))
    return pa.table(merged).select(target.names).cast(target)


def plan_load(report: ParsedReport, sha256: str, path: str, *, date_order: str = "auto",
              date_order_fallback: str = "MDY") -> LoadPlan:
    """Type, key and route every row of `report`; raise FlexInputError on bad input."""
    try:
        decision = decide_order(_date_columns(report), date_order,
                                DateOrder(date_order_fallback.upper()))
    except AmbiguousDatesError as exc:
        raise FlexInputError(path, f"{exc}: set QM_DATE_ORDER to MDY or DMY") from None
    planner = _Planner(report, sha256, path, decision)
    for key, strings in report.tables.items():
        planner.add(key, strings)
    planner.accounts_without_information()
    core = planner.core()
    return LoadPlan(sha256, path, report.root, report.declared_statements, planner.statements,
                    decision, dict(planner.raw), core, instrument_rows(core), planner.log)


__all__ = ["LoadPlan", "LogEntry", "core_schema", "instruments_schema", "plan_load",
           "raw_columns", "raw_table_name", "row_schemas"]
