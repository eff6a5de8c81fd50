"""The words of reconciliation: what was compared, what differs, how badly, and what to do.

Vocabulary from DOMAIN.md section 4: discrepancy types, severities (MINOR < 1%, MODERATE
1-5%, CRITICAL > 5% or missing or side mismatch), likely causes and strategies. Quantities
and money are `Decimal`; nothing here touches the warehouse.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any


class Kind(StrEnum):
    QUANTITY_MISMATCH = "QUANTITY_MISMATCH"
    MISSING_LOCAL = "MISSING_LOCAL"  # the broker holds it, local state does not
    MISSING_BROKER = "MISSING_BROKER"  # local state holds it, the broker does not
    SIDE_MISMATCH = "SIDE_MISMATCH"
    MISSING_LEG = "MISSING_LEG"  # a multi-leg strategy with a leg missing on one side
    CASH_MISMATCH = "CASH_MISMATCH"
    ORPHAN_LOCAL_ORDER = "ORPHAN_LOCAL_ORDER"  # pending locally, not working at the broker
    ORPHAN_BROKER_ORDER = "ORPHAN_BROKER_ORDER"  # working at the broker, unknown locally
    STATUS_MISMATCH = "STATUS_MISMATCH"


class Severity(StrEnum):
    MINOR = "MINOR"
    MODERATE = "MODERATE"
    CRITICAL = "CRITICAL"


class Cause(StrEnum):
    TIMING = "TIMING"  # explained by events newer than the older side (today's executions)
    EXTERNAL_CLOSE = "EXTERNAL_CLOSE"  # no recorded event explains it
    DATA_GAP = "DATA_GAP"  # the position's history starts before the first report
    UNKNOWN = "UNKNOWN"


class Strategy(StrEnum):
    WARN_ONLY = "WARN_ONLY"
    SYNC_TO_BROKER = "SYNC_TO_BROKER"
    HALT_AND_ALERT = "HALT_AND_ALERT"
    SYNC_TO_LOCAL = "SYNC_TO_LOCAL"


class Comparison(StrEnum):
    """Which two sides a discrepancy is between; local is always named first."""

    LEDGER_VS_FLEX = "LEDGER_VS_FLEX"  # ledger.positions vs Flex end of day
    LEDGER_VS_LIVE = "LEDGER_VS_LIVE"  # ledger.positions vs the latest live snapshot
    FLEX_VS_LIVE = "FLEX_VS_LIVE"  # Flex end of day vs the latest live snapshot
    CASH_ROLL_VS_FLEX = "CASH_ROLL_VS_FLEX"  # roll-forward vs CashReport ending cash
    CASH_FLEX_VS_LIVE = "CASH_FLEX_VS_LIVE"  # CashReport ending cash vs live cash
    ORDERS = "ORDERS"  # ledger.orders pending vs live open orders


@dataclass(frozen=True)
class Holding:
    """One side's quantity of an (account, conid), with what a report needs to name it."""

    quantity: Decimal
    symbol: str | None = None
    asset_category: str | None = None
    episode_id: str | None = None  # local only: the ledger.positions row
    opened_at: Any = None  # local only: when the episode opened
    opening_balance: bool = False  # local only: opened from the first report's positions
    strategy: str | None = None  # multi-leg group the position belongs to, if any


Key = tuple[str, str]  # (account_id, conid)
Book = dict[Key, Holding]


@dataclass(frozen=True)
class Discrepancy:
    """One difference found by one comparison; `break_id` is the same run after run while
    the difference persists, so a break ages instead of multiplying."""

    comparison: Comparison
    kind: Kind
    severity: Severity
    account_id: str
    subject: str  # conid, currency, or the order's perm id / local id
    local_value: Decimal | None
    broker_value: Decimal | None
    cause: Cause = Cause.UNKNOWN
    symbol: str | None = None
    pct: Decimal | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def break_id(self) -> str:
        return stable_id(self.comparison, self.kind, self.account_id, self.subject)


def stable_id(*parts: object) -> str:
    """A deterministic id: reruns find the same rows instead of adding new ones
    (DOMAIN.md section 4: every adjusting record gets a deterministic id)."""
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:24]


@dataclass(frozen=True)
class OrderProposal:
    """An order that would make the broker match local state (SYNC_TO_LOCAL)."""

    proposal_id: str
    account_id: str
    conid: str
    symbol: str | None
    action: str  # BUY or SELL
    quantity: Decimal  # positive
    order_type: str = "MKT"
    break_id: str | None = None


@dataclass(frozen=True)
class SubmittedOrder:
    """What the broker said when a proposal was submitted."""

    proposal_id: str
    order_id: int
    perm_id: int | None
    status: str
