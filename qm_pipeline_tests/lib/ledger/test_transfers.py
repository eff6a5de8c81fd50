"""Transfers in (with IB's lots, or without them), out, and between two ledger accounts."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from qm_pipeline.lib.ledger import (
    LedgerConfig,
    WashMode,
    check_closed_lots,
    check_open_positions,
    check_realized_pnl,
)
from qm_pipeline_tests.lib.ledger.builders import (
    at,
    corporate_action,
    ledger,
    one,
    position,
    trade,
    transfer,
)

NO_WASH = LedgerConfig(wash_sales=WashMode.NONE)


def test_transfer_in_takes_ibs_lots_from_closed_lots_and_open_position_lots() -> None:
    # 150 AAA come in on 1 March (worth 15000): IB keeps them as lots opened in 2021
    # (100 for 5000) and 2022 (50 for 3500). Our own 20, bought in February, are younger.
    moved_in = transfer("2024-03-01", "AAA", 150, "IN", position_amount=15000,
                        transaction_id="X")
    bought = trade("2024-02-01", 20, 90, tid="B")  # 1800
    # FIFO: the sale of 120 takes the 2021 lot and 20 of the 2022 lot (1400 of its 3500)
    sale = trade("2024-04-02", -120, 110, tid="S", fifo_pnl_realized=Decimal(6800))
    closed = [{"account_id": "U1", "conid": "AAA", "transaction_id": "S",
               "open_date_time": at("2021-05-03"), "quantity": 100, "cost": 5000},
              {"account_id": "U1", "conid": "AAA", "transaction_id": "S",
               "open_date_time": at("2022-06-01"), "quantity": 20, "cost": 1400}]
    positions = [  # what is left at the next report: 30 of the 2022 lot and our own 20
        position("2024-06-28", "AAA", 50, 3900),
        position("2024-06-28", "AAA", 30, 2100, level="LOT", opened="2022-06-01",
                 originating_transaction_id="X"),
        position("2024-06-28", "AAA", 20, 1800, level="LOT", opened="2024-02-01",
                 originating_transaction_id="B"),
    ]
    trades = [bought, sale]
    out = ledger(NO_WASH, transfers=[moved_in], trades=trades, closed_lots=closed,
                 open_positions=positions)

    old, older = one(out.realized, lot_id="U1|AAA|X|0"), one(out.realized, lot_id="U1|AAA|X|1")
    assert (old["open_date"], old["quantity"], old["cost"], old["proceeds"],
            old["realized_pnl"], old["term"]) == (dt.date(2021, 5, 3), 100, 5000, 11000, 6000,
                                                  "LONG")
    assert (older["open_date"], older["quantity"], older["cost"], older["realized_pnl"]) == (
        dt.date(2022, 6, 1), 20, 1400, 800)  # 2200 - 20/50 of 3500
    assert {(lot["lot_id"], lot["open_date"], lot["quantity"], lot["cost_basis"])
            for lot in out.lots} == {("U1|AAA|X|1", dt.date(2022, 6, 1), 30, 2100),
                                     ("U1|AAA|B|0", dt.date(2024, 2, 1), 20, 1800)}
    (flag,) = out.flags
    assert flag["level"] == "INFO" and flag["transaction_id"] == "X"
    assert "2 lot(s) with IB's open dates and basis" in flag["reason"]
    assert check_realized_pnl(out.result, trades) == []
    assert check_closed_lots(out.result, closed) == []
    assert check_open_positions(out.result, positions) == []


def test_transfer_in_without_ib_lots_opens_at_the_transfer_with_its_market_value() -> None:
    moved_in = transfer("2024-01-10", "AAA", 50, "IN", position_amount=2800)
    out = ledger(NO_WASH, transfers=[moved_in])
    (lot,) = out.lots
    assert (lot["quantity"], lot["cost_basis"]) == (50, 2800)
    assert lot["open_date"] == dt.date(2024, 1, 10)
    (flag,) = out.flags
    assert flag["level"] == "WARN" and "50 without IB lot detail" in flag["reason"]


def test_what_ibs_lots_do_not_cover_takes_the_market_value_pro_rata() -> None:
    # 100 in, worth 6000; IB's rows show only a lot of 40 from 2020 (1600), sold in May
    moved_in = transfer("2024-03-01", "AAA", 100, "IN", position_amount=6000)
    sale = trade("2024-05-02", -40, 70, tid="S")
    closed = [{"account_id": "U1", "conid": "AAA", "transaction_id": "S",
               "open_date_time": at("2020-07-01"), "quantity": 40, "cost": 1600}]
    out = ledger(NO_WASH, transfers=[moved_in], trades=[sale], closed_lots=closed)
    (row,) = out.realized
    assert (row["open_date"], row["cost"], row["realized_pnl"]) == (dt.date(2020, 7, 1),
                                                                   1600, 1200)
    (lot,) = out.lots
    assert (lot["open_date"], lot["quantity"], lot["cost_basis"]) == (dt.date(2024, 3, 1), 60,
                                                                      3600)  # 60/100 of 6000
    (flag,) = out.flags
    assert flag["level"] == "WARN" and "60 without IB lot detail" in flag["reason"]


def test_lot_rows_after_a_split_are_taken_in_units_at_the_transfer() -> None:
    moved_in = transfer("2024-03-01", "AAA", 50, "IN", position_amount=4000,
                        transaction_id="X")
    split = corporate_action("2024-04-01", "AAA", 50, "AAA(US0000000001) SPLIT 2 FOR 1 (AAA)",
                             type="FS")
    positions = [position("2024-06-28", "AAA", 100, 2500, level="LOT", opened="2019-09-09",
                          originating_transaction_id="X")]
    out = ledger(NO_WASH, transfers=[moved_in], corporate_actions=[split],
                 open_positions=positions)
    (lot,) = out.lots
    assert (lot["open_date"], lot["quantity"], lot["cost_basis"]) == (dt.date(2019, 9, 9), 100,
                                                                      2500)
    assert check_open_positions(out.result, positions) == []


def test_a_later_transfer_does_not_take_an_earlier_transfers_lots() -> None:
    first = transfer("2024-01-10", "AAA", 50, "IN", position_amount=4000, transaction_id="X")
    later = transfer("2024-04-10", "AAA", 30, "IN", position_amount=3000, transaction_id="Y")
    positions = [position("2024-03-29", "AAA", 50, 1000, level="LOT", opened="2020-01-02",
                          originating_transaction_id="X")]
    sale = trade("2024-05-02", -40, 100, tid="S")  # FIFO: 40 of X's lot from 2020
    closed = [{"account_id": "U1", "conid": "AAA", "transaction_id": "S",
               "open_date_time": at("2020-01-02"), "quantity": 40, "cost": 800}]
    out = ledger(NO_WASH, transfers=[first, later], trades=[sale], closed_lots=closed,
                 open_positions=positions)
    (row,) = out.realized
    assert (row["lot_id"], row["cost"], row["realized_pnl"]) == ("U1|AAA|X|0", 800, 3200)
    assert {(lot["lot_id"], lot["open_date"], lot["quantity"], lot["cost_basis"])
            for lot in out.lots} == {("U1|AAA|X|0", dt.date(2020, 1, 2), 10, 200),
                                     ("U1|AAA|Y|0", dt.date(2024, 4, 10), 30, 3000)}
    assert [(f["transaction_id"], f["level"]) for f in out.flags] == [("X", "INFO"),
                                                                     ("Y", "WARN")]
    assert check_closed_lots(out.result, closed) == []


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
