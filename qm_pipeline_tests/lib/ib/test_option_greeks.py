"""IB's option model values in a snapshot: requested for each option held, stored as IB
computed them, and optional: an option the account has no market data for gets a note,
while the positions everybody needs are still stored. A lost connection still fails."""

from __future__ import annotations

import pytest

from qm_pipeline.lib.ib.snapshot import SnapshotError, take_snapshot
from qm_pipeline.lib.sim.gateway import DropConnection, ErrorReply, default_state
from qm_pipeline_tests.lib.ib.conftest import StartGateway, settings_for
from qm_pipeline_tests.lib.ib.expected import STOCKS, assert_snapshot_matches

AAPL_CALL, AAPL_PUT = 723350001, 723350002
NOT_SUBSCRIBED = "Requested market data is not subscribed."


@pytest.mark.usefixtures("no_client_errors")
def test_each_option_held_gets_ibs_model_values(gateway: StartGateway) -> None:
    state = default_state()
    gw = gateway(state)

    snapshot = take_snapshot(settings_for(gw), known_conids=STOCKS)

    assert_snapshot_matches(snapshot, state, known_conids=STOCKS)
    by_conid = {r["conid"]: r for r in snapshot.option_greeks}
    call = by_conid[AAPL_CALL]
    assert (call["implied_vol"], call["delta"], call["gamma"], call["vega"], call["theta"]) == (
        0.2431, 0.4612, 0.0098, 0.6105, -0.0512)
    assert str(call["underlying_price"]) == "189.5" and call["market_data_type"] == 1
    assert by_conid[AAPL_PUT]["delta"] == -0.1523
    asked = gw.server.requests_named("REQ_MKT_DATA")
    assert sorted(int(r.get("con_id")) for r in asked) == [AAPL_CALL, AAPL_PUT]
    assert {(r.get("snapshot"), r.get("generic_ticks")) for r in asked} == {("1", "")}


def test_an_option_without_market_data_gets_a_note_not_a_failed_snapshot(
    gateway: StartGateway,
) -> None:
    state = default_state()
    gw = gateway(state, ErrorReply(request="REQ_MKT_DATA", code=354, message=NOT_SUBSCRIBED,
                                   times=1))

    snapshot = take_snapshot(settings_for(gw), known_conids=STOCKS)

    assert len(snapshot.positions) == 6 and snapshot.snapshots[0]["attempts"] == 1
    refused, answered = sorted(snapshot.option_greeks, key=lambda r: r["delta"] is not None)
    assert refused["delta"] is None and refused["implied_vol"] is None
    assert refused["note"].startswith("error 354") and NOT_SUBSCRIBED in refused["note"]
    assert answered["note"] is None and answered["delta"] in (0.4612, -0.1523)


def test_options_without_a_model_in_the_snapshot_say_so(gateway: StartGateway) -> None:
    state = default_state()
    state.option_models.clear()
    gw = gateway(state)

    snapshot = take_snapshot(settings_for(gw), known_conids=STOCKS)

    assert_snapshot_matches(snapshot, state, known_conids=STOCKS)
    assert {r["note"] for r in snapshot.option_greeks} == {"the snapshot carried no model values"}


def test_a_connection_lost_during_market_data_fails_the_attempt(gateway: StartGateway) -> None:
    gw = gateway(default_state(), DropConnection(request="REQ_MKT_DATA", after_messages=0))

    with pytest.raises(SnapshotError) as caught:
        take_snapshot(settings_for(gw), known_conids=STOCKS)

    assert caught.value.request == "reqMktData(snapshot)" and caught.value.retryable


@pytest.mark.usefixtures("no_client_errors")
def test_greeks_can_be_switched_off(gateway: StartGateway) -> None:
    gw = gateway(default_state())

    snapshot = take_snapshot(settings_for(gw, option_greeks=False), known_conids=STOCKS)

    assert snapshot.option_greeks == [] and len(snapshot.positions) == 6
    assert gw.server.requests_named("REQ_MKT_DATA") == []
