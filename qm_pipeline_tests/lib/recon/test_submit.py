"""SYNC_TO_LOCAL submission with the real client over a real socket to the simulated gateway:
refused unless enabled, placed exactly as proposed, never twice, and failures that name the
proposal they stopped at."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from qm_pipeline.lib.recon.model import OrderProposal, SubmittedOrder
from qm_pipeline.lib.recon.submit import (
    SubmissionError,
    SubmissionRefused,
    order_ref,
    submit_proposals,
)
from qm_pipeline.lib.sim.gateway import (
    CompletedOrder,
    Delay,
    DropConnection,
    ErrorReply,
    GatewayState,
    GatewayThread,
    default_state,
)
from qm_pipeline_tests.lib.ib import conftest as ib_fixtures
from qm_pipeline_tests.lib.ib.conftest import StartGateway, settings_for

# The ib tests' gateway fixtures, shared rather than copied: `gateway` starts simulators;
# every test fails on a message the client could not decode, healthy paths on any client
# error.
gateway = ib_fixtures.gateway
no_decoder_or_simulator_errors = ib_fixtures.no_decoder_or_simulator_errors
no_client_errors = ib_fixtures.no_client_errors

AAPL, SPY = "265598", "756733"
BUY_AAPL = OrderProposal("p-aapl", "DU1234567", AAPL, "AAPL", "BUY", Decimal(3))
SELL_SPY = OrderProposal("p-spy", "DU7654321", SPY, "SPY", "SELL", Decimal("2.5"))


def _submit(gw: GatewayThread, proposals: list[OrderProposal], **settings: Any) -> Any:
    return submit_proposals(
        settings_for(gw, **{"readonly": False, **settings}),
        proposals,
        allow_order_submission=True,
    )


def _placed(gw: GatewayThread) -> list[dict[str, str]]:
    return [r.fields for r in gw.server.requests_named("PLACE_ORDER")]


@pytest.mark.parametrize(
    ("allow", "readonly", "reason"),
    [
        (False, False, "allow_order_submission is off; nothing"),
        (True, True, "read-only (SnapshotSettings.readonly); nothing"),
        (False, True, "allow_order_submission is off and the client settings are read-only"),
    ],
)
def test_refused_unless_enabled_and_not_readonly(
    gateway: StartGateway, allow: bool, readonly: bool, reason: str
) -> None:
    gw = gateway()

    with pytest.raises(SubmissionRefused, match=re.escape(reason)):
        submit_proposals(
            settings_for(gw, readonly=readonly), [BUY_AAPL], allow_order_submission=allow
        )

    assert gw.server.requests_named("PLACE_ORDER") == []
    assert gw.server.requests == []  # not even a connection


@pytest.mark.usefixtures("no_client_errors")
def test_orders_arrive_as_proposed_and_are_working_at_the_gateway(
    gateway: StartGateway,
) -> None:
    state = default_state()
    gw = gateway(state)

    result = _submit(gw, [BUY_AAPL, SELL_SPY])

    assert [(r.proposal_id, r.status) for r in result] == [
        ("p-aapl", "Submitted"),
        ("p-spy", "Submitted"),
    ]
    sent = [
        {k: f[k] for k in ("account", "con_id", "action", "total_quantity", "order_type")}
        for f in _placed(gw)
    ]
    assert sent == [
        {"account": "DU1234567", "con_id": AAPL, "action": "BUY", "total_quantity": "3.0",
         "order_type": "MKT"},
        {"account": "DU7654321", "con_id": SPY, "action": "SELL", "total_quantity": "2.5",
         "order_type": "MKT"},
    ]  # fmt: skip
    assert [f["order_ref"] for f in _placed(gw)] == ["qm-recon:p-aapl", "qm-recon:p-spy"]
    working = {
        o.order_ref: (account, o.order_id, o.perm_id, o.instrument.symbol, o.total_quantity)
        for account, o in state.open_orders()
    }
    assert working[order_ref("p-aapl")] == (
        "DU1234567", result[0].order_id, result[0].perm_id, "AAPL", Decimal(3),
    )  # fmt: skip
    assert working[order_ref("p-spy")] == (
        "DU7654321", result[1].order_id, result[1].perm_id, "SPY", Decimal("2.5"),
    )  # fmt: skip


@pytest.mark.usefixtures("no_client_errors")
def test_a_rerun_places_nothing_and_reports_the_same_orders(gateway: StartGateway) -> None:
    gw = gateway()
    first = _submit(gw, [BUY_AAPL, SELL_SPY])

    again = _submit(gw, [BUY_AAPL, SELL_SPY, BUY_AAPL])

    assert again == [*first, first[0]]
    assert len(_placed(gw)) == 2


@pytest.mark.usefixtures("no_client_errors")
def test_a_completed_order_counts_as_submitted(gateway: StartGateway) -> None:
    state = default_state()
    filled = CompletedOrder(
        perm_id=1_000_100, client_id=17, instrument=state.instruments[int(AAPL)],
        action="BUY", order_type="MKT",
        total_quantity=Decimal(3), filled_quantity=Decimal(3),
        completed_time=datetime.now(UTC), order_ref=order_ref("p-aapl"),
    )  # fmt: skip
    state.accounts[0].completed_orders.append(filled)
    gw = gateway(state)

    assert _submit(gw, [BUY_AAPL]) == [SubmittedOrder("p-aapl", 0, 1_000_100, "Filled")]
    assert _placed(gw) == []


def test_a_gateway_lost_mid_batch_names_the_proposal_and_a_rerun_completes_it(
    gateway: StartGateway,
) -> None:
    gw = gateway(default_state(), DropConnection(request="PLACE_ORDER", times=1))

    with pytest.raises(SubmissionError) as caught:
        _submit(gw, [BUY_AAPL, SELL_SPY])

    error = caught.value
    assert (error.proposal_id, error.submitted) == ("p-aapl", [])
    assert "stopped at proposal p-aapl (BUY 3 AAPL in DU1234567)" in str(error)
    assert "placeOrder(orderId" in str(error) and "lost" in str(error)
    # The order reached the gateway before it went away: the rerun finds it.
    again = _submit(gw, [BUY_AAPL, SELL_SPY])
    assert [r.proposal_id for r in again] == ["p-aapl", "p-spy"]
    assert [f["order_ref"] for f in _placed(gw)] == ["qm-recon:p-aapl", "qm-recon:p-spy"]


def test_an_unreachable_gateway_fails_before_the_first_proposal(gateway: StartGateway) -> None:
    gw = gateway()
    gw.stop()

    with pytest.raises(SubmissionError, match="before the first proposal: connect to") as caught:
        _submit(gw, [BUY_AAPL])

    assert (caught.value.proposal_id, caught.value.submitted) == (None, [])


def test_a_rejected_order_stops_the_batch(gateway: StartGateway) -> None:
    reject = ErrorReply(
        request="PLACE_ORDER", code=201, message="Order rejected - reason:No trading permissions"
    )
    gw = gateway(default_state(), reject)

    with pytest.raises(SubmissionError, match=r"rejected.*No trading permissions") as caught:
        _submit(gw, [BUY_AAPL, SELL_SPY])

    assert caught.value.proposal_id == "p-aapl"
    assert len(_placed(gw)) == 1


def test_an_unacknowledged_order_times_out(gateway: StartGateway) -> None:
    gw = gateway(default_state(), Delay(request="PLACE_ORDER", ms=1500))

    with pytest.raises(SubmissionError, match=r"p-aapl .*no answer within 0.5 s"):
        _submit(gw, [BUY_AAPL], request_timeout=0.5)


def test_an_unknown_contract_stops_the_batch_before_any_order(gateway: StartGateway) -> None:
    gw = gateway()
    unknown = replace(SELL_SPY, proposal_id="p-unknown", conid="999", symbol=None)

    with pytest.raises(SubmissionError, match=r"p-unknown \(SELL 2.5 conid 999 .*error 200"):
        _submit(gw, [BUY_AAPL, unknown])

    assert _placed(gw) == []


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"action": "HOLD"}, "neither BUY nor SELL"),
        ({"quantity": Decimal(0)}, "not positive"),
        ({"quantity": Decimal("NaN")}, "not positive"),
        ({"quantity": Decimal("0.10000000000000000001")}, "not exact"),
        ({"conid": "AAPL"}, "not a number"),
        ({"order_type": "LMT"}, "MKT only"),
    ],
)
def test_a_malformed_proposal_is_refused_before_connecting(
    gateway: StartGateway, change: dict[str, Any], problem: str
) -> None:
    gw = gateway(GatewayState([]))

    with pytest.raises(ValueError, match=problem):
        _submit(gw, [BUY_AAPL, replace(SELL_SPY, **change)])

    assert gw.server.requests == []


def test_nothing_to_submit_needs_no_connection(gateway: StartGateway) -> None:
    gw = gateway(GatewayState([]))

    assert _submit(gw, []) == []
    assert gw.server.requests == []
