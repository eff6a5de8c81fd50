from cpython.array cimport array

from qm_pipeline.lib.ledger.lots cimport Book, Lot
from qm_pipeline.lib.ledger.queues cimport Queue
from qm_pipeline.lib.ledger.quanta cimport i128


cdef class WashLoss:
    cdef long long row, day, held_days, origin
    cdef object currency
    cdef i128 units, remaining, loss, loss_base, disallowed, disallowed_base
    cdef bint done


cdef class Bought:
    cdef long long day
    cdef Lot lot
    cdef i128 units


cdef class Group:
    cdef Queue bought, waiting


cdef class Buys:
    cdef Group group
    cdef i128 units


cdef class Groups:
    cdef Group own
    cdef list buys  # of Buys


cdef class WashTracker:
    cdef bint taxpayer
    cdef object config, groups
    cdef Queue open
    cdef array emitted  # the realized sink's emitted rows
    cdef bytearray disallowed  # and its disallowed amounts
    cdef long long window

    cdef Groups _groups(self, Book book)
    cdef Group _group(self, tuple key)
    cpdef loss(self, Book book, Lot lot, long long day, i128 qty, i128 loss, i128 loss_base,
               long long row)
    cpdef acquired(self, Book book, Lot lot, long long day)
    cdef _replace(self, WashLoss rec, Lot lot, i128 units)
    cdef _finish(self, WashLoss rec)
    cpdef expire(self, long long day)
