"""Position reconciliation on hand-built books: every scenario of the reconciliation issue,
with the type, severity, cause, pct and both values computed by hand.

pct = |local - broker| / max(|local|, |broker|) * 100; MINOR < 1%, MODERATE 1-5% (both
bounds included), CRITICAL > 5%, and always CRITICAL for missing positions and side
mismatches (DOMAIN.md section 4).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from qm_pipeline.lib.recon.config import ReconConfig
from qm_pipeline.lib.recon.model import Cause, Comparison, Holding, Kind, Severity
from qm_pipeline.lib.recon.positions import Evidence, compare_books, grade, pct_difference

ACC, OTHER_ACC = "U1234567", "U7654321"
AAPL, AAPL_CALL, SPY = "265598", "495512563", "756733"
OPENED = dt.datetime(2024, 11, 25, 15, 30)
LIVE = Comparison.LEDGER_VS_LIVE
D = Decimal


def mine(qty: str, symbol: str = "AAPL", **kw: object) -> Holding:
    """A local holding (a ledger.positions episode)."""
    return Holding(D(qty), symbol, "STK", episode_id=f"ep-{symbol}", opened_at=OPENED, **kw)


def theirs(qty: str, symbol: str = "AAPL", category: str = "STK") -> Holding:
    return Holding(D(qty), symbol, category)


NOTHING = Evidence()
DEFAULTS = ReconConfig()


def one(local, broker, evidence=NOTHING, config=DEFAULTS, comparison=LIVE):
    result = compare_books(comparison, local, broker, config, evidence)
    assert result.matched == 0
    assert len(result.discrepancies) == 1, result.discrepancies
    return result.discrepancies[0]


def test_manual_close_in_tws_is_missing_broker_critical_external_close():
    """Local OPEN, broker flat, no executions explain it: MISSING_BROKER, CRITICAL,
    EXTERNAL_CLOSE, with the episode a sync would close."""
    d = one({(ACC, AAPL): mine("2")}, {})
    assert (d.kind, d.severity, d.cause) == (
        Kind.MISSING_BROKER,
        Severity.CRITICAL,
        Cause.EXTERNAL_CLOSE,
    )
    assert (d.account_id, d.subject, d.symbol) == (ACC, AAPL, "AAPL")
    assert (d.local_value, d.broker_value, d.pct) == (D(2), D(0), D(100))
    assert d.detail == {
        "asset_category": "STK",
        "episode_id": "ep-AAPL",
        "opened_at": OPENED,
        "strategy": None,
    }


def test_a_zero_broker_row_counts_as_flat_not_as_a_match():
    """A broker row with quantity 0 is flat: the same MISSING_BROKER as no row at all."""
    d = one({(ACC, AAPL): mine("2")}, {(ACC, AAPL): theirs("0")})
    assert (d.kind, d.broker_value) == (Kind.MISSING_BROKER, D(0))


def test_manual_close_explained_by_todays_execution_is_timing():
    """Local 2 + today's executions (-2) == live 0: the difference is TIMING, and the
    executed quantity is kept in the detail."""
    d = one({(ACC, AAPL): mine("2")}, {}, Evidence({(ACC, AAPL): D(-2)}))
    assert (d.kind, d.severity, d.cause) == (Kind.MISSING_BROKER, Severity.CRITICAL, Cause.TIMING)
    assert d.detail["executed_since_flex"] == D(-2)


def test_margin_call_liquidation_partly_closing_is_timing():
    """Broker liquidated 60 of 100 SPY today: live 40 = local 100 + executed -60, so a
    CRITICAL (60%) QUANTITY_MISMATCH caused by TIMING."""
    d = one(
        {(ACC, SPY): mine("100", "SPY")},
        {(ACC, SPY): theirs("40", "SPY")},
        Evidence({(ACC, SPY): D(-60)}),
    )
    assert (d.kind, d.severity, d.cause) == (
        Kind.QUANTITY_MISMATCH,
        Severity.CRITICAL,
        Cause.TIMING,
    )
    assert (d.local_value, d.broker_value, d.pct) == (D(100), D(40), D(60))


def test_executions_that_do_not_add_up_do_not_explain():
    """Local 10, executed -3, broker 6: 10 - 3 = 7 != 6, so the close is EXTERNAL."""
    d = one({(ACC, AAPL): mine("10")}, {(ACC, AAPL): theirs("6")}, Evidence({(ACC, AAPL): D(-3)}))
    assert (d.kind, d.cause, d.pct) == (Kind.QUANTITY_MISMATCH, Cause.EXTERNAL_CLOSE, D(40))


def test_live_executions_do_not_explain_ledger_vs_flex():
    """Flex and the ledger are the same day: today's live executions explain nothing
    between them."""
    d = one(
        {(ACC, AAPL): mine("2")},
        {},
        Evidence({(ACC, AAPL): D(-2)}),
        comparison=Comparison.LEDGER_VS_FLEX,
    )
    assert d.cause is Cause.EXTERNAL_CLOSE


def test_local_change_after_the_flex_report_is_timing_against_flex_only():
    """A position reconciliation closed after the Flex report differs from that report
    for that reason (TIMING); the key's live comparison is not excused by it."""
    evidence = Evidence(changed_after_flex=frozenset({(ACC, AAPL)}))
    against_flex = one(
        {}, {(ACC, AAPL): theirs("2")}, evidence, comparison=Comparison.LEDGER_VS_FLEX
    )
    assert (against_flex.kind, against_flex.cause) == (Kind.MISSING_LOCAL, Cause.TIMING)
    against_live = one({}, {(ACC, AAPL): theirs("2")}, evidence)
    assert against_live.cause is Cause.UNKNOWN


def test_all_matched():
    """Same quantities on both sides: no discrepancies; matched counts the keys."""
    book = {(ACC, AAPL): mine("100"), (OTHER_ACC, SPY): mine("-20", "SPY")}
    broker = {(ACC, AAPL): theirs("100"), (OTHER_ACC, SPY): theirs("-20", "SPY")}
    result = compare_books(LIVE, book, broker, ReconConfig())
    assert (result.discrepancies, result.matched) == ([], 2)


def test_manual_entry_at_ib_is_missing_local():
    """The broker holds what local state does not: MISSING_LOCAL, CRITICAL; no event
    explains it (UNKNOWN) and there is no local episode in the detail."""
    d = one({}, {(ACC, SPY): theirs("50", "SPY")})
    assert (d.kind, d.severity, d.cause) == (Kind.MISSING_LOCAL, Severity.CRITICAL, Cause.UNKNOWN)
    assert (d.local_value, d.broker_value, d.pct, d.symbol) == (D(0), D(50), D(100), "SPY")
    assert d.detail == {"asset_category": "STK"}


def test_partial_close_is_quantity_mismatch_with_its_pct():
    """10 local, 6 at the broker: (10 - 6) / 10 = 40%, CRITICAL, EXTERNAL_CLOSE."""
    d = one({(ACC, AAPL): mine("10")}, {(ACC, AAPL): theirs("6")})
    assert (d.kind, d.severity, d.cause) == (
        Kind.QUANTITY_MISMATCH,
        Severity.CRITICAL,
        Cause.EXTERNAL_CLOSE,
    )
    assert (d.local_value, d.broker_value, d.pct) == (D(10), D(6), D(40))


def test_small_partial_close_is_moderate():
    """100 local, 97 at the broker: 3%, MODERATE."""
    d = one({(ACC, AAPL): mine("100")}, {(ACC, AAPL): theirs("97")})
    assert (d.kind, d.severity, d.pct) == (Kind.QUANTITY_MISMATCH, Severity.MODERATE, D(3))


def test_broker_holding_more_is_not_an_external_close():
    """The broker holds more than local (103 vs 100): the pct is over the larger side
    (3/103) and nothing tells the cause."""
    d = one({(ACC, AAPL): mine("100")}, {(ACC, AAPL): theirs("103")})
    assert (d.severity, d.cause) == (Severity.MODERATE, Cause.UNKNOWN)
    assert d.pct == D(3) / D(103) * 100


def test_same_symbol_different_instrument_is_two_keys_named_as_twins():
    """Local AAPL stock, broker an AAPL option: keys are conids, so MISSING_BROKER for the
    stock and MISSING_LOCAL for the option, each pointing at the other conid."""
    result = compare_books(
        LIVE,
        {(ACC, AAPL): mine("100")},
        {(ACC, AAPL_CALL): theirs("1", "AAPL", "OPT")},
        ReconConfig(),
    )
    by_kind = {d.kind: d for d in result.discrepancies}
    assert set(by_kind) == {Kind.MISSING_BROKER, Kind.MISSING_LOCAL}
    assert len(result.discrepancies) == 2
    gone, extra = by_kind[Kind.MISSING_BROKER], by_kind[Kind.MISSING_LOCAL]
    assert (gone.subject, gone.local_value, gone.broker_value) == (AAPL, D(100), D(0))
    assert (extra.subject, extra.local_value, extra.broker_value) == (AAPL_CALL, D(0), D(1))
    assert gone.detail["same_symbol_other_conid"] == [AAPL_CALL]
    assert extra.detail["same_symbol_other_conid"] == [AAPL]
    assert extra.detail["asset_category"] == "OPT"


def test_same_symbol_in_another_account_is_not_a_twin():
    """Twins are within one account: AAPL missing in one account and extra in another
    are unrelated."""
    result = compare_books(
        LIVE, {(ACC, AAPL): mine("100")}, {(OTHER_ACC, AAPL_CALL): theirs("1")}, ReconConfig()
    )
    assert len(result.discrepancies) == 2
    assert all("same_symbol_other_conid" not in d.detail for d in result.discrepancies)


def test_spread_with_a_missing_leg_flags_the_strategy():
    """A two-leg spread whose short leg is gone at the broker: the leg is MISSING_BROKER
    and the strategy gets one CRITICAL MISSING_LEG naming the missing leg (values: legs
    locally, legs at the broker)."""
    spread = "order 77"
    local = {
        (ACC, "1001"): mine("1", "SPY 450C", strategy=spread),
        (ACC, "1002"): mine("-1", "SPY 460C", strategy=spread),
    }
    result = compare_books(LIVE, local, {(ACC, "1001"): theirs("1", "SPY 450C")}, ReconConfig())
    assert result.matched == 1
    leg, whole = result.discrepancies
    assert (leg.kind, leg.subject, leg.local_value) == (Kind.MISSING_BROKER, "1002", D(-1))
    assert leg.detail["strategy"] == spread
    assert (whole.kind, whole.severity, whole.subject) == (
        Kind.MISSING_LEG,
        Severity.CRITICAL,
        spread,
    )
    assert (whole.local_value, whole.broker_value) == (D(2), D(1))
    assert whole.detail == {"legs": ["1001", "1002"], "missing_legs": ["1002"]}


def test_spread_with_a_resized_leg_is_not_a_missing_leg():
    """A leg with a different quantity is a QUANTITY_MISMATCH of that leg only."""
    local = {
        (ACC, "1001"): mine("2", strategy="order 77"),
        (ACC, "1002"): mine("-2", strategy="order 77"),
    }
    broker = {(ACC, "1001"): theirs("2"), (ACC, "1002"): theirs("-1")}
    result = compare_books(LIVE, local, broker, ReconConfig())
    assert [x.kind for x in result.discrepancies] == [Kind.QUANTITY_MISMATCH]


def test_side_mismatch_is_critical_whatever_the_size():
    """Long 5 locally, short 5 at the broker: SIDE_MISMATCH, CRITICAL, pct 10/5 = 200%."""
    d = one({(ACC, AAPL): mine("5")}, {(ACC, AAPL): theirs("-5")})
    assert (d.kind, d.severity, d.pct) == (Kind.SIDE_MISMATCH, Severity.CRITICAL, D(200))
    assert (d.local_value, d.broker_value) == (D(5), D(-5))


def test_opening_balance_history_is_data_gap():
    """A position opened from the first report's positions has history before it: a
    difference the executions do not explain is a DATA_GAP."""
    d = one({(ACC, AAPL): mine("100", opening_balance=True)}, {(ACC, AAPL): theirs("80")})
    assert (d.kind, d.severity, d.cause, d.pct) == (
        Kind.QUANTITY_MISMATCH,
        Severity.CRITICAL,
        Cause.DATA_GAP,
        D(20),
    )


@pytest.mark.parametrize(
    ("local", "broker", "pct", "severity"),
    [
        ("100000", "99001", "0.999", Severity.MINOR),  # just under 1%
        ("100", "99", "1", Severity.MODERATE),  # exactly 1%
        ("100", "95", "5", Severity.MODERATE),  # exactly 5%
        ("100000", "94999", "5.001", Severity.CRITICAL),  # just over 5%
        ("-100", "-95", "5", Severity.MODERATE),  # shorts grade the same way
    ],
)
def test_severity_boundaries_with_default_thresholds(local, broker, pct, severity):
    """MINOR below 1%, MODERATE from 1% to 5% inclusive, CRITICAL above 5%."""
    d = one({(ACC, AAPL): mine(local)}, {(ACC, AAPL): theirs(broker)})
    assert (d.kind, d.pct, d.severity) == (Kind.QUANTITY_MISMATCH, D(pct), severity)


@pytest.mark.parametrize(
    ("local", "broker", "severity"),
    [
        ("10000", "9951", Severity.MINOR),  # 0.49%
        ("1000", "995", Severity.MODERATE),  # exactly 0.5%
        ("100", "98", Severity.MODERATE),  # exactly 2%
        ("10000", "9799", Severity.CRITICAL),  # 2.01%
    ],
)
def test_severity_boundaries_with_custom_thresholds(local, broker, severity):
    """Configured thresholds (0.5% and 2%) move both boundaries, inclusive the same way."""
    config = ReconConfig(minor_below_pct=D("0.5"), critical_above_pct=D(2))
    d = one({(ACC, AAPL): mine(local)}, {(ACC, AAPL): theirs(broker)}, config=config)
    assert d.severity is severity


def test_pct_difference_and_grade():
    """pct is symmetric, over the larger magnitude, 0 when both are flat."""
    assert pct_difference(D(0), D(0)) == 0
    assert pct_difference(D(80), D(100)) == pct_difference(D(100), D(80)) == D(20)
    assert grade(D("0.99"), ReconConfig()) is Severity.MINOR
    assert grade(D("5.01"), ReconConfig()) is Severity.CRITICAL
