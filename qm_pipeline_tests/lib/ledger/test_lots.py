"""Lot matching, commissions, shorts, lot methods, currencies, restatements, determinism."""

from __future__ import annotations

import datetime as dt
import random
from decimal import ROUND_HALF_EVEN, localcontext

import pyarrow as pa
import pytest

from qm_pipeline.lib.ledger import LedgerConfig, LotMethod, WashMode
from qm_pipeline.lib.ledger.money import QUANTUM
from qm_pipeline_tests.lib.ledger.builders import D, ledger, one, trade

NO_WASH = LedgerConfig(wash_sales=WashMode.NONE)


def test_partial_closes_put_commissions_in_basis_and_proceeds() -> None:
    trades = [
        trade("2024-01-02", 100, 10, commission=1, tid="B1"),  # basis 100*10 + 1 = 1001
        trade("2024-01-03", 50, 12, commission=1, tid="B2"),  # basis 50*12 + 1 = 601
        trade("2024-02-01", -120, 11, commission="1.20", tid="S1"),  # net 1320 - 1.20 = 1318.80
    ]
    out = ledger(trades=trades)
    first, second = out.realized
    # FIFO: all of B1, then 20 of B2. Proceeds split 100/120 and the remainder.
    assert (first["lot_id"], first["quantity"], first["cost"]) == ("U1|AAA|B1|0", 100, 1001)
    assert first["proceeds"] == D("1099.00")  # 1318.80 * 100/120
    assert first["realized_pnl"] == 98  # 1099 - 1001
    assert second["quantity"] == 20
    assert second["cost"] == D("240.40")  # 601 * 20/50
    assert second["proceeds"] == D("219.80")  # 1318.80 - 1099
    assert second["realized_pnl"] == D("-20.60")
    assert {r["closing_transaction_id"] for r in out.realized} == {"S1"}
    (lot,) = out.lots
    assert (lot["lot_id"], lot["quantity"], lot["cost_basis"]) == ("U1|AAA|B2|0", 30, D("360.60"))
    (pos,) = out.positions
    assert (pos["status"], pos["side"], pos["quantity"]) == ("OPEN", "LONG", 30)
    assert pos["realized_pnl"] == D("77.40")  # 98 - 20.60 = 1318.80 - (1001 + 240.40)
    assert pos["average_cost"] == D("10.68")  # (1001 + 601) / 150
    assert out.flags == []


def test_short_sale_and_cover() -> None:
    trades = [
        trade("2024-03-01", -100, 50, commission=1),  # short lot: -100, cost -(5000 - 1)
        trade("2024-03-05", 60, 45, commission=1),  # covers 60: cash -(2700 + 1)
        trade("2024-03-08", 40, 52, commission=1),  # covers 40: cash -(2080 + 1)
    ]
    out = ledger(trades=trades)
    first, second = out.realized
    assert (first["quantity"], first["cost"], first["proceeds"]) == (-60, D("-2999.4"), -2701)
    assert first["realized_pnl"] == D("298.4")  # -2701 + 2999.4 (60 x 5 - 1 - 0.6)
    assert (second["quantity"], second["cost"], second["proceeds"]) == (-40, D("-1999.6"), -2081)
    assert second["realized_pnl"] == D("-81.4")  # -2081 + 1999.6 (40 x -2 - 1 - 0.4)
    assert second["wash_sale_disallowed"] == 0  # short covers are not wash-sale losses here
    (pos,) = out.positions
    assert (pos["status"], pos["side"], pos["exit_reason"]) == ("CLOSED", "SHORT", "COVERED")
    assert pos["realized_pnl"] == D("217")
    assert out.lots == []


def test_a_sale_larger_than_the_position_closes_it_and_opens_a_short() -> None:
    trades = [trade("2024-03-01", 100, 10, commission=1),  # basis 1001
              trade("2024-03-04", -150, 11, commission="1.5", tid="S")]  # net 1648.5
    out = ledger(trades=trades)
    (closed,) = out.realized
    assert closed["proceeds"] == 1099  # 1648.5 * 100/150
    assert closed["realized_pnl"] == 98
    (lot,) = out.lots
    assert (lot["lot_id"], lot["quantity"], lot["cost_basis"]) == ("U1|AAA|S|0", -50, D("-549.5"))
    first, second = out.positions
    assert (first["status"], first["exit_reason"], second["status"], second["side"]) == (
        "CLOSED", "SOLD", "OPEN", "SHORT")


def _method_trades() -> list[dict]:
    return [
        trade("2024-04-01", 100, 10, tid="L1"),
        trade("2024-04-02", 100, 14, tid="L2"),
        trade("2024-04-03", 100, 12, tid="L3"),
        trade("2024-04-04", -150, 13, tid="S"),  # proceeds 1950
    ]


def test_lot_methods_give_different_results_on_the_same_trades() -> None:
    def run(method: LotMethod, **inputs) -> tuple:
        config = LedgerConfig(lot_methods={"U1": method}, wash_sales=WashMode.NONE)
        out = ledger(config, trades=_method_trades(), **inputs)
        pnl = sum(r["realized_pnl"] for r in out.realized)
        return pnl, {(lot["lot_id"].split("|")[2], lot["quantity"]) for lot in out.lots}

    # FIFO: 100 @ 10 + 50 @ 14 = 1700 -> 1950 - 1700 = 250
    assert run(LotMethod.FIFO) == (250, {("L2", 50), ("L3", 100)})
    # LIFO: 100 @ 12 + 50 @ 14 = 1900 -> 50
    assert run(LotMethod.LIFO) == (50, {("L1", 100), ("L2", 50)})
    # HIFO: 100 @ 14 + 50 @ 12 = 2000 -> -50
    assert run(LotMethod.HIFO) == (-50, {("L1", 100), ("L3", 50)})
    # SPECIFIC follows IB's closed lots: 50 of L1 and 100 of L3 = 500 + 1200 -> 250
    closed = [{"account_id": "U1", "conid": "AAA", "transaction_id": "S",
               "open_date_time": t["date_time"], "quantity": D(q), "cost": D(c)}
              for t, q, c in ((_method_trades()[0], -50, 500), (_method_trades()[2], -100, 1200))]
    assert run(LotMethod.SPECIFIC, closed_lots=closed) == (250, {("L1", 50), ("L2", 100)})


def test_specific_without_ib_lots_falls_back_to_fifo_and_says_so() -> None:
    config = LedgerConfig(lot_methods={"U1": LotMethod.SPECIFIC}, wash_sales=WashMode.NONE)
    out = ledger(config, trades=_method_trades())
    assert sum(r["realized_pnl"] for r in out.realized) == 250
    (flag,) = out.flags
    assert flag["transaction_id"] == "S" and flag["level"] == "WARN"


def test_each_lot_keeps_its_currency_and_base_amounts_use_the_rates_of_the_day() -> None:
    trades = [
        # EUR stock: basis 100 * 20 + 2 = 2002 EUR; in base at 1.10: 2202.20 USD
        trade("2024-05-02", 100, 20, commission=2, conid="SAP", currency="EUR", fx="1.10"),
        # proceeds 2500 - 2 = 2498 EUR; in base at 1.20: 2997.60 USD
        trade("2024-06-03", -100, 25, commission=2, conid="SAP", currency="EUR", fx="1.20"),
    ]
    (row,) = ledger(NO_WASH, trades=trades).realized
    assert row["currency"] == "EUR"
    assert (row["cost"], row["cost_base"]) == (2002, D("2202.20"))
    assert (row["proceeds"], row["proceeds_base"]) == (2498, D("2997.60"))
    assert row["realized_pnl"] == 496  # in EUR
    assert row["realized_pnl_base"] == D("795.40")  # 2997.60 - 2202.20: includes the FX gain


def test_partial_close_in_thirds_keeps_totals_exact() -> None:
    trades = [trade("2024-01-02", 3, 10, commission=1),  # basis 31
              trade("2024-01-03", -1, 12), trade("2024-01-04", -1, 12), trade("2024-01-05", -1, 12)]
    out = ledger(NO_WASH, trades=trades)
    costs = [r["cost"] for r in out.realized]
    assert costs[0] == D("10.333333333333333333")  # 31 / 3, to 18 places
    # the lot keeps 31 - 10.333333333333333333 = 20.666666666666666667 for 2 shares
    assert costs[1] == D("10.333333333333333334")  # 20.666666666666666667 / 2, half-even
    assert costs[2] == D("10.333333333333333333")  # what is left
    assert sum(costs) == 31  # no residue
    assert out.lots == []


def test_a_newer_report_restating_a_trade_replaces_it() -> None:
    old = trade("2024-01-02", 100, 10, tid="T1", when_generated=dt.datetime(2024, 1, 3, 6))
    new = {**old, "trade_price": D("10.5"), "proceeds": D("-1050"),
           "when_generated": dt.datetime(2024, 1, 4, 6)}
    for rows in ([old, new], [new, old]):
        (lot,) = ledger(trades=rows).lots
        assert lot["cost_basis"] == 1050  # the newer report's price


def test_cancel_and_correct_replace_the_original_execution() -> None:
    original = trade("2024-01-02", 50, 20, tid="T2")
    cancel = {**trade("2024-01-02", -50, 20, tid="T3"), "transaction_type": "TradeCancel",
              "orig_transaction_id": "T2", "notes": "Ca"}
    correct = {**trade("2024-01-02", 50, 19, tid="T4"), "transaction_type": "TradeCorrect",
               "orig_transaction_id": "T2"}
    orphan = {**trade("2024-01-05", -10, 20, tid="T9"), "transaction_type": "TradeCancel",
              "orig_transaction_id": "T0"}
    out = ledger(trades=[original, cancel, correct, orphan])
    (lot,) = out.lots
    assert (lot["lot_id"], lot["quantity"], lot["cost_basis"]) == ("U1|AAA|T4|0", 50, 950)
    (flag,) = out.flags
    assert (flag["transaction_id"], flag["level"]) == ("T9", "WARN")


def test_forex_conversions_do_not_reach_the_lot_books() -> None:
    trades = [trade("2024-01-02", -1000, "1.08", conid="EUR.USD", category="CASH")]
    out = ledger(trades=trades)
    assert out.lots == [] and out.positions == []


def test_arrow_and_row_inputs_give_the_same_ledger() -> None:
    rows = _method_trades()
    from_rows = ledger(trades=rows)
    from_arrow = ledger(trades=pa.Table.from_pylist(rows))
    assert from_rows.realized == from_arrow.realized
    assert from_rows.lots == from_arrow.lots


def test_shuffled_input_gives_the_same_ledger(scenario: dict) -> None:
    first = ledger(LedgerConfig(wash_sales=WashMode.TAXPAYER), **scenario)
    rng = random.Random(11)
    for _ in range(3):
        shuffled = {k: rng.sample(v, len(v)) for k, v in scenario.items()}
        again = ledger(LedgerConfig(wash_sales=WashMode.TAXPAYER), **shuffled)
        for name in ("lots", "realized", "positions", "position_history", "flags"):
            assert getattr(again, name) == getattr(first, name), name
    # the scenario does exercise the engine: wash sales into a call (taxpayer mode), a
    # split, an internal transfer, an expiry, a short
    assert one(first.lots, lot_id="U2|AAA|T2|0")["wash_adjustment"] > 0
    assert one(first.positions, conid="AAA_C60")["status"] == "EXPIRED"
    assert one(first.positions, conid="BBB")["exit_reason"] == "COVERED"
    assert first.flags == []


def test_specific_lots_of_a_closing_trade_given_first() -> None:
    # the replay refers to executions by their row in the input: row 0 is one of them
    rows = [_method_trades()[3], *_method_trades()[:3]]
    closed = [{"account_id": "U1", "conid": "AAA", "transaction_id": "S",
               "open_date_time": rows[1]["date_time"], "quantity": D(-150), "cost": D(1500)}]
    config = LedgerConfig(lot_methods={"U1": LotMethod.SPECIFIC}, wash_sales=WashMode.NONE)
    out = ledger(config, trades=rows, closed_lots=closed)
    assert {(lot["lot_id"], lot["quantity"]) for lot in out.lots} == {
        ("U1|AAA|L2|0", 50), ("U1|AAA|L3|0", 100)}  # 100 of L1, then FIFO: 50 of L2
    (flag,) = out.flags  # IB named 150 from L1, which only had 100
    assert flag["transaction_id"] == "S"


def test_amounts_whose_products_pass_128_bits_stay_exact() -> None:
    """The compiled replay multiplies in 128-bit integers and falls back to Python integers
    when a product does not fit (`quanta.pxd`): here a lot of 3.14... shares costing some
    300 billion EUR, 1.000...001 of them sold (cost x quantity is about 2**158), at an FX
    rate of 10 decimals (amount x rate is about 2**131 even after cancelling 10**8)."""
    n, k = D("3.141592653589793238"), D("1.000000000000000001")
    price, fx = "98765432112.3456", D("1.0834567891")
    buy = trade("2024-01-02", n, price, conid="BIG", currency="EUR", fx=fx)
    sell = trade("2024-01-03", -k, price, conid="BIG", currency="EUR", fx=fx)
    (row,) = ledger(NO_WASH, trades=[buy, sell]).realized
    with localcontext(prec=80):
        cost, proceeds = -buy["proceeds"], sell["proceeds"]
        cost_base = (cost * fx).quantize(QUANTUM, ROUND_HALF_EVEN)
        assert row["cost"] == (cost * k / n).quantize(QUANTUM, ROUND_HALF_EVEN)
        assert row["cost_base"] == (cost_base * k / n).quantize(QUANTUM, ROUND_HALF_EVEN)
        assert row["proceeds_base"] == (proceeds * fx).quantize(QUANTUM, ROUND_HALF_EVEN)
    assert row["quantity"] == k
    assert row["cost"] > 10**10  # the premise: amounts far beyond 64 bits (10**28 QUANTUMs)


def test_a_long_book_keeps_fifo_order_while_its_queue_drops_taken_slots() -> None:
    """50 lots bought, 35 sold one at a time with buys in between: the compiled queue
    (`queues.Queue`) drops its taken slots once they are half of it, and FIFO order holds
    across that (realized rows oldest first, the open lots the newest)."""
    days = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(120)]
    trades = [trade(str(days[i]), 1, 10 + i, tid=f"B{i:02}") for i in range(50)]
    trades += [trade(str(days[50 + i]), -1, 100, tid=f"S{i:02}") for i in range(35)]
    trades += [trade(str(days[60]), 1, 99, tid="LATE", time="12:00")]
    out = ledger(NO_WASH, trades=trades)
    assert [r["lot_id"] for r in out.realized] == [f"U1|AAA|B{i:02}|0" for i in range(35)]
    assert [r["cost"] for r in out.realized] == [10 + i for i in range(35)]
    assert [lot["lot_id"] for lot in out.lots] == [
        *(f"U1|AAA|B{i:02}|0" for i in range(35, 50)), "U1|AAA|LATE|0"]


def test_an_amount_beyond_the_output_columns_names_its_transaction_and_field() -> None:
    """10**21 shares are 10**39 QUANTUMs: more than decimal128(38, 18) (and 128 bits) hold."""
    trades = [trade("2024-01-02", 10**21, "0.000000000000000001", tid="HUGE")]  # cash 1,000
    with pytest.raises(OverflowError, match=r"transaction HUGE: quantity beyond decimal128"):
        ledger(NO_WASH, trades=trades)
