"""What to generate (`SampleSpec`) and who the account holders are (`AccountProfile`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from qm_pipeline.lib.flex.sample.market import SUPPORTED_BASES

# Names with an apostrophe and an ampersand keep attribute escaping honest.
_HOLDERS = (
    ("Ada Lindqvist", "Rotterdam", "Netherlands"),
    ("Bram O'Connor", "Dublin", "Ireland"),
    ("Chiara Bellini", "Milano", "Italy"),
    ("Dara Okafor & Partners", "Zurich", "Switzerland"),
)


@dataclass(frozen=True)
class SampleSpec:
    """A reproducible sample: same spec, byte-identical files."""

    accounts: tuple[str, ...] = ("U1000001", "U1000002")
    start: date = date(2024, 1, 2)
    end: date = date(2024, 12, 31)
    trades_per_day: int = 4  # executions per account per business day
    seed: int = 7
    base_currency: str = "USD"

    def __post_init__(self) -> None:
        if not self.accounts or len(set(self.accounts)) != len(self.accounts):
            raise ValueError("accounts must be a non-empty tuple of distinct ids")
        if self.start > self.end:
            raise ValueError("start must not be after end")
        if self.trades_per_day < 0:
            raise ValueError("trades_per_day must not be negative")
        if self.base_currency not in SUPPORTED_BASES:
            raise ValueError(f"base_currency must be one of {SUPPORTED_BASES}")


@dataclass(frozen=True)
class AccountProfile:
    account_id: str
    index: int
    name: str
    alias: str
    city: str
    country: str
    base_currency: str
    initial_deposit: Decimal
    date_opened: date


def profiles(spec: SampleSpec) -> list[AccountProfile]:
    found = []
    for index, account_id in enumerate(spec.accounts):
        name, city, country = _HOLDERS[index % len(_HOLDERS)]
        found.append(
            AccountProfile(
                account_id=account_id,
                index=index,
                name=name,
                alias=f"{account_id} {name.split()[0]}",
                city=city,
                country=country,
                base_currency=spec.base_currency,
                initial_deposit=Decimal(150_000 + 50_000 * (index % 4)),
                date_opened=spec.start,
            )
        )
    return found
