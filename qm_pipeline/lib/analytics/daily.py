"""`analytics.portfolio_daily`: per account and for `ALL`, one row per NAV date.

Money columns (NAV, external flow, P&L and its split) are exact Decimal, computed from the
report rows themselves; the return, TWR index and drawdown are float64 statistics
(`boundary`). The P&L split follows IB's ChangeInNAV: realized (the ledger's, by close
date), dividends (with withholding), interest, fees, and `unrealized_change` as the rest of
the day's P&L (price moves of held positions, FX translation). `commissions` are shown for
information: IB books them inside realized and unrealized P&L, so they are not subtracted
again. Lines dated inside a gap of missing NAVs join the return that spans the gap, like
flows (`returns.align_to_returns`).
"""

from __future__ import annotations

from decimal import Decimal

import pandas as pd

from qm_pipeline.lib.analytics.accounts import ALL, account_series
from qm_pipeline.lib.analytics.boundary import daily_sums, dated, to_series
from qm_pipeline.lib.analytics.returns import align_to_returns, portfolio_daily

ZERO = Decimal(0)
INCOME = ("realized", "dividends", "interest", "fees")
SPLIT = ("realized", "unrealized_change", "dividends", "interest", "fees", "commissions")
MONEY = ("nav", "external_flow", "pnl", *SPLIT)
COLUMNS = ["account_id", "date", *MONEY, "daily_return", "twr_index", "drawdown",
           "nav_source"]


def portfolio_daily_table(nav_rows: pd.DataFrame, flow_rows: pd.DataFrame,
                          line_rows: pd.DataFrame) -> pd.DataFrame:
    """The whole table. `nav_rows`: account_id, date, nav (Decimal), source; `flow_rows`:
    account_id, date, amount; `line_rows`: account_id, date, line, amount (`sources`)."""
    sources = {(a, pd.Timestamp(d)): s for a, d, s in
               nav_rows[["account_id", "date", "source"]].itertuples(index=False)}
    frames = []
    for account, (nav, flows) in account_series(nav_rows, flow_rows).items():
        lines = line_rows if account == ALL else line_rows[line_rows["account_id"] == account]
        table = _account_table(nav, flows, lines)
        table["nav_source"] = [sources.get((account, d)) for d in table.index]
        frames.append(table.rename_axis("date").reset_index().assign(account_id=account))
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    return pd.concat(frames, ignore_index=True)[COLUMNS]


def _account_table(nav: pd.Series, flows: pd.Series, lines: pd.DataFrame) -> pd.DataFrame:
    stats = portfolio_daily(to_series(nav), daily_sums(flows))
    money = exact_money(nav, flows)
    split = pnl_split(money, lines)
    return pd.concat([money, split, stats[["daily_return", "twr_index", "drawdown"]]], axis=1)


def exact_money(nav: pd.Series, flows: pd.Series) -> pd.DataFrame:
    """NAV, the flows each return holds and the day's P&L (NAV change less flows), exact.

    P&L is None at inception (no previous NAV)."""
    nav = dated(nav)
    flow = align_to_returns(nav.index, flows, zero=ZERO)
    values, moved = list(nav), list(flow)
    pnl = [None] + [values[i] - values[i - 1] - moved[i] for i in range(1, len(values))]
    return pd.DataFrame({"nav": values, "external_flow": moved, "pnl": pnl}, index=nav.index)


def pnl_split(money: pd.DataFrame, lines: pd.DataFrame) -> pd.DataFrame:
    """The day's P&L by line (see the module docstring); None at inception."""
    wide = (lines.assign(date=pd.to_datetime(lines["date"]))
            .pivot_table(index="date", columns="line", values="amount", aggfunc="sum",
                         fill_value=ZERO)
            if not lines.empty else pd.DataFrame(index=pd.DatetimeIndex([])))
    aligned = align_to_returns(money.index, wide, zero=ZERO)
    split = pd.DataFrame(index=money.index)
    for line in SPLIT:
        split[line] = aligned.get(line, ZERO)
    known = split[list(INCOME)].sum(axis=1)
    split["unrealized_change"] = [None if p is None else p - k
                                  for p, k in zip(money["pnl"], known, strict=True)]
    split.loc[money["pnl"].isna(), list(SPLIT)] = None
    return split
