"""`live.daily_bars`: daily price history from TWS's historical-data service.

A fetch replaces the rows it covers (same instrument, same kind of prices, dates inside the
fetched window) in one transaction, so a rerun or an overlapping later fetch never doubles
a day, and every row says when it was fetched. Analytics read the closes as a benchmark's
prices (`analytics.prices`), below a user's CSV in the drop folder.
"""

from __future__ import annotations

import pyarrow as pa

from qm_pipeline.lib.flex.cast import DECIMAL
from qm_pipeline.lib.ib.history import BAR_COLUMNS, DailyBars
from qm_pipeline.lib.live.tables import column_value
from qm_pipeline.lib.warehouse.engine import Tx, q, qualified

TABLE = "daily_bars"
_TYPES = {"conid": pa.string(), "symbol": pa.string(), "currency": pa.string(),
          "what_to_show": pa.string(), "date": pa.date32(), "bar_count": pa.int64()}


def bars_schema() -> pa.Schema:
    fields = [pa.field(c, _TYPES.get(c, DECIMAL)) for c in BAR_COLUMNS]
    return pa.schema([*fields, pa.field("fetched_at", pa.timestamp("s"))])


def store_daily_bars(tx: Tx, bars: DailyBars) -> int:
    """Replace the stored bars of the fetched window with these; returns rows written."""
    tx.execute(
        f"DELETE FROM {qualified('live', TABLE)} WHERE conid = :conid "
        f"AND what_to_show = :kind AND {q('date')} BETWEEN :first AND :last",
        {"conid": str(bars.conid), "kind": bars.request.what_to_show, "first": bars.first,
         "last": bars.last},
    )
    schema = bars_schema()
    rows = [r | {"fetched_at": bars.fetched_at} for r in bars.rows]
    columns = {f.name: pa.array([column_value(r[f.name], f.type) for r in rows], f.type)
               for f in schema}
    return tx.insert("live", TABLE, pa.Table.from_pydict(columns, schema=schema))
