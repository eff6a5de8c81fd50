"""Live snapshots of the accounts, and daily bars for the benchmark, from TWS / IB Gateway:
each stored whole or not at all."""

import uuid

import dagster as dg

from qm_pipeline.defs.live.resources import IBGatewayResource
from qm_pipeline.defs.resources import WarehouseResource
from qm_pipeline.lib.analytics.config import benchmark_from_env
from qm_pipeline.lib.ib.history import BarRequest, fetch_daily_bars
from qm_pipeline.lib.ib.model import SnapshotError
from qm_pipeline.lib.ib.snapshot import take_snapshot
from qm_pipeline.lib.live.bars import store_daily_bars
from qm_pipeline.lib.live.store import known_conids, record_failure, store_snapshot

SNAPSHOT = dg.AssetKey(["live", "snapshots"])
DAILY_BARS = dg.AssetKey(["live", "daily_bars"])


@dg.asset(
    key=SNAPSHOT, group_name="live", pool="warehouse", kinds={"ib"},
    description="One complete snapshot of every managed account: account values, summary, "
                "portfolio, positions, open and completed orders, today's executions, PnL.",
)
def live_snapshot(ib_gateway: IBGatewayResource,
                  warehouse: WarehouseResource) -> dg.MaterializeResult:
    store = warehouse.get()
    settings = ib_gateway.settings()
    with store.transaction() as tx:
        known = known_conids(tx)
    try:
        snapshot = take_snapshot(settings, known_conids=known)
    except SnapshotError as exc:
        with store.transaction() as tx:
            record_failure(tx, uuid.uuid4().hex, settings.host, settings.port,
                           settings.client_id, str(exc))
        raise dg.Failure(
            f"Live snapshot failed, nothing stored (the accounts are unknown, not flat): {exc}",
            metadata={"request": exc.request, "account": exc.account or "",
                      "host": f"{settings.host}:{settings.port}"},
        ) from exc
    with store.transaction() as tx:
        written = store_snapshot(tx, snapshot)
    accounts = snapshot.snapshots[0]["accounts"] if snapshot.snapshots else ""
    return dg.MaterializeResult(metadata={
        "snapshot_id": snapshot.snapshot_id, "accounts": accounts,
        "taken_at": snapshot.taken_at.isoformat(), **{f"rows_{t}": n for t, n in
                                                       written.items()},
    })


class DailyBarsConfig(dg.Config):
    """Which instrument's daily bars; an empty symbol means the analytics benchmark
    (QM_BENCHMARK). `ADJUSTED_LAST` closes include dividends; `TRADES` are the plain ones."""

    symbol: str = ""
    sec_type: str = "STK"
    exchange: str = "SMART"
    primary_exchange: str = ""
    currency: str = "USD"
    duration: str = "10 Y"
    what_to_show: str = "ADJUSTED_LAST"


@dg.asset(
    key=DAILY_BARS, group_name="live", pool="warehouse", kinds={"ib"},
    description="Daily bars of the benchmark from TWS's historical data: the prices "
                "analytics compare against when no CSV is in the benchmark drop folder.",
)
def daily_bars(config: DailyBarsConfig, ib_gateway: IBGatewayResource,
               warehouse: WarehouseResource) -> dg.MaterializeResult:
    symbol = config.symbol.strip().upper() or benchmark_from_env()
    if not symbol:
        raise dg.Failure("No symbol to fetch: set QM_BENCHMARK or the run config's `symbol`.")
    request = BarRequest(symbol, config.sec_type, config.exchange, config.currency,
                         config.primary_exchange, config.duration, config.what_to_show)
    settings = ib_gateway.settings(client_id=ib_gateway.history_client_id)
    try:
        bars = fetch_daily_bars(settings, request)
    except SnapshotError as exc:
        raise dg.Failure(f"Daily bars of {symbol} not fetched, nothing stored: {exc}",
                         metadata={"request": exc.request, "symbol": symbol}) from exc
    with warehouse.get().transaction() as tx:
        written = store_daily_bars(tx, bars)
    return dg.MaterializeResult(metadata={
        "symbol": symbol, "conid": bars.conid, "what_to_show": request.what_to_show,
        "first": bars.first.isoformat(), "last": bars.last.isoformat(), "rows": written,
    })
