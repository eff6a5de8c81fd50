"""Daily bars from TWS's historical-data service: a benchmark's price history, complete or
not at all.

Both client libraries turn a historical-data request that times out, or that TWS answers
with an error while `RaiseRequestErrors` is off, into an empty bar list, which reads like
"no history". Here the request runs as a step of a `Session` (its own bound, errors and a
lost connection fatal) and an answer without bars is an error: a failed query never
becomes an empty price history.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from qm_pipeline.lib.ib.client import Contract
from qm_pipeline.lib.ib.model import SnapshotSettings
from qm_pipeline.lib.ib.rows import Row, dec
from qm_pipeline.lib.ib.session import Session, retried

BAR_COLUMNS = ("conid", "symbol", "currency", "what_to_show", "date", "open", "high", "low",
               "close", "volume", "wap", "bar_count")


@dataclass(frozen=True)
class BarRequest:
    """Which instrument's daily bars, over which window, of which prices.

    `ADJUSTED_LAST` (TWS adjusts the closes for splits and dividends) is the default: a
    benchmark's return should include its dividends. `TRADES` gives the unadjusted closes.
    """

    symbol: str
    sec_type: str = "STK"
    exchange: str = "SMART"
    currency: str = "USD"
    primary_exchange: str = ""
    duration: str = "10 Y"
    what_to_show: str = "ADJUSTED_LAST"
    use_rth: bool = True


@dataclass(frozen=True)
class DailyBars:
    """One complete answer: the bars (`BAR_COLUMNS` rows, prices Decimal) and when."""

    request: BarRequest
    conid: int
    fetched_at: datetime
    rows: list[Row]

    @property
    def first(self) -> date:
        return self.rows[0]["date"]

    @property
    def last(self) -> date:
        return self.rows[-1]["date"]


class _History(Session):
    async def fetch(self, request: BarRequest) -> DailyBars:
        contract = await self._qualify(request)
        bars = await self._step(
            "reqHistoricalData",
            # timeout=0: the library's own timeout would return no bars instead of failing.
            self.ib.reqHistoricalDataAsync(
                contract, "", request.duration, "1 day", request.what_to_show,
                request.use_rth, formatDate=1, timeout=0),
            timeout=self.settings.request_timeout * 2,
        )  # fmt: skip
        self._ensure_connected()
        if not bars:
            raise self._error(f"no daily bars for {request.symbol} over {request.duration}",
                              retryable=False)
        rows = [_bar_row(contract, request, bar) for bar in bars]
        return DailyBars(request, contract.conId, datetime.now(UTC), rows)

    async def _qualify(self, request: BarRequest) -> Any:
        """The one contract the request names (IB's historical data needs its conid)."""
        wanted = Contract(symbol=request.symbol, secType=request.sec_type,
                          exchange=request.exchange, currency=request.currency,
                          primaryExchange=request.primary_exchange)
        found = await self._step("reqContractDetails", self.ib.reqContractDetailsAsync(wanted))
        if len(found) != 1:
            what = "no contract" if not found else f"{len(found)} contracts"
            raise self._error(f"{what} for {request.symbol} {request.sec_type} "
                              f"{request.currency} on {request.exchange}", retryable=False)
        return found[0].contract


def _bar_row(contract: Any, request: BarRequest, bar: Any) -> Row:
    day = bar.date.date() if isinstance(bar.date, datetime) else bar.date
    return {"conid": contract.conId, "symbol": contract.symbol, "currency": contract.currency,
            "what_to_show": request.what_to_show, "date": day, "open": dec(bar.open),
            "high": dec(bar.high), "low": dec(bar.low), "close": dec(bar.close),
            "volume": dec(bar.volume), "wap": dec(bar.average), "bar_count": bar.barCount}


async def fetch_daily_bars_async(settings: SnapshotSettings, request: BarRequest) -> DailyBars:
    """`fetch_daily_bars` for callers already inside an event loop."""

    async def attempt(n: int) -> DailyBars:
        session = _History(settings, n)
        return await session.run(lambda: session.fetch(request))

    return await retried(settings, attempt, f"daily bars of {request.symbol}")


def fetch_daily_bars(settings: SnapshotSettings, request: BarRequest) -> DailyBars:
    """Connect, fetch the bars, disconnect; raises `SnapshotError` for anything short of a
    complete answer."""
    return asyncio.run(fetch_daily_bars_async(settings, request))
