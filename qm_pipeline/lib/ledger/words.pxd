# Writing the output's packed words (`outputs.Rows`, `outputs.Sparse`) from compiled code:
# a row's words are laid out in a C struct and appended to the sink's bytearray in one
# copy, instead of a struct.pack call with a Python integer per field.

from cpython.array cimport array, resize_smart
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE, PyByteArray_Resize
from libc.string cimport memcpy

from qm_pipeline.lib.ledger.quanta cimport LOW, i128


cdef inline int append(bytearray data, const void *words, Py_ssize_t size) except -1:
    """Appends `size` bytes (bytearrays over-allocate, so appends are amortized O(1))."""
    cdef Py_ssize_t end = PyByteArray_GET_SIZE(data)
    PyByteArray_Resize(data, end + size)
    memcpy(PyByteArray_AS_STRING(data) + end, words, size)
    return 0


cdef inline long long high(i128 amount) noexcept:
    """The amount's high word (`amount >> 64`)."""
    return <long long>(amount >> 64)


cdef inline unsigned long long low(i128 amount) noexcept:
    return <unsigned long long>(amount & LOW)


cdef struct Sparse1:  # `outputs.Sparse(1)`: a row number, one amount
    long long row, high
    unsigned long long low


cdef inline int sparse1(bytearray data, long long row, i128 a) except -1:
    cdef Sparse1 w
    w.row, w.high, w.low = row, high(a), low(a)
    return append(data, &w, sizeof(w))


cdef struct Sparse2:  # `outputs.Sparse(2)`: a row number, two amounts
    long long row
    long long high[2]
    unsigned long long low[2]


cdef inline int sparse2(bytearray data, long long row, i128 a, i128 b) except -1:
    cdef Sparse2 w
    w.row = row
    w.high[0], w.high[1], w.low[0], w.low[1] = high(a), high(b), low(a), low(b)
    return append(data, &w, sizeof(w))


cdef inline int push(array numbers, long long value) except -1:
    """Appends to an array("q")."""
    cdef Py_ssize_t n = len(numbers)
    resize_smart(numbers, n + 1)
    numbers.data.as_longlongs[n] = value
    return 0
