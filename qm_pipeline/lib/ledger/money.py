"""Decimal conventions shared by the ledger: constants, pro-rata splits, base-currency conversion.

Every amount is a `decimal.Decimal`; binary floats never touch money (DOMAIN.md §1).
Sums and differences of Flex amounts are exact. Only two operations can produce
non-terminating results, and both are rounded to `QUANTUM` here, in one place:
pro-rata parts of a lot (closing 1 of 3 shares) and products with an FX rate.
Callers keep totals exact by giving the last part the remainder (`amount - parts`),
so no cent is created or lost by partial closes.

Base amounts of an instrument in the base currency are the same objects as the local
ones (`to_base` returns its argument when the rate is 1), and the ledger keeps that
identity through partial closes and totals: output columns then convert the local
column once and reuse it (`outputs.TableSink`).
"""

from __future__ import annotations

import decimal
from decimal import Decimal

ZERO = Decimal(0)
ONE = Decimal(1)
# 18 decimal places: the scale of the ledger's output columns (decimal128(38, 18)).
QUANTUM = Decimal("1E-18")
# Working precision of a replay: sums of amounts of 20 integer digits and 18 decimals are
# exact; products are rounded to QUANTUM where they are made (part, to_base).
PRECISION = 40


def ledger_context() -> decimal.Context:
    """The decimal context replays run in."""
    return decimal.Context(prec=PRECISION, rounding=decimal.ROUND_HALF_EVEN)


def part(amount: Decimal, k: Decimal, n: Decimal) -> Decimal:
    """`amount * k / n` rounded to QUANTUM: the share of `amount` carried by k of n units."""
    if not amount:
        return amount
    return (amount * k / n).quantize(QUANTUM)


def to_base(amount: Decimal, fx: Decimal | None) -> Decimal:
    """Local amount in the account's base currency (Flex `fxRateToBase`, DOMAIN.md §1).
    A rate of None means the amount is in base currency already."""
    if fx is None or fx == ONE or not amount:
        return amount
    return (amount * fx).quantize(QUANTUM)


def plain(amount: Decimal) -> Decimal:
    """`amount` without trailing zeros (100.000 -> 100), so later products stay short."""
    reduced = amount.normalize()
    return reduced.quantize(ONE) if reduced.as_tuple().exponent > 0 else reduced
