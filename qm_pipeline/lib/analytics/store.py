"""The `analytics` schema: table shapes, and writing a build's tables (each replaced whole,
all in the caller's one transaction).

Money is DECIMAL(38,18) like the ledger's (exact, from the report rows); returns, ratios,
weights and the position-level P&L used for attribution are DOUBLE statistics.
"""

from __future__ import annotations

from decimal import Context, Decimal

import pandas as pd
import pyarrow as pa

from qm_pipeline.lib.warehouse.engine import Tx

SCHEMA = "analytics"
MONEY = pa.decimal128(38, 18)
_QUANTUM = Decimal(1).scaleb(-18)
_MONEY_DIGITS = Context(prec=MONEY.precision)
"""Quantize in the column's 38 digits: Python's default 28 fail from 10 billion up (28
digits at 18 places), e.g. a yen account's NAV."""
F, S, D, INT, B = pa.float64(), pa.string(), pa.date32(), pa.int64(), pa.bool_()


def _schema(*fields: tuple[str, pa.DataType]) -> pa.Schema:
    return pa.schema(list(fields))


_PERF = ("twr", "cagr", "volatility", "sharpe", "sortino", "max_drawdown", "calmar",
         "best_day", "worst_day", "hit_rate", "mwr")
_BENCH = ("bench_beta", "bench_alpha", "bench_correlation", "bench_tracking_error",
          "bench_information_ratio")
TABLES: dict[str, pa.Schema] = {
    "portfolio_daily": _schema(
        ("account_id", S), ("date", D), *((c, MONEY) for c in (
            "nav", "external_flow", "pnl", "realized", "unrealized_change", "dividends",
            "interest", "fees", "commissions")),
        ("daily_return", F), ("twr_index", F), ("drawdown", F), ("nav_source", S)),
    "twr_checks": _schema(
        ("account_id", S), ("from_date", D), ("to_date", D), ("computed_pct", F),
        ("reported_pct", F), ("gap_bp", F), ("matches", B), ("return_days", INT),
        ("explanation", S), ("source", S)),
    "performance": _schema(
        ("account_id", S), ("window", S), ("start", D), ("end", D), ("days", INT),
        *((c, F) for c in _PERF), ("peak_date", D), ("trough_date", D),
        ("recovery_date", D), ("best_date", D), ("worst_date", D), ("bench_days", INT),
        *((c, F) for c in _BENCH)),
    "risk": _schema(
        ("account_id", S), ("as_of", D), ("level", S), ("method", S), ("confidence", F),
        ("var", F), ("cvar", F), ("observations", INT), ("uncovered", S)),
    "position_daily": _schema(
        ("account_id", S), ("conid", S), ("date", D), ("value_base", F), ("pnl_base", F),
        ("contribution", F), ("realized_pnl_base", MONEY), ("unrealized_pnl_base", MONEY)),
    "attribution_daily": _schema(
        ("account_id", S), ("date", D), ("level", S), ("group", S), ("contribution", F)),
    "attribution": _schema(
        ("account_id", S), ("window", S), ("start", D), ("end", D), ("level", S),
        ("group", S), ("contribution", F)),
    "exposure": _schema(
        ("account_id", S), ("as_of", D), ("dimension", S), ("group", S), ("long", MONEY),
        ("short", MONEY), ("gross", MONEY), ("net", MONEY), ("gross_weight", F),
        ("net_weight", F), ("positions", INT)),
    "position_weights": _schema(
        ("account_id", S), ("as_of", D), ("conid", S), ("symbol", S), ("sector", S),
        ("market_value", MONEY), ("weight", F)),
    "concentration": _schema(
        ("account_id", S), ("as_of", D), ("positions", INT), ("top_n", INT), ("top_n_share", F),
        ("herfindahl", F), ("largest_name", S), ("largest_weight", F), ("largest_sector", S),
        ("largest_sector_weight", F), ("single_name_limit", F), ("sector_limit", F),
        ("breaches", S)),
    "greeks": _schema(
        ("account_id", S), ("as_of", D), ("conid", S), ("symbol", S), ("underlying", S),
        ("quantity", MONEY), ("multiplier", MONEY), ("mark", MONEY),
        ("underlying_price", F), ("implied_vol", F), ("delta", F), ("gamma", F),
        ("vega", F), ("theta", F), ("delta_adjusted_exposure", F), ("source", S),
        ("note", S)),
    "margin": _schema(
        ("account_id", S), ("taken_at", pa.timestamp("s")), ("net_liquidation", MONEY),
        ("initial_margin", MONEY), ("maintenance_margin", MONEY),
        ("excess_liquidity", MONEY), ("cushion", F), ("utilization", F)),
}


def write_tables(tx: Tx, tables: dict[str, pd.DataFrame]) -> dict[str, int]:
    """Replace every table of `TABLES` (an absent frame empties it); rows written."""
    tx.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    written = {}
    for name, schema in TABLES.items():
        tx.ensure_table(SCHEMA, name, schema)
        tx.execute(f'DELETE FROM {SCHEMA}."{name}"')
        written[name] = tx.insert(SCHEMA, name, to_arrow(tables.get(name), schema))
    return written


def to_arrow(frame: pd.DataFrame | None, schema: pa.Schema) -> pa.Table:
    """The frame's columns of `schema` (missing ones NULL), typed; money quantized."""
    if frame is None or frame.empty:
        return schema.empty_table()
    columns = {f.name: _column(frame.get(f.name, None), f.type, len(frame))
               for f in schema}
    return pa.table(columns, schema=schema)


def _column(values: pd.Series | None, kind: pa.DataType, rows: int) -> pa.Array:
    if values is None:
        return pa.nulls(rows, kind)
    if pa.types.is_floating(kind):  # vectorised: NaN becomes NULL
        return pa.array(pd.to_numeric(values).to_numpy(dtype="float64"), kind, from_pandas=True)
    if pa.types.is_string(kind):  # vectorised (position_daily and attribution: millions)
        return pa.array(values.astype("string[pyarrow]"), from_pandas=True).cast(kind)
    if pa.types.is_date(kind):
        days = pd.to_datetime(values).dt.normalize()
        return pa.array(days.to_numpy("datetime64[D]"), kind, mask=days.isna().to_numpy())
    items = [None if _missing(v) else v for v in values]
    if pa.types.is_decimal(kind):
        items = [None if v is None else Decimal(v).quantize(_QUANTUM, context=_MONEY_DIGITS)
                 for v in items]
    return pa.array(items, kind)


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and value != value) or value is pd.NaT
