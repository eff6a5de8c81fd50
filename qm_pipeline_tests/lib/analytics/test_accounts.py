"""The ALL series: accounts joining and leaving, missing days, transfers between accounts."""

from __future__ import annotations

import pandas as pd
import pytest

from qm_pipeline.lib.analytics.accounts import (
    ALL,
    LONG_COLUMNS,
    combine_accounts,
    portfolio_daily_long,
)
from qm_pipeline.lib.analytics.boundary import daily_sums, to_series
from qm_pipeline.lib.analytics.returns import daily_returns

D1, D2, D3 = "2024-01-02", "2024-01-03", "2024-01-04"


def _all_returns(navs: dict[str, pd.Series], flows: dict[str, pd.Series]) -> list[float]:
    return daily_returns(*combine_accounts(navs, flows)).tolist()


def test_joining_account_brings_capital_not_gain() -> None:
    # A: 100, 110, 121 (+10% a day). B joins on D2 with 50, falls to 45 on D3.
    # ALL D2: (160 - 100 - 50) / (100 + 50) = 10 / 150; D3: (166 - 160) / 160 = 6 / 160.
    navs = {"A": to_series({D1: 100, D2: 110, D3: 121}), "B": to_series({D2: 50, D3: 45})}
    assert _all_returns(navs, {}) == pytest.approx([10 / 150, 6 / 160])


def test_leaving_account_takes_its_capital_out() -> None:
    # B's last NAV is D2 (50): on D3 ALL is A alone, 121; r = (121 - 160 + 50) / 110 = 0.1.
    navs = {"A": to_series({D1: 100, D2: 110, D3: 121}), "B": to_series({D1: 50, D2: 50})}
    assert _all_returns(navs, {}) == pytest.approx([10 / 150, 0.1])


def test_day_an_account_lacks_is_missing_for_all() -> None:
    # A has no NAV on D2: ALL skips D2 and links D1 -> D3 directly:
    # (121 + 60 - 150) / 150 = 31 / 150.
    navs = {"A": to_series({D1: 100, D3: 121}), "B": to_series({D1: 50, D2: 55, D3: 60})}
    nav, _ = combine_accounts(navs, {})
    assert list(nav.index) == [pd.Timestamp(D1), pd.Timestamp(D3)]
    assert _all_returns(navs, {}) == pytest.approx([31 / 150])


def test_transfer_between_accounts_cancels_in_all() -> None:
    # A sends 10 to B on D2; both flat otherwise. Each account's return is 0, and so is ALL's.
    navs = {"A": to_series({D1: 100, D2: 90}), "B": to_series({D1: 50, D2: 60})}
    flows = {"A": daily_sums([(D2, -10)]), "B": daily_sums([(D2, 10)])}
    assert daily_returns(navs["A"], flows["A"]).tolist() == [0.0]
    assert _all_returns(navs, flows) == [0.0]


def test_long_table_has_every_account_and_all() -> None:
    nav_rows = pd.DataFrame({"account_id": ["A", "A", "B", "B"], "date": [D1, D2, D1, D2],
                             "nav": [100, 110, 50, 45]})
    flow_rows = pd.DataFrame({"account_id": ["B"], "date": [D2], "amount": [5]})
    table = portfolio_daily_long(nav_rows, flow_rows)
    assert list(table.columns) == LONG_COLUMNS
    returns = table.dropna(subset=["daily_return"]).set_index("account_id")["daily_return"]
    # A +10%; B (45 - 50 - 5) / 55; ALL (155 - 150 - 5) / 155 = 0.
    assert returns.to_dict() == pytest.approx({"A": 0.1, "B": -10 / 55, ALL: 0.0})
    assert table.loc[table["account_id"] == ALL, "twr_index"].tolist() == [1.0, 1.0]
