"""Column and table names: Flex attribute names to warehouse identifiers.

IB documents Flex fields in camelCase (`accountId`, `ibExecID`, `fifoPnlRealized`);
the warehouse uses their snake_case (`account_id`, `ib_exec_id`, `fifo_pnl_realized`)
so IB's documentation maps onto columns one to one.
"""

from __future__ import annotations

import re
from functools import lru_cache

_ACRONYM_TAIL = re.compile(r"([A-Z]+)([A-Z][a-z])")
_LOWER_UPPER = re.compile(r"([a-z0-9])([A-Z])")
_NON_WORD = re.compile(r"[^0-9a-zA-Z]+")


@lru_cache(maxsize=4096)
def snake_case(name: str) -> str:
    """`ibExecID` -> `ib_exec_id`, `FxPositions` -> `fx_positions`."""
    s = _ACRONYM_TAIL.sub(r"\1_\2", name)
    s = _LOWER_UPPER.sub(r"\1_\2", s)
    s = _NON_WORD.sub("_", s).strip("_").lower()
    return f"c_{s}" if s[:1].isdigit() else s
