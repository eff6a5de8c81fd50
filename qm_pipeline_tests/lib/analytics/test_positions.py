"""A position's value and unrealized P&L carried between the ledger's rows, by hand.

One USD account. EUR1, a stock in EUR (multiplier 1), cost basis 1000.500000000000000005 for
10 shares (a basis with 18 places, as the ledger keeps it):

    date   ledger row            mark                rate  unrealized in USD
    01-02  10 @ 101.25           101.25 (ledger's)   1.1   (1012.5 - 1000.500000000000000005) x 1.1
                                                           = 13.1999999999999999945
                                                           -> 13.199999999999999994 (half-even)
    01-03                        102.5 (core.prices) 1.09  24.499999999999999995 x 1.09
                                                           = 26.70499999999999999455
                                                           -> 26.704999999999999995
    01-04  sold 4: 6, basis 600.3  99.5 (ledger's)   1.09  (597 - 600.3) x 1.09 = -3.597
    01-05                        99.5 stands         1.2   -3.3 x 1.2 = -3.96
    01-08  closed: 0, basis 0    98                  1.2   0
    01-09                                                  0 (flat)

OPT1, a short USD option (multiplier 100) sold on 01-04 for 300: no mark until 01-05, so
unknown (None) until then; on 01-05 the 1.25 mark values it at -250: 50 unrealized.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd

from qm_pipeline.lib.analytics.positions import account_positions, calendar, fx_to_base, marks


def _day(day: int) -> dt.date:
    return dt.date(2024, 1, day)


HISTORY = pd.DataFrame([
    ("U1", "EUR1", _day(2), Decimal(10), Decimal("1000.500000000000000005"),
     Decimal("101.25"), "EUR", Decimal(1)),
    ("U1", "EUR1", _day(4), Decimal(6), Decimal("600.3"), Decimal("99.5"), "EUR", Decimal(1)),
    ("U1", "EUR1", _day(8), Decimal(0), Decimal(0), Decimal(98), "EUR", Decimal(1)),
    ("U1", "OPT1", _day(4), Decimal(-2), Decimal(-300), None, "USD", Decimal(100)),
], columns=["account_id", "conid", "date", "quantity", "cost_basis", "mark", "currency",
            "multiplier"])
PRICES = pd.DataFrame([
    ("EUR1", "EUR1", _day(3), Decimal("102.5"), "flex_close"),
    ("OPT1", "OPT1", _day(5), Decimal("1.25"), "flex_mark"),
], columns=["instrument_id", "conid", "date", "price", "source"])
FX = pd.DataFrame([(_day(d), "EUR", "USD", Decimal(r)) for d, r in (
    (2, "1.1"), (3, "1.09"), (5, "1.2"))], columns=["date", "currency", "to_currency", "rate"])
CASH = pd.DataFrame([("U1", "EUR1", _day(2), Decimal("-1100.55")),
                     ("U1", "OPT1", _day(4), Decimal(300))],
                    columns=["account_id", "conid", "date", "amount"])


def test_unrealized_is_exact_and_carried_like_the_value() -> None:
    dates = calendar(HISTORY, CASH, pd.DatetimeIndex(pd.to_datetime(
        [_day(d) for d in (2, 3, 4, 5, 8, 9)])))

    found = account_positions(HISTORY, CASH, marks(PRICES, HISTORY, dates),
                              fx_to_base(FX, "USD", dates), dates)

    assert found.unrealized["EUR1"].tolist() == [
        Decimal("13.199999999999999994"), Decimal("26.704999999999999995"),
        Decimal("-3.597"), Decimal("-3.96"), 0, 0]
    assert found.unrealized["OPT1"].tolist() == [0, 0, None, Decimal(50), Decimal(50), Decimal(50)]
    # the float value takes the same mark and rate on each day
    assert found.value["EUR1"].tolist() == [10 * 101.25 * 1.1, 10 * 102.5 * 1.09,
                                            6 * 99.5 * 1.09, 6 * 99.5 * 1.2, 0.0, 0.0]
    assert found.value["OPT1"].tolist() == [0.0, 0.0, 0.0, -250.0, -250.0, -250.0]
