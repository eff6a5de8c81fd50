"""Python's cyclic garbage collector paused around bulk work that makes no reference cycles."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def cycle_collection_paused() -> Iterator[None]:
    """The collector runs a pass every few hundred container allocations: a parse or a replay
    that allocates millions of short-lived lists and tuples pays for passes that have nothing
    to free (a tenth of a Flex parse, a sixth of a ledger replay). The caller's setting comes
    back at the end, so pauses nest."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()
