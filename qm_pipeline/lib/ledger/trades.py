"""Executions to replay: restatements resolved, cancels applied, sorted, in Arrow.

Trades are the bulk of the input (a million rows is normal for an active account over
years), so this module keeps them columnar: deduplication, filtering and sorting are
Arrow kernels, the sorted stream is a list of row indices into the input (no sorted copy
of a million rows), and the replay reads them batch by batch as numpy arrays (amounts as
the decimal columns' 128-bit words, `inputs.unit_words`), never as Python objects.

Rules (DOMAIN.md §1):
- One version per `transaction_id`: the newest report (`when_generated`, then
  `report_date`) wins; exact ties fall back to the row's content, so shuffled input
  gives the same choice.
- A row carrying `orig_transaction_id` restates that transaction: the original is
  dropped. `TradeCancel` rows only cancel; `TradeCorrect` rows replay as the new version.
- An option expiry, exercise or assignment BookTrade (notes `Ep`, `Ex`, `A`) is split
  off: `events.option_events` replays it once, with its OptionEAE twin and its stock leg.
- `proceeds + ib_commission + taxes` is the cash of the execution: commissions go into
  the basis of an opening and out of the proceeds of a closing, matching IB's
  fifoPnlRealized (net of the closing commission, basis incl. the opening one).
- The FX rate of a row already in base currency (rate 1, or none given) becomes null,
  which the replay reads as "nothing to convert".
- Replay order is (timestamp, transaction id left-padded, see `timeline`); a row with
  only a trade date is stamped at the start of that day.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from qm_pipeline.lib.ledger.inputs import STR, TS, UnitWords, pylist, rows, unit_words
from qm_pipeline.lib.ledger.money import ONE
from qm_pipeline.lib.ledger.outputs import Flags
from qm_pipeline.lib.ledger.timeline import TIEBREAK_WIDTH, US_PER_DAY

BATCH = 16_384  # executions per batch: the sinks spill between batches
# Flex notes codes of option lifecycle BookTrades: assignment, exercise, expiry.
EAE_NOTES = r"(^|;)(A|Ex|Ep)(;|$)"
_NO_ORIGINAL = ("", "0")
# Input columns a batch of the stream reads.
_CASH = ["quantity", "trade_price", "multiplier", "proceeds", "ib_commission", "taxes"]
_BATCH = ["transaction_id", *_CASH, "fx_rate_to_base"]


class TransactionIds:
    """Transaction ids as integer codes: an execution's code is its row in the stream's
    input table, any other id (events, opening balances) gets the next free code. The
    replay writes codes; output columns get their strings from Arrow (`strings`)."""

    def __init__(self, executions: pa.ChunkedArray) -> None:
        self._executions = executions
        self._n = len(executions)
        self._codes: dict[str, int] = {}
        self._extra: list[str] = []

    def code(self, transaction_id: str) -> int:
        code = self._codes.get(transaction_id)
        if code is None:
            code = self._codes[transaction_id] = self._n + len(self._extra)
            self._extra.append(transaction_id)
        return code

    def string(self, code: int) -> str:
        return self._executions[code].as_py() if code < self._n else self._extra[code - self._n]

    def strings(self, codes: pa.Array) -> pa.Array:
        if not self._extra:
            return self._executions.take(codes).combine_chunks()
        executed = pc.less(codes, self._n)
        return pc.coalesce(
            self._executions.take(pc.if_else(executed, codes, None)).combine_chunks(),
            pa.array(self._extra, STR).take(pc.if_else(executed, None,
                                                       pc.subtract(codes, self._n))))


@dataclass(frozen=True)
class Batch:
    """Executions as int64 arrays: timestamp, day, id code (`TransactionIds`), book key
    (index into `TradeStream.books`); and as amounts: quantity, cash (net of commission
    and taxes), FX rate (null: base currency)."""

    ts: np.ndarray
    day: np.ndarray
    code: np.ndarray
    key: np.ndarray
    qty: UnitWords
    net: UnitWords
    fx: UnitWords


@dataclass(frozen=True)
class TradeStream:
    """Executions in replay order: `order` indexes rows of `table` (the deduplicated
    input), with their timestamps and book keys (index into `books`, the distinct
    (account_id, conid) pairs) in the same order; the option lifecycle rows split off."""

    table: pa.Table
    order: pa.Array
    ts: np.ndarray
    keys: np.ndarray
    books: list[tuple[str | None, str | None]]
    eae_rows: list[dict]

    def ids(self) -> TransactionIds:
        return TransactionIds(self.table.column("transaction_id"))

    def codes(self, transaction_ids: set[str]) -> dict[str, int]:
        """The id code (`TransactionIds`) of each of `transaction_ids` that is an execution
        of the stream."""
        if not transaction_ids:
            return {}
        tids = self.table.column("transaction_id").take(self.order)
        at = pc.indices_nonzero(pc.is_in(tids, pa.array(sorted(transaction_ids), STR)))
        return dict(zip(tids.take(at).to_pylist(), self.order.take(at).to_pylist(),
                        strict=True))

    def batches(self) -> Iterator[Batch]:
        """BATCH executions at a time, in replay order."""
        for start in range(0, len(self.order), BATCH):
            end = start + BATCH
            at = self.order.slice(start, BATCH)
            t = self.table.take(at)
            ts = self.ts[start:end]
            yield Batch(ts, ts // US_PER_DAY, at.to_numpy().astype(np.int64),
                        self.keys[start:end].astype(np.int64), unit_words(t.column("quantity")),
                        unit_words(_cash(t)), unit_words(_rate(t.column("fx_rate_to_base"))))

    def first_ts(self) -> dict[str, int]:
        """Earliest execution per account."""
        first: dict[str, int] = {}
        keys, at = np.unique(self.keys, return_index=True)
        for key, i in zip(keys.tolist(), at.tolist(), strict=True):
            account, ts = self.books[key][0], int(self.ts[i])
            if ts < first.get(account, ts + 1):
                first[account] = ts
        return first

    def book_times(self, account_id: str, conid: str) -> set[int]:
        """Replay times of the executions of one (account, conid)."""
        if (account_id, conid) not in self.books:
            return set()
        return set(self.ts[self.keys == self.books.index((account_id, conid))].tolist())

    def times(self, transaction_ids: set[str]) -> dict[str, int]:
        """Replay time of each of `transaction_ids` found in the stream."""
        tids = self.table.column("transaction_id").take(self.order)
        at = pc.indices_nonzero(pc.is_in(tids, pa.array(sorted(transaction_ids), STR)))
        return dict(zip(tids.take(at).to_pylist(), self.ts[at.to_numpy()].tolist(), strict=True))


def normalise(trades: pa.Table, excluded_categories: frozenset[str], flags: Flags) -> TradeStream:
    t = _newest_versions(_ensure_ids(trades))
    ts = pc.coalesce(t.column("date_time"), t.column("trade_date").cast(TS))
    undated = pc.is_null(ts)
    for row in t.filter(undated).select(["account_id", "conid", "transaction_id"]).to_pylist():
        flags.add("ERROR", "trades", "execution without date_time or trade_date: skipped", **row)
    qty = t.column("quantity")
    keep = pc.and_(pc.and_(pc.invert(undated), _restatement_keep(t, flags)), pc.and_(
        pc.fill_null(pc.not_equal(qty, pa.scalar(0, qty.type)), False),
        pc.invert(pc.fill_null(pc.is_in(t.column("asset_category"),
                                        pa.array(sorted(excluded_categories), STR)), False))))
    eae = pc.fill_null(pc.and_(
        pc.equal(t.column("transaction_type"), "BookTrade"),
        pc.match_substring_regex(t.column("notes"), EAE_NOTES)), False)
    replayed = pc.indices_nonzero(pc.and_(keep, pc.invert(eae)))
    replayed_ts = ts.take(replayed)
    by_time = pc.sort_indices(pa.table({
        "ts": replayed_ts,
        "tiebreak": pc.utf8_lpad(t.column("transaction_id").take(replayed),
                                 width=TIEBREAK_WIDTH, padding="0"),
    }), sort_keys=[("ts", "ascending"), ("tiebreak", "ascending")])
    order = replayed.take(by_time).cast(pa.int64())
    keys, books = _book_keys(t.column("account_id").take(order), t.column("conid").take(order))
    stream_ts = replayed_ts.take(by_time).cast(pa.int64()).to_numpy()
    lifecycle = pc.indices_nonzero(pc.and_(keep, eae))
    return TradeStream(t.select(_BATCH), order, stream_ts, keys, books,
                       _eae_rows(t.take(lifecycle), ts.take(lifecycle)))


def _book_keys(accounts: pa.ChunkedArray, conids: pa.ChunkedArray,
               ) -> tuple[np.ndarray, list[tuple[str | None, str | None]]]:
    """A small integer per distinct (account_id, conid), and the pairs, so the replay
    finds a book by list index instead of hashing two strings per execution."""
    codes = []
    words = []
    for col in (accounts, conids):
        encoded = pc.dictionary_encode(col.combine_chunks())
        dictionary = encoded.dictionary.to_pylist()
        codes.append(encoded.indices.fill_null(len(dictionary)).to_numpy().astype(np.int64))
        words.append([*dictionary, None])
    pairs, keys = _distinct(codes[0] * len(words[1]) + codes[1], len(words[0]) * len(words[1]))
    books = [(words[0][p // len(words[1])], words[1][p % len(words[1])]) for p in pairs.tolist()]
    return keys.astype(np.int32), books


def _distinct(values: np.ndarray, bound: int) -> tuple[np.ndarray, np.ndarray]:
    """`np.unique(values, return_inverse=True)` for values in [0, bound): by a table of
    the bound's size when it is not much larger than the values (no sort of a million)."""
    if bound > 4 * len(values):
        return np.unique(values, return_inverse=True)
    present = np.zeros(bound, dtype=bool)
    present[values] = True
    return np.flatnonzero(present), (np.cumsum(present) - 1)[values]


def _ensure_ids(t: pa.Table) -> pa.Table:
    """Rows without transaction_id (old exports: empty or N/A) get one from their content:
    ib_exec_id when present, else account:conid:time:quantity:price, numbered among
    identical rows."""
    tid = t.column("transaction_id")
    missing = pc.fill_null(pc.is_in(tid, pa.array(["", "N/A"], STR)), True)
    if not pc.any(missing).as_py():
        return t
    ids = tid.to_pylist()
    seen: Counter[str] = Counter()
    content = rows(t.select(["account_id", "conid", "date_time", "trade_date", "quantity",
                             "trade_price", "ib_exec_id"]))
    for i in sorted(pc.indices_nonzero(missing).to_pylist(), key=lambda i: repr(content[i])):
        r = content[i]
        base = r["ib_exec_id"] or ":".join(
            str(r[k]) for k in ("account_id", "conid", "date_time", "trade_date", "quantity",
                                "trade_price"))
        seen[base] += 1
        ids[i] = f"X:{base}#{seen[base]}"
    return t.set_column(t.column_names.index("transaction_id"), "transaction_id",
                        pa.array(ids, STR))


def _newest_versions(t: pa.Table) -> pa.Table:
    if len(pc.unique(t.column("transaction_id"))) == t.num_rows:  # ids have no nulls here
        return t
    keys = [(name, "ascending", "at_start") for name in (
        "transaction_id", "when_generated", "report_date", "date_time", "quantity", "proceeds",
        "ib_commission", "transaction_type")]
    ordered = t.take(pc.sort_indices(t, sort_keys=keys))
    ids = ordered.column("transaction_id").combine_chunks()
    n = len(ids)
    # keep the last row of each run of equal ids
    last = pc.not_equal(ids.slice(0, n - 1), ids.slice(1, n - 1))
    return ordered.filter(pa.concat_arrays([last, pa.array([True])]))


def _restatement_keep(t: pa.Table, flags: Flags) -> pa.ChunkedArray | bool:
    """False for rows restated by another row (their id is its orig_transaction_id) and for
    TradeCancel rows, which only cancel."""
    orig = t.column("orig_transaction_id")
    restating = pc.and_(pc.is_valid(orig), pc.invert(pc.is_in(orig, pa.array(_NO_ORIGINAL, STR))))
    if not pc.any(restating).as_py():
        return pa.chunked_array([pa.repeat(True, t.num_rows)])
    restatements = t.filter(restating).select(
        ["account_id", "conid", "transaction_id", "orig_transaction_id", "transaction_type"])
    replaced = pa.array(sorted(set(restatements.column("orig_transaction_id").to_pylist())), STR)
    known = set(t.column("transaction_id").to_pylist())
    for row in restatements.to_pylist():
        if row["orig_transaction_id"] not in known:
            flags.add("WARN", "trades",
                      f"{row['transaction_type']} of {row['orig_transaction_id']}, which is not "
                      "in the history: ignored", row["account_id"], row["conid"],
                      row["transaction_id"])
    return pc.invert(pc.or_(
        pc.is_in(t.column("transaction_id"), replaced),
        pc.fill_null(pc.equal(t.column("transaction_type"), "TradeCancel"), False)))


def _cash(t: pa.Table) -> pa.Array:
    """Cash of each execution: proceeds + ib_commission + taxes; where proceeds is missing,
    -quantity x price x multiplier stands in for it."""
    parts = [t.column(c) for c in ("proceeds", "ib_commission", "taxes")]
    common = pa.decimal128(34, max(min(p.type.scale, 18) for p in parts))
    proceeds, commission, taxes = (p.cast(common) for p in parts)
    zero = pa.scalar(0, common)
    cash = pc.add(pc.add(proceeds, pc.fill_null(commission, zero)), pc.fill_null(taxes, zero))
    if pc.any(pc.is_null(cash)).as_py():
        return _cash_from_price(t, cash)
    return cash


def _cash_from_price(t: pa.Table, cash: pa.ChunkedArray) -> pa.Array:
    cols = {c: pylist(t.column(c)) for c in _CASH}
    out: list[Decimal] = []
    for i, amount in enumerate(pylist(cash)):
        if amount is None:
            amount = (-cols["quantity"][i] * (cols["trade_price"][i] or 0)
                      * (cols["multiplier"][i] or ONE)
                      + (cols["ib_commission"][i] or 0) + (cols["taxes"][i] or 0))
        out.append(amount)
    return pa.array(out)


def _rate(fx: pa.ChunkedArray) -> pa.ChunkedArray:
    """FX rates with base-currency rows (rate 1, or missing) null."""
    base_currency = pc.fill_null(pc.equal(fx, pa.scalar(1, fx.type)), True)
    return pc.if_else(base_currency, pa.scalar(None, fx.type), fx)


def _eae_rows(t: pa.Table, ts: pa.ChunkedArray) -> list[dict]:
    """Option lifecycle rows as dicts of Decimals (events are Decimal, see `money`)."""
    cols = {
        "ts": pylist(ts),
        **{name: pylist(t.column(name)) for name in ("transaction_id", "account_id", "conid",
                                                     "quantity")},
        "net_cash": pylist(_cash(t)),
        "fx_rate_to_base": pylist(_rate(t.column("fx_rate_to_base"))),
        "notes": pylist(t.column("notes")),
    }
    return [dict(zip(cols, values, strict=True)) for values in zip(*cols.values(), strict=True)]
