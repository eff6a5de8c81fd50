"""Reconciliation settings: thresholds, cash tolerance, and the strategy per severity and
account, from the environment or the command line.

Defaults follow DOMAIN.md section 4: MINOR below 1%, MODERATE 1-5%, CRITICAL above 5%;
cash tolerance 1% with an absolute floor per currency. The default strategies record
MINOR and MODERATE breaks (WARN_ONLY) and stop the pipeline on CRITICAL ones
(HALT_AND_ALERT): a bot must never act on a ghost position, and a person decides.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from typing import TypeVar

from qm_pipeline.lib.recon.model import Severity, Strategy

E = TypeVar("E", Severity, Strategy)

DEFAULT_STRATEGIES: dict[Severity, Strategy] = {
    Severity.MINOR: Strategy.WARN_ONLY,
    Severity.MODERATE: Strategy.WARN_ONLY,
    Severity.CRITICAL: Strategy.HALT_AND_ALERT,
}
DEFAULT_CASH_FLOOR = Decimal("1.00")  # per currency unit, when no floor is configured


@dataclass(frozen=True)
class ReconConfig:
    minor_below_pct: Decimal = Decimal(1)
    critical_above_pct: Decimal = Decimal(5)
    cash_tolerance_pct: Decimal = Decimal(1)
    cash_floors: Mapping[str, Decimal] = field(default_factory=dict)  # currency -> amount
    strategies: Mapping[Severity, Strategy] = field(
        default_factory=lambda: dict(DEFAULT_STRATEGIES)
    )
    account_strategies: Mapping[str, Mapping[Severity, Strategy]] = field(default_factory=dict)
    allow_order_submission: bool = False  # SYNC_TO_LOCAL only proposes unless this is on

    def strategy(self, account_id: str, severity: Severity) -> Strategy:
        """The account's own choice for this severity, else the default one."""
        chosen = self.account_strategies.get(account_id, {}).get(severity)
        return chosen or self.strategies[severity]

    def cash_floor(self, currency: str) -> Decimal:
        return self.cash_floors.get(currency, DEFAULT_CASH_FLOOR)

    def with_strategy(self, strategy: Strategy) -> ReconConfig:
        """Every severity of every account handled by one strategy (`qm reconcile
        --strategy`)."""
        return replace(self, strategies=dict.fromkeys(Severity, strategy), account_strategies={})


def _pairs(text: str, what: str) -> list[tuple[str, str]]:
    pairs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise ValueError(f"{what}: expected NAME=VALUE, got {item!r}")
        pairs.append((name.strip(), value.strip()))
    return pairs


def _enum(kind: type[E], text: str, what: str) -> E:
    try:
        return kind(text.upper())
    except ValueError:
        choices = ", ".join(m.value for m in kind)
        raise ValueError(f"{what}: {text!r} is not one of {choices}") from None


def _decimal(text: str, what: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{what}: {text!r} is not a number") from None
    if not value.is_finite():  # NaN would raise InvalidOperation at the comparison below
        raise ValueError(f"{what}: {text!r} is not a finite number")
    if value < 0:
        raise ValueError(f"{what}: {text!r} is negative")
    return value


def parse_strategies(text: str) -> tuple[dict[Severity, Strategy], dict[str, dict]]:
    """`MINOR=WARN_ONLY,CRITICAL=SYNC_TO_BROKER,U1234567:CRITICAL=HALT_AND_ALERT` ->
    (defaults by severity, per-account overrides)."""
    defaults: dict[Severity, Strategy] = dict(DEFAULT_STRATEGIES)
    accounts: dict[str, dict[Severity, Strategy]] = {}
    for name, value in _pairs(text, "QM_RECON_STRATEGIES"):
        account, _, severity = name.rpartition(":")
        target = accounts.setdefault(account, {}) if account else defaults
        target[_enum(Severity, severity, "QM_RECON_STRATEGIES")] = _enum(
            Strategy, value, "QM_RECON_STRATEGIES"
        )
    return defaults, accounts


def config_from_env(environ: Mapping[str, str] = os.environ) -> ReconConfig:
    """QM_RECON_STRATEGIES, QM_RECON_MINOR_PCT, QM_RECON_CRITICAL_PCT, QM_RECON_CASH_PCT,
    QM_RECON_CASH_FLOORS ("USD=5,EUR=5"), QM_RECON_ALLOW_ORDERS ("yes" to submit)."""
    strategies, accounts = parse_strategies(environ.get("QM_RECON_STRATEGIES", ""))
    floors = {
        c.upper(): _decimal(v, "QM_RECON_CASH_FLOORS")
        for c, v in _pairs(environ.get("QM_RECON_CASH_FLOORS", ""), "QM_RECON_CASH_FLOORS")
    }
    config = ReconConfig(
        minor_below_pct=_decimal(environ.get("QM_RECON_MINOR_PCT", "1"), "QM_RECON_MINOR_PCT"),
        critical_above_pct=_decimal(
            environ.get("QM_RECON_CRITICAL_PCT", "5"), "QM_RECON_CRITICAL_PCT"
        ),
        cash_tolerance_pct=_decimal(environ.get("QM_RECON_CASH_PCT", "1"), "QM_RECON_CASH_PCT"),
        cash_floors=floors,
        strategies=strategies,
        account_strategies=accounts,
        allow_order_submission=environ.get("QM_RECON_ALLOW_ORDERS", "").lower()
        in ("1", "yes", "true", "on"),
    )
    if config.minor_below_pct > config.critical_above_pct:
        raise ValueError("QM_RECON_MINOR_PCT must not exceed QM_RECON_CRITICAL_PCT")
    return config
