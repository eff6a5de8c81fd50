"""Position reconciliation: two books of (account, conid) -> quantity, every difference
typed, graded and, where the data can tell, explained.

Keys are (account, conid), never symbols (DOMAIN.md section 3), so the same symbol on two
instruments is two keys. Severity follows DOMAIN.md section 4: pct = |local - broker| /
max(|local|, |broker|); missing positions and side mismatches are CRITICAL whatever their
size. Multi-leg strategies reconcile leg by leg; a missing leg also flags its strategy.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from qm_pipeline.lib.recon.config import ReconConfig
from qm_pipeline.lib.recon.model import (
    Book,
    Cause,
    Comparison,
    Discrepancy,
    Holding,
    Key,
    Kind,
    Severity,
)

HUNDRED = Decimal(100)
ZERO = Decimal(0)
MISSING = (Kind.MISSING_LOCAL, Kind.MISSING_BROKER)


def pct_difference(local: Decimal, broker: Decimal) -> Decimal:
    """|local - broker| / max(|local|, |broker|), in percent (0 when both are 0)."""
    largest = max(abs(local), abs(broker))
    return abs(local - broker) / largest * HUNDRED if largest else ZERO


def grade(pct: Decimal, config: ReconConfig) -> Severity:
    if pct > config.critical_above_pct:
        return Severity.CRITICAL
    return Severity.MINOR if pct < config.minor_below_pct else Severity.MODERATE


@dataclass(frozen=True)
class Evidence:
    """What can explain a difference: executions newer than the older side (today's live
    fills not yet in Flex), and local changes reconciliation made after the Flex report."""

    executed: Mapping[Key, Decimal] = field(default_factory=dict)  # signed net quantity
    changed_after_flex: frozenset[Key] = frozenset()

    def cause(
        self, comparison: Comparison, key: Key, local: Holding | None, broker: Holding | None
    ) -> Cause:
        have = local.quantity if local else ZERO
        held = broker.quantity if broker else ZERO
        if comparison is Comparison.LEDGER_VS_FLEX and key in self.changed_after_flex:
            return Cause.TIMING
        if (
            comparison is not Comparison.LEDGER_VS_FLEX
            and key in self.executed
            and (have + self.executed[key] == held)
        ):
            return Cause.TIMING
        if local is not None and local.opening_balance:
            return Cause.DATA_GAP
        if abs(held) < abs(have) or (have and held and (have > 0) != (held > 0)):
            return Cause.EXTERNAL_CLOSE
        return Cause.UNKNOWN


@dataclass
class PositionResult:
    discrepancies: list[Discrepancy]
    matched: int  # keys with the same non-zero quantity on both sides


def _kind(have: Decimal, held: Decimal) -> Kind:
    if not held:
        return Kind.MISSING_BROKER
    if not have:
        return Kind.MISSING_LOCAL
    return Kind.SIDE_MISMATCH if (have > 0) != (held > 0) else Kind.QUANTITY_MISMATCH


def _difference(
    comparison: Comparison,
    key: Key,
    local: Holding | None,
    broker: Holding | None,
    config: ReconConfig,
    evidence: Evidence,
) -> Discrepancy:
    have = local.quantity if local else ZERO
    held = broker.quantity if broker else ZERO
    kind, pct = _kind(have, held), pct_difference(have, held)
    severity = grade(pct, config) if kind is Kind.QUANTITY_MISMATCH else Severity.CRITICAL
    named = local or broker
    assert named is not None
    detail: dict = {"asset_category": named.asset_category}
    if local is not None:
        detail |= {
            "episode_id": local.episode_id,
            "opened_at": local.opened_at,
            "strategy": local.strategy,
        }
    if key in evidence.executed:
        detail["executed_since_flex"] = evidence.executed[key]
    return Discrepancy(
        comparison,
        kind,
        severity,
        key[0],
        key[1],
        have,
        held,
        evidence.cause(comparison, key, local, broker),
        (local and local.symbol) or (broker and broker.symbol),
        pct,
        detail,
    )


def _held(book: Book, accounts: set[str] | None) -> Book:
    return {k: h for k, h in book.items()
            if h.quantity and (accounts is None or k[0] in accounts)}


def compare_books(comparison: Comparison, local: Book, broker: Book, config: ReconConfig,
                  evidence: Evidence = Evidence(),
                  accounts: set[str] | None = None) -> PositionResult:
    """Every (account, conid) either side holds (of `accounts`; None: all) compared; zero
    quantities count as flat. Differences come sorted by (account, conid)."""
    local, broker = _held(local, accounts), _held(broker, accounts)
    found, matched = [], 0
    for key, mine in local.items():
        theirs = broker.get(key)
        if theirs is not None and mine.quantity == theirs.quantity:
            matched += 1
        else:
            found.append(_difference(comparison, key, mine, theirs, config, evidence))
    found += [_difference(comparison, key, None, theirs, config, evidence)
              for key, theirs in broker.items() if key not in local]
    found.sort(key=lambda d: (d.account_id, d.subject))
    found += _missing_legs(comparison, local, found)
    _note_same_symbol(found)
    return PositionResult(found, matched)


def _missing_legs(
    comparison: Comparison, local: Book, found: Iterable[Discrepancy]
) -> list[Discrepancy]:
    """One CRITICAL row per strategy (spread) with a leg local holds and the broker does
    not; a leg only the broker holds cannot be tied to a local strategy."""
    legs: dict[tuple[str, str], list[Key]] = defaultdict(list)
    for key, holding in local.items():
        if holding.strategy:
            legs[(key[0], holding.strategy)].append(key)
    flagged = []
    gone = {(d.account_id, d.subject) for d in found if d.kind in MISSING}
    for (account, strategy), keys in sorted(legs.items()):
        missing = sorted(conid for a, conid in keys if (a, conid) in gone)
        if missing:
            flagged.append(
                Discrepancy(
                    comparison,
                    Kind.MISSING_LEG,
                    Severity.CRITICAL,
                    account,
                    strategy,
                    Decimal(len(keys)),
                    Decimal(len(keys) - len(missing)),
                    Cause.UNKNOWN,
                    detail={"legs": sorted(c for _, c in keys), "missing_legs": missing},
                )
            )
    return flagged


def _note_same_symbol(found: list[Discrepancy]) -> None:
    """A MISSING_LOCAL and a MISSING_BROKER of one symbol in one account are two instruments
    (an option instead of its stock, another listing): say so beside both rows."""
    by_symbol: dict[tuple[str, str | None, Kind], list[Discrepancy]] = defaultdict(list)
    for d in found:
        if d.kind in MISSING and d.symbol:
            by_symbol[(d.account_id, d.symbol, d.kind)].append(d)
    for (account, symbol, kind), rows in by_symbol.items():
        other = Kind.MISSING_BROKER if kind is Kind.MISSING_LOCAL else Kind.MISSING_LOCAL
        twins = by_symbol.get((account, symbol, other), [])
        for d in rows:
            if twins:
                d.detail["same_symbol_other_conid"] = sorted(t.subject for t in twins)
