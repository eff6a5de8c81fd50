"""The Python side of `quanta.pxd`: the products that do not fit 128 bits."""

from qm_pipeline.lib.ledger import money

assert SCALE == money.SCALE


cdef i128 muldiv_slow(i128 a, i128 b, i128 c) except? -1:
    # Python integers are exact at any size; the result fits when it is a ledger amount
    # (OverflowError otherwise, as the output's decimal128 would raise)
    cdef object product = <object>a * <object>b
    return money.div(product, c)


def share_of(amount: int, k: int, n: int) -> int:
    """`share` for Python callers (the engine's option events, the tests)."""
    return share(amount, k, n)


def base_of(amount: int, fx: int) -> int:
    """`in_base` for Python callers."""
    return in_base(amount, fx)
