from qm_pipeline.lib.ledger.queues cimport Queue
from qm_pipeline.lib.ledger.quanta cimport i128

cdef extern from *:
    """
    #define QM_NO_TIME ((long long)(-9223372036854775807LL - 1))
    """
    const long long NO_TIME "QM_NO_TIME"  # an unknown time or day: `outputs.NO_TIME`


cdef class Book


cdef class Lot:
    cdef public long long id_book, tid, n, origin, seq, open_day, hp_day
    cdef long long open_time  # NO_TIME: unknown (the `open_ts` property gives None)
    cdef public object splits
    cdef public i128 qty, cost, cost_base, wash, wash_base
    cdef public bint opening_balance, replacement
    cdef public Book book

    cdef init(self, long long tid, long long n, long long origin, long long seq,
              long long open_time, long long open_day, i128 qty, i128 cost, i128 cost_base,
              Book book, bint opening_balance)


cdef class Piece:
    cdef public Lot lot
    cdef public i128 qty, cost, cost_base, wash, wash_base


cdef class Book:
    cdef public long long index, episodes
    cdef public str account_id, conid
    cdef readonly object currency
    cdef public object inst, method, picker, episode, wash_groups
    cdef public Queue lots
    cdef public i128 multiplier, qty, cost, cost_base
    cdef public bint dirty
    cdef long long today  # the last day `positions.touch` saw (NO_TIME: none yet)
    cdef i128 marked  # the mark when `has_mark`
    cdef public bint has_mark

    cpdef add(self, Lot lot)
    cpdef list take(self, i128 amount, object pick)
    cpdef Lot split_off(self, Lot lot, i128 size)
