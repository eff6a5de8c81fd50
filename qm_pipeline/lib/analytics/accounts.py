"""Several accounts: the `ALL` series in base currency, and the long daily table.

`ALL` is the accounts taken together as one portfolio: NAVs summed in the base currency,
flows summed, returns by IB's linking over the sums. Transfers between two of the
accounts cancel in the sum, as they should (money moved, not gained).

An account's history may start or end inside the others'. On its first NAV date its NAV
enters `ALL` as a flow (capital arriving, not a gain), and after its last NAV date its last
NAV leaves as a negative flow. A date on which an account inside its own history has no
NAV is missing for `ALL` too: summing without it would show a loss that never happened.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from qm_pipeline.lib.analytics.boundary import daily_sums, dated, exact_daily_sums, to_series
from qm_pipeline.lib.analytics.returns import PORTFOLIO_DAILY_COLUMNS, portfolio_daily

ALL = "ALL"
LONG_COLUMNS = ["account_id", "date", *PORTFOLIO_DAILY_COLUMNS]
_EMPTY = pd.Series(dtype="object", index=pd.DatetimeIndex([]))


def combine_accounts(
    navs: Mapping[str, pd.Series], flows: Mapping[str, pd.Series]
) -> tuple[pd.Series, pd.Series]:
    """(NAV, flows) of all accounts together, ready for `returns.portfolio_daily`."""
    navs = {account: nav for account, nav in navs.items() if not nav.empty}
    if not navs:
        empty = pd.Series(dtype="float64", index=pd.DatetimeIndex([]))
        return empty, empty
    wide = pd.DataFrame(navs).sort_index()
    alive = pd.DataFrame({a: _alive(wide.index, nav) for a, nav in navs.items()})
    complete = ~(wide.isna() & alive).any(axis=1)
    total = wide.where(alive).sum(axis=1)[complete]
    parts = [_account_flows(nav, flows.get(a)) for a, nav in navs.items()]
    return total, pd.concat(parts).groupby(level=0).sum().sort_index()


def portfolio_daily_long(nav_rows: pd.DataFrame, flow_rows: pd.DataFrame) -> pd.DataFrame:
    """The `analytics.portfolio_daily` shape for every account and `ALL`.

    `nav_rows`: columns `account_id`, `date`, `nav` (one row per account and date; Decimal
    or float). `flow_rows`: columns `account_id`, `date`, `amount` (any number of rows;
    positive into the account). Returns `LONG_COLUMNS`, one row per account and NAV date.
    """
    tables = {account: portfolio_daily(to_series(nav), daily_sums(flows))
              for account, (nav, flows) in account_series(nav_rows, flow_rows).items()}
    frames = [_long(account, table) for account, table in tables.items()]
    return pd.concat(frames, ignore_index=True)[LONG_COLUMNS]


def account_series(nav_rows: pd.DataFrame, flow_rows: pd.DataFrame
                   ) -> dict[str, tuple[pd.Series, pd.Series]]:
    """(NAV, flows per date) of every account and of `ALL`, in the rows' own number type:
    Decimal money stays exact (the warehouse's money columns), floats feed the statistics.
    """
    navs = {a: dated(g.set_index("date")["nav"]) for a, g in nav_rows.groupby("account_id")}
    flows = {a: exact_daily_sums(g.set_index("date")["amount"])
             for a, g in flow_rows.groupby("account_id")}
    found = {a: (nav, flows.get(a, _EMPTY)) for a, nav in navs.items()}
    found[ALL] = combine_accounts(navs, flows)
    return found


def _alive(dates: pd.DatetimeIndex, nav: pd.Series) -> pd.Series:
    return pd.Series((dates >= nav.index[0]) & (dates <= nav.index[-1]), index=dates)


def _account_flows(nav: pd.Series, flows: pd.Series | None) -> pd.Series:
    """The account's own flows inside its history, plus its arrival and departure."""
    first, last = nav.index[0], nav.index[-1]
    own = flows[(flows.index > first) & (flows.index <= last)] if flows is not None else None
    arrival = pd.Series([nav.iloc[0]], index=[first])
    departure = pd.Series([-nav.iloc[-1]], index=[last + pd.Timedelta(days=1)])
    return pd.concat([s for s in (own, arrival, departure) if s is not None and not s.empty])


def _long(account: str, table: pd.DataFrame) -> pd.DataFrame:
    return table.rename_axis("date").reset_index().assign(account_id=account)
