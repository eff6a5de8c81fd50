"""What the ledger replays: warehouse rows per source, coerced to one Arrow schema each.

Sources are the `core.*` tables (column names are the snake_case of ibflex's Flex
attribute names, see `qm_pipeline.lib.naming`). Each may be given as a list of row
dicts (tests, small loads) or as a column-oriented `pyarrow.Table` (the warehouse
path; a million executions stay in Arrow until they are replayed in batches).
Both are coerced to the same schema here, so everything downstream has one code path.
Missing columns become nulls; extra columns are ignored.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from qm_pipeline.lib.ledger.money import PLACES, units
from qm_pipeline.lib.ledger.outputs import money_array

Rows = pa.Table | Sequence[Mapping[str, Any]]

# Marks a decimal column: it keeps the precision and scale the source has (the natural
# scale keeps Python Decimals short); non-decimal input is cast to this type.
DEC = pa.decimal128(38, 18)
TS = pa.timestamp("us")
DATE = pa.date32()
STR = pa.string()

_INSTRUMENT = {
    "account_id": STR,
    "conid": STR,
    "symbol": STR,
    "asset_category": STR,
    "currency": STR,
    "fx_rate_to_base": DEC,
    "multiplier": DEC,
    "put_call": STR,
    "underlying_conid": STR,
}

TRADES = {
    **_INSTRUMENT,
    "trade_date": DATE,
    "date_time": TS,
    "quantity": DEC,
    "trade_price": DEC,
    "proceeds": DEC,
    "ib_commission": DEC,
    "taxes": DEC,
    "transaction_type": STR,
    "notes": STR,
    "transaction_id": STR,
    "ib_exec_id": STR,
    "fifo_pnl_realized": DEC,
    "orig_transaction_id": STR,
    # Which report said it: the newest version of a transaction wins (DOMAIN.md §1).
    "when_generated": TS,
    "report_date": DATE,
}

CLOSED_LOTS = {
    "account_id": STR,
    "conid": STR,
    "transaction_id": STR,
    "open_date_time": TS,
    "quantity": DEC,
    "cost": DEC,
    "fifo_pnl_realized": DEC,
    "date_time": TS,
    "trade_date": DATE,
    "holding_period_date_time": TS,
}

TRANSFERS = {
    **_INSTRUMENT,
    "type": STR,
    "direction": STR,
    "quantity": DEC,
    "position_amount": DEC,
    "position_amount_in_base": DEC,
    "date": DATE,
    "date_time": TS,
    "transaction_id": STR,
}

CORPORATE_ACTIONS = {
    **_INSTRUMENT,
    "type": STR,
    "quantity": DEC,
    "proceeds": DEC,
    "description": STR,
    "action_id": STR,
    "date_time": TS,
    "report_date": DATE,
    "transaction_id": STR,
}

OPTION_EVENTS = {
    **_INSTRUMENT,
    "transaction_type": STR,
    "date": DATE,
    "quantity": DEC,
    "trade_price": DEC,
    "proceeds": DEC,
    "commisions_and_tax": DEC,  # sic: IB's attribute is `commisionsAndTax`
    "realized_pnl": DEC,
    "cost_basis": DEC,
    "strike": DEC,
    "trade_id": STR,
}

OPEN_POSITIONS = {
    **_INSTRUMENT,
    "report_date": DATE,
    "level_of_detail": STR,
    "position": DEC,
    "cost_basis_money": DEC,
    "cost_basis_price": DEC,
    "mark_price": DEC,
    "open_date_time": TS,
    "holding_period_date_time": TS,
    "originating_transaction_id": STR,
}

MARKS = {"account_id": STR, "conid": STR, "date": DATE, "mark": DEC}

# LedgerInputs field -> its columns: the core tables first (read from the warehouse by
# `sources`), then the marks (assembled from several tables).
CORE_INPUTS: dict[str, dict[str, pa.DataType]] = {
    "trades": TRADES,
    "closed_lots": CLOSED_LOTS,
    "transfers": TRANSFERS,
    "corporate_actions": CORPORATE_ACTIONS,
    "option_events": OPTION_EVENTS,
    "open_positions": OPEN_POSITIONS,
}
ALL_INPUTS = {**CORE_INPUTS, "marks": MARKS}


@dataclass(frozen=True)
class LedgerInputs:
    """The rows one replay reads. `marks` may also be a dict {(account_id, conid, date): mark}."""

    trades: Rows = ()
    closed_lots: Rows = ()
    transfers: Rows = ()
    corporate_actions: Rows = ()
    option_events: Rows = ()
    open_positions: Rows = ()
    marks: Rows | Mapping[tuple[str, str, dt.date], Decimal] = ()


def table(rows: Rows | Mapping, columns: Mapping[str, pa.DataType]) -> pa.Table:
    """`rows` as a table with exactly `columns` (types coerced, missing ones null)."""
    if isinstance(rows, Mapping):  # marks given as {(account_id, conid, date): mark}
        rows = [
            {"account_id": a, "conid": c, "date": d, "mark": m} for (a, c, d), m in rows.items()
        ]
    if isinstance(rows, pa.Table):
        n = rows.num_rows
        arrays = [
            _coerce_arrow(rows.column(name), typ) if name in rows.column_names
            else pa.nulls(n, typ)
            for name, typ in columns.items()
        ]
    else:
        arrays = [_coerce_py([r.get(name) for r in rows], typ) for name, typ in columns.items()]
    return pa.Table.from_arrays(arrays, names=list(columns))


def _coerce_arrow(col: pa.ChunkedArray, typ: pa.DataType) -> pa.ChunkedArray:
    if typ is DEC:
        if pa.types.is_decimal(col.type):
            return col
        if pa.types.is_floating(col.type):
            raise TypeError(f"binary float column {col.type} where money is expected")
    return col if col.type == typ else pc.cast(col, typ)


def _coerce_py(values: list, typ: pa.DataType) -> pa.Array:
    if typ is DEC:
        values = [_decimal(v) for v in values]
        arr = pa.array(values)
        return arr if pa.types.is_decimal(arr.type) else arr.cast(DEC)
    if typ == TS:
        values = [
            dt.datetime.combine(v, dt.time()) if type(v) is dt.date else v for v in values
        ]
    elif typ == DATE:
        values = [v.date() if isinstance(v, dt.datetime) else v for v in values]
    elif typ == STR:
        values = [v if v is None or isinstance(v, str) else str(v) for v in values]
    return pa.array(values, typ)


def _decimal(v: Any) -> Decimal | None:
    if v is None or isinstance(v, Decimal):
        return v
    if isinstance(v, float):
        raise TypeError(f"binary float {v!r} where a Decimal is expected")
    return Decimal(v)


def pylist(col: pa.Array | pa.ChunkedArray, shared: bool = True) -> list:
    """Python values of a column; timestamps and dates as ints (see `timeline`).

    With `shared`, equal values share one object: a million rows of a few accounts,
    quantities or FX rates cost a list of pointers, not a million objects. Columns of
    mostly distinct values (ids, cash) skip that. Decimals go through their text form
    (faster than Arrow's own Decimal conversion).
    """
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    typ = col.type
    if pa.types.is_timestamp(typ) or pa.types.is_date(typ):
        return col.cast(pa.int64() if pa.types.is_timestamp(typ) else pa.int32()).to_pylist()
    if not (pa.types.is_decimal(typ) or pa.types.is_string(typ)):
        return col.to_pylist()
    if not shared:
        if pa.types.is_string(typ):
            return col.to_pylist()
        text = col.cast(STR).to_pylist()
        return [None if s is None else Decimal(s) for s in text] if col.null_count else list(
            map(Decimal, text))
    encoded = pc.dictionary_encode(col)
    words = encoded.dictionary
    uniques = words.to_pylist() if pa.types.is_string(typ) else [
        Decimal(s) for s in words.cast(STR).to_pylist()
    ]
    uniques.append(None)
    return list(map(uniques.__getitem__, encoded.indices.fill_null(len(uniques) - 1).to_pylist()))


@dataclass(frozen=True)
class UnitWords:
    """Amounts as words: value i is `(high[i] << 64 | low[i]) * 10**exponent` QUANTUMs,
    null where not `valid[i]` (uint8)."""

    low: np.ndarray
    high: np.ndarray
    exponent: int
    valid: np.ndarray


def unit_words(col: pa.Array | pa.ChunkedArray) -> UnitWords:
    """A decimal column as integers of QUANTUM (`money.units`), read from its 128-bit words
    rather than through Decimal objects: the replay's representation of amounts, scaled by
    the compiled replay (`executions`), where a product beyond 128 bits is an error."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    typ = col.type
    if not pa.types.is_decimal128(typ) or typ.scale > PLACES:  # rare: through Decimal
        col = money_array([units(v) for v in pylist(col, shared=False)])
        typ = col.type
    n = len(col)
    valid = (np.ones(n, np.uint8) if not col.null_count
             else pc.is_valid(col).to_numpy(zero_copy_only=False).view(np.uint8))
    if not n:
        return UnitWords(np.zeros(0, np.uint64), np.zeros(0, np.int64), 0, valid)
    words = np.frombuffer(col.buffers()[1], dtype=np.int64, count=2 * (col.offset + n))
    return UnitWords(words[2 * col.offset::2].view(np.uint64), words[2 * col.offset + 1::2],
                     PLACES - typ.scale, valid)


def rows(table: pa.Table) -> list[dict]:
    """Rows of a (small) table as dicts, timestamps and dates as ints (see `timeline`)."""
    cols = {name: pylist(table.column(name)) for name in table.column_names}
    return [dict(zip(cols, values, strict=True)) for values in zip(*cols.values(), strict=True)]
