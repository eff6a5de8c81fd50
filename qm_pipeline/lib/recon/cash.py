"""Cash reconciliation per account and currency: the roll-forward of recorded events
against CashReport's ending cash, and CashReport against the live cash balances.

Roll-forward: first starting cash + trades' net cash (commissions included, as IB books
them) + the other leg of FX trades + cash transactions (dividends, withholding, interest,
fees, deposits and withdrawals) + cash transfers. A difference counts only beyond the
tolerance: max(pct of the larger amount, the currency's absolute floor) (DOMAIN.md
section 4: default 1%, floor per currency).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from qm_pipeline.lib.recon.config import ReconConfig
from qm_pipeline.lib.recon.model import Cause, Comparison, Discrepancy, Kind, Severity
from qm_pipeline.lib.recon.positions import HUNDRED, pct_difference

FLOWS = ("trades", "fx_legs", "cash_transactions", "transfers")


def roll_forward(amounts: Mapping[str, object]) -> Decimal:
    start = amounts["starting_cash"] or Decimal(0)
    return start + sum((amounts[name] for name in FLOWS), Decimal(0))


def within(local: Decimal, broker: Decimal, currency: str, config: ReconConfig) -> bool:
    allowed = max(
        max(abs(local), abs(broker)) * config.cash_tolerance_pct / HUNDRED,
        config.cash_floor(currency),
    )
    return abs(local - broker) <= allowed


def _compare(
    comparison: Comparison,
    pairs: Mapping[tuple[str, str], tuple[Decimal, Decimal, dict]],
    config: ReconConfig,
    traded: set[str] = frozenset(),
) -> tuple[list[Discrepancy], int]:
    """(discrepancies, currencies within tolerance) of (local, broker, detail) amounts;
    differences in `traded` accounts (executions since the Flex report) are TIMING."""
    found, matched = [], 0
    for (account, currency), (local, broker, detail) in sorted(pairs.items()):
        if within(local, broker, currency, config):
            matched += 1
            continue
        pct = pct_difference(local, broker)
        severity = Severity.CRITICAL if pct > config.critical_above_pct else Severity.MODERATE
        found.append(
            Discrepancy(
                comparison,
                Kind.CASH_MISMATCH,
                severity,
                account,
                currency,
                local,
                broker,
                Cause.TIMING if account in traded else Cause.UNKNOWN,
                currency,
                pct,
                detail,
            )
        )
    return found, matched


def compare_roll_forward(
    rolls: Mapping[tuple[str, str], Mapping], config: ReconConfig
) -> tuple[list[Discrepancy], int]:
    pairs = {
        key: (
            roll_forward(amounts),
            amounts["ending_cash"],
            {k: amounts[k] for k in ("from_date", "to_date", "starting_cash", *FLOWS)},
        )
        for key, amounts in rolls.items()
        if amounts["ending_cash"] is not None
    }
    return _compare(Comparison.CASH_ROLL_VS_FLEX, pairs, config)


def compare_live_cash(
    rolls: Mapping[tuple[str, str], Mapping],
    live: Mapping[tuple[str, str], Decimal],
    accounts: set[str],
    traded: set[str],
    config: ReconConfig,
) -> tuple[list[Discrepancy], int]:
    """CashReport's latest ending cash vs the live CashBalance of the accounts the
    snapshot covered; a currency on one side only counts as zero on the other. Accounts
    that traded since the report differ for that reason alone (cause TIMING). A currency
    whose ending cash the report left unknown is not compared: unknown is not zero."""
    flex = {
        k: v["ending_cash"]
        for k, v in rolls.items()
        if k[0] in accounts and v["ending_cash"] is not None
    }
    unknown = {k for k, v in rolls.items() if v["ending_cash"] is None}
    zero = Decimal(0)
    pairs = {
        key: (
            flex.get(key, zero),
            live.get(key, zero),
            {"flex_to_date": rolls.get(key, {}).get("to_date")},
        )
        for key in flex.keys() | {k for k in live if k[0] in accounts and k not in unknown}
    }
    return _compare(Comparison.CASH_FLEX_VS_LIVE, pairs, config, traded)
