"""How a replay matches lots and treats wash sales, per account and per owner."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class LotMethod(StrEnum):
    """Which open lot a closing quantity consumes (DOMAIN.md §6)."""

    FIFO = "FIFO"  # oldest first: IB's default
    LIFO = "LIFO"  # newest first
    HIFO = "HIFO"  # highest cost per unit first (for shorts: lowest sale price first)
    SPECIFIC = "SPECIFIC"  # the lots IB's CLOSED_LOT rows name for that closing trade


class WashMode(StrEnum):
    """Which purchases replace a loss sale (IRC 1091, DOMAIN.md §6)."""

    NONE = "none"
    BROKER = "broker"  # same conid, same account: what IB reports (notes code LD)
    TAXPAYER = "taxpayer"  # across the owner's accounts, identical instruments, calls bought


@dataclass(frozen=True)
class LedgerConfig:
    """Replay settings.

    `owners` maps account ids to the taxpayer owning them (taxpayer-mode wash sales look
    across one owner's accounts; an unmapped account is its own owner). `identical` maps
    conids to a shared key for instruments the owner treats as substantially identical
    (e.g. two listings of one share class); by default a conid is identical only to itself.
    Asset categories in `excluded_asset_categories` (forex conversions by default: IB keeps
    them in FxPositions, not as security lots) never reach the lot books.
    """

    lot_methods: Mapping[str, LotMethod] = field(default_factory=dict)
    default_method: LotMethod = LotMethod.FIFO
    wash_sales: WashMode = WashMode.BROKER
    owners: Mapping[str, str] = field(default_factory=dict)
    identical: Mapping[str, str] = field(default_factory=dict)
    excluded_asset_categories: frozenset[str] = frozenset({"CASH"})
    wash_window_days: int = 30

    def method(self, account_id: str) -> LotMethod:
        return LotMethod(self.lot_methods.get(account_id, self.default_method))

    def owner(self, account_id: str) -> str:
        return self.owners.get(account_id, account_id)

    def identity(self, conid: str) -> str:
        return self.identical.get(conid, conid)
