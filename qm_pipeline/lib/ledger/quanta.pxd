# Amounts of the compiled replay: integers of QUANTUM (`money`) in 128-bit C integers.
#
# decimal128(38, 18), the output columns, holds every amount the ledger can write (below
# 10**20 units), so a 128-bit integer (1.7 * 10**20 units) holds it too; sums are not
# checked, as a sum beyond that could not be written anyway. Products do
# not: `share` multiplies an amount by a quantity (both about 2**70) before dividing. The
# C helpers below compute exactly when the product fits, after cancelling the common
# factor of the fraction (quantities are mostly whole units: multiples of 10**18); when
# it still does not fit they return -1 and the caller takes `money`'s Python integers
# (`quanta.pyx`). Rounding is `money`'s: the exact quotient, half-even, once.

cdef extern from *:
    """
    typedef __int128 qm_i128;
    typedef unsigned __int128 qm_u128;
    #define QM_SCALE ((qm_i128)1000000000000000000LL)  /* money.SCALE: 10**18 */
    #define QM_LOW ((qm_i128)0xFFFFFFFFFFFFFFFFULL)   /* an amount's low 64 bits */

    static inline qm_i128 qm_gcd(qm_i128 a, qm_i128 b) {
        qm_u128 x = a < 0 ? -(qm_u128)a : (qm_u128)a, y = b < 0 ? -(qm_u128)b : (qm_u128)b;
        while (y) { qm_u128 t = x % y; x = y; y = t; }
        return (qm_i128)x;
    }

    /* num / den (den > 0) rounded half-even, as money.div */
    static inline qm_i128 qm_round(qm_i128 num, qm_i128 den) {
        qm_i128 q = num / den, r = num % den;
        if (r < 0) { q -= 1; r += den; }   /* floor division, as Python's divmod */
        r += r;
        if (r > den || (r == den && (q & 1))) q += 1;
        return q;
    }

    /* *out = a * b / c rounded half-even; -1 when a * b does not fit, or c is 0 (Python
       raises the ZeroDivisionError) */
    static inline int qm_muldiv(qm_i128 a, qm_i128 b, qm_i128 c, qm_i128 *out) {
        qm_i128 p;
        if (!c) return -1;
        if (c < 0) { b = -b; c = -c; }
        if (__builtin_mul_overflow(a, b, &p)) {
            qm_i128 g = qm_gcd(b, c);
            b /= g; c /= g;
            if (__builtin_mul_overflow(a, b, &p)) return -1;
        }
        *out = qm_round(p, c);
        return 0;
    }
    """
    ctypedef long long i128 "qm_i128"
    const i128 SCALE "QM_SCALE"
    const i128 LOW "QM_LOW"
    int qm_muldiv(i128 a, i128 b, i128 c, i128 *out) noexcept nogil
    bint mul_overflow "__builtin_mul_overflow"(i128 a, i128 b, i128 *out) noexcept nogil

cdef i128 muldiv_slow(i128 a, i128 b, i128 c) except? -1


cdef inline i128 muldiv(i128 a, i128 b, i128 c) except? -1:
    """`a * b / c` rounded half-even: `money.div(a * b, c)`."""
    cdef i128 out
    if qm_muldiv(a, b, c, &out) == 0:
        return out
    return muldiv_slow(a, b, c)


cdef inline i128 share(i128 amount, i128 k, i128 n) except? -1:
    """`money.share`: the part of `amount` carried by k of n units."""
    if not amount:
        return 0
    return muldiv(amount, k, n)


cdef inline i128 in_base(i128 amount, i128 fx) except? -1:
    """`money.to_base` in QUANTUMs, for a rate of `fx` QUANTUMs per unit (the caller
    handles an amount without a rate)."""
    if fx == SCALE or not amount:
        return amount
    return muldiv(amount, fx, SCALE)


cdef inline i128 div(i128 num, i128 den) except? -1:
    return muldiv(num, 1, den)
