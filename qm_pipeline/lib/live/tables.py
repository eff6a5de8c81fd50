"""The `live` schema: snapshot tables typed for the warehouse, and the views analysts chart.

Column lists come from the collector's one declaration (`lib.ib.rows.TABLES`); this module
only adds `snapshot_id` and says which columns are money, counts, times and flags.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal

import pyarrow as pa

from qm_pipeline.lib.flex.cast import DECIMAL, DECIMAL_SCALE
from qm_pipeline.lib.ib.rows import GREEKS, TABLES

_DECIMALS = {
    "strike", "multiplier", "position", "market_price", "market_value", "average_cost",
    "unrealized_pnl", "realized_pnl", "avg_cost", "value_decimal", "total_quantity",
    "lmt_price", "aux_price", "filled", "remaining", "avg_fill_price", "filled_quantity",
    "shares", "price", "cum_qty", "avg_price", "commission", "daily_pnl", "min_tick",
    "option_price", "underlying_price", "pv_dividend",
}
_INTEGERS = {"port", "client_id", "server_version", "attempts", "order_id", "perm_id",
             "parent_id", "parent_perm_id", "liquidation", "last_liquidity",
             "market_data_type"}
_TIMES = {"taken_at", "server_time", "completed_time", "time"}
_FLAGS = {"is_paper", "outside_rth"}
_FLOATS = set(GREEKS)
# Same name, other meaning: pnl.value is money, account_values.value is IB's text.
_OVERRIDES = {("pnl", "value"): DECIMAL}
_QUANTUM = Decimal(1).scaleb(-DECIMAL_SCALE)


def column_type(table: str, column: str) -> pa.DataType:
    if (table, column) in _OVERRIDES:
        return _OVERRIDES[(table, column)]
    if column in _DECIMALS:
        return DECIMAL
    if column in _INTEGERS:
        return pa.int64()
    if column in _TIMES:
        return pa.timestamp("s")  # UTC
    if column in _FLAGS:
        return pa.bool_()
    if column in _FLOATS:
        return pa.float64()
    return pa.string()  # ids such as conid stay text, as in core.instruments


def live_schema(table: str) -> pa.Schema:
    columns = TABLES[table]
    head = [] if "snapshot_id" in columns else [pa.field("snapshot_id", pa.string())]
    return pa.schema(head + [pa.field(c, column_type(table, c)) for c in columns])


def column_value(value: object, kind: pa.DataType) -> object:
    """A collector value as the warehouse stores it. Client floats arrive as the Decimal of
    their shortest repr; digits past the 12th decimal are float noise and are rounded."""
    if value is None:
        return None
    if pa.types.is_decimal(kind):
        return Decimal(value).quantize(_QUANTUM, ROUND_HALF_EVEN)
    if pa.types.is_timestamp(kind) and isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    if pa.types.is_string(kind):
        return str(value)
    return value


def live_rows(table: str, rows: list[dict], snapshot_id: str) -> pa.Table:
    schema = live_schema(table)
    columns = {}
    for field in schema:
        if field.name == "snapshot_id" and field.name not in TABLES[table]:
            columns[field.name] = pa.array([snapshot_id] * len(rows), pa.string())
        else:
            columns[field.name] = pa.array(
                [column_value(r.get(field.name), field.type) for r in rows], field.type)
    return pa.Table.from_pydict(columns, schema=schema)


def _pivot(tags: dict[str, str]) -> str:
    """One column per tag. IB sends some tags (UnrealizedPnL, RealizedPnL, cash) once per
    currency and once as BASE, the account's total in its base currency: the BASE row wins;
    tags sent only in the base currency (or without one, e.g. Cushion) are taken as they are."""
    return ", ".join(
        f"coalesce(max(CASE WHEN v.tag = '{tag}' AND v.currency = 'BASE' "
        f"THEN v.value_decimal END), "
        f"max(CASE WHEN v.tag = '{tag}' THEN v.value_decimal END)) AS {name}"
        for name, tag in tags.items()
    )


_ACCOUNT_FIGURES = {
    "net_liquidation": "NetLiquidation", "total_cash": "TotalCashValue",
    "buying_power": "BuyingPower", "margin_used": "InitMarginReq",
    "maintenance_margin": "MaintMarginReq", "margin_available": "AvailableFunds",
    "excess_liquidity": "ExcessLiquidity", "cushion": "Cushion",
    "unrealized_pnl": "UnrealizedPnL", "realized_pnl": "RealizedPnL",
}

# History views keep every complete snapshot; `latest_*` show the newest one per account.
VIEWS = {
    "account_snapshots": (
        "SELECT s.snapshot_id, a.account_id, s.taken_at AS timestamp, a.is_paper, "
        f"a.base_currency, {_pivot(_ACCOUNT_FIGURES)} "
        "FROM live.snapshots s JOIN live.accounts a ON a.snapshot_id = s.snapshot_id "
        "JOIN live.account_values v ON v.snapshot_id = s.snapshot_id "
        "AND v.account_id = a.account_id AND v.currency IN (a.base_currency, 'BASE', '') "
        "WHERE s.status = 'complete' "
        "GROUP BY s.snapshot_id, a.account_id, s.taken_at, a.is_paper, a.base_currency"
    ),
    "position_snapshots": (
        "SELECT s.snapshot_id, p.account_id, p.conid, p.symbol, p.sec_type, "
        "s.taken_at AS timestamp, p.position AS quantity, p.average_cost AS avg_cost, "
        "p.market_price, p.market_value, p.unrealized_pnl, p.realized_pnl, p.currency "
        "FROM live.snapshots s JOIN live.portfolio_items p ON p.snapshot_id = s.snapshot_id "
        "WHERE s.status = 'complete'"
    ),
    "latest_account_snapshots": (
        "SELECT * FROM (SELECT v.*, row_number() OVER (PARTITION BY v.account_id "
        "ORDER BY v.timestamp DESC, v.snapshot_id DESC) AS recency "
        "FROM live.account_snapshots v) AS r WHERE recency = 1"
    ),
    "latest_position_snapshots": (
        "SELECT p.* FROM live.position_snapshots p JOIN live.latest_account_snapshots a "
        "ON a.snapshot_id = p.snapshot_id AND a.account_id = p.account_id"
    ),
    "executions_with_trades": (  # today's fills beside what Flex later reported for them
        "SELECT e.*, t.transaction_id, t.trade_date, t.net_cash, t.fifo_pnl_realized "
        "FROM live.executions e LEFT JOIN core.trades t ON t.ib_exec_id = e.ib_exec_id"
    ),
}

# live.snapshots also records failed attempts (no other rows): an unknown, never "flat".
SNAPSHOT_STATUS = [pa.field("status", pa.string()), pa.field("error", pa.string())]


def snapshots_schema() -> pa.Schema:
    return pa.schema(list(live_schema("snapshots")) + SNAPSHOT_STATUS)
