"""Reconciliation settings from the environment: defaults from DOMAIN.md section 4,
strategies per severity and per account, and bad values refused with a ValueError that
names the variable.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from qm_pipeline.lib.recon.config import (
    DEFAULT_STRATEGIES,
    ReconConfig,
    config_from_env,
    parse_strategies,
)
from qm_pipeline.lib.recon.model import Severity, Strategy

ACC = "U1234567"
D = Decimal


def test_defaults():
    """No variables: 1% / 5% thresholds, 1% cash tolerance with a 1.00 floor, MINOR and
    MODERATE recorded, CRITICAL halting, no order submission."""
    config = config_from_env({})
    assert (config.minor_below_pct, config.critical_above_pct, config.cash_tolerance_pct) == (
        D(1),
        D(5),
        D(1),
    )
    assert config.cash_floor("USD") == D("1.00")
    assert dict(config.strategies) == {
        Severity.MINOR: Strategy.WARN_ONLY,
        Severity.MODERATE: Strategy.WARN_ONLY,
        Severity.CRITICAL: Strategy.HALT_AND_ALERT,
    }
    assert config.account_strategies == {}
    assert config.allow_order_submission is False


def test_parse_strategies_defaults_and_account_overrides():
    """Unnamed severities keep their default; `ACCOUNT:SEVERITY=...` is that account's own;
    names are case-insensitive and spaces around items are ignored."""
    defaults, accounts = parse_strategies(
        " critical=sync_to_broker , U1234567:CRITICAL=HALT_AND_ALERT,U1234567:minor=Warn_Only,"
    )
    assert defaults == {**DEFAULT_STRATEGIES, Severity.CRITICAL: Strategy.SYNC_TO_BROKER}
    assert accounts == {
        ACC: {Severity.CRITICAL: Strategy.HALT_AND_ALERT, Severity.MINOR: Strategy.WARN_ONLY}
    }


def test_parse_strategies_does_not_change_the_shared_defaults():
    parse_strategies("MINOR=HALT_AND_ALERT")
    assert DEFAULT_STRATEGIES[Severity.MINOR] is Strategy.WARN_ONLY


def test_account_strategy_falls_back_to_the_default_per_severity():
    """An account override covers its severities only; other accounts use the defaults."""
    config = config_from_env({"QM_RECON_STRATEGIES": "U1234567:MODERATE=SYNC_TO_BROKER"})
    assert config.strategy(ACC, Severity.MODERATE) is Strategy.SYNC_TO_BROKER
    assert config.strategy(ACC, Severity.CRITICAL) is Strategy.HALT_AND_ALERT
    assert config.strategy("U7654321", Severity.MODERATE) is Strategy.WARN_ONLY


def test_every_variable_is_read():
    config = config_from_env(
        {
            "QM_RECON_MINOR_PCT": "0.5",
            "QM_RECON_CRITICAL_PCT": "2",
            "QM_RECON_CASH_PCT": "0.25",
            "QM_RECON_CASH_FLOORS": "usd=5, JPY=500",
            "QM_RECON_ALLOW_ORDERS": "yes",
        }
    )
    assert (config.minor_below_pct, config.critical_above_pct, config.cash_tolerance_pct) == (
        D("0.5"),
        D(2),
        D("0.25"),
    )
    assert (config.cash_floor("USD"), config.cash_floor("JPY"), config.cash_floor("EUR")) == (
        D(5),
        D(500),
        D("1.00"),
    )
    assert config.allow_order_submission is True


@pytest.mark.parametrize(
    ("text", "allowed"),
    [("1", True), ("TRUE", True), ("on", True), ("", False), ("no", False), ("0", False)],
)
def test_order_submission_needs_an_explicit_yes(text, allowed):
    assert config_from_env({"QM_RECON_ALLOW_ORDERS": text}).allow_order_submission is allowed


def test_with_strategy_overrides_every_severity_and_account():
    """`qm reconcile --strategy X`: X for every severity, account overrides dropped."""
    config = config_from_env({"QM_RECON_STRATEGIES": "U1234567:MINOR=HALT_AND_ALERT"})
    forced = config.with_strategy(Strategy.SYNC_TO_BROKER)
    assert {forced.strategy(ACC, s) for s in Severity} == {Strategy.SYNC_TO_BROKER}
    assert config.strategy(ACC, Severity.MINOR) is Strategy.HALT_AND_ALERT  # unchanged


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("QM_RECON_STRATEGIES", "CRITICAL=PANIC", "'PANIC' is not one of WARN_ONLY"),
        ("QM_RECON_STRATEGIES", "SEVERE=WARN_ONLY", "'SEVERE' is not one of MINOR"),
        ("QM_RECON_STRATEGIES", "U1234567:=WARN_ONLY", "'' is not one of MINOR"),
        ("QM_RECON_STRATEGIES", "CRITICAL", "expected NAME=VALUE, got 'CRITICAL'"),
        ("QM_RECON_STRATEGIES", "MINOR=", "expected NAME=VALUE"),
        ("QM_RECON_MINOR_PCT", "one", "'one' is not a number"),
        ("QM_RECON_CRITICAL_PCT", "-5", "'-5' is negative"),
        ("QM_RECON_CRITICAL_PCT", "nan", "'nan' is not a finite number"),
        ("QM_RECON_CASH_PCT", "Infinity", "'Infinity' is not a finite number"),
        ("QM_RECON_CASH_FLOORS", "USD=5,EUR", "expected NAME=VALUE, got 'EUR'"),
        ("QM_RECON_CASH_FLOORS", "USD=five", "'five' is not a number"),
    ],
)
def test_bad_values_name_the_variable(name, value, message):
    """Every bad setting is a ValueError starting with the variable's name."""
    with pytest.raises(ValueError, match=f"^{name}: .*") as error:
        config_from_env({name: value})
    assert message in str(error.value)


def test_minor_threshold_above_critical_is_refused():
    with pytest.raises(ValueError, match="QM_RECON_MINOR_PCT must not exceed"):
        config_from_env({"QM_RECON_MINOR_PCT": "6"})


def test_direct_config_defaults_match_the_environment_defaults():
    """ReconConfig() and config_from_env({}) are the same settings."""
    assert ReconConfig() == config_from_env({})
