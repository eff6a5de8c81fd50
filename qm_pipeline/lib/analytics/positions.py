"""Each position's value and P&L per day, in base currency: the input of attribution and of
`analytics.position_daily`.

The ledger records a position on the days it changed (`ledger.position_history`: quantity,
cost basis and the day's mark). Between those days the quantity and cost basis hold and the
last mark stands (a stale price, not a zero one); FX comes from IB's daily rates, carried
forward the same way (`Carried`). A position's P&L on day t is

    PnL_t = V_t - V_{t-1} + cash_t

with V its market value in base and cash_t what its trades, income and transfers paid
(negative) or brought (positive) that day (`sources.read_trade_cash`): a buy moves value
from cash into the position and is no P&L; a dividend is the position's P&L. These are
float64 statistics for attribution (see `boundary`).

Unrealized P&L is money, computed exactly from the same carried rows (`unrealized`): the
figures it comes from (quantity, mark, multiplier, cost basis, IB's rate) are exact
decimals, and on a day the ledger marked the position it is the ledger's own
`unrealized_pnl` at that day's rate, to the last digit.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import ROUND_HALF_EVEN, Context, Decimal, localcontext

import numpy as np
import pandas as pd

KEY = ["account_id", "conid"]
QUANTUM = Decimal(1).scaleb(-18)  # MONEY's scale: the ledger's amounts and the warehouse's
ZERO = Decimal(0)
# A product of three decimal128 values has at most 3 x 38 digits: with that precision no
# product is rounded, only the quantizes to QUANTUM are (half-even, as `ledger.money.div`).
_EXACT = Context(prec=3 * 38, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True)
class Carried:
    """Dated values carried forward to every date of a calendar. `at` (dates x key) is the
    number of the row in force on each date, the last one dated on or before it (NaN: none
    yet); `values` are the rows' values as read (Decimal, None if unknown). Floats for the
    statistics and exact money both come from here, so they agree on which row holds."""

    values: np.ndarray
    at: pd.DataFrame

    @classmethod
    def of(cls, rows: pd.DataFrame, key: str, column: str, dates: pd.DatetimeIndex,
           back: bool = False) -> Carried:
        """`rows[column]` by `rows[key]` (of two rows on one date, the later one holds;
        `back`: before a key's first row, that row holds)."""
        numbered = pd.DataFrame({"date": pd.to_datetime(rows["date"]), key: rows[key],
                                 "row": np.arange(len(rows), dtype="float64")})
        wide = numbered.pivot_table(index="date", columns=key, values="row", aggfunc="last")
        at = wide.reindex(wide.index.union(dates)).ffill()
        return cls(rows[column].to_numpy(dtype=object), (at.bfill() if back else at).reindex(dates))

    def on(self, keys: pd.Index, names: pd.Index | None = None) -> Carried:
        """The columns `keys` (NaN where there is no row for one), renamed `names`."""
        at = self.at.reindex(columns=keys)
        return replace(self, at=at if names is None else at.set_axis(names, axis=1))

    def floats(self) -> pd.DataFrame:
        """dates x key float64 (NaN: no row in force, or an unknown value)."""
        numbers = pd.Series(self.values, dtype=object).astype("float64").to_numpy()
        picked = np.append(numbers, np.nan)[self.row_numbers()]
        return pd.DataFrame(picked, index=self.at.index, columns=self.at.columns)

    def row_numbers(self) -> np.ndarray:
        """`at` as integers, -1 where no row is in force."""
        return np.nan_to_num(self.at.to_numpy(), nan=-1).astype(np.int64)

    def exact(self, rows: np.ndarray) -> np.ndarray:
        """The values of the rows numbered `rows` (-1: None)."""
        return np.append(self.values, None)[rows]


@dataclass(frozen=True)
class AccountPositions:
    """One account's positions, dates x conid, in base."""

    value: pd.DataFrame  # float64
    pnl: pd.DataFrame  # float64
    unrealized: pd.DataFrame  # Decimal; None where the mark, rate or cost basis is unknown


def fx_to_base(fx: pd.DataFrame, base: str, dates: pd.DatetimeIndex) -> Carried:
    """dates x currency: IB's rate into `base` (before its first one, that one); 1 for the
    base itself."""
    into = fx.loc[(fx["to_currency"] == base) & (fx["currency"] != base),
                  ["date", "currency", "rate"]]
    itself = pd.DataFrame({"date": dates[:1], "currency": [base], "rate": [Decimal(1)]})
    return Carried.of(pd.concat([into, itself], ignore_index=True), "currency", "rate", dates,
                      back=True)


def marks(prices: pd.DataFrame, history: pd.DataFrame, dates: pd.DatetimeIndex) -> Carried:
    """dates x conid: the price of each instrument `history` holds, carried forward.

    `core.prices` first (any account's execution that day gives the instrument's close);
    the ledger's own marks fill what it lacks."""
    known = prices[prices["conid"].isin(history["conid"].unique())].rename(
        columns={"price": "mark"})
    rows = pd.concat([known[["conid", "date", "mark"]].assign(rank=0),
                      history[["conid", "date", "mark"]].assign(rank=1)], ignore_index=True)
    rows = rows[rows["mark"].notna()].assign(date=lambda f: pd.to_datetime(f["date"]))
    best = rows.sort_values("rank", kind="stable").drop_duplicates(["conid", "date"])
    return Carried.of(best, "conid", "mark", dates)


def account_positions(history: pd.DataFrame, cash: pd.DataFrame, prices: Carried,
                      rates: Carried, dates: pd.DatetimeIndex) -> AccountPositions:
    """One account's positions on `dates` (which must hold every history and cash date:
    pass the union with the NAV dates). `prices`: `marks`; `rates`: `fx_to_base`."""
    h = history.reset_index(drop=True)
    held = Carried.of(h, "conid", "quantity", dates)
    conids = held.at.columns
    meta = h.groupby("conid")[["currency", "multiplier"]].last().reindex(conids)
    mark, rate = prices.on(conids), rates.on(pd.Index(meta["currency"]), conids)
    quantity = held.floats().fillna(0.0)
    value = quantity * mark.floats().fillna(0.0) * meta["multiplier"].astype(float) * rate.floats()
    paid = (cash.assign(date=pd.to_datetime(cash["date"]), amount=cash["amount"].astype(float))
            .pivot_table(index="date", columns="conid", values="amount", aggfunc="sum"))
    paid = paid.reindex(index=dates, columns=value.columns.union(paid.columns)).fillna(0.0)
    value = value.reindex(columns=paid.columns).fillna(0.0)
    pnl = value.diff().fillna(value) + paid
    gains = unrealized(h, held, mark, rate, quantity.to_numpy() != 0)
    return AccountPositions(value, pnl, gains.reindex(columns=value.columns, fill_value=ZERO))


def unrealized(history: pd.DataFrame, held: Carried, mark: Carried, rate: Carried,
               is_open: np.ndarray) -> pd.DataFrame:
    """dates x conid: (quantity x mark x multiplier - cost basis) x rate, each product
    rounded to QUANTUM as the ledger rounds `market_value` and MONEY stores. Exact, not
    float: it is money from exact figures, and a ledger row's `unrealized_pnl` must convert
    to the last digit. 0 where no quantity is held (`is_open` False): a flat position has
    no open lots, so no cost basis either.

    `held` (rows of `history`), `mark` and `rate` share their dates and columns. Each
    distinct (history row, mark, rate) is worked out once, so the Decimal arithmetic runs
    on the days one of them changed, not on every day of every position."""
    keys = np.stack([c.row_numbers().ravel() for c in (held, mark, rate)], axis=1)
    cells = np.flatnonzero(is_open.ravel())
    # each open cell's number among the distinct keys, and one cell per distinct key
    code = pd.DataFrame(keys[cells]).groupby([0, 1, 2], sort=False).ngroup().to_numpy()
    row, at_mark, at_rate = keys[cells[np.unique(code, return_index=True)[1]]].T
    terms = [history[c].to_numpy(dtype=object)[row] for c in (
        "quantity", "multiplier", "cost_basis")] + [mark.exact(at_mark), rate.exact(at_rate)]
    with localcontext(_EXACT):
        found = np.array([_in_base(*t) for t in zip(*terms, strict=True)], dtype=object)
    out = np.full(len(keys), ZERO, dtype=object)
    out[cells] = found[code]
    return pd.DataFrame(out.reshape(held.at.shape), index=held.at.index,
                        columns=held.at.columns)


def _in_base(quantity: Decimal, multiplier: Decimal, cost: Decimal | None,
             mark: Decimal | None, rate: Decimal | None) -> Decimal | None:
    """One position's unrealized P&L in base (call in the `_EXACT` context)."""
    if cost is None or mark is None or rate is None:
        return None
    return (((quantity * mark * multiplier).quantize(QUANTUM) - cost) * rate).quantize(QUANTUM)


def calendar(*frames: pd.DataFrame | pd.Series | pd.DatetimeIndex) -> pd.DatetimeIndex:
    """The sorted union of the dates in `frames` (a `date` column or the index)."""
    found = pd.DatetimeIndex([])
    for f in frames:
        dates = f if isinstance(f, pd.DatetimeIndex) else (
            f["date"] if isinstance(f, pd.DataFrame) and "date" in f else f.index)
        found = found.union(pd.DatetimeIndex(pd.to_datetime(dates)).unique())
    return found
