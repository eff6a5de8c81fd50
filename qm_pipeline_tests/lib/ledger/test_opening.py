"""Opening-balance lots for holdings older than the event history."""

from __future__ import annotations

import datetime as dt

from qm_pipeline.lib.ledger import LedgerConfig, WashMode, check_open_positions
from qm_pipeline_tests.lib.ledger.builders import at, ledger, position, trade

NO_WASH = LedgerConfig(wash_sales=WashMode.NONE)


def test_lots_from_the_earliest_report_and_from_closed_lots_explain_old_holdings() -> None:
    # 100 shares bought in 2022, before the history; the history starts with a sale of 40.
    sale = trade("2024-02-01", -40, 60, tid="S")  # proceeds 2400
    closed = [{"account_id": "U1", "conid": "AAA", "transaction_id": "S",
               "open_date_time": at("2022-05-10"), "quantity": -40, "cost": 2000}]
    positions = [
        position("2024-03-29", "AAA", 60, 3000),
        position("2024-03-29", "AAA", 60, 3000, level="LOT", opened="2022-05-10",
                 originating_transaction_id="OLD1"),
        position("2024-06-28", "AAA", 60, 3000),  # a later report: not used for opening
    ]
    out = ledger(NO_WASH, trades=[sale], closed_lots=closed, open_positions=positions)
    (row,) = out.realized
    assert (row["cost"], row["realized_pnl"], row["term"]) == (2000, 400, "LONG")
    assert row["is_opening_balance"] and row["lot_id"] == "U1|AAA|OB:CL:S|0"
    (lot,) = out.lots
    assert (lot["lot_id"], lot["quantity"], lot["cost_basis"]) == ("U1|AAA|OB:OLD1|0", 60, 3000)
    assert lot["is_opening_balance"] and lot["open_date"] == dt.date(2022, 5, 10)
    assert out.flags == []
    assert check_open_positions(out.result, positions) == []


def test_summary_only_position_opens_one_lot_with_unknown_date() -> None:
    positions = [position("2024-03-29", "AAA", 100, 2500)]
    out = ledger(NO_WASH, open_positions=positions)
    (lot,) = out.lots
    assert (lot["quantity"], lot["cost_basis"], lot["open_date_time"]) == (100, 2500, None)
    assert lot["is_opening_balance"]
    (flag,) = out.flags
    assert flag["level"] == "WARN" and "SUMMARY" in flag["reason"]
    (pos,) = out.positions
    assert pos["is_opening_balance"] and pos["status"] == "OPEN"


def test_holdings_the_history_explains_get_no_opening_lots() -> None:
    trades = [trade("2024-01-05", 100, 10)]
    positions = [position("2024-03-29", "AAA", 100, 1000)]
    out = ledger(NO_WASH, trades=trades, open_positions=positions)
    (lot,) = out.lots
    assert not lot["is_opening_balance"] and lot["cost_basis"] == 1000
    assert out.flags == []


def test_only_the_unexplained_part_of_a_position_is_opened() -> None:
    trades = [trade("2024-01-05", 50, 10, tid="NEW")]  # 500, in the history
    positions = [
        position("2024-03-29", "AAA", 150, 2500),
        position("2024-03-29", "AAA", 100, 2000, level="LOT", opened="2023-01-03",
                 originating_transaction_id="OLD"),
        position("2024-03-29", "AAA", 50, 500, level="LOT", opened="2024-01-05",
                 originating_transaction_id="NEW"),
    ]
    out = ledger(NO_WASH, trades=trades, open_positions=positions)
    assert {(lot["lot_id"], lot["quantity"], lot["is_opening_balance"]) for lot in out.lots} == {
        ("U1|AAA|OB:OLD|0", 100, True), ("U1|AAA|NEW|0", 50, False)}
    assert check_open_positions(out.result, positions) == []
