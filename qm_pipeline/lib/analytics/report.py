"""The tearsheets: the analytics tables read back from the warehouse, one HTML page per
account and one for ALL, written under QM_DATA_DIR/reports/.

Reading the stored tables (not the build's frames) means a tearsheet shows exactly what an
analyst querying `analytics.*` sees, and can be rewritten without rebuilding.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from qm_pipeline.lib.analytics.accounts import ALL
from qm_pipeline.lib.analytics.config import AnalyticsConfig
from qm_pipeline.lib.analytics.prices import BENCHMARK_PREFIX
from qm_pipeline.lib.analytics.sources import latest_recon, read_base_currencies
from qm_pipeline.lib.analytics.store import SCHEMA, TABLES
from qm_pipeline.lib.analytics.tearsheet import TearsheetData, write_tearsheet
from qm_pipeline.lib.warehouse.engine import Tx, Warehouse, q

_USED = ("portfolio_daily", "performance", "risk", "exposure", "position_weights",
         "concentration")


def write_tearsheets(warehouse: Warehouse, folder: Path, config: AnalyticsConfig) -> list[Path]:
    """Write every account's tearsheet and ALL's; returns their paths (none before the
    first analytics build)."""
    with warehouse.transaction() as tx:
        if "portfolio_daily" not in tx.tables(SCHEMA):
            return []
        tables = {name: read_table(tx, name) for name in _USED}
        recon = _reconciliation(tx)
        bases = read_base_currencies(tx)
        benchmark = _benchmark(tx, config.benchmark)
    accounts = sorted(tables["portfolio_daily"]["account_id"].unique(), key=lambda a: a == ALL)
    return [write_tearsheet(tearsheet_data(a, tables, recon, bases, benchmark,
                                           config.benchmark), folder) for a in accounts]


def read_table(tx: Tx, name: str) -> pd.DataFrame:
    columns = [f.name for f in TABLES[name]]
    return pd.DataFrame(tx.execute(f"SELECT {', '.join(q(c) for c in columns)} "
                                   f"FROM {SCHEMA}.{q(name)}"), columns=columns)


def tearsheet_data(account: str, tables: dict[str, pd.DataFrame], recon: dict,
                   bases: dict[str, str], benchmark: pd.Series | None,
                   benchmark_name: str | None) -> TearsheetData:
    own = {name: t[t["account_id"] == account] for name, t in tables.items()}
    daily = own["portfolio_daily"].assign(date=lambda f: pd.to_datetime(f["date"])).set_index(
        "date").sort_index()[["twr_index", "drawdown", "daily_return"]].astype("float64")
    as_of = daily.index[-1].date() if len(daily) else dt.date.today()
    concentration = own["concentration"].to_dict("records")
    base = bases.get(account) or next(iter(set(bases.values())), "")
    return TearsheetData(
        account_id=account, base_currency=base, as_of=as_of, daily=daily,
        benchmark=_rebased(benchmark, daily.index), benchmark_name=benchmark_name,
        performance=_performance(own["performance"]), risk=own["risk"],
        exposure=own["exposure"].assign(**{c: own["exposure"][c].astype("float64") for c in (
            "long", "short", "gross", "net")}),
        weights=own["position_weights"].assign(weight=own["position_weights"]["weight"]
                                               .astype("float64")),
        concentration=_concentration(concentration[0]) if concentration else {},
        reconciliation=recon)


def _performance(table: pd.DataFrame) -> pd.DataFrame:
    """The tearsheet names the benchmark columns without the warehouse's `bench_` prefix."""
    return table.rename(columns=lambda c: c.removeprefix("bench_"))


def _concentration(row: dict) -> dict:
    return {f"top_{row['top_n']}_share": row["top_n_share"], "herfindahl": row["herfindahl"],
            "breaches": row["breaches"].split("; ") if row["breaches"] else []}


def _rebased(benchmark: pd.Series | None, dates: pd.DatetimeIndex) -> pd.Series | None:
    """The benchmark's growth index on the portfolio's dates, 1.0 at the first of them."""
    if benchmark is None or benchmark.empty or dates.empty:
        return None
    prices = benchmark.reindex(benchmark.index.union(dates)).ffill().reindex(dates).dropna()
    return prices / prices.iloc[0] if not prices.empty else None


def _benchmark(tx: Tx, symbol: str | None) -> pd.Series | None:
    if not symbol:
        return None
    rows = tx.execute("SELECT date, price FROM core.prices WHERE instrument_id = :i "
                      "ORDER BY date", {"i": BENCHMARK_PREFIX + symbol})
    return pd.Series([float(p) for _, p in rows],
                     index=pd.DatetimeIndex([pd.Timestamp(d) for d, _ in rows])) if rows else None


def _reconciliation(tx: Tx) -> dict:
    run = latest_recon(tx)
    if run is None:
        return {"run_id": None, "finished_at": None, "status": "never run", "open_breaks": 0,
                "halting_breaks": 0, "text": "reconciliation has not run yet"}
    halting = tx.scalar("SELECT count(*) FROM recon.discrepancies WHERE status = 'OPEN' "
                        "AND strategy = 'HALT_AND_ALERT'")
    text = (f"run {run['run_id']} at {run['finished_at']:%Y-%m-%d %H:%M} UTC: {run['status']}, "
            f"{run['open_breaks']} open break(s)")
    return run | {"halting_breaks": int(halting or 0), "text": text}
