cdef class Queue:
    cdef list items  # items[head:] are the queue's, oldest first
    cdef Py_ssize_t head

    cdef inline Py_ssize_t size(self) noexcept:
        return len(self.items) - self.head

    cdef inline object get(self, Py_ssize_t i):
        """Item i (0: the oldest; -1: the newest)."""
        return self.items[self.head + i if i >= 0 else len(self.items) + i]

    cdef inline int push(self, object item) except -1:
        self.items.append(item)
        return 0

    cdef object popleft(self)
    cdef object pop_at(self, Py_ssize_t i)
    cdef int insert(self, Py_ssize_t i, object item) except -1
    cdef Py_ssize_t find(self, object item) except -1
    cpdef list live(self)
