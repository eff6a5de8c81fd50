"""Static facts per conid (category, currency, multiplier, option terms), read once.

Instruments are keyed on conid, never symbol (DOMAIN.md §1, §3). Reading them once per
replay keeps the per-execution path down to quantities and cash.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

import pyarrow as pa

from qm_pipeline.lib.ledger.inputs import DEC, STR, pylist
from qm_pipeline.lib.ledger.money import ONE, plain

_COLUMNS = {
    "symbol": STR,
    "asset_category": STR,
    "currency": STR,
    "multiplier": DEC,
    "put_call": STR,
    "underlying_conid": STR,
}
OPTION_CATEGORIES = frozenset({"OPT", "FOP"})


@dataclass(frozen=True, slots=True)
class Instrument:
    conid: str
    symbol: str | None
    asset_category: str | None
    currency: str | None
    multiplier: Decimal
    put_call: str | None
    underlying_conid: str | None

    @property
    def is_option(self) -> bool:
        return self.asset_category in OPTION_CATEGORIES

    @property
    def is_call(self) -> bool:
        return self.is_option and self.put_call == "C"


def collect(tables: Iterable[pa.Table]) -> dict[str, Instrument]:
    """One Instrument per conid seen in `tables`. Where sources disagree the greatest
    value wins, so the result does not depend on row order."""
    parts = [
        pa.table(
            [t.column("conid")] + [t.column(c).cast(typ) for c, typ in _COLUMNS.items()],
            names=["conid", *_COLUMNS],
        )
        for t in tables
        if t.num_rows
    ]
    if not parts:
        return {}
    grouped = pa.concat_tables(parts).group_by("conid").aggregate([(c, "max") for c in _COLUMNS])
    cols = {c: pylist(grouped.column(f"{c}_max")) for c in _COLUMNS}
    return {
        conid: Instrument(
            conid=conid,
            symbol=cols["symbol"][i],
            asset_category=cols["asset_category"][i],
            currency=cols["currency"][i],
            multiplier=plain(cols["multiplier"][i] or ONE),
            put_call=cols["put_call"][i],
            underlying_conid=cols["underlying_conid"][i],
        )
        for i, conid in enumerate(pylist(grouped.column("conid")))
        if conid is not None
    }


def unknown(conid: str) -> Instrument:
    """Placeholder for a conid no source describes (multiplier 1)."""
    return Instrument(conid, None, None, None, ONE, None, None)
