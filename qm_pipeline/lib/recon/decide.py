"""Which strategy handles each discrepancy, and which discrepancies may act at all.

Only the freshest comparison of local state with the broker acts: ledger vs live when the
account has a usable live snapshot newer than its Flex report, else ledger vs Flex. The
other position comparisons (and Flex vs live) are recorded for the report, not acted on:
acting on an older broker view would undo what a newer one showed.

A difference that today's executions explain (cause TIMING) is expected until the next
Flex report brings those trades into the ledger, so it is recorded but not acted on,
unless the executions were placed by hand in TWS or were liquidations (DOMAIN.md section
4: act only after a quiet period); an order record lagging the broker is exactly what
SYNC_TO_BROKER fixes, so orders act whatever the cause. Cash has no local state to sync:
SYNC strategies record it, HALT_AND_ALERT still halts. SYNC_TO_LOCAL proposes orders for
positions only.
"""

from __future__ import annotations

from dataclasses import dataclass

from qm_pipeline.lib.recon.config import ReconConfig
from qm_pipeline.lib.recon.model import Cause, Comparison, Discrepancy, Kind, Strategy

POSITION_COMPARISONS = (
    Comparison.LEDGER_VS_FLEX,
    Comparison.LEDGER_VS_LIVE,
    Comparison.FLEX_VS_LIVE,
)


@dataclass(frozen=True)
class Decision:
    discrepancy: Discrepancy
    strategy: Strategy  # what the configuration says for its severity and account
    acts: bool  # whether the strategy acts on it (else it is only recorded)
    reason: str  # why it does not act, for the report ("" when it acts)


def actionable_comparison(account: str, live_accounts: set[str]) -> Comparison:
    return Comparison.LEDGER_VS_LIVE if account in live_accounts else Comparison.LEDGER_VS_FLEX


def decide(
    discrepancy: Discrepancy,
    config: ReconConfig,
    live_accounts: set[str],
    external: set[tuple[str, str]],
) -> Decision:
    """`live_accounts`: accounts the live side covers (and is newer than Flex for);
    `external`: (account, conid) keys with executions placed by hand or liquidations."""
    d = discrepancy
    strategy = config.strategy(d.account_id, d.severity)
    if d.comparison in POSITION_COMPARISONS and d.comparison is not actionable_comparison(
        d.account_id, live_accounts
    ):
        return Decision(d, strategy, False, "informational: a fresher comparison acts")
    if (
        d.cause is Cause.TIMING
        and d.comparison is not Comparison.ORDERS
        and (d.account_id, d.subject) not in external
    ):
        return Decision(d, strategy, False, "expected: explained by today's executions")
    if d.kind is Kind.MISSING_LEG and strategy is not Strategy.HALT_AND_ALERT:
        return Decision(d, strategy, False, "the legs are handled one by one")
    if d.kind is Kind.CASH_MISMATCH and strategy in (
        Strategy.SYNC_TO_BROKER,
        Strategy.SYNC_TO_LOCAL,
    ):
        return Decision(d, strategy, False, "cash has no local state to sync")
    if strategy is Strategy.SYNC_TO_LOCAL and d.comparison not in POSITION_COMPARISONS:
        return Decision(d, strategy, False, "only positions are proposed as orders")
    if strategy is Strategy.WARN_ONLY:
        return Decision(d, strategy, False, "")
    return Decision(d, strategy, True, "")
