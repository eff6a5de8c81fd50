"""The ledger's output tables: their schemas and how the replay writes them.

Realized pieces and position history (millions of rows) are written while the replay
makes them, as packed 64-bit words (`Rows`): integer fields as they are, amounts
(integers of QUANTUM, see `money`) as their low and high words, which is the decimal128
layout. Converting the Python objects later instead would cost a cache miss per value,
more than the conversion: each value is written once, while it is fresh. Amounts that
are mostly 0 or mostly equal to another column (wash amounts, base amounts of
base-currency instruments) are written only where they differ (`Sparse`). Every CHUNK
rows the words become Arrow record batches in the final schema, so a replay of a million
executions holds its results as compact Arrow columns (16 bytes a decimal), never as
Python objects, nor as a raw and a final copy. Strings are made by Arrow from small
integers: book facts from BOOKS, transaction ids from their codes
(`trades.TransactionIds`), lot ids from both (`lot_ids`).

Small tables (positions, open lots, flags, books) are tuples converted in chunks
(`TableSink`). Timestamps are integer microseconds and dates day numbers (see `timeline`).
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Callable, Iterator, Sequence
from functools import cache
from itertools import compress, repeat
from operator import and_, ne, rshift

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from qm_pipeline.lib.ledger.timeline import US_PER_DAY, first_long_term_days
from qm_pipeline.lib.ledger.words import gather_rows

MONEY = pa.decimal128(38, 18)
TS = pa.timestamp("us")
DATE = pa.date32()
STR = pa.string()
# Realized rows repeat their book's strings and a few codes: they are dictionary columns,
# indices into the BOOKS column (one shared int32 buffer for all six) or into a short list.
# A million-execution replay holds some 100 MB less; the warehouse stores plain text
# (`warehouse.types.sql_type`) and `.to_pylist()` gives the strings.
BOOK_STR = pa.dictionary(pa.int32(), STR)
CODE_STR = pa.dictionary(pa.int8(), STR)
CHUNK = 65_536
# Rows a `TableSink` holds as tuples before converting them: a position episode's tuple
# and its integers take some 600 bytes as Python objects, 30 times its Arrow form.
TUPLES = 8_192
LOW = (1 << 64) - 1  # an amount's low word is `amount & LOW`, its high word `amount >> 64`
NO_TIME = -(1 << 63)  # a null timestamp in an integer field
# Close reasons of realized rows, by their code in an integer field ("": a stock delivery
# replayed without its option leg, see `events.option_events`).
REASONS = ("TRADE", "EXPIRED", "ASSIGNED", "EXERCISED", "")
REASON_CODE = {reason: code for code, reason in enumerate(REASONS)}

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
        ("account_id", BOOK_STR),
        ("conid", BOOK_STR),
        ("symbol", BOOK_STR),
        ("asset_category", BOOK_STR),
        ("currency", BOOK_STR),
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
        ("term", CODE_STR),  # SHORT or LONG
        ("method", BOOK_STR),
        ("close_reason", CODE_STR),  # TRADE, EXPIRED, ASSIGNED, EXERCISED
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
        ("account_id", BOOK_STR),
        ("conid", BOOK_STR),
        ("date", DATE),
        ("quantity", MONEY),  # end of day
        ("cost_basis", MONEY),
        ("cost_basis_base", MONEY),
        ("mark", MONEY),
        ("market_value", MONEY),
        ("unrealized_pnl", MONEY),
        ("currency", BOOK_STR),
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

# Books: the facts realized and history rows join by book index.
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

# Open lots as the engine writes them: a lot id is its book, opening transaction (code)
# and number (`lot_ids`), the other columns as in LOTS.
RAW_LOTS = pa.schema([("lot_book", pa.int32()), ("lot_tid", pa.int64()), ("lot_n", pa.int64()),
                      *(f for f in LOTS if f.name != "lot_id")])

# The fields of a realized row (`Rows`): integer fields, money fields, and the fields it
# copies from its lot (`lots.Lot`: the book and transaction of its id, its opening).
REALIZED_INTS = ("book", "lot_n", "tid", "close_ts", "hp_day", "reason")
REALIZED_MONEY = ("quantity", "cost", "proceeds")
REALIZED_OPENING = ("lot_book", "lot_tid", "open_ts", "open_day", "opening_balance")
# The fields of a position history row (episode: the book's number, 0 before the first).
HISTORY_INTS = ("book", "date", "episode")
HISTORY_MONEY = ("quantity", "cost_basis")

# Columns of the small tables whose value usually equals another (earlier) column's: base
# amounts of base-currency instruments, wash amounts (0). `TableSink` converts such a
# column only where the values differ.
ZERO_TWIN = ""
TWINS = {
    "lots": {
        "cost_basis_base": "cost_basis",
        "wash_adjustment": ZERO_TWIN,
        "wash_adjustment_base": ZERO_TWIN,
        "adjusted_basis": "cost_basis",
        "adjusted_basis_base": "cost_basis_base",
    },
    "positions": {"cost_basis_base": "cost_basis", "realized_pnl_base": "realized_pnl"},
}

TidStrings = Callable[[pa.Array], pa.Array]  # transaction id codes to strings


# --- amounts --------------------------------------------------------------------------

# decimal128(38, 18) holds |value| < 10**38 QUANTUMs: high words in [-_HIGH, _HIGH) are safe
_HIGH = 10**38 >> 64


def money_array(values: Sequence[int | None]) -> pa.Array:
    """A MONEY array from integers of QUANTUM (None: null)."""
    present = None
    if None in values:
        present = [v is not None for v in values]
        values = [0 if v is None else v for v in values]
    n = len(values)
    try:
        low = np.fromiter(map(and_, values, repeat(LOW)), np.uint64, n)
        high = np.fromiter(map(rshift, values, repeat(64)), np.int64, n)
    except OverflowError:
        raise OverflowError("amount beyond decimal128(38, 18)") from None
    amounts = money_from_words(low, high)
    if present is None:
        return amounts
    return pa.Array.from_buffers(MONEY, n, [pa.array(present).buffers()[1],
                                            amounts.buffers()[1]], null_count=n - sum(present))


def money_from_words(low: np.ndarray, high: np.ndarray) -> pa.Array:
    """A MONEY array from the low and high (signed) 64-bit words of integers of QUANTUM:
    their two's-complement 128-bit form is the decimal128 layout."""
    n = len(low)
    if n and (high.max() >= _HIGH or high.min() < -_HIGH):
        big = [(h << 64) + lo for h, lo in zip(high.tolist(), low.view(np.uint64).tolist(),
                                               strict=True)]
        if any(abs(v) >= 10**38 for v in big):
            raise OverflowError("amount beyond decimal128(38, 18)")
    # in Arrow's memory pool, not numpy's heap: the outputs stay in one allocator
    buffer = pa.allocate_buffer(16 * n)
    words = np.frombuffer(buffer, dtype=np.int64).reshape(n, 2)
    words[:, 0] = low.view(np.int64)  # the same bits, whether given signed or unsigned
    words[:, 1] = high
    del words
    return pa.Array.from_buffers(MONEY, n, [None, buffer])


Words = tuple[np.ndarray, np.ndarray]  # a column of amounts: low (uint64), high (int64) words


def plus(a: Words, b: Words | None) -> Words:
    """a + b, exact 128-bit arithmetic on the words; `a` itself when b is None (all 0)."""
    if b is None:
        return a
    low = a[0] + b[0]
    return low, a[1] + b[1] + (low < a[0])


def minus(a: Words, b: Words | None) -> Words:
    """a - b, as `plus`."""
    if b is None:
        return a
    return a[0] - b[0], a[1] - b[1] - (a[0] < b[0])


def _equal(a: Words | None, b: Words | None) -> bool:
    """The same amounts (None: all 0)."""
    if a is None or b is None:
        return a is b
    return np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def _zeros(n: int) -> pa.Array:
    """n zeros, slices of one shared buffer (all-zero columns then cost no memory)."""
    return _block_of(max(CHUNK, 1 << (n - 1).bit_length()), False).slice(0, n)


def _nulls(n: int) -> pa.Array:
    """n nulls, slices of one shared buffer."""
    return _block_of(max(CHUNK, 1 << (n - 1).bit_length()), True).slice(0, n)


@cache
def _block_of(n: int, null: bool) -> pa.Array:
    return pa.nulls(n, MONEY) if null else pa.Array.from_buffers(
        MONEY, n, [None, pa.py_buffer(bytes(16 * n))])


# --- rows written as they are made ----------------------------------------------------


class Rows:
    """Rows appended as packed 64-bit words to `data` while they are made: the integer
    fields, then the money fields' high words (`amount >> 64`), then their low words
    (`amount & LOW`), then the `tail` fields. The compiled replay writes them from C
    structs of this layout (`executions.Realized`, `positions.History`), and holds `data`:
    `take` empties it in place. Reading them back is numpy slicing."""

    def __init__(self, ints: Sequence[str], money: Sequence[str],
                 tail: Sequence[str] = ()) -> None:
        n_ints, n_money = len(ints), len(money)
        self.width = n_ints + 2 * n_money + len(tail)
        self._at = {name: i for i, name in enumerate(ints)}
        self._at.update({name: n_ints + 2 * n_money + i for i, name in enumerate(tail)})
        self._money = {name: (n_ints + n_money + j, n_ints + j) for j, name in enumerate(money)}
        self.data = bytearray()

    def __len__(self) -> int:
        return len(self.data) // (8 * self.width)

    def take(self) -> np.ndarray:
        """The rows so far as a (rows, words) matrix; emptied."""
        words = np.frombuffer(self.data, dtype=np.int64).reshape(-1, self.width).copy()
        del self.data[:]
        return words

    def field(self, words: np.ndarray, name: str) -> np.ndarray:
        return words[:, self._at[name]]

    def amount(self, words: np.ndarray, name: str) -> Words:
        low, high = self._money[name]
        return words[:, low].view(np.uint64), words[:, high]


class Sparse:
    """Amounts of the few rows where they are not what the row otherwise implies (0, or
    the twin column): the row number, the high words and the low words, as in `Rows`,
    rows ascending. `add` packs them from Python integers."""

    def __init__(self, width: int) -> None:
        self._width = width
        self._pack = struct.Struct(f"<{1 + width}q{width}Q").pack
        self.data = bytearray()

    def add(self, row: int, *amounts: int) -> None:
        self.data += self._pack(row, *(a >> 64 for a in amounts), *(a & LOW for a in amounts))

    def take(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rows, high words and low words (one column per value) so far; emptied."""
        words = np.frombuffer(self.data, dtype=np.int64).reshape(-1, 1 + 2 * self._width)
        words = words.copy()
        del self.data[:]
        return words[:, 0], words[:, 1:1 + self._width], words[:, 1 + self._width:]


def _put(bases: list[Words | None], n: int, at: np.ndarray, high: np.ndarray,
         low: np.ndarray) -> list[Words | None]:
    """`bases` (None: n zeros) with row `at[i]` of column j set to (low[i, j], high[i, j])."""
    if not len(at):
        return bases
    out = []
    for j, base in enumerate(bases):
        base_low, base_high = base if base is not None else (np.zeros(n, np.uint64),
                                                            np.zeros(n, np.int64))
        base_low, base_high = base_low.copy(), base_high.copy()
        base_low[at] = low[:, j].view(np.uint64)
        base_high[at] = high[:, j]
        out.append((base_low, base_high))
    return out


def _joined(parts: list[tuple[np.ndarray, ...]]) -> tuple[np.ndarray, ...]:
    return tuple(np.concatenate(column) for column in zip(*parts, strict=True))


def _find(rows: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions in `wanted` found in the ascending `rows`, and where they are there."""
    if not len(rows):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    at = np.minimum(np.searchsorted(rows, wanted), len(rows) - 1)
    found = np.nonzero(rows[at] == wanted)[0]
    return found, at[found]


class RealizedSink:
    """Realized rows: written when a piece is closed (row number = `seq` - 1, sale order),
    emitted when final (at once, or when a loss's wash-sale replacements are settled, up
    to 30 days later). The output is in the order of emission, except that each chunk
    has the rows whose base amounts are their local ones (base-currency instruments) first:
    their base columns are then the local columns' arrays (`realized_batch`), not copies.

    At each flush the rows written since the last become a block of words; an emitted
    chunk gathers its rows from the blocks, and the leading blocks whose rows were all
    emitted are dropped (the others stay contiguous)."""

    def __init__(self, books: Callable[[], pa.Table], tid_strings: TidStrings) -> None:
        # the tail of a row is its lot's opening (`executions.Realized`)
        self.rows = Rows(REALIZED_INTS, REALIZED_MONEY, REALIZED_OPENING)
        self.base = Sparse(2)  # cost_base, proceeds_base where not cost, proceeds
        self.wash = Sparse(2)  # the lot's wash adjustment (local, base) where not 0
        self.emitted = array("q")  # row numbers, in the order they became final
        self.disallowed = Sparse(2)  # wash sales, by position in `emitted`
        self._books = books
        self._tid_strings = tid_strings
        self._blocks: list[_Block] = []
        self._written = 0  # rows in blocks
        self._batches: list[pa.RecordBatch] = []

    def spill(self) -> None:
        if len(self.emitted) >= CHUNK:
            self._flush()

    def _flush(self) -> None:
        words = self.rows.take()
        if len(words):
            self._blocks.append(_Block(self._written, words, self.base.take(),
                                       self.wash.take()))
            self._written += len(words)
        emitted = np.frombuffer(self.emitted, dtype=np.int64).copy()
        del self.emitted[:]
        disallowed_at, high, low = self.disallowed.take()
        # CHUNK rows at a time: the last flush takes every loss still waiting, and its
        # temporaries would otherwise be the replay's high-water mark
        for start in range(0, len(emitted), CHUNK):
            rows = emitted[start:start + CHUNK]
            inside = slice(*np.searchsorted(disallowed_at, [start, start + CHUNK]))
            at = disallowed_at[inside] - start
            foreign = self._foreign(rows)
            for part in (np.nonzero(~foreign)[0], np.nonzero(foreign)[0]):
                if len(part):
                    found, where = _find(part, at)
                    self._batches.append(self._batch(rows[part], (
                        where, high[inside][found], low[inside][found])))

    def _by_block(self, emitted: np.ndarray) -> Iterator[tuple[_Block, np.ndarray]]:
        """Each block holding some of the rows `emitted`, with their positions there."""
        block_of = np.searchsorted([b.start for b in self._blocks], emitted, side="right") - 1
        for i, block in enumerate(self._blocks):
            at = np.nonzero(block_of == i)[0]
            if len(at):
                yield block, at

    def _foreign(self, emitted: np.ndarray) -> np.ndarray:
        """Which of the rows `emitted` have base amounts of their own (in `base`)."""
        foreign = np.zeros(len(emitted), dtype=bool)
        for block, at in self._by_block(emitted):
            foreign[at] = block.base_at[emitted[at] - block.start] >= 0
        return foreign

    def _batch(self, emitted: np.ndarray,
               disallowed: tuple[np.ndarray, np.ndarray, np.ndarray]) -> pa.RecordBatch:
        """The REALIZED batch of the rows `emitted` (numbers, in this order), with their
        disallowed losses (positions in `emitted`, high and low words)."""
        n = len(emitted)
        chunk = np.empty((n, self.rows.width), dtype=np.int64)
        hits: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {"base": [],
                                                                            "wash": []}
        for block, at in self._by_block(emitted):
            rows = emitted[at]
            gather_rows(chunk, at, block.words, rows - block.start)
            block.pending -= len(at)
            for name, (_, high, low), sparse_at in (("base", block.base, block.base_at),
                                                     ("wash", block.wash, block.wash_at)):
                where = sparse_at[rows - block.start]
                found = np.nonzero(where >= 0)[0]
                hits[name].append((at[found], high[where[found]], low[where[found]]))
        while self._blocks and not self._blocks[0].pending:
            self._blocks.pop(0)
        amounts: dict[str, Words | None] = {
            name: self.rows.amount(chunk, name) for name in REALIZED_MONEY}
        amounts["cost_base"], amounts["proceeds_base"] = _put(
            [amounts["cost"], amounts["proceeds"]], n, *_joined(hits["base"]))
        amounts["wash"], amounts["wash_base"] = _put([None, None], n, *_joined(hits["wash"]))
        amounts["disallowed"], amounts["disallowed_base"] = _put([None, None], n, *disallowed)
        fields = {name: self.rows.field(chunk, name) for name in (*REALIZED_INTS,
                                                                  *REALIZED_OPENING)}
        return realized_batch(fields, amounts, emitted + 1, self._books(), self._tid_strings)

    def table(self) -> pa.Table:
        self._flush()
        batches, self._batches = self._batches, []
        return over_books(batches, REALIZED, self._books())


class _Block:
    """Realized rows written between two flushes, and their sparse amounts with, per row,
    where its amounts are among them (-1: none): a gather finds a row's amounts."""

    __slots__ = ("base", "base_at", "pending", "start", "wash", "wash_at", "words")

    def __init__(self, start: int, words: np.ndarray, base: tuple, wash: tuple) -> None:
        self.start = start  # number of the first row
        self.words = words
        self.base = base
        self.wash = wash
        self.base_at, self.wash_at = (_positions(rows - start, len(words))
                                      for rows, _, _ in (base, wash))
        self.pending = len(words)  # rows not emitted yet


def _positions(rows: np.ndarray, n: int) -> np.ndarray:
    """For each of n rows, its position in the ascending `rows`, or -1."""
    at = np.full(n, -1, dtype=np.int32)
    at[rows] = np.arange(len(rows), dtype=np.int32)
    return at


class HistorySink:
    """Position history rows, written at the end of each day a position changed or was
    marked, in that order (no row waits)."""

    def __init__(self, books: Callable[[], pa.Table]) -> None:
        self.rows = Rows(HISTORY_INTS, HISTORY_MONEY)
        self.base = Sparse(1)  # cost_basis_base where not cost_basis
        self.marks = Sparse(3)  # mark, market_value, unrealized_pnl where marked
        self._books = books
        self._written = 0
        self._batches: list[pa.RecordBatch] = []

    def next_row(self) -> int:
        """Number of the row written next (for `base` and `marks`)."""
        return self._written + len(self.rows)

    def spill(self) -> None:
        if len(self.rows) >= CHUNK:
            self._flush()

    def _flush(self) -> None:
        words = self.rows.take()
        n = len(words)
        if not n:
            return
        start, self._written = self._written, self._written + n
        quantity, cost = (self.rows.amount(words, name) for name in HISTORY_MONEY)
        base_at, base_high, base_low = self.base.take()
        (cost_base,) = _put([cost], n, base_at - start, base_high, base_low)
        marks_at, marks_high, marks_low = self.marks.take()
        marks = [_nulls(n)] * 3
        if len(marks_at):
            present = np.zeros(n, dtype=bool)
            present[marks_at - start] = True
            marks = [pc.replace_with_mask(_nulls(n), pa.array(present),
                                          money_from_words(marks_low[:, j], marks_high[:, j]))
                     for j in range(3)]
        books = self._books()
        book_index = self.rows.field(words, "book")
        book = book_columns(books, book_index)
        episode = pa.array(self.rows.field(words, "episode"))
        episode_id = pc.if_else(pc.equal(episode, 0), pa.scalar(None, STR),
                                pc.binary_join_element_wise(
                                    _book_ids(books).take(pa.array(book_index.astype(np.int32))),
                                    episode.cast(STR), "|"))
        cost_array = money_from_words(*cost)
        self._batches.append(pa.RecordBatch.from_arrays([
            book("account_id"), book("conid"), _dates(self.rows.field(words, "date")),
            money_from_words(*quantity), cost_array,
            cost_array if cost_base is cost else money_from_words(*cost_base), *marks,
            book("currency"), episode_id,
        ], schema=POSITION_HISTORY))

    def table(self) -> pa.Table:
        self._flush()
        batches, self._batches = self._batches, []
        return over_books(batches, POSITION_HISTORY, self._books())


def book_columns(books: pa.Table, index: np.ndarray) -> Callable[[str], pa.DictionaryArray]:
    """BOOK_STR columns of rows of the books `index`: one int32 buffer for all of them."""
    indices = pa.array(index.astype(np.int32))

    def column(name: str) -> pa.DictionaryArray:
        return pa.DictionaryArray.from_arrays(indices, books.column(name).combine_chunks())

    return column


def over_books(batches: list[pa.RecordBatch], schema: pa.Schema, books: pa.Table) -> pa.Table:
    """`batches` as a table whose BOOK_STR columns all have the final BOOKS as dictionary: a
    batch made earlier has the books of its time (the same indices, fewer words), and
    tables are equal only where their dictionaries are."""
    words = {f.name: books.column(f.name).combine_chunks() for f in schema
             if f.type == BOOK_STR}
    return pa.Table.from_batches([pa.RecordBatch.from_arrays([
        pa.DictionaryArray.from_arrays(column.indices, words[name]) if name in words
        else column for name, column in zip(schema.names, batch.columns, strict=True)
    ], schema=schema) for batch in batches], schema=schema)


def _dates(days: np.ndarray) -> pa.Array:
    return pa.array(days.astype(np.int32), DATE)


def _times(ts: np.ndarray) -> pa.Array:
    return pa.array(ts, TS, mask=ts == NO_TIME)


# --- small tables ---------------------------------------------------------------------


class TableSink:
    """Collects rows (tuples in schema order, amounts as integers) into an Arrow table;
    `spill` converts them once there are TUPLES, so they are not kept as Python objects."""

    def __init__(self, schema: pa.Schema, twins: dict[str, str] | None = None) -> None:
        self.schema = schema
        self.rows: list[tuple] = []
        self.append = self.rows.append
        self._batches: list[pa.RecordBatch] = []
        names = schema.names
        twins = twins or {}
        # per column: None (convert all), -1 (twin of 0) or the twin column's index
        self._twins = [
            (names.index(twins[n]) if twins[n] else -1) if n in twins else None for n in names
        ]

    def spill(self) -> None:
        if len(self.rows) >= TUPLES:
            self._flush()

    def _flush(self) -> None:
        if not self.rows:
            return
        columns = list(zip(*self.rows, strict=True))
        self.rows.clear()
        arrays: list[pa.Array] = []
        for col, field, twin in zip(columns, self.schema, self._twins, strict=True):
            if twin is None:
                arrays.append(_array(col, field.type))
                continue
            base = _zeros(len(col)) if twin < 0 else arrays[twin]
            differs = list(map(ne, col, repeat(0) if twin < 0 else columns[twin]))
            if any(differs):
                base = pc.replace_with_mask(base, pa.array(differs),
                                            _array(list(compress(col, differs)), field.type))
            arrays.append(base)
        self._batches.append(pa.RecordBatch.from_arrays(arrays, schema=self.schema))

    def table(self, sort_keys: list[tuple[str, str]] | None = None) -> pa.Table:
        self._flush()
        batches, self._batches = self._batches, []
        result = pa.Table.from_batches(batches, schema=self.schema)
        return result.sort_by(sort_keys) if sort_keys else result


def _array(values: Sequence, typ: pa.DataType) -> pa.Array:
    return money_array(values) if typ == MONEY else pa.array(values, typ)


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


# --- final columns --------------------------------------------------------------------


def lot_ids(books: pa.Table, tid_strings: TidStrings, lot_book: pa.Array, lot_tid: pa.Array,
            lot_n: pa.Array) -> pa.Array:
    """"account|conid|transaction id|n": the book and transaction that opened the lot, and
    its number among the lots split off that opening."""
    return pc.binary_join_element_wise(_book_ids(books).take(lot_book),
                                       tid_strings(lot_tid), lot_n.cast(STR), "|")


def _book_ids(books: pa.Table) -> pa.Array:
    """"account|conid" of each book, the start of its lot and episode ids (made once a book,
    not once a row)."""
    return pc.binary_join_element_wise(books.column("account_id").combine_chunks(),
                                       books.column("conid").combine_chunks(), "|")


_TERMS = pa.array(["SHORT", "LONG"], STR)
_REASONS = pa.array(REASONS, STR)


def _coded(codes: np.ndarray, words: pa.Array) -> pa.DictionaryArray:
    """A CODE_STR column: `words[codes]`, kept as the codes."""
    return pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int8)), words)


def _term(holding_start: np.ndarray, close_day: np.ndarray) -> pa.DictionaryArray:
    """LONG where the close is on or after the first long-term day of the holding period
    (`timeline.first_long_term_days`, computed once per day of the starts' range)."""
    first = holding_start.min()
    first_long = first_long_term_days(np.arange(first, holding_start.max() + 1))
    return _coded(close_day >= first_long[holding_start - first], _TERMS)


def realized_batch(fields: dict[str, np.ndarray], amounts: dict[str, Words | None],
                   seq: np.ndarray, books: pa.Table, tid_strings: TidStrings) -> pa.RecordBatch:
    """REALIZED rows from the fields and amounts of realized rows (`RealizedSink`): book
    facts joined, ids made, term, P&L and tax amounts summed. A column equal to another
    (no wash amounts, no foreign currency in the chunk) is that column's array again."""
    n = len(seq)
    book = book_columns(books, fields["book"])
    close_day = fields["close_ts"] // US_PER_DAY
    pnl = minus(amounts["proceeds"], amounts["cost"])
    base_is_local = amounts["proceeds_base"] is amounts["proceeds"] \
        and amounts["cost_base"] is amounts["cost"]
    if base_is_local:  # wash amounts in base too, unless a foreign lot's loss moved here
        for name in ("wash", "disallowed"):
            if _equal(amounts[f"{name}_base"], amounts[name]):
                amounts[f"{name}_base"] = amounts[name]
    pnl_base = pnl if base_is_local else minus(amounts["proceeds_base"], amounts["cost_base"])
    adjusted = plus(amounts["cost"], amounts["wash"])
    adjusted_base = adjusted if base_is_local and amounts["wash_base"] is amounts["wash"] \
        else plus(amounts["cost_base"], amounts["wash_base"])
    taxable = plus(minus(pnl, amounts["wash"]), amounts["disallowed"])
    taxable_base = taxable if adjusted_base is adjusted \
        and amounts["disallowed_base"] is amounts["disallowed"] \
        else plus(minus(pnl_base, amounts["wash_base"]), amounts["disallowed_base"])
    arrays: dict[int, tuple[Words, pa.Array]] = {}  # the words kept alive: ids stay unique

    def money(words: Words | None) -> pa.Array:
        if words is None:
            return _zeros(n)
        if id(words) not in arrays:
            arrays[id(words)] = (words, money_from_words(*words))
        return arrays[id(words)][1]

    columns = [
        pa.array(seq),
        *(book(name) for name in ("account_id", "conid", "symbol", "asset_category",
                                  "currency")),
        lot_ids(books, tid_strings, pa.array(fields["lot_book"].astype(np.int32)),
                pa.array(fields["lot_tid"]), pa.array(fields["lot_n"])),
        tid_strings(pa.array(fields["tid"])),
        _times(fields["open_ts"]),
        _dates(fields["open_day"]),
        _times(fields["close_ts"]),
        _dates(close_day),
        _dates(fields["hp_day"]),
        *(money(amounts[name]) for name in ("quantity", "cost", "cost_base", "proceeds",
                                            "proceeds_base")),
        money(pnl),
        money(pnl_base),
        money(adjusted),
        money(adjusted_base),
        money(amounts["disallowed"]),
        money(amounts["disallowed_base"]),
        money(taxable),  # proceeds - adjusted basis + disallowed loss
        money(taxable_base),
        _term(fields["hp_day"], close_day),
        book("method"),
        _coded(fields["reason"], _REASONS),
        pa.array(fields["opening_balance"].astype(bool)),
    ]
    return pa.RecordBatch.from_arrays(columns, schema=REALIZED)


def lots_table(raw: pa.Table, books: pa.Table, tid_strings: TidStrings) -> pa.Table:
    """LOTS from RAW_LOTS rows: lot ids made."""
    ids = lot_ids(books, tid_strings, raw.column("lot_book").combine_chunks(),
                  raw.column("lot_tid").combine_chunks(), raw.column("lot_n").combine_chunks())
    return pa.table({"lot_id": ids, **{f.name: raw.column(f.name) for f in LOTS
                                        if f.name != "lot_id"}}, schema=LOTS)
