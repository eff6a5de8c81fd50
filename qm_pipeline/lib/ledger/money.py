"""Money and quantities in the ledger: Decimal at the edges, scaled integers in the replay.

Binary floats never touch money (DOMAIN.md §1). Inputs, events and opening balances are
`decimal.Decimal`; the replay itself works in integers of QUANTUM (1E-18, the scale of
the output columns, decimal128(38, 18)): `units(Decimal("1.5")) == 1_500_000_000_000_000_000`.
Python integers are exact at any size and several times faster than Decimal, and Arrow
builds decimal128 columns from their 128-bit words without a Decimal in between
(`outputs`). Flex amounts have at most about 10 decimal places, so converting them is exact.

Sums and differences are exact in both forms. Only two operations can produce
non-terminating results, and both are rounded half-even to QUANTUM in one place each:
pro-rata parts of a lot (closing 1 of 3 shares: `quanta.share`, Decimal `part`) and
products with an FX rate (`quanta.in_base`, Decimal `to_base`). The integer forms round
the exact quotient once. The Decimal forms round to 40 significant digits first, which
can only change a result when the divisor itself has some 20 significant digits (a
quantity with 18 decimals, as a reverse split leaves); otherwise the two agree
(`test_money`). Callers keep totals exact by giving the last part the remainder
(`amount - parts`), so no cent is created or lost by partial closes.

The compiled replay (`executions`, `lots`, `wash_sales`, `positions`) holds these integers
in 128-bit C integers and computes `share`, `div` and `in_base` in C where the product
fits (`quanta.pxd`), here otherwise; both give the same result. Base amounts of an
instrument in the base currency equal the local ones, and the outputs write a base
amount only where it differs (`outputs.Sparse`, `outputs.TableSink`).
"""

from __future__ import annotations

import decimal
from decimal import Decimal
from typing import overload

ZERO = Decimal(0)
ONE = Decimal(1)
PLACES = 18  # decimal places of the ledger's output columns (decimal128(38, 18))
QUANTUM = Decimal(1).scaleb(-PLACES)
SCALE = 10**PLACES  # one unit of an amount, in QUANTUMs
# Working precision of Decimal arithmetic: sums of amounts of 20 integer digits and 18
# decimals are exact; products are rounded to QUANTUM where they are made (part, to_base).
PRECISION = 40


def ledger_context() -> decimal.Context:
    """The decimal context replays run in."""
    return decimal.Context(prec=PRECISION, rounding=decimal.ROUND_HALF_EVEN)


_CONTEXT = ledger_context()


def rounded(amount: Decimal) -> Decimal:
    """`amount` at the output columns' 18 places, half-even, in the ledger's precision
    (outside a replay too: the default 28 digits fail from 10 billion up)."""
    return amount.quantize(QUANTUM, context=_CONTEXT)


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
    exponent = reduced.as_tuple().exponent  # a letter only for NaN and infinities
    return reduced.quantize(ONE) if isinstance(exponent, int) and exponent > 0 else reduced


# --- scaled integers (the replay) -----------------------------------------------------


@overload
def units(amount: Decimal) -> int: ...
@overload
def units(amount: Decimal | None) -> int | None: ...
def units(amount: Decimal | None) -> int | None:
    """`amount` in QUANTUMs; an input finer than QUANTUM is rounded half-even."""
    if amount is None:
        return None
    return int(amount.scaleb(PLACES).to_integral_value(decimal.ROUND_HALF_EVEN))


def to_decimal(amount: int) -> Decimal:
    """QUANTUMs back to a Decimal without trailing zeros (for messages and edges)."""
    return plain(Decimal(amount).scaleb(-PLACES))


def div(num: int, den: int) -> int:
    """`num / den` rounded half-even to an integer (exact: no intermediate rounding)."""
    if den < 0:
        num, den = -num, -den
    q, r = divmod(num, den)
    r += r
    if r > den or (r == den and q & 1):
        q += 1
    return q

