"""Decimal quanta and rounding rules of the sample generator, stated once.

Every amount and quantity is a `Decimal`; floats never touch money. How each kind of
number is rounded mirrors what IB prints in real Flex exports:

- prices are 2 dp, FX rates 5 dp (`fxRateToBase`, `ConversionRate.rate`);
- what a fill produces (`tradeMoney`, `proceeds`, `ibCommission`, `netCash`) is the exact
  product of quantity, price and multiplier plus a commission of at most 4 dp, so no rounding;
- derived amounts (a lot's pro-rata basis, the share of proceeds a closed lot receives, per-lot
  realized P&L, base-currency conversions, interest accruals) are rounded half-up to 8 dp, and
  wherever an amount is split the last piece takes the remainder, so parts always sum exactly;
- cash IB posts (dividends, withholding tax, interest, fees) is in cents;
- the period TWR is a percentage printed to 9 dp, like `ChangeInNAV.twr` in real exports.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal, localcontext

ZERO = Decimal(0)
ONE = Decimal(1)
HUNDRED = Decimal(100)
CENT = Decimal("0.01")
FX_QUANTUM = Decimal("0.00001")
DERIVED_QUANTUM = Decimal("1E-8")
TWR_QUANTUM = Decimal("1E-9")


def cents(value: Decimal) -> Decimal:
    """Round to the cent, half-up, as IB posts cash."""
    return value.quantize(CENT, ROUND_HALF_UP)


def derived(value: Decimal) -> Decimal:
    """Round a derived amount (allocation, conversion, accrual) to 8 dp."""
    return value.quantize(DERIVED_QUANTUM, ROUND_HALF_UP)


def to_base(amount: Decimal, rate: Decimal) -> Decimal:
    """Convert an amount to the base currency with the row's `fxRateToBase`."""
    return derived(amount * rate)


def floor_to(value: Decimal, step: Decimal) -> Decimal:
    """Largest multiple of `step` not above `value` (strike grids, lot sizes)."""
    return (value / step).to_integral_value(ROUND_FLOOR) * step


def ceil_to(value: Decimal, step: Decimal) -> Decimal:
    """Smallest multiple of `step` not below `value`."""
    return (value / step).to_integral_value(ROUND_CEILING) * step


@contextmanager
def decimal_context() -> Iterator[None]:
    """A fixed, generous precision so output never depends on the caller's context."""
    with localcontext() as ctx:
        ctx.prec = 34
        ctx.rounding = ROUND_HALF_UP
        yield
