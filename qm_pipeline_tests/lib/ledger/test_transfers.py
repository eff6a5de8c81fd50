"""Transfers in (with basis and dates), out, and between two ledger accounts."""

from __future__ import annotations

import datetime as dt

from qm_pipeline.lib.ledger import LedgerConfig, WashMode
from qm_pipeline_tests.lib.ledger.builders import at, ledger, one, trade, transfer

NO_WASH = LedgerConfig(wash_sales=WashMode.NONE)


def test_transfer_in_brings_its_basis_and_acquisition_date() -> None:
    moved_in = transfer("2024-01-10", "AAA", 50, "IN", cost_basis=2500,
                        open_date_time=at("2022-03-01"), position_amount=2800)
    out = ledger(NO_WASH, transfers=[moved_in], trades=[trade("2024-02-01", -50, 60)])
    (row,) = out.realized
    assert row["cost"] == 2500  # the reported basis, not today's value (2800)
    assert row["open_date"] == dt.date(2022, 3, 1)
    assert row["term"] == "LONG"  # held since 2022
    assert row["realized_pnl"] == 500  # 50 x 60 - 2500


def test_transfer_in_without_basis_uses_the_position_amount() -> None:
    moved_in = transfer("2024-01-10", "AAA", 50, "IN", position_amount=2800)
    (lot,) = ledger(NO_WASH, transfers=[moved_in]).lots
    assert (lot["quantity"], lot["cost_basis"]) == (50, 2800)
    assert lot["open_date"] == dt.date(2024, 1, 10)


def test_transfer_between_two_ledger_accounts_carries_the_lots() -> None:
    bought = trade("2024-01-02", 100, 10, tid="B")  # 1000 in U1
    moves = [transfer("2024-03-01", "AAA", 100, "OUT"),
             transfer("2024-03-01", "AAA", 100, "IN", account="U2", position_amount=1500)]
    out = ledger(NO_WASH, trades=[bought], transfers=moves)
    (lot,) = out.lots
    assert (lot["account_id"], lot["quantity"], lot["cost_basis"]) == ("U2", 100, 1000)
    assert lot["open_date"] == dt.date(2024, 1, 2)  # acquisition date carried over
    assert out.realized == []  # moving shares is not selling them
    assert one(out.positions, account_id="U1")["exit_reason"] == "TRANSFERRED_OUT"
    assert one(out.positions, account_id="U2")["status"] == "OPEN"


def test_transfer_out_of_more_than_held_is_flagged() -> None:
    out = ledger(NO_WASH, trades=[trade("2024-01-02", 10, 10)],
                 transfers=[transfer("2024-03-01", "AAA", 100, "OUT")])
    (flag,) = out.flags
    assert flag["level"] == "ERROR" and "exceeds" in flag["reason"]
    assert out.lots == []
