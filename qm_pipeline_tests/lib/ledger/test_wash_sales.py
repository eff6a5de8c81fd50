"""Wash sales (IRC 1091): disallowed losses, replacement basis and holding period."""

from __future__ import annotations

import datetime as dt

from qm_pipeline.lib.ledger import LedgerConfig, WashMode
from qm_pipeline_tests.lib.ledger.builders import D, ledger, one, option, trade

BROKER = LedgerConfig(wash_sales=WashMode.BROKER)


def test_partial_replacement_disallows_pro_rata_and_carries_the_holding_period() -> None:
    trades = [
        trade("2024-01-03", 100, 50, tid="A"),  # 5000
        trade("2024-02-01", -100, 40, tid="S"),  # proceeds 4000: loss 1000
        trade("2024-02-10", 60, 42, tid="B"),  # 2520; bought 9 days after the loss sale
    ]
    out = ledger(BROKER, trades=trades)
    (sale,) = out.realized
    assert sale["realized_pnl"] == -1000  # economic P&L, what IB's fifoPnlRealized says
    assert sale["wash_sale_disallowed"] == 600  # 1000 x 60/100: B replaces 60 of 100 shares
    assert sale["taxable_pnl"] == -400  # the allowed part of the loss
    (lot,) = out.lots
    assert lot["wash_adjustment"] == 600
    assert lot["adjusted_basis"] == 3120  # 2520 + 600
    assert lot["cost_basis"] == 2520
    # A was held 29 days (Jan 3 to Feb 1): B's holding period starts 29 days before Feb 10
    assert lot["holding_period_start"] == dt.date(2024, 1, 12)
    assert lot["is_wash_replacement"]


def test_replacement_bought_before_the_loss_sale_and_still_held() -> None:
    trades = [
        trade("2024-01-03", 100, 50, tid="A"),  # 5000
        trade("2024-01-25", 100, 45, tid="B"),  # 4500, 7 days before the sale
        trade("2024-02-01", -100, 40, tid="S"),  # FIFO sells A: loss 1000
    ]
    out = ledger(BROKER, trades=trades)
    (sale,) = out.realized
    assert (sale["lot_id"], sale["wash_sale_disallowed"]) == ("U1|AAA|A|0", 1000)
    (lot,) = out.lots
    assert (lot["lot_id"], lot["adjusted_basis"]) == ("U1|AAA|B|0", 5500)
    assert lot["holding_period_start"] == dt.date(2023, 12, 27)  # Jan 25 - 29 days


def test_shares_of_the_same_lot_are_not_replacements() -> None:
    trades = [trade("2024-01-03", 200, 50, tid="A"),  # 10000
              trade("2024-01-20", -100, 40)]  # loss 1000; the other 100 of A stay
    out = ledger(BROKER, trades=trades)
    (sale,) = out.realized
    assert sale["wash_sale_disallowed"] == 0 and sale["taxable_pnl"] == -1000
    (lot,) = out.lots
    assert lot["wash_adjustment"] == 0


def test_chained_wash_sales_across_a_year_end() -> None:
    trades = [
        trade("2023-12-01", 100, 50, tid="A"),  # 5000
        trade("2023-12-15", -100, 45, tid="S1"),  # loss 500 (A held 14 days)
        trade("2023-12-28", 100, 46, tid="B"),  # 4600 + 500 = 5100; holding from Dec 14
        trade("2024-01-10", -100, 44, tid="S2"),  # 4400 - 5100: tax loss 700 (B: 27 days)
        trade("2024-01-20", 100, 43, tid="C"),  # 4300 + 700 = 5000; holding from Dec 24
        trade("2024-12-26", -100, 50, tid="S3"),  # 5000 - 5000
    ]
    out = ledger(BROKER, trades=trades)
    s1, s2, s3 = sorted(out.realized, key=lambda r: r["seq"])
    assert (s1["realized_pnl"], s1["wash_sale_disallowed"], s1["taxable_pnl"]) == (-500, 500, 0)
    assert s2["realized_pnl"] == -200  # 4400 - 4600: economic
    assert s2["adjusted_basis"] == 5100
    assert (s2["wash_sale_disallowed"], s2["taxable_pnl"]) == (700, 0)
    assert s2["holding_period_start"] == dt.date(2023, 12, 14)  # Dec 28 - 14 days
    assert s3["adjusted_basis"] == 5000
    assert s3["holding_period_start"] == dt.date(2023, 12, 24)  # Jan 20 - 27 days
    # bought Jan 20 2024, but the tacked holding period makes the Dec 26 sale long term
    assert s3["term"] == "LONG"
    assert (s3["realized_pnl"], s3["taxable_pnl"]) == (700, 0)  # 5000 - 4300; 5000 - 5000


def test_cross_account_wash_sale_only_in_taxpayer_mode() -> None:
    trades = [
        trade("2024-01-03", 100, 50, account="U1"),  # 5000
        trade("2024-02-01", -100, 40, account="U1"),  # loss 1000
        trade("2024-02-05", 100, 41, account="U2", tid="B"),  # 4100 in the other account
    ]
    broker = ledger(BROKER, trades=trades)
    assert one(broker.realized, account_id="U1")["wash_sale_disallowed"] == 0
    assert one(broker.lots, account_id="U2")["adjusted_basis"] == 4100

    same_owner = LedgerConfig(wash_sales=WashMode.TAXPAYER, owners={"U1": "ann", "U2": "ann"})
    taxpayer = ledger(same_owner, trades=trades)
    assert one(taxpayer.realized, account_id="U1")["wash_sale_disallowed"] == 1000
    assert one(taxpayer.lots, account_id="U2")["adjusted_basis"] == 5100

    two_owners = LedgerConfig(wash_sales=WashMode.TAXPAYER, owners={"U1": "ann", "U2": "bob"})
    assert one(ledger(two_owners, trades=trades).realized)["wash_sale_disallowed"] == 0


def test_a_call_bought_on_the_underlying_replaces_in_taxpayer_mode() -> None:
    trades = [
        trade("2024-01-03", 100, 50),  # 5000
        trade("2024-02-01", -100, 40),  # loss 1000
        option("2024-02-06", 1, 2, conid="AAA_C45", put_call="C", strike=45, tid="CALL"),  # 200
    ]
    taxpayer = ledger(LedgerConfig(wash_sales=WashMode.TAXPAYER), trades=trades)
    call = one(taxpayer.lots, conid="AAA_C45")
    # 1 contract x 100 shares replaces all 100 shares sold
    assert (call["wash_adjustment"], call["adjusted_basis"]) == (1000, 1200)
    assert one(taxpayer.realized)["wash_sale_disallowed"] == 1000
    broker = ledger(BROKER, trades=trades)  # broker mode: same conid only
    assert one(broker.lots, conid="AAA_C45")["wash_adjustment"] == 0


def test_a_purchase_more_than_30_days_later_replaces_nothing() -> None:
    trades = [trade("2024-01-03", 100, 50), trade("2024-02-01", -100, 40),
              trade("2024-03-03", 100, 41)]  # 31 days after the sale
    out = ledger(BROKER, trades=trades)
    assert one(out.realized)["wash_sale_disallowed"] == 0
    assert one(out.lots)["wash_adjustment"] == D(0)


def test_losses_in_sale_order_take_replacements_in_purchase_order() -> None:
    trades = [
        trade("2023-11-01", 100, 50, tid="A1"),  # more than 30 days before the sales:
        trade("2023-11-02", 100, 50, tid="A2"),  # neither replaces the other's loss
        trade("2024-02-01", -100, 45, tid="S1"),  # sells A1: loss 500
        trade("2024-02-02", -100, 40, tid="S2"),  # sells A2: loss 1000
        trade("2024-02-05", 150, 41, tid="R1"),  # 6150: 100 replace S1, 50 half of S2
        trade("2024-02-06", 100, 42, tid="R2"),  # 4200: 50 replace the rest of S2
    ]
    out = ledger(BROKER, trades=trades)
    s1, s2 = sorted(out.realized, key=lambda r: r["seq"])
    assert (s1["wash_sale_disallowed"], s2["wash_sale_disallowed"]) == (500, 1000)
    lots = {lot["lot_id"]: (lot["quantity"], lot["wash_adjustment"]) for lot in out.lots}
    # a replacement smaller than its lot is split off under the next sequence number
    assert lots == {
        "U1|AAA|R1|1": (100, 500),  # S1: 500 x 100/100
        "U1|AAA|R1|0": (50, 500),  # S2: 1000 x 50/100
        "U1|AAA|R2|1": (50, 500),  # S2: the remaining 1000 x 50/100
        "U1|AAA|R2|0": (50, 0),
    }
    assert sum(lot["cost_basis"] for lot in out.lots) == 10350  # 6150 + 4200: unchanged


def test_a_purchase_shortly_before_a_loss_sale_of_an_older_lot_replaces_it() -> None:
    trades = [trade("2024-01-02", 100, 50, tid="A1"),
              trade("2024-01-03", 100, 50, tid="A2"),  # within 30 days before S1
              trade("2024-02-01", -100, 45, tid="S1")]  # sells A1: loss 500, A2 replaces
    (lot,) = ledger(BROKER, trades=trades).lots
    assert (lot["lot_id"], lot["wash_adjustment"]) == ("U1|AAA|A2|0", 500)
