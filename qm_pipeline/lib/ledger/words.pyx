"""Gathering the output's packed rows (the compiled helpers are in `words.pxd`)."""

from libc.string cimport memcpy


def gather_rows(long long[:, ::1] out, const long long[::1] at,
                const long long[:, ::1] rows, const long long[::1] which) -> None:
    """`out[at[i]] = rows[which[i]]` for every i, each row copied as one block: numpy's
    fancy indexing on both sides goes through a temporary, word by word."""
    cdef Py_ssize_t i, width = rows.shape[1]
    if out.shape[1] != width or at.shape[0] != which.shape[0]:
        raise ValueError("rows of different widths, or positions of different lengths")
    for i in range(at.shape[0]):
        memcpy(&out[at[i], 0], &rows[which[i], 0], width * sizeof(long long))
