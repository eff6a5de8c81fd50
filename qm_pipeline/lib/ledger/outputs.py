"""The ledger's output tables: their schemas and the sinks rows are written to.

Rows are appended as tuples in schema order and turned into Arrow record batches every
`CHUNK` rows, so a replay of a million executions holds its results as compact Arrow
columns (16 bytes a decimal) rather than millions of Python objects. Timestamps are
written as integer microseconds and dates as day numbers (see `timeline`).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from itertools import compress, repeat
from operator import is_not

import pyarrow as pa
import pyarrow.compute as pc

from qm_pipeline.lib.ledger.money import QUANTUM, ZERO

MONEY = pa.decimal128(38, 18)
TS = pa.timestamp("us")
DATE = pa.date32()
STR = pa.string()
CHUNK = 65_536

LOTS = pa.schema(
    [
        ("lot_id", STR),
        ("account_id", STR),
        ("conid", STR),
        ("symbol", STR),
        ("asset_category", STR),
        ("currency", STR),
        ("multiplier", MONEY),
        ("open_date_time", TS),
        ("open_date", DATE),
        ("holding_period_start", DATE),
        ("quantity", MONEY),  # signed: short lots are negative
        ("cost_basis", MONEY),  # signed like quantity; includes the opening commission
        ("cost_basis_base", MONEY),
        ("wash_adjustment", MONEY),  # disallowed losses moved onto this lot (IRC 1091(d))
        ("wash_adjustment_base", MONEY),
        ("adjusted_basis", MONEY),  # cost_basis + wash_adjustment: the tax basis
        ("adjusted_basis_base", MONEY),
        ("is_opening_balance", pa.bool_()),
        ("is_wash_replacement", pa.bool_()),
        ("method", STR),
    ]
)

REALIZED = pa.schema(
    [
        ("seq", pa.int64()),  # replay order: sales in the order they happened
        ("account_id", STR),
        ("conid", STR),
        ("symbol", STR),
        ("asset_category", STR),
        ("currency", STR),
        ("lot_id", STR),
        ("closing_transaction_id", STR),
        ("open_date_time", TS),
        ("open_date", DATE),
        ("close_date_time", TS),
        ("close_date", DATE),
        ("holding_period_start", DATE),
        ("quantity", MONEY),  # signed like the lot: a covered short is negative
        ("cost", MONEY),  # the lot's cost for this quantity, opening commission included
        ("cost_base", MONEY),
        ("proceeds", MONEY),  # net of the closing commission
        ("proceeds_base", MONEY),
        ("realized_pnl", MONEY),  # proceeds - cost: IB's fifoPnlRealized under FIFO
        ("realized_pnl_base", MONEY),
        ("adjusted_basis", MONEY),  # cost + wash adjustments the lot carried
        ("adjusted_basis_base", MONEY),
        ("wash_sale_disallowed", MONEY),  # loss disallowed here, moved to replacements
        ("wash_sale_disallowed_base", MONEY),
        ("taxable_pnl", MONEY),  # proceeds - adjusted_basis + wash_sale_disallowed
        ("taxable_pnl_base", MONEY),
        ("term", STR),  # SHORT or LONG
        ("method", STR),
        ("close_reason", STR),  # TRADE, EXPIRED, ASSIGNED, EXERCISED
        ("is_opening_balance", pa.bool_()),
    ]
)

POSITIONS = pa.schema(
    [
        ("episode_id", STR),
        ("account_id", STR),
        ("conid", STR),
        ("symbol", STR),
        ("asset_category", STR),
        ("currency", STR),
        ("multiplier", MONEY),
        ("status", STR),  # OPEN, CLOSED, EXPIRED (CLOSED_EXTERNALLY is reconciliation's)
        ("side", STR),  # LONG or SHORT
        ("quantity", MONEY),  # open quantity now; 0 once closed
        ("max_quantity", MONEY),  # largest absolute quantity during the episode
        ("cost_basis", MONEY),  # of the lots still open
        ("cost_basis_base", MONEY),
        ("average_cost", MONEY),  # opening cost per unit (per share for options)
        ("opened_at", TS),
        ("closed_at", TS),
        ("exit_reason", STR),
        ("realized_pnl", MONEY),
        ("realized_pnl_base", MONEY),
        ("is_opening_balance", pa.bool_()),
    ]
)

POSITION_HISTORY = pa.schema(
    [
        ("account_id", STR),
        ("conid", STR),
        ("date", DATE),
        ("quantity", MONEY),  # end of day
        ("cost_basis", MONEY),
        ("cost_basis_base", MONEY),
        ("mark", MONEY),
        ("market_value", MONEY),
        ("unrealized_pnl", MONEY),
        ("currency", STR),
        ("episode_id", STR),
    ]
)

FLAGS = pa.schema(
    [
        ("account_id", STR),
        ("conid", STR),
        ("transaction_id", STR),
        ("date_time", TS),
        ("source", STR),  # the input table the event came from
        ("level", STR),  # ERROR: holdings may be wrong; WARN: estimated; INFO: recorded
        ("reason", STR),
    ]
)


# What the replay writes row by row: the narrowest rows that determine the output.
# Book facts (account, conid, instrument, method) are an index into BOOKS, and every
# amount that is a sum of others is computed by Arrow afterwards (`realized_table`).
BOOKS = pa.schema(
    [
        ("book", pa.int32()),
        ("account_id", STR),
        ("conid", STR),
        ("symbol", STR),
        ("asset_category", STR),
        ("currency", STR),
        ("multiplier", MONEY),
        ("method", STR),
    ]
)

RAW_REALIZED = pa.schema(
    [
        ("seq", pa.int64()),
        ("book", pa.int32()),
        ("lot_id", STR),
        ("closing_transaction_id", STR),
        ("open_date_time", TS),
        ("open_date", DATE),
        ("close_date_time", TS),
        ("holding_period_start", DATE),
        ("quantity", MONEY),
        ("cost", MONEY),
        ("cost_base", MONEY),
        ("proceeds", MONEY),
        ("proceeds_base", MONEY),
        ("wash_adjustment", MONEY),  # carried by the lot
        ("wash_adjustment_base", MONEY),
        ("wash_sale_disallowed", MONEY),
        ("wash_sale_disallowed_base", MONEY),
        ("term", STR),
        ("close_reason", STR),
        ("is_opening_balance", pa.bool_()),
    ]
)

RAW_HISTORY = pa.schema(
    [
        ("book", pa.int32()),
        ("date", DATE),
        ("quantity", MONEY),
        ("cost_basis", MONEY),
        ("cost_basis_base", MONEY),
        ("mark", MONEY),
        ("market_value", MONEY),
        ("unrealized_pnl", MONEY),
        ("episode", pa.int32()),  # the book's episode number, 0 before the first
    ]
)

# Columns whose value is usually the very same Decimal object as another (earlier)
# column's: the base amount of a base-currency instrument is the local one, most wash
# amounts are ZERO. `TableSink` converts such a column only where the objects differ.
ZERO_TWIN = ""
TWINS = {
    "lots": {
        "cost_basis_base": "cost_basis",
        "wash_adjustment": ZERO_TWIN,
        "wash_adjustment_base": ZERO_TWIN,
        "adjusted_basis": "cost_basis",
        "adjusted_basis_base": "cost_basis_base",
    },
    "realized": {
        "cost_base": "cost",
        "proceeds_base": "proceeds",
        "wash_adjustment": ZERO_TWIN,
        "wash_adjustment_base": ZERO_TWIN,
        "wash_sale_disallowed": ZERO_TWIN,
        "wash_sale_disallowed_base": ZERO_TWIN,
    },
    "positions": {"cost_basis_base": "cost_basis", "realized_pnl_base": "realized_pnl"},
    "position_history": {"cost_basis_base": "cost_basis"},
}


class TableSink:
    """Collects rows (tuples in schema order) into an Arrow table, CHUNK rows at a time."""

    def __init__(self, schema: pa.Schema, twins: dict[str, str] | None = None) -> None:
        self.schema = schema
        self.rows: list[tuple] = []
        self._batches: list[pa.RecordBatch] = []
        names = schema.names
        twins = twins or {}
        # per column: None (convert all), -1 (twin of ZERO) or the twin column's index
        self._twins = [
            (names.index(twins[n]) if twins[n] else -1) if n in twins else None for n in names
        ]

    def append(self, row: tuple) -> None:
        rows = self.rows
        rows.append(row)
        if len(rows) >= CHUNK:
            self._flush()

    def _flush(self) -> None:
        if not self.rows:
            return
        columns = list(zip(*self.rows, strict=True))
        arrays: list[pa.Array] = []
        for col, field, twin in zip(columns, self.schema, self._twins, strict=True):
            if twin is None:
                arrays.append(_array(col, field.type))
                continue
            base = _zeros() if twin < 0 else arrays[twin]
            same = repeat(ZERO) if twin < 0 else columns[twin]
            if any(map(is_not, col, same)):
                same = repeat(ZERO) if twin < 0 else columns[twin]
                differs = list(map(is_not, col, same))
                values = list(compress(col, differs))
                base = pc.replace_with_mask(base.slice(0, len(col)), pa.array(differs),
                                            _array(values, field.type))
            arrays.append(base.slice(0, len(col)))
        self._batches.append(pa.RecordBatch.from_arrays(arrays, schema=self.schema))
        self.rows = []

    def table(self, sort_keys: list[tuple[str, str]] | None = None) -> pa.Table:
        self._flush()
        result = pa.Table.from_batches(self._batches, schema=self.schema)
        return result.sort_by(sort_keys) if sort_keys else result


@cache
def _zeros() -> pa.Array:
    return pa.array([ZERO] * CHUNK, MONEY)


def _array(values: Sequence, typ: pa.DataType) -> pa.Array:
    try:
        return pa.array(values, typ)
    except pa.ArrowInvalid:  # an input amount finer than the output scale: round it
        return pa.array([None if v is None else v.quantize(QUANTUM) for v in values], typ)


class Flags:
    """Events the ledger could not interpret (or only estimated), with the reason."""

    def __init__(self, rows: list[tuple] | None = None) -> None:
        self.sink = TableSink(FLAGS)
        self.sink.rows.extend(rows or ())

    @property
    def rows(self) -> list[tuple]:
        """The flags so far, as FLAGS rows."""
        return self.sink.rows

    def add(
        self,
        level: str,
        source: str,
        reason: str,
        account_id: str | None = None,
        conid: str | None = None,
        transaction_id: str | None = None,
        ts: int | None = None,
    ) -> None:
        self.sink.append((account_id, conid, transaction_id, ts, source, level, reason))

    def table(self) -> pa.Table:
        keys = ["account_id", "conid", "date_time", "transaction_id", "reason"]
        return self.sink.table([(k, "ascending") for k in keys])


# --- final tables from raw rows -------------------------------------------------------

_NARROW = pa.decimal128(36, 18)  # operands of Arrow sums: the result still fits MONEY


def _plus(a: pa.ChunkedArray, b: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.add(a.cast(_NARROW), b.cast(_NARROW)).cast(MONEY)


def _minus(a: pa.ChunkedArray, b: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.subtract(a.cast(_NARROW), b.cast(_NARROW)).cast(MONEY)


def realized_table(raw: pa.Table, books: pa.Table) -> pa.Table:
    """REALIZED from RAW_REALIZED rows: book facts joined, P&L and tax amounts summed.
    Rows are in the order they became final (a loss waits up to 30 days for wash-sale
    replacements); `seq` is the order of the sales."""
    book = books.take(raw.column("book"))
    col = raw.column
    pnl = _minus(col("proceeds"), col("cost"))
    pnl_base = _minus(col("proceeds_base"), col("cost_base"))
    columns = {
        "seq": col("seq"),
        **{name: book.column(name) for name in ("account_id", "conid", "symbol",
                                                "asset_category", "currency")},
        **{name: col(name) for name in ("lot_id", "closing_transaction_id", "open_date_time",
                                        "open_date", "close_date_time")},
        "close_date": col("close_date_time").cast(DATE),
        **{name: col(name) for name in ("holding_period_start", "quantity", "cost", "cost_base",
                                        "proceeds", "proceeds_base")},
        "realized_pnl": pnl,
        "realized_pnl_base": pnl_base,
        "adjusted_basis": _plus(col("cost"), col("wash_adjustment")),
        "adjusted_basis_base": _plus(col("cost_base"), col("wash_adjustment_base")),
        "wash_sale_disallowed": col("wash_sale_disallowed"),
        "wash_sale_disallowed_base": col("wash_sale_disallowed_base"),
        # proceeds - adjusted basis + disallowed loss
        "taxable_pnl": _plus(_minus(pnl, col("wash_adjustment")),
                             col("wash_sale_disallowed")),
        "taxable_pnl_base": _plus(_minus(pnl_base, col("wash_adjustment_base")),
                                  col("wash_sale_disallowed_base")),
        "term": col("term"),
        "method": book.column("method"),
        "close_reason": col("close_reason"),
        "is_opening_balance": col("is_opening_balance"),
    }
    return pa.table(columns, schema=REALIZED)


def history_table(raw: pa.Table, books: pa.Table) -> pa.Table:
    """POSITION_HISTORY from RAW_HISTORY rows (in the order days closed: by date, and
    within a date by the replay's first touch of the position)."""
    book = books.take(raw.column("book"))
    account, conid = book.column("account_id"), book.column("conid")
    episode = raw.column("episode")
    episode_id = pc.if_else(pc.equal(episode, 0), pa.scalar(None, STR),
                            pc.binary_join_element_wise(account, conid,
                                                        episode.cast(STR), "|"))
    columns = {
        "account_id": account,
        "conid": conid,
        **{name: raw.column(name) for name in ("date", "quantity", "cost_basis",
                                               "cost_basis_base", "mark", "market_value",
                                               "unrealized_pnl")},
        "currency": book.column("currency"),
        "episode_id": episode_id,
    }
    return pa.table(columns, schema=POSITION_HISTORY)
