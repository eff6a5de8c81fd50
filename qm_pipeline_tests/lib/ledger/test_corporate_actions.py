"""Splits (same conid, and IB's old/new conid pair) and corporate actions the ledger flags."""

from __future__ import annotations

import datetime as dt

from qm_pipeline.lib.ledger import LedgerConfig, WashMode
from qm_pipeline_tests.lib.ledger.builders import by, corporate_action, ledger, one, trade

NO_WASH = LedgerConfig(wash_sales=WashMode.NONE)


def test_forward_split_mid_holding_scales_quantity_and_keeps_cost_and_dates() -> None:
    split = corporate_action("2024-03-01", "AAA", 300,
                             "AAA(US0000000001) SPLIT 4 FOR 1 (AAA, AAA INC, US0000000001)",
                             type="FS")  # IB reports the 300 shares added
    trades = [trade("2024-01-02", 100, 40, tid="B"),  # 100 @ 40 = 4000
              trade("2024-04-02", -200, 12, tid="S")]  # after the split: 400 shares of 10 cost
    out = ledger(NO_WASH, trades=trades, corporate_actions=[split])
    (sold,) = out.realized
    assert (sold["quantity"], sold["cost"], sold["proceeds"]) == (200, 2000, 2400)
    assert sold["realized_pnl"] == 400  # 2400 - 4000 * 200/400
    assert sold["open_date"] == dt.date(2024, 1, 2)  # the split does not reopen the lot
    (lot,) = out.lots
    assert (lot["lot_id"], lot["quantity"], lot["cost_basis"]) == ("U1|AAA|B|0", 200, 2000)
    on_split = one(out.position_history, date=dt.date(2024, 3, 1))
    assert (on_split["quantity"], on_split["cost_basis"]) == (400, 4000)
    (pos,) = out.positions  # one episode through the split
    assert (pos["status"], pos["max_quantity"]) == ("OPEN", 400)
    assert out.flags == []


def test_reverse_split_into_a_new_conid_moves_the_lots() -> None:
    # IB's reverse split: the old conid's 12000 shares out, the new conid's 480 in (1 for 25)
    description = "GCM(CA38501D2041) SPLIT 1 FOR 25 (GCM, GRAN COLOMBIA GOLD CORP, CA38501D5010)"
    actions = [
        corporate_action("2024-06-17", "GCM.OLD", -12000, description, type="RS"),
        corporate_action("2024-06-17", "GCM", 480, description, type="RS"),
    ]
    trades = [trade("2024-01-10", 12000, "0.5", conid="GCM.OLD", tid="B"),  # 6000
              trade("2024-07-01", -480, 14, conid="GCM", tid="S")]  # 6720
    out = ledger(NO_WASH, trades=trades, corporate_actions=actions)
    (sold,) = out.realized
    assert (sold["conid"], sold["lot_id"], sold["quantity"]) == ("GCM", "U1|GCM.OLD|B|0", 480)
    assert (sold["cost"], sold["realized_pnl"]) == (6000, 720)
    assert sold["open_date"] == dt.date(2024, 1, 10)
    old, new = sorted(out.positions, key=lambda p: p["conid"] != "GCM.OLD")
    assert (old["status"], old["exit_reason"]) == ("CLOSED", "CORPORATE_ACTION")
    assert (new["status"], new["exit_reason"]) == ("CLOSED", "SOLD")
    assert out.lots == [] and out.flags == []


def test_same_conid_reverse_split_with_a_cash_in_lieu_sale() -> None:
    split = corporate_action("2024-06-17", "AAA", -66, "AAA(US0000000001) SPLIT 1 FOR 3 (AAA)",
                             type="RS")  # 100 shares become 33 1/3; IB reports 66 removed
    trades = [trade("2024-01-10", 100, 3, tid="B"),  # 300
              {**trade("2024-06-18", "-0.333333333333333333", 9, tid="F"),
               "transaction_type": "FracShare"}]
    out = ledger(NO_WASH, trades=trades, corporate_actions=[split])
    (lot,) = out.lots
    # 100 * 1/3 = 33.333333333333333333 (18 places), less the fraction sold for cash
    assert lot["quantity"] == 33
    (flag,) = out.flags  # IB removed 66, the ratio gives 66.666...: reported, not guessed
    assert flag["level"] == "WARN" and "1 for 3" in flag["reason"]


def test_corporate_actions_the_ledger_cannot_interpret_are_flagged() -> None:
    tender = corporate_action("2024-03-05", "AAA", -100,
                              "AAA(US0000000001) TENDERED TO US0000000002 1 FOR 1 (AAA)",
                              type="TC")
    no_holdings = corporate_action("2024-03-06", "AAA", 0, "AAA DIVIDEND RIGHTS ISSUE",
                                   type="DI")
    out = ledger(NO_WASH, trades=[trade("2024-01-02", 100, 10)],
                 corporate_actions=[tender, no_holdings])
    error, info = sorted(out.flags, key=lambda f: f["level"])
    assert (error["level"], error["transaction_id"]) == ("ERROR", tender["transaction_id"])
    assert "TC" in error["reason"]
    assert (info["level"], info["transaction_id"]) == ("INFO", no_holdings["transaction_id"])
    (lot,) = out.lots  # holdings are left as they were
    assert lot["quantity"] == 100
    assert by(out.positions, status="OPEN")
