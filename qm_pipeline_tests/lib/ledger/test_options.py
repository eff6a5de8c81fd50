"""Option expiry, exercise and assignment: replayed once, premium moved into the stock."""

from __future__ import annotations

from qm_pipeline.lib.ledger import LedgerConfig, WashMode
from qm_pipeline_tests.lib.ledger.builders import (
    D,
    book_trade,
    eae,
    ledger,
    one,
    option,
    trade,
)

NO_WASH = LedgerConfig(wash_sales=WashMode.NONE)
CALL = {"conid": "AAA_C100", "put_call": "C", "strike": 100}
PUT = {"conid": "AAA_P50", "put_call": "P", "strike": 50}


def test_expiry_in_option_eae_and_as_book_trade_is_counted_once() -> None:
    bought = option("2024-02-05", 2, "1.50", commission=1, **CALL)  # 2 x 1.50 x 100 + 1 = 301
    expired = book_trade(option("2024-03-15", -2, 0, time="16:20", **CALL), "Ep")
    twin = eae("2024-03-15", "AAA_C100", -2, "Expiration", underlying_conid="AAA", put_call="C")
    for inputs in ({"trades": [bought, expired], "option_events": [twin]},  # both reports
                   {"trades": [bought], "option_events": [twin]}):  # OptionEAE only
        out = ledger(NO_WASH, **inputs)
        (row,) = out.realized
        assert (row["quantity"], row["proceeds"], row["realized_pnl"]) == (2, 0, -301)
        assert row["close_reason"] == "EXPIRED"
        (pos,) = out.positions
        assert (pos["status"], pos["exit_reason"]) == ("EXPIRED", "EXPIRED")
        assert out.lots == [] and out.flags == []


def test_put_assigned_stock_basis_is_strike_times_100_less_premium() -> None:
    # The ORCL case of flex_corpus/002: short put 50 sold at 0.53, commission 3.50,
    # premium received 53 - 3.50 = 49.50; assigned: 100 shares bought at the strike.
    sold = option("2024-09-07", -1, "0.53", commission="3.5", underlying="AAA", **PUT)
    assigned = book_trade(option("2024-09-15", 1, 0, time="16:20", **PUT), "A")
    delivered = book_trade(trade("2024-09-15", 100, 50, time="16:20", tid="STK"), "A")
    twins = [eae("2024-09-15", "AAA_P50", 1, "Assignment", underlying_conid="AAA", put_call="P"),
             eae("2024-09-15", "AAA", 100, "Buy", price=50, multiplier=1, category="STK")]
    for trades in ([sold, assigned, delivered], [sold]):  # both reports; OptionEAE alone
        out = ledger(NO_WASH, trades=trades, option_events=twins)
        (option_row,) = out.realized  # the option closes at its cost: its premium moves on
        assert (option_row["conid"], option_row["realized_pnl"]) == ("AAA_P50", 0)
        assert option_row["close_reason"] == "ASSIGNED"
        (stock,) = out.lots
        assert (stock["conid"], stock["quantity"]) == ("AAA", 100)
        assert stock["cost_basis"] == D("4950.50")  # 50 x 100 - 49.50
        assert one(out.positions, conid="AAA_P50")["exit_reason"] == "ASSIGNED"
        assert out.flags == []


def test_call_exercised_stock_basis_includes_the_premium_paid() -> None:
    bought = option("2024-05-02", 1, 3, commission=1, underlying="AAA", **CALL)  # 301
    exercised = book_trade(option("2024-06-21", -1, 0, time="16:20", **CALL), "Ex")
    delivered = book_trade(trade("2024-06-21", 100, 100, time="16:20"), "Ex")
    out = ledger(NO_WASH, trades=[bought, exercised, delivered])
    (stock,) = out.lots
    assert stock["cost_basis"] == 10301  # 100 x 100 + 301
    (row,) = out.realized
    assert (row["realized_pnl"], row["close_reason"]) == (0, "EXERCISED")


def test_covered_call_assigned_sells_the_stock_for_strike_plus_premium() -> None:
    stock = trade("2024-05-02", 100, 90)  # 9000
    written = option("2024-05-03", -1, 2, commission=1, underlying="AAA", **CALL)  # -199
    assigned = book_trade(option("2024-06-21", 1, 0, time="16:20", **CALL), "A")
    delivered = book_trade(trade("2024-06-21", -100, 100, time="16:20", tid="D"), "A")
    out = ledger(NO_WASH, trades=[stock, written, assigned, delivered])
    sale = one(out.realized, conid="AAA")
    assert sale["proceeds"] == 10199  # 100 x 100 + 199 premium received
    assert sale["realized_pnl"] == 1199
    assert one(out.positions, conid="AAA")["exit_reason"] == "ASSIGNED"
    assert out.lots == []


def test_assignment_of_an_option_the_history_does_not_hold_is_flagged() -> None:
    assigned = book_trade(option("2024-09-15", 1, 0, time="16:20", underlying="AAA", **PUT), "A")
    delivered = book_trade(trade("2024-09-15", 100, 50, time="16:20"), "A")
    out = ledger(NO_WASH, trades=[assigned, delivered])
    (flag,) = out.flags
    assert flag["level"] == "ERROR" and "no open option lots" in flag["reason"]
    (stock,) = out.lots  # the stock still arrives, at the strike
    assert stock["cost_basis"] == 5000
