"""Cash reconciliation on hand-computed amounts: the roll-forward, the tolerance
(max(pct of the larger amount, the currency's floor), default 1% and 1.00), and live cash
against CashReport.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from qm_pipeline.lib.recon.cash import (
    compare_live_cash,
    compare_roll_forward,
    roll_forward,
    within,
)
from qm_pipeline.lib.recon.config import ReconConfig
from qm_pipeline.lib.recon.model import Cause, Comparison, Kind, Severity

ACC, OTHER_ACC = "U1234567", "U7654321"
D = Decimal
FROM, TO = dt.date(2024, 11, 1), dt.date(2024, 11, 29)


def amounts(ending: str | None, starting: str | None = "10000", **flows: str) -> dict:
    return {
        "from_date": FROM,
        "to_date": TO,
        "starting_cash": None if starting is None else D(starting),
        "ending_cash": None if ending is None else D(ending),
        "trades": D(flows.get("trades", "0")),
        "fx_legs": D(flows.get("fx_legs", "0")),
        "cash_transactions": D(flows.get("cash_transactions", "0")),
        "transfers": D(flows.get("transfers", "0")),
    }


def test_roll_forward_adds_every_flow_to_the_start():
    """10000 - 2500.50 (trades) + 800 (FX leg) + 12.34 (dividend) - 1000 (transfer)."""
    rolled = roll_forward(
        amounts(
            None, trades="-2500.50", fx_legs="800", cash_transactions="12.34", transfers="-1000"
        )
    )
    assert rolled == D("7311.84")


def test_roll_forward_without_a_starting_balance_starts_at_zero():
    assert roll_forward(amounts(None, starting=None, trades="5")) == D(5)


def test_roll_forward_matching_ending_cash_is_matched():
    """Roll-forward equal to CashReport's ending cash: no discrepancy, one matched."""
    rolls = {(ACC, "USD"): amounts("9512.34", trades="-500", cash_transactions="12.34")}
    assert compare_roll_forward(rolls, ReconConfig()) == ([], 1)


def test_roll_forward_beyond_tolerance_is_cash_mismatch_with_its_flows():
    """Rolled 9500 vs ending 10000: 500 / 10000 = 5%, beyond 1%: MODERATE, with the
    dates and flows that made the roll-forward in the detail."""
    rolls = {(ACC, "USD"): amounts("10000", trades="-500")}
    (d,), matched = compare_roll_forward(rolls, ReconConfig())
    assert matched == 0
    assert (d.comparison, d.kind, d.severity, d.cause) == (
        Comparison.CASH_ROLL_VS_FLEX,
        Kind.CASH_MISMATCH,
        Severity.MODERATE,
        Cause.UNKNOWN,
    )
    assert (d.account_id, d.subject, d.symbol) == (ACC, "USD", "USD")
    assert (d.local_value, d.broker_value, d.pct) == (D(9500), D(10000), D(5))
    assert d.detail == {
        "from_date": FROM,
        "to_date": TO,
        "starting_cash": D(10000),
        "trades": D(-500),
        "fx_legs": D(0),
        "cash_transactions": D(0),
        "transfers": D(0),
    }


def test_cash_mismatch_above_the_critical_threshold_is_critical():
    """Rolled 9000 vs ending 10000: 10% > 5%."""
    (d,), _ = compare_roll_forward({(ACC, "USD"): amounts("10000", trades="-1000")}, ReconConfig())
    assert (d.severity, d.pct) == (Severity.CRITICAL, D(10))


def test_unknown_ending_cash_is_not_compared():
    """No ending cash in the report: nothing to compare, neither a break nor a match."""
    assert compare_roll_forward({(ACC, "USD"): amounts(None)}, ReconConfig()) == ([], 0)


@pytest.mark.parametrize(
    ("local", "broker", "ok"),
    [
        ("1000", "990", True),  # 10 = 1% of 1000: within (inclusive)
        ("1000", "989.99", False),  # 10.01 > 10
        ("-1000", "-990", True),  # a margin loan is measured by magnitude
        ("50", "50.80", True),  # 0.80: 1% is 0.508, the 1.00 floor decides
        ("50", "51.01", False),  # 1.01 beyond the floor
    ],
)
def test_tolerance_is_the_larger_of_pct_and_floor(local, broker, ok):
    """Default tolerance: max(1% of the larger amount, 1.00)."""
    assert within(D(local), D(broker), "USD", ReconConfig()) is ok


def test_floor_is_per_currency():
    """A JPY floor of 100 lets 80 yen through; USD keeps the default 1.00 floor; a lower
    USD floor makes a 0.80 difference on 50 a break."""
    config = ReconConfig(cash_floors={"JPY": D(100), "EUR": D("0.5")})
    assert within(D(5000), D(5080), "JPY", config)
    assert within(D(50), D("50.80"), "USD", config)
    assert not within(D(50), D("50.80"), "EUR", config)


def test_custom_tolerance_pct():
    """At 0.1%, 10 on 10010 is within (allowed 10.01) and 11 on 10011 beyond (allowed
    10.011), though the default 1% would accept it."""
    config = ReconConfig(cash_tolerance_pct=D("0.1"))
    assert within(D(10000), D(10010), "USD", config)
    assert not within(D(10000), D(10011), "USD", config)
    assert within(D(10000), D(10011), "USD", ReconConfig())


def test_small_amounts_beyond_the_floor_grade_by_pct():
    """Rolled 10 vs ending 12: 2 > the 1.00 floor, pct 2/12 > 5%: CRITICAL."""
    (d,), _ = compare_roll_forward({(ACC, "USD"): amounts("12", starting="10")}, ReconConfig())
    assert (d.severity, d.local_value, d.broker_value) == (Severity.CRITICAL, D(10), D(12))
    assert d.pct == D(2) / D(12) * 100


def test_live_cash_against_cashreport():
    """CashReport ending cash vs live CashBalance, per covered account and currency: a
    currency on one side only counts as zero on the other; uncovered accounts are left out."""
    rolls = {
        (ACC, "USD"): amounts("10000"),
        (ACC, "EUR"): amounts("500"),
        (OTHER_ACC, "USD"): amounts("7"),  # not covered by the snapshot
    }
    live = {(ACC, "USD"): D("10000.50"), (ACC, "CHF"): D(300), (OTHER_ACC, "USD"): D(0)}
    found, matched = compare_live_cash(rolls, live, {ACC}, set(), ReconConfig())
    assert matched == 1  # USD: 0.50 within the floor
    by_currency = {d.subject: d for d in found}
    assert set(by_currency) == {"EUR", "CHF"}
    eur, chf = by_currency["EUR"], by_currency["CHF"]
    assert (eur.comparison, eur.local_value, eur.broker_value) == (
        Comparison.CASH_FLEX_VS_LIVE,
        D(500),
        D(0),
    )
    assert (chf.local_value, chf.broker_value, chf.severity) == (D(0), D(300), Severity.CRITICAL)
    assert eur.cause is Cause.UNKNOWN
    assert eur.detail == {"flex_to_date": TO}
    assert chf.detail == {"flex_to_date": None}


def test_live_cash_of_an_account_that_traded_is_timing():
    """An account with executions since the report differs for that reason: TIMING; an
    account that did not trade stays UNKNOWN."""
    rolls = {(ACC, "USD"): amounts("10000"), (OTHER_ACC, "USD"): amounts("10000")}
    live = {(ACC, "USD"): D(4000), (OTHER_ACC, "USD"): D(4000)}
    found, _ = compare_live_cash(rolls, live, {ACC, OTHER_ACC}, {ACC}, ReconConfig())
    assert {(d.account_id, d.cause) for d in found} == {
        (ACC, Cause.TIMING),
        (OTHER_ACC, Cause.UNKNOWN),
    }


def test_live_cash_against_unknown_ending_cash_is_not_compared():
    """A CashReport currency whose ending cash is unknown (None) is not zero: live cash
    in that currency is not a break (DOMAIN.md section 4: unknown is never flat)."""
    rolls = {(ACC, "USD"): amounts(None)}
    assert compare_live_cash(rolls, {(ACC, "USD"): D(5000)}, {ACC}, set(), ReconConfig()) == (
        [],
        0,
    )
