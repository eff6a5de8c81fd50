"""Report rows shaped for the warehouse: raw rows with lineage, typed core rows, instruments.

Pure functions over Arrow chunks; `load.py` drives them while the report streams in.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from qm_pipeline.lib.flex.cast import TypedRows, arrow_type
from qm_pipeline.lib.flex.core_tables import (
    CORE_BY_NAME,
    INSTRUMENT_ATTRIBUTES,
    INSTRUMENT_SOURCES,
    CoreTable,
    core_table_for,
)
from qm_pipeline.lib.flex.keys import natural_keys
from qm_pipeline.lib.flex.reader import LINE_COLUMN, OFFSET_COLUMN, ORDINAL_COLUMN, GroupKey
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
_BOOKKEEPING = (LINE_COLUMN, OFFSET_COLUMN, ORDINAL_COLUMN)


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


def _repeat(value: object, kind: pa.DataType, count: int) -> pa.Array:
    return pa.repeat(pa.scalar(value, kind), count)


def raw_rows(key: GroupKey, strings: pa.Table, sha256: str, account: str | None,
             generated: str | None) -> pa.Table:
    """Every attribute as text, behind the lineage columns."""
    attrs = [n for n in strings.column_names if n not in _BOOKKEEPING]
    names = raw_columns(attrs)
    count = strings.num_rows
    text = pa.string()
    lineage = [
        _repeat(sha256, text, count), _repeat(key.statement, pa.int64(), count),
        _repeat(account, text, count), _repeat(generated, text, count),
        _repeat(key.section, text, count), _repeat(key.tag, text, count),
        _repeat(key.parent, text, count), strings.column(ORDINAL_COLUMN),
        strings.column(LINE_COLUMN),
    ]
    return pa.Table.from_arrays([*lineage, *(strings.column(a) for a in attrs)],
                                names=[*RAW_LINEAGE, *(names[a] for a in attrs)])


def core_parts(key: GroupKey, strings: pa.Table, typed: TypedRows, sha256: str,
               account: str | None, generated: pa.Scalar) -> list[tuple[CoreTable, pa.Table]]:
    """Route typed rows to core tables by tag and levelOfDetail, with lineage columns."""
    data = typed.table
    levels = data.column("level_of_detail") if "level_of_detail" in data.column_names \
        else pa.nulls(data.num_rows, pa.string())
    distinct = pc.unique(levels).to_pylist()
    parts = []
    for level in distinct:
        spec = core_table_for(key.tag, level)
        if spec is None:
            continue
        part, lines = data, strings.column(LINE_COLUMN)
        if len(distinct) > 1:
            mask = pc.is_null(levels) if level is None else pc.equal(levels, level)
            part, lines = data.filter(mask), lines.filter(mask)
        parts.append((spec, with_lineage(spec, part, lines, key, sha256, account, generated)))
    return parts


def with_lineage(spec: CoreTable, data: pa.Table, lines: pa.ChunkedArray | pa.Array,
                 key: GroupKey, sha256: str, account: str | None,
                 generated: pa.Scalar) -> pa.Table:
    target = core_schema(spec)
    count = data.num_rows
    present = set(data.column_names)
    columns = {f.name: data.column(f.name) for f in target if f.name in present}
    if account and "account_id" in columns:  # rows inherit their statement's account
        columns["account_id"] = pc.fill_null(columns["account_id"], account)
    columns.update(
        natural_key=natural_keys(data, spec),
        file_sha256=_repeat(sha256, pa.string(), count),
        statement_index=_repeat(key.statement, pa.int64(), count),
        when_generated=pa.repeat(generated, count),
        source_line=lines,
    )
    return pa.Table.from_pydict({n: columns[n] for n in target.names}).cast(target)


def account_row(spec: CoreTable, account: str, key: GroupKey, sha256: str,
                generated: pa.Scalar) -> pa.Table:
    """A core.accounts row for a statement whose report has no AccountInformation."""
    target = core_schema(spec)
    data = pa.Table.from_pydict({
        f.name: pa.array([account], f.type) if f.name == "account_id" else pa.nulls(1, f.type)
        for f in target if f.name not in CORE_LINEAGE.names
    })
    return with_lineage(spec, data, pa.array([None], pa.int64()), key, sha256, None, generated)


def instrument_candidates(priority: int, table: pa.Table) -> pa.Table:
    """Instrument attributes of core rows, one row per conid (the chunk's best values)."""
    target = instruments_schema()
    table = table.filter(pc.is_valid(table.column("conid")))
    columns = {f.name: table.column(f.name) if f.name in table.column_names
               else pa.nulls(table.num_rows, f.type) for f in target
               if f.name not in ("first_seen", "last_seen")}
    columns["last_seen"] = table.column("when_generated")
    columns["priority"] = _repeat(priority, pa.int64(), table.num_rows)
    return merge_instruments([pa.Table.from_pydict(columns)], keep_priority=True)


def merge_instruments(candidates: list[pa.Table], keep_priority: bool = False) -> pa.Table:
    """Per conid, the most authoritative non-empty value of each attribute: lower priority
    number first (reference data before positions before activity), then the newest report."""
    target = instruments_schema()
    if not candidates or not sum(t.num_rows for t in candidates):
        empty = target.empty_table()  # (a chunk without conids: same columns as any other)
        return empty.append_column("priority", pa.array([], pa.int64())) if keep_priority \
            else empty
    rows = pa.concat_tables(candidates).sort_by(
        [("conid", "ascending"), ("priority", "ascending"), ("last_seen", "descending")]
    )
    conids = rows.column("conid").to_numpy(zero_copy_only=False)
    starts = np.flatnonzero(np.r_[True, conids[1:] != conids[:-1]])
    position = np.arange(rows.num_rows)
    merged = {"conid": pa.array(conids[starts], pa.string())}
    for name in target.names[1:-3]:
        valid = rows.column(name).is_valid().to_numpy(zero_copy_only=False)
        first = np.minimum.reduceat(np.where(valid, position, rows.num_rows), starts)
        found = first < rows.num_rows
        values = pc.take(rows.column(name), pa.array(np.where(found, first, 0)))
        merged[name] = pc.if_else(pa.array(found), values, None)
    merged.update(_seen_range(rows, starts))
    merged["file_sha256"] = pc.take(rows.column("file_sha256"), pa.array(starts))
    if keep_priority:
        merged["priority"] = pc.take(rows.column("priority"), pa.array(starts))
        return pa.Table.from_pydict(merged)
    return pa.Table.from_pydict(merged).select(target.names).cast(target)


def _seen_range(rows: pa.Table, starts: np.ndarray) -> dict[str, pa.Array]:
    """First and last report time per conid; unknown times are never the newest or oldest."""
    low, high = np.iinfo(np.int64).min, np.iinfo(np.int64).max
    column = rows.column("last_seen")
    seen = column.cast(pa.int64()).to_numpy(zero_copy_only=False)
    valid = column.is_valid().to_numpy(zero_copy_only=False)
    first_seen = rows.column("first_seen") if "first_seen" in rows.column_names else column
    first = np.where(first_seen.is_valid().to_numpy(zero_copy_only=False),
                     first_seen.cast(pa.int64()).to_numpy(zero_copy_only=False), high)
    result = {}
    for name, values, unknown in (
        ("first_seen", np.minimum.reduceat(first, starts), high),
        ("last_seen", np.maximum.reduceat(np.where(valid, seen, low), starts), low),
    ):
        result[name] = pa.array(values, pa.int64(), mask=values == unknown).cast(
            pa.timestamp("s"))
    return result
