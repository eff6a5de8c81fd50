from qm_pipeline.lib.ledger.lots cimport Book
from qm_pipeline.lib.ledger.quanta cimport i128


cdef class Episode:
    cdef public str episode_id
    cdef public object opened_ts
    cdef public bint long, opening_balance
    cdef public i128 max_abs, opened_abs, opened_cost, realized, realized_base


cpdef opened(Book book, object ts, i128 qty, i128 cost, bint opening_balance=*)
cpdef realized(Book book, i128 pnl, i128 pnl_base)
cpdef closed(Book book, long long ts, str reason, object sink)
cpdef touch(Book book, long long day, object sink, bint change=*)
