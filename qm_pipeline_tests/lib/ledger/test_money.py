"""The replay's integer amounts agree with the Decimal conventions, and reach Arrow intact."""

from __future__ import annotations

import decimal
import random
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pytest
from qm_pipeline.lib.ledger.quanta import base_of, share_of

from qm_pipeline.lib.ledger import outputs
from qm_pipeline.lib.ledger.inputs import unit_words
from qm_pipeline.lib.ledger.money import (
    QUANTUM,
    div,
    ledger_context,
    part,
    rounded,
    to_base,
    to_decimal,
    units,
)


def _amount(rng: random.Random, places: int) -> Decimal:
    return Decimal(rng.randint(-10**12, 10**12)).scaleb(-places)


def test_integer_parts_and_base_amounts_equal_the_decimal_ones() -> None:
    rng = random.Random(5)
    with decimal.localcontext(ledger_context()):
        for _ in range(20_000):
            amount = _amount(rng, rng.choice([0, 2, 4, 10]))
            n = Decimal(rng.randint(1, 10**6)).scaleb(-rng.choice([0, 0, 2, 4]))
            k = (n * Decimal(rng.random())).quantize(Decimal(1).scaleb(n.as_tuple().exponent))
            if k > 0:
                assert share_of(units(amount), units(k), units(n)) == units(part(amount, k, n))
            fx = Decimal(rng.randint(1, 3_000_000)).scaleb(-6)
            assert base_of(units(amount), units(fx)) == units(to_base(amount, fx))


def test_thirds_round_half_even_and_the_remainder_keeps_the_total() -> None:
    cost, three, one = units(Decimal(31)), units(Decimal(3)), units(Decimal(1))
    first = share_of(cost, one, three)
    assert to_decimal(first) == Decimal("10.333333333333333333")
    second = share_of(cost - first, one, three - one)  # 20.666666666666666667 / 2, half-even
    assert to_decimal(second) == Decimal("10.333333333333333334")
    assert to_decimal(cost - first - second) == Decimal("10.333333333333333333")
    assert [div(n, 2) for n in (5, 7, -5, -7)] == [2, 4, -2, -4]
    assert div(7, -2) == -4


def test_units_round_inputs_finer_than_the_output_scale() -> None:
    assert units(Decimal("1.0000000000000000005")) == 10**18  # half to even
    assert units(Decimal("1.0000000000000000015")) == 10**18 + 2
    assert units(None) is None
    assert to_decimal(units(Decimal("-2.50"))) == Decimal("-2.5")


def test_amount_columns_from_integers_and_back() -> None:
    values = [0, 1, -1, 2**64 - 1, -(2**64), 2**63, -(2**63) - 1, 10**38 - 1, -(10**38) + 1,
              units(Decimal("-1318.80")), None]
    array = outputs.money_array(values)
    assert array.type == outputs.MONEY and array.null_count == 1
    assert array.to_pylist() == [None if v is None else Decimal(f"{v}E-18") for v in values]
    with pytest.raises(OverflowError):
        outputs.money_array([10**38])
    with pytest.raises(OverflowError):
        outputs.money_array([-(2**130)])


def _integers(col: pa.Array) -> list[int | None]:
    """`unit_words` back to integers of QUANTUM, as the compiled replay reads them."""
    w = unit_words(col)
    return [((int(h) << 64) | int(lo)) * 10**w.exponent if v else None
            for lo, h, v in zip(w.low, w.high, w.valid, strict=True)]


def test_decimal_columns_to_integers() -> None:
    exact = [Decimal("1.5"), Decimal("-0.25"), None, Decimal("123456789012.34")]
    for typ in (pa.decimal128(20, 2), pa.decimal128(38, 18), pa.decimal256(40, 4)):
        assert _integers(pa.array(exact, typ)) == [units(v) for v in exact]
    wide = pa.array([Decimal(2**70), Decimal(-(2**70))], pa.decimal128(38, 0))  # beyond int64
    assert _integers(wide.slice(1)) == [-(2**70) * 10**18]
    fine = pa.array([Decimal("0.00000000000000000025")], pa.decimal128(38, 20))
    assert _integers(fine) == [0]  # half to even at 18 places
    assert _integers(pa.array([], pa.decimal128(10, 2))) == []


def test_amount_sums_are_exact_across_the_words() -> None:
    rng = random.Random(8)
    a = [rng.randint(-(10**37), 10**37) for _ in range(5_000)]
    b = [rng.randint(-(10**37), 10**37) for _ in range(5_000)]

    def words(values: list[int]) -> outputs.Words:
        return (np.array([v & outputs.LOW for v in values], np.uint64),
                np.array([v >> 64 for v in values], np.int64))

    left, right = words(a), words(b)
    for combine, expected in ((outputs.plus, [x + y for x, y in zip(a, b, strict=True)]),
                              (outputs.minus, [x - y for x, y in zip(a, b, strict=True)])):
        result = outputs.money_from_words(*combine(left, right))
        assert result.equals(outputs.money_array(expected))
    assert outputs.plus(left, None) is left  # adding nothing (all zeros) copies nothing


def test_quantum_is_the_output_scale() -> None:
    assert outputs.MONEY.scale == -QUANTUM.as_tuple().exponent


def test_rounding_to_the_columns_places_holds_above_ten_billion() -> None:
    # 29+ digits at 18 places: Python's default 28-digit context raises InvalidOperation
    big = Decimal("98765432109.1234567890123456785")
    assert rounded(big) == Decimal("98765432109.123456789012345678")  # half-even
    assert rounded(Decimal("12345678901234567890.5")) == Decimal("12345678901234567890.5")
    with pytest.raises(decimal.InvalidOperation):
        big.quantize(QUANTUM, context=decimal.Context())
