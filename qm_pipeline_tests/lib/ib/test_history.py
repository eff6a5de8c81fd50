"""Daily bars from the historical-data service, through the real client and socket: the
simulator's bars to the cent, or `SnapshotError`, never an empty history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from qm_pipeline.lib.ib.history import BarRequest, fetch_daily_bars
from qm_pipeline.lib.ib.snapshot import SnapshotError
from qm_pipeline.lib.sim.gateway import DropConnection, NeverEnd, default_state
from qm_pipeline_tests.lib.ib.conftest import StartGateway, settings_for

SPY = 756733


@pytest.mark.usefixtures("no_client_errors")
def test_bars_of_the_window_arrive_exactly(gateway: StartGateway) -> None:
    state = default_state()
    gw = gateway(state)

    bars = fetch_daily_bars(settings_for(gw), BarRequest("SPY", duration="1 Y"))

    today = datetime.now(UTC).date()
    want = [b for b in state.daily_bars[SPY] if b.day > today - timedelta(days=365)]
    assert bars.conid == SPY and len(bars.rows) == len(want) > 250
    assert [(r["date"], r["open"], r["high"], r["low"], r["close"], r["volume"]) for r in
            bars.rows] == [(b.day, b.open, b.high, b.low, b.close, b.volume) for b in want]
    assert {r["what_to_show"] for r in bars.rows} == {"ADJUSTED_LAST"}
    (asked,) = gw.server.requests_named("REQ_HISTORICAL_DATA")
    assert (asked.get("con_id"), asked.get("duration"), asked.get("bar_size"),
            asked.get("what_to_show"), asked.get("end_date_time")) == (
        str(SPY), "1 Y", "1 day", "ADJUSTED_LAST", "")


@pytest.mark.parametrize(("request_", "failing", "text"), [
    (BarRequest("MSFT"), "reqHistoricalData", "error 162: Historical Market Data Service"),
    (BarRequest("NOPE"), "reqContractDetails", "error 200: No security definition"),
])
def test_no_data_is_an_error_not_an_empty_history(gateway: StartGateway, request_: BarRequest,
                                                   failing: str, text: str) -> None:
    gw = gateway(default_state())

    with pytest.raises(SnapshotError) as caught:
        fetch_daily_bars(settings_for(gw), request_)

    assert caught.value.request == failing and text in str(caught.value)
    assert not caught.value.retryable


def test_an_answer_that_never_ends_times_out(gateway: StartGateway) -> None:
    gw = gateway(default_state(), NeverEnd(request="REQ_HISTORICAL_DATA"))

    with pytest.raises(SnapshotError, match="no complete answer within 2 s"):
        fetch_daily_bars(settings_for(gw, request_timeout=1.0), BarRequest("SPY"))


def test_a_dropped_connection_is_retried(gateway: StartGateway) -> None:
    gw = gateway(default_state(),
                 DropConnection(request="REQ_HISTORICAL_DATA", after_messages=0, times=1))

    bars = fetch_daily_bars(settings_for(gw, retries=1), BarRequest("SPY", duration="3 M"))

    assert 60 <= len(bars.rows) <= 66
    assert len(gw.server.requests_named("START_API")) == 2
