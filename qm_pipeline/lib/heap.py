"""The C heap: large blocks mapped on their own, so a freed one goes back to the system.

glibc's malloc serves blocks from 128 KiB up with their own mmap, but each time it frees
such a block it raises that threshold to the block's size (up to 32 MiB). In a long bulk
job (the ledger replay's Arrow columns, numpy temporaries and growing row buffers) the
later large temporaries then come from the main heap, between long-lived buffers, and
their pages stay in the process after they are freed: a million-execution replay ended
some 80 MB higher so. Fixing the threshold at glibc's own starting value (mallopt,
M_MMAP_THRESHOLD) turns that adjustment off for the process; nothing else changes.
"""

from __future__ import annotations

import ctypes
from functools import cache

M_MMAP_THRESHOLD = -3  # glibc's malloc.h
THRESHOLD = 128 * 1024  # glibc's default starting threshold


@cache
def map_large_blocks() -> bool:
    """Fixes the mmap threshold (once per process); False where the C library has no
    such setting (not glibc: nothing to fix there)."""
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)  # the process's own C library
    return mallopt is not None and bool(mallopt(M_MMAP_THRESHOLD, THRESHOLD))
