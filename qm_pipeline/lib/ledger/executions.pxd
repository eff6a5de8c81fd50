from qm_pipeline.lib.ledger.lots cimport Book
from qm_pipeline.lib.ledger.quanta cimport i128
from qm_pipeline.lib.ledger.wash_sales cimport WashTracker


cdef class Executions:
    cdef public long long seq, rseq
    cdef long long today
    cdef public WashTracker wash
    cdef public object realized, positions, history, closed_lots, tids

    cpdef at(self, long long day)
    cpdef trade(self, Book book, long long ts, long long day, long long code, i128 qty,
                i128 net, object fx, int reason)
    cdef open(self, Book book, long long ts, long long day, long long code, i128 qty,
              i128 cost, object fx)
    cpdef i128 close(self, Book book, long long ts, long long day, long long code, i128 size,
                     i128 net, object fx, int reason, bint at_cost=*) except? -1
    cdef list take_specific(self, Book book, i128 size, long long code, long long ts)
