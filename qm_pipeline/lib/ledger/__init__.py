"""Ledger engine: normalised IB events replayed into tax lots, realized P&L, wash sales,
position episodes and history. Plain functions over rows: no Dagster, no database.

    result = replay(LedgerInputs(trades=rows_or_arrow_table, ...), LedgerConfig(...))
    result.lots, result.realized, result.positions, result.position_history, result.flags
    check_realized_pnl(result, trades)  # and the other cross-checks with IB's numbers

The results are Arrow tables; in `realized` and `position_history` the book's strings
(account, conid, symbol, ...) and the realized codes (term, close reason) are dictionary
columns: `.to_pylist()` and the warehouse give plain strings, and
`pyarrow.compute.dictionary_decode` plain columns (Arrow sorts by plain columns only).

Conventions are documented where they are applied: `money` (Decimal at the edges,
scaled integers in the replay), `timeline` (order of events), `lots` (signs, methods),
`wash_sales` (IRC 1091), `opening` (holdings older than the history), `outputs`
(columns, and how the replay writes them).

The replay's hot path is compiled with Cython (`setup.py` builds it at install): `lots`,
`wash_sales`, `positions` and `executions` keep amounts in 128-bit C integers (`quanta`)
and write the output's words from C structs (`words`); `engine` and the other modules are
Python. Their classes read and write from Python as before (amounts as Python integers).
"""

from qm_pipeline.lib.ledger.checks import (
    check_closed_lots,
    check_open_positions,
    check_realized_pnl,
)
from qm_pipeline.lib.ledger.config import LedgerConfig, LotMethod, WashMode
from qm_pipeline.lib.ledger.engine import LedgerResult, replay
from qm_pipeline.lib.ledger.inputs import LedgerInputs

__all__ = [
    "LedgerConfig",
    "LedgerInputs",
    "LedgerResult",
    "LotMethod",
    "WashMode",
    "check_closed_lots",
    "check_open_positions",
    "check_realized_pnl",
    "replay",
]
