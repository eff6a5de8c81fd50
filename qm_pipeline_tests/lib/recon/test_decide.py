"""Which strategy handles a discrepancy and whether it acts: the configured strategy per
severity and account, and the rules that keep a strategy from acting (informational
comparisons, expected TIMING, cash, missing legs, SYNC_TO_LOCAL on positions only).
The issue's scenarios run from compare_books through decide.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from qm_pipeline.lib.recon.config import ReconConfig
from qm_pipeline.lib.recon.decide import decide
from qm_pipeline.lib.recon.model import (
    Cause,
    Comparison,
    Discrepancy,
    Holding,
    Kind,
    Severity,
    Strategy,
)
from qm_pipeline.lib.recon.positions import Evidence, compare_books

ACC, OTHER_ACC = "U1234567", "U7654321"
AAPL, SPY = "265598", "756733"
LIVE_ACCOUNTS = {ACC}
D = Decimal
SYNC = ReconConfig().with_strategy(Strategy.SYNC_TO_BROKER)
TO_LOCAL = ReconConfig().with_strategy(Strategy.SYNC_TO_LOCAL)
HALT = ReconConfig().with_strategy(Strategy.HALT_AND_ALERT)


def gap(
    kind: Kind = Kind.MISSING_BROKER,
    severity: Severity = Severity.CRITICAL,
    comparison: Comparison = Comparison.LEDGER_VS_LIVE,
    cause: Cause = Cause.EXTERNAL_CLOSE,
    account: str = ACC,
    subject: str = AAPL,
) -> Discrepancy:
    return Discrepancy(comparison, kind, severity, account, subject, D(2), D(0), cause)


def verdict(d: Discrepancy, config: ReconConfig = SYNC, external=frozenset()):
    decision = decide(d, config, LIVE_ACCOUNTS, set(external))
    return decision.strategy, decision.acts, decision.reason


# The scenarios, end to end through the pure functions.


def _scenario(executed: dict | None = None) -> Discrepancy:
    """Local 2 AAPL, live flat, optionally with today's executions."""
    (d,) = compare_books(
        Comparison.LEDGER_VS_LIVE,
        {(ACC, AAPL): Holding(D(2), "AAPL")},
        {},
        ReconConfig(),
        Evidence(executed or {}),
    ).discrepancies
    return d


def test_manual_close_in_tws_halts_by_default_and_syncs_when_configured():
    """CRITICAL MISSING_BROKER: HALT_AND_ALERT acts by default; SYNC_TO_BROKER acts when
    configured."""
    d = _scenario()
    assert verdict(d, ReconConfig()) == (Strategy.HALT_AND_ALERT, True, "")
    assert verdict(d, SYNC) == (Strategy.SYNC_TO_BROKER, True, "")


def test_manual_close_with_a_tws_execution_still_acts():
    """A client-0 execution explains the close (TIMING), but the key is external (placed
    by hand), so SYNC_TO_BROKER still acts on it."""
    d = _scenario({(ACC, AAPL): D(-2)})
    assert d.cause is Cause.TIMING
    assert verdict(d, SYNC, {(ACC, AAPL)}) == (Strategy.SYNC_TO_BROKER, True, "")


def test_margin_call_liquidation_acts():
    """A liquidation execution closing 100 SPY: TIMING and external, so it acts."""
    (d,) = compare_books(
        Comparison.LEDGER_VS_LIVE,
        {(ACC, SPY): Holding(D(100), "SPY")},
        {},
        ReconConfig(),
        Evidence({(ACC, SPY): D(-100)}),
    ).discrepancies
    assert (d.kind, d.cause) == (Kind.MISSING_BROKER, Cause.TIMING)
    assert verdict(d, SYNC, {(ACC, SPY)}) == (Strategy.SYNC_TO_BROKER, True, "")


def test_timing_from_the_applications_own_executions_is_expected():
    """TIMING the bot's own executions explain is expected until the next Flex report
    brings them into the ledger: recorded, not acted on."""
    d = _scenario({(ACC, AAPL): D(-2)})
    assert verdict(d, SYNC) == (
        Strategy.SYNC_TO_BROKER,
        False,
        "expected: explained by today's executions",
    )
    assert verdict(d, HALT)[1] is False


# Strategies per severity and account.


@pytest.mark.parametrize(
    ("severity", "strategy", "acts"),
    [
        (Severity.MINOR, Strategy.WARN_ONLY, False),
        (Severity.MODERATE, Strategy.WARN_ONLY, False),
        (Severity.CRITICAL, Strategy.HALT_AND_ALERT, True),
    ],
)
def test_default_strategies(severity, strategy, acts):
    """Defaults: WARN_ONLY records (no reason needed), HALT_AND_ALERT acts on CRITICAL."""
    d = gap(Kind.QUANTITY_MISMATCH, severity)
    assert verdict(d, ReconConfig()) == (strategy, acts, "")


def test_account_override_applies_to_that_account_only():
    """U1234567 syncs its CRITICAL breaks; another account keeps the default halt."""
    config = ReconConfig(account_strategies={ACC: {Severity.CRITICAL: Strategy.SYNC_TO_BROKER}})
    assert verdict(gap(), config)[0] is Strategy.SYNC_TO_BROKER
    other = gap(account=OTHER_ACC, comparison=Comparison.LEDGER_VS_FLEX)
    assert verdict(other, config) == (Strategy.HALT_AND_ALERT, True, "")


# Which comparison acts.


def test_only_the_freshest_comparison_acts():
    """A live account acts on ledger vs live; its ledger vs Flex row is informational.
    An account without a newer live view acts on ledger vs Flex; its ledger vs live row
    is informational. Flex vs live never acts."""
    info = "informational: a fresher comparison acts"
    acting = (Strategy.SYNC_TO_BROKER, True, "")
    assert verdict(gap(comparison=Comparison.LEDGER_VS_LIVE)) == acting
    assert verdict(gap(comparison=Comparison.LEDGER_VS_FLEX))[1:] == (False, info)
    stale = OTHER_ACC
    assert verdict(gap(comparison=Comparison.LEDGER_VS_FLEX, account=stale))[1] is True
    assert verdict(gap(comparison=Comparison.LEDGER_VS_LIVE, account=stale))[1:] == (False, info)
    for account in (ACC, OTHER_ACC):
        d = gap(comparison=Comparison.FLEX_VS_LIVE, account=account)
        assert verdict(d, HALT)[1:] == (False, info)


def test_informational_rows_keep_their_configured_strategy():
    """Not acting does not hide what the configuration would do."""
    d = gap(comparison=Comparison.FLEX_VS_LIVE)
    assert verdict(d, ReconConfig())[0] is Strategy.HALT_AND_ALERT


# Orders, cash, legs, SYNC_TO_LOCAL.


def test_orders_act_whatever_the_cause():
    """A lagging order record (ORPHAN_LOCAL_ORDER, TIMING) is what SYNC_TO_BROKER fixes."""
    d = gap(
        Kind.ORPHAN_LOCAL_ORDER, Severity.MODERATE, Comparison.ORDERS, Cause.TIMING, ACC, "bot-1"
    )
    assert verdict(d, SYNC) == (Strategy.SYNC_TO_BROKER, True, "")


@pytest.mark.parametrize("strategy", [Strategy.SYNC_TO_BROKER, Strategy.SYNC_TO_LOCAL])
def test_cash_is_not_synced(strategy):
    """Cash has no local state to sync: the SYNC strategies record it."""
    d = gap(
        Kind.CASH_MISMATCH,
        Severity.CRITICAL,
        Comparison.CASH_ROLL_VS_FLEX,
        Cause.UNKNOWN,
        ACC,
        "USD",
    )
    config = ReconConfig().with_strategy(strategy)
    assert verdict(d, config) == (strategy, False, "cash has no local state to sync")


def test_cash_still_halts():
    d = gap(
        Kind.CASH_MISMATCH,
        Severity.CRITICAL,
        Comparison.CASH_FLEX_VS_LIVE,
        Cause.UNKNOWN,
        ACC,
        "USD",
    )
    assert verdict(d, ReconConfig()) == (Strategy.HALT_AND_ALERT, True, "")


def test_cash_timing_is_expected():
    """Live cash of an account that traded (TIMING) is expected, even under HALT."""
    d = gap(
        Kind.CASH_MISMATCH,
        Severity.CRITICAL,
        Comparison.CASH_FLEX_VS_LIVE,
        Cause.TIMING,
        ACC,
        "USD",
    )
    assert verdict(d, HALT)[1:] == (False, "expected: explained by today's executions")


def test_missing_leg_only_halts():
    """A strategy's MISSING_LEG halts the run; the SYNC strategies handle its legs one by
    one instead."""
    d = gap(Kind.MISSING_LEG, Severity.CRITICAL, cause=Cause.UNKNOWN, subject="order 77")
    assert verdict(d, HALT) == (Strategy.HALT_AND_ALERT, True, "")
    for config in (SYNC, TO_LOCAL):
        assert verdict(d, config)[1:] == (False, "the legs are handled one by one")


def test_sync_to_local_proposes_for_positions_only():
    """SYNC_TO_LOCAL acts on position breaks and records order breaks."""
    assert verdict(gap(), TO_LOCAL) == (Strategy.SYNC_TO_LOCAL, True, "")
    order = gap(
        Kind.ORPHAN_BROKER_ORDER, comparison=Comparison.ORDERS, cause=Cause.UNKNOWN, subject="5555"
    )
    assert verdict(order, TO_LOCAL) == (
        Strategy.SYNC_TO_LOCAL,
        False,
        "only positions are proposed as orders",
    )
