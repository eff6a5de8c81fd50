"""Typing one row tag's text columns with the registry's types: decimals, dates, booleans.

Money and quantities become decimal128 (exact; never through binary floats). Values the
registry cannot type are an input error naming file, line, row and field; enum values and
codes IB added after ibflex was written are kept as text and reported, never fatal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

import pyarrow as pa
import pyarrow.compute as pc

from qm_pipeline.lib.flex.dates import (
    DateOrder,
    NeedDateOrder,
    has_slashed,
    parse_dates,
    parse_datetimes,
    parse_times,
)
from qm_pipeline.lib.flex.errors import FlexInputError
from qm_pipeline.lib.flex.reader import LINE_COLUMN
from qm_pipeline.lib.flex.schema import Field, Kind, RowSchema, enum_values

DECIMAL_SCALE = 12
DECIMAL = pa.decimal128(38, DECIMAL_SCALE)
# ibflex's own "no value" markers (ibflex.parser.make_optional), plus MULTI for dates
NULL_TOKENS = pa.array(["", "-", "--", "N/A"])
_TRUE = pa.array(["Y", "Yes", "true", "TRUE", "1"])
_FALSE = pa.array(["N", "No", "false", "FALSE", "0"])

ARROW_TYPES: dict[Kind, pa.DataType] = {
    Kind.DECIMAL: DECIMAL,
    Kind.DATE: pa.date32(),
    Kind.DATETIME: pa.timestamp("s"),
    Kind.TIME: pa.time32("s"),
    Kind.BOOL: pa.bool_(),
}


@dataclass
class TypedRows:
    table: pa.Table  # one column per registry field (snake_case), typed; absent attributes null
    unknown_attributes: list[str] = field(default_factory=list)
    unknown_codes: list[str] = field(default_factory=list)  # "attr=value"
    zone_suffix: bool = False


def arrow_type(kind: Kind) -> pa.DataType:
    return ARROW_TYPES.get(kind, pa.string())


@dataclass
class _Context:
    path: str
    tag: str
    lines: pa.Array
    order: DateOrder | None  # None: not known yet (fine until a slashed date turns up)

    def fail(self, spec: Field, raw: pa.Array, typed: pa.Array, why: str) -> FlexInputError:
        bad = pc.and_(pc.invert(pc.is_null(raw)), pc.is_null(typed))
        return self.fail_at(spec, raw, pc.index(bad, True).as_py(), why)

    def fail_at(self, spec: Field, raw: pa.Array, index: int, why: str) -> FlexInputError:
        return FlexInputError(
            self.path, why, line=self.lines[index].as_py(), row_tag=self.tag,
            field=spec.attr, value=raw[index].as_py(),
        )


def _without_null_tokens(column: pa.Array) -> pa.Array:
    tokens = pc.is_in(column, NULL_TOKENS)
    if not pc.any(tokens).as_py():
        return column  # no copy of columns that carry no "empty" markers
    return pc.if_else(tokens, pa.scalar(None, pa.string()), column)


def _decimal(column: pa.Array, spec: Field, ctx: _Context) -> pa.Array:
    if pc.any(pc.match_substring(column, ",")).as_py():
        column = pc.replace_substring(column, ",", "")  # IB's thousands separators
    try:
        return pc.cast(column, DECIMAL)
    except pa.ArrowInvalid:
        for index, value in enumerate(column.to_pylist()):
            if value is None:
                continue
            try:
                pc.cast(pa.array([value], pa.string()), DECIMAL)
                continue  # this one is fine: find the value Arrow refused
            except pa.ArrowInvalid:
                pass
            try:
                number = Decimal(value)
            except InvalidOperation:
                raise ctx.fail_at(spec, column, index, "not a number") from None
            if not number.is_finite() or abs(number) >= Decimal(10) ** (38 - DECIMAL_SCALE):
                raise ctx.fail_at(spec, column, index, "number out of range") from None
            if number.as_tuple().exponent < -DECIMAL_SCALE:  # type: ignore[operator]
                raise ctx.fail_at(
                    spec, column, index, f"more than {DECIMAL_SCALE} decimal places"
                ) from None
            # Python reads it (" 5", "5_000") but Arrow does not: still not a Flex number
            raise ctx.fail_at(spec, column, index, "not a number") from None
        raise


def _bool(column: pa.Array, spec: Field, ctx: _Context) -> pa.Array:
    typed = pc.if_else(
        pc.is_in(column, _TRUE), True, pc.if_else(pc.is_in(column, _FALSE), False, None)
    )
    if typed.null_count != column.null_count:
        raise ctx.fail(spec, column, typed, "not a yes/no value (Y, N, Yes, No)")
    return typed


def _unknown_codes(column: pa.Array, spec: Field) -> list[str]:
    if spec.enum is None:
        return []
    values = pc.unique(column.drop_null())
    if spec.kind is Kind.CODES:
        values = pc.unique(pc.list_flatten(pc.split_pattern_regex(values, "[;,]")))
    known = enum_values(spec.enum)
    return [f"{spec.attr}={v}" for v in values.to_pylist() if v and v not in known]


def cast_rows(strings: pa.Table, schema: RowSchema, order: DateOrder | None,
              path: str) -> TypedRows:
    """Type every registry field of `schema` found in `strings`; the rest is drift."""
    ctx = _Context(path, schema.tag, strings.column(LINE_COLUMN).combine_chunks(), order)
    result = TypedRows(pa.table({}))
    columns: dict[str, pa.Array] = {}
    present = set(strings.column_names)
    for attr, spec in schema.fields.items():
        if attr not in present:
            columns[spec.column] = pa.nulls(strings.num_rows, arrow_type(spec.kind))
            continue
        column = _without_null_tokens(strings.column(attr).combine_chunks())
        columns[spec.column] = _typed(column, spec, ctx, result)
    result.unknown_attributes = sorted(
        name for name in present - set(schema.fields) if not name.startswith("__")
    )
    result.table = pa.table(columns)
    return result


def _typed(column: pa.Array, spec: Field, ctx: _Context, result: TypedRows) -> pa.Array:
    kind = spec.kind
    if kind is Kind.DECIMAL:
        return _decimal(column, spec, ctx)
    if kind is Kind.BOOL:
        return _bool(column, spec, ctx)
    if kind in (Kind.DATE, Kind.DATETIME):
        column = pc.if_else(pc.equal(column, "MULTI"), pa.scalar(None, pa.string()), column)
        if ctx.order is None and has_slashed(column):
            raise NeedDateOrder(spec.attr)
        if kind is Kind.DATE:
            typed = parse_dates(column, ctx.order or DateOrder.MDY)
        else:
            typed, zoned = parse_datetimes(column, ctx.order or DateOrder.MDY)
            result.zone_suffix |= zoned
        if typed.null_count != column.null_count:
            raise ctx.fail(spec, column, typed, "not a date in a known Flex format")
        return pc.cast(typed, pa.date32()) if kind is Kind.DATE else typed
    if kind is Kind.TIME:
        typed = parse_times(column)
        if typed.null_count != column.null_count:
            raise ctx.fail(spec, column, typed, "not a time (HHmmss or HH:mm:ss)")
        return typed
    result.unknown_codes.extend(_unknown_codes(column, spec))
    return column
