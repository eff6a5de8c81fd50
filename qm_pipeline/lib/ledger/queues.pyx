"""A queue of Python objects for the compiled replay: a list read from a head index.

The lot books and the wash-sale tracker take from the front and append at the back,
millions of times; `collections.deque` does that, but compiled code reaches a deque only
through its Python methods. Here every operation is a C call on a list, and the taken
slots are dropped once they are half the list (amortized O(1)).
"""


cdef class Queue:
    def __cinit__(self):
        self.items = []
        self.head = 0

    def __len__(self):
        return self.size()

    def __iter__(self):
        return iter(self.live())

    cdef object popleft(self):
        item = self.items[self.head]
        self.items[self.head] = None
        self.head += 1
        if self.head >= 16 and 2 * self.head >= len(self.items):
            del self.items[:self.head]
            self.head = 0
        return item

    cdef object pop_at(self, Py_ssize_t i):
        if i == 0:
            return self.popleft()
        return self.items.pop(self.head + i)

    cdef int insert(self, Py_ssize_t i, object item) except -1:
        self.items.insert(self.head + i, item)
        return 0

    cdef Py_ssize_t find(self, object item) except -1:
        """The position of `item` (by identity), searched from the newest end."""
        cdef Py_ssize_t i
        for i in range(len(self.items) - 1, self.head - 1, -1):
            if self.items[i] is item:
                return i - self.head
        raise ValueError("not in the queue")

    cpdef list live(self):
        """The items, oldest first, as a new list."""
        return self.items[self.head:]

    def clear(self):
        self.items = []
        self.head = 0
