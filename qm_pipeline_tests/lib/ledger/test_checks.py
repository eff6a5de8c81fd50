"""Cross-checks with IB's numbers: silent on consistent data, precise on a seeded error."""

from __future__ import annotations

from qm_pipeline.lib.ledger import (
    LedgerConfig,
    LotMethod,
    check_closed_lots,
    check_open_positions,
    check_realized_pnl,
)
from qm_pipeline_tests.lib.ledger.builders import D, ledger, position, trade


def _trades() -> list[dict]:
    return [
        trade("2024-01-02", 100, 10, commission=1, tid="B", fifo_pnl_realized=D(0)),  # 1001
        # 1200 - 1 - 1001 = 198: IB's fifoPnlRealized, net of both commissions
        trade("2024-01-05", -100, 12, commission=1, tid="S", fifo_pnl_realized=D(198)),
    ]


def test_realized_pnl_check() -> None:
    result = ledger(trades=_trades()).result
    assert check_realized_pnl(result, _trades()) == []
    seeded = _trades()
    seeded[1]["fifo_pnl_realized"] = D("198.02")
    assert check_realized_pnl(result, seeded) == [
        {"check": "realized_pnl", "account_id": "U1", "conid": "AAA", "key": "S",
         "ours": D(198), "ibs": D("198.02")}]
    # an account replayed LIFO is not compared with IB's FIFO number
    lifo = LedgerConfig(lot_methods={"U1": LotMethod.LIFO})
    assert check_realized_pnl(result, seeded, lifo) == []


def test_closed_lots_check() -> None:
    trades = _trades()
    result = ledger(trades=trades).result
    ib = [{"account_id": "U1", "conid": "AAA", "transaction_id": "S",
           "open_date_time": trades[0]["date_time"], "quantity": D(-100), "cost": D(1001)}]
    assert check_closed_lots(result, ib) == []
    ib[0]["quantity"] = D(-90)
    (mismatch,) = check_closed_lots(result, ib)
    assert (mismatch["check"], mismatch["ours"], mismatch["ibs"]) == (
        "closed_lot_quantity", 100, 90)
    assert mismatch["key"] == "S|2024-01-02 10:00:00"


def test_open_positions_check() -> None:
    result = ledger(trades=_trades()[:1]).result  # 100 held, basis 1001
    report = [position("2024-01-02", "AAA", 100, 1001), position("2024-01-03", "AAA", 100, None)]
    assert check_open_positions(result, report) == []
    seeded = [position("2024-01-02", "AAA", 100, "1001.02"), position("2024-01-03", "AAA", 90, 0),
              position("2024-01-03", "BBB", 5, 50)]
    assert [(m["check"], m["conid"], m["key"], m["ours"], m["ibs"])
            for m in check_open_positions(result, seeded)] == [
        ("open_position_cost_basis", "AAA", "2024-01-02", 1001, D("1001.02")),
        ("open_position_cost_basis", "AAA", "2024-01-03", 1001, 0),
        ("open_position_cost_basis", "BBB", "2024-01-03", 0, 50),
        ("open_position_quantity", "AAA", "2024-01-03", 100, 90),
        ("open_position_quantity", "BBB", "2024-01-03", 0, 5),
    ]
