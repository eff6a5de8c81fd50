"""Executions to replay: restatements resolved, cancels applied, sorted, in Arrow.

Trades are the bulk of the input (a million rows is normal for an active account over
years), so this module keeps them columnar: deduplication, filtering and sorting are
Arrow kernels, and rows become Python values only batch by batch as the replay
consumes them.

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
  which `money.to_base` reads as "nothing to convert".
- Replay order is (timestamp, transaction id left-padded, see `timeline`); a row with
  only a trade date is stamped at the start of that day.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc

from qm_pipeline.lib.ledger.inputs import STR, pylist, rows
from qm_pipeline.lib.ledger.money import ONE
from qm_pipeline.lib.ledger.outputs import Flags
from qm_pipeline.lib.ledger.timeline import TIEBREAK_WIDTH

BATCH = 100_000
# Flex notes codes of option lifecycle BookTrades: assignment, exercise, expiry.
EAE_NOTES = r"(^|;)(A|Ex|Ep)(;|$)"
_NO_ORIGINAL = ("", "0")
# Columns of the replay stream, in the order `TradeStream.batches` yields them.
STREAM = ("ts", "transaction_id", "account_id", "conid", "quantity", "net_cash",
          "fx_rate_to_base")
_DISTINCT = frozenset({"ts", "transaction_id", "net_cash"})  # values rarely repeat


@dataclass(frozen=True)
class TradeStream:
    """Sorted executions (columns STREAM) and the option lifecycle rows split off."""

    table: pa.Table
    eae_rows: list[dict]

    def batches(self, size: int = BATCH) -> Iterator[tuple[list, ...]]:
        """Column lists of `size` rows at a time, in replay order."""
        for start in range(0, self.table.num_rows, size):
            chunk = self.table.slice(start, size)
            yield tuple(pylist(chunk.column(name), name not in _DISTINCT) for name in STREAM)

    def first_ts(self) -> dict[str, int]:
        """Earliest execution per account."""
        if not self.table.num_rows:
            return {}
        grouped = self.table.group_by("account_id").aggregate([("ts", "min")])
        return dict(zip(pylist(grouped.column("account_id")), pylist(grouped.column("ts_min")),
                        strict=True))


def normalise(trades: pa.Table, excluded_categories: frozenset[str], flags: Flags) -> TradeStream:
    t = _newest_versions(_ensure_ids(trades))
    ts = pc.coalesce(t.column("date_time"), t.column("trade_date").cast(pa.timestamp("us")))
    undated = pc.is_null(ts)
    for row in t.filter(undated).select(["account_id", "conid", "transaction_id"]).to_pylist():
        flags.add("ERROR", "trades", "execution without date_time or trade_date: skipped", **row)
    qty = t.column("quantity")
    keep = pc.and_(pc.and_(pc.invert(undated), _restatement_keep(t, flags)), pc.and_(
        pc.fill_null(pc.not_equal(qty, pa.scalar(0, qty.type)), False),
        pc.invert(pc.fill_null(pc.is_in(t.column("asset_category"),
                                        pa.array(sorted(excluded_categories), STR)), False))))
    # one copy, of the columns the replay reads (a million rows: copies are not free)
    t = _with_cash(t.select(_READ).append_column("ts", ts).filter(keep))
    eae = pc.fill_null(pc.and_(
        pc.equal(t.column("transaction_type"), "BookTrade"),
        pc.match_substring_regex(t.column("notes"), EAE_NOTES)), False)
    return TradeStream(_stream(t.filter(pc.invert(eae))), _eae_rows(t.filter(eae)))


_READ = ["account_id", "conid", "transaction_id", "quantity", "trade_price", "multiplier",
         "proceeds", "ib_commission", "taxes", "fx_rate_to_base", "transaction_type", "notes"]


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
    tid = t.column("transaction_id")
    if pc.count_distinct(tid).as_py() == t.num_rows:
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


def _with_cash(t: pa.Table) -> pa.Table:
    """Adds `net_cash` (proceeds + ib_commission + taxes); the FX rate of base-currency rows
    (rate 1, or missing) becomes null, which `money.to_base` reads as "already in base"."""
    parts = [t.column(c) for c in ("proceeds", "ib_commission", "taxes")]
    common = pa.decimal128(34, max(min(p.type.scale, 18) for p in parts))
    proceeds, commission, taxes = (p.cast(common) for p in parts)
    zero = pa.scalar(0, common)
    cash = pc.add(pc.add(proceeds, pc.fill_null(commission, zero)), pc.fill_null(taxes, zero))
    t = t.append_column("net_cash", cash)
    if pc.any(pc.is_null(cash)).as_py():
        t = t.set_column(t.num_columns - 1, "net_cash", _cash_from_price(t))
    fx = t.column("fx_rate_to_base")
    base_currency = pc.fill_null(pc.equal(fx, pa.scalar(1, fx.type)), True)
    return t.set_column(t.column_names.index("fx_rate_to_base"), "fx_rate_to_base",
                        pc.if_else(base_currency, pa.scalar(None, fx.type), fx))


def _cash_from_price(t: pa.Table) -> pa.Array:
    """Where proceeds is missing: -quantity x price x multiplier, plus commission and taxes."""
    cols = {c: pylist(t.column(c)) for c in ("net_cash", "quantity", "trade_price", "multiplier",
                                             "ib_commission", "taxes")}
    out: list[Decimal] = []
    for i, cash in enumerate(cols["net_cash"]):
        if cash is None:
            cash = (-cols["quantity"][i] * (cols["trade_price"][i] or 0)
                    * (cols["multiplier"][i] or ONE)
                    + (cols["ib_commission"][i] or 0) + (cols["taxes"][i] or 0))
        out.append(cash)
    return pa.array(out)


def _stream(t: pa.Table) -> pa.Table:
    t = t.append_column("tiebreak", pc.utf8_lpad(t.column("transaction_id"),
                                                  width=TIEBREAK_WIDTH, padding="0"))
    return t.sort_by([("ts", "ascending"), ("tiebreak", "ascending")]).select(list(STREAM))


def _eae_rows(t: pa.Table) -> list[dict]:
    t = t.select(["ts", "transaction_id", "account_id", "conid", "quantity", "net_cash",
                  "fx_rate_to_base", "notes"])
    cols = {name: pylist(t.column(name)) for name in t.column_names}
    return [dict(zip(cols, values, strict=True)) for values in zip(*cols.values(), strict=True)]
