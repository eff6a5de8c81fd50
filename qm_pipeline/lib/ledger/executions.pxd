from cpython.array cimport array

from qm_pipeline.lib.ledger.lots cimport Book
from qm_pipeline.lib.ledger.quanta cimport i128
from qm_pipeline.lib.ledger.wash_sales cimport WashTracker


cdef class Executions:
    cdef public long long seq, rseq
    cdef long long today
    cdef public WashTracker wash
    cdef public object realized, positions, history, closed_lots, tids
    cdef bytearray rows, base, washes  # the realized sink's words
    cdef array emitted

    cpdef at(self, long long day)
    cdef _trade(self, Book book, long long ts, long long day, long long code, i128 qty,
                i128 net, bint has_fx, i128 fx, int reason)
    cdef _open(self, Book book, long long ts, long long day, long long code, i128 qty,
               i128 cost, bint has_fx, i128 fx)
    cdef i128 _close(self, Book book, long long ts, long long day, long long code, i128 size,
                     i128 net, bint has_fx, i128 fx, int reason, bint at_cost) except? -1
    cdef list _take_specific(self, Book book, i128 size, long long code, long long ts)
