"""Position episodes and end-of-day history (with marks)."""

from __future__ import annotations

import datetime as dt

from qm_pipeline.lib.ledger import LedgerConfig, WashMode
from qm_pipeline_tests.lib.ledger.builders import D, ledger, trade


def test_history_has_a_row_per_changed_or_marked_day() -> None:
    trades = [trade("2024-01-02", 100, 10, time="10:00"),
              trade("2024-01-02", 50, 12, time="15:00"),  # same day: one end-of-day row
              trade("2024-01-05", -150, 11)]
    marks = [{"account_id": "U1", "conid": "AAA", "date": dt.date(2024, 1, d), "mark": D(m)}
             for d, m in ((3, 11), (8, 12))]  # Jan 8: after the position is closed
    out = ledger(LedgerConfig(wash_sales=WashMode.NONE), trades=trades, marks=marks)
    rows = [(r["date"].day, r["quantity"], r["cost_basis"], r["mark"], r["market_value"],
             r["unrealized_pnl"]) for r in out.position_history]
    assert rows == [
        (2, 150, 1600, None, None, None),  # 100 x 10 + 50 x 12
        (3, 150, 1600, 11, 1650, 50),  # marked: 150 x 11 = 1650
        (5, 0, 0, None, None, None),  # closed; the Jan 8 mark of a flat position is skipped
    ]
    assert {r["episode_id"] for r in out.position_history} == {"U1|AAA|1"}
    (pos,) = out.positions
    assert (pos["status"], pos["exit_reason"], pos["max_quantity"]) == ("CLOSED", "SOLD", 150)
    assert pos["opened_at"] == dt.datetime(2024, 1, 2, 10)
    assert pos["closed_at"] == dt.datetime(2024, 1, 5, 10)
    assert pos["realized_pnl"] == 50  # 1650 - 1600


def test_marks_may_be_given_as_a_mapping() -> None:
    marks = {("U1", "AAA", dt.date(2024, 1, 3)): D(9)}
    out = ledger(trades=[trade("2024-01-02", 10, 10)], marks=marks)
    assert [r["unrealized_pnl"] for r in out.position_history] == [None, -10]  # 90 - 100
