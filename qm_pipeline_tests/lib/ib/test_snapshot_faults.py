"""Each gateway fault ends in a complete snapshot after a retry, or in `SnapshotError`:
never in a partial or empty result."""

from __future__ import annotations

import socket
import time

import pytest

from qm_pipeline.lib.ib.snapshot import SnapshotError, take_snapshot
from qm_pipeline.lib.sim.gateway import (
    Delay,
    DropConnection,
    DuplicateClientId,
    ErrorReply,
    GatewayThread,
    NeverEnd,
    RefuseConnection,
    default_state,
)
from qm_pipeline_tests.lib.ib.conftest import StartGateway, settings_for
from qm_pipeline_tests.lib.ib.expected import STOCKS, assert_snapshot_matches
from qm_pipeline_tests.lib.ib.raw_api import RawSession


def _attempts(gw: GatewayThread) -> int:
    return len(gw.server.requests_named("START_API"))


@pytest.mark.parametrize(
    "request_name",
    [
        "REQ_ACCT_DATA",  # the collector's own request, mid-snapshot
        "REQ_POSITIONS",  # during connect()'s startup sync
        "REQ_PNL_SINGLE",  # the very last step
    ],
)
def test_a_dropped_connection_is_retried_whole(gateway: StartGateway, request_name: str) -> None:
    state = default_state()
    gw = gateway(state, DropConnection(request=request_name, after_messages=1, times=1))

    snapshot = take_snapshot(settings_for(gw, retries=2), known_conids=STOCKS)

    assert_snapshot_matches(snapshot, state, known_conids=STOCKS)
    assert snapshot.snapshots[0]["attempts"] == 2
    assert _attempts(gw) == 2
    assert len(gw.server.faults.fired) == 1


def test_a_connection_that_keeps_dropping_gives_up_after_the_retries(
    gateway: StartGateway,
) -> None:
    gw = gateway(default_state(), DropConnection(request="REQ_ACCT_DATA", after_messages=3))

    with pytest.raises(SnapshotError) as caught:
        take_snapshot(settings_for(gw, retries=2, backoff=0.01))

    error = caught.value
    assert "reqAccountUpdates(DU1234567)" in str(error) and "lost" in str(error)
    assert (error.request, error.account, error.retryable) == (
        "reqAccountUpdates",
        "DU1234567",
        True,
    )
    assert "after attempt 3 of 3" in "".join(error.__notes__)
    assert _attempts(gw) == 3


def test_backoff_doubles_between_attempts(gateway: StartGateway) -> None:
    gw = gateway(default_state(), RefuseConnection())
    start = time.monotonic()

    with pytest.raises(SnapshotError, match="connect"):
        take_snapshot(settings_for(gw, retries=2, backoff=0.2))

    assert time.monotonic() - start >= 0.2 + 0.4


def test_a_refused_connection_is_retried_then_reported(gateway: StartGateway) -> None:
    once = gateway(default_state(), RefuseConnection(times=1))
    always = gateway(default_state(), RefuseConnection())

    assert take_snapshot(settings_for(once, retries=1)).snapshots[0]["attempts"] == 2
    with pytest.raises(SnapshotError, match=r"^connect: connection to .* (lost|failed)") as caught:
        take_snapshot(settings_for(always, retries=1))
    assert caught.value.retryable


def test_nothing_listening_is_a_snapshot_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = settings_for(_Address("127.0.0.1", port))

    with pytest.raises(SnapshotError, match="ConnectionRefusedError"):
        take_snapshot(settings)


@pytest.mark.parametrize(
    ("request_name", "label"),
    [
        ("REQ_ACCT_DATA", "reqAccountUpdates(DU1234567)"),
        ("REQ_ACCOUNT_SUMMARY", "reqAccountSummary"),
        ("REQ_ALL_OPEN_ORDERS", "reqAllOpenOrders"),
        ("REQ_CONTRACT_DATA", "reqContractDetails"),
        ("REQ_PNL_SINGLE", "reqPnL/reqPnLSingle"),
    ],
)
def test_a_missing_end_is_a_timeout_not_a_short_table(
    gateway: StartGateway, request_name: str, label: str
) -> None:
    gw = gateway(default_state(), NeverEnd(request=request_name, times=1), pnl_interval=None)

    with pytest.raises(SnapshotError, match="no complete answer within") as caught:
        take_snapshot(settings_for(gw, request_timeout=0.3), known_conids=STOCKS)

    assert str(caught.value).startswith(label)
    assert caught.value.retryable


def test_a_missing_pnl_value_names_the_position(gateway: StartGateway) -> None:
    gw = gateway(default_state(), NeverEnd(request="REQ_PNL_SINGLE", times=1), pnl_interval=None)

    with pytest.raises(SnapshotError, match=r"1 of 8 subscriptions without values \(first: DU"):
        take_snapshot(settings_for(gw, request_timeout=0.3), known_conids=STOCKS)


def test_a_missing_startup_end_fails_the_connect(gateway: StartGateway) -> None:
    gw = gateway(default_state(), NeverEnd(request="REQ_POSITIONS"))

    with pytest.raises(SnapshotError, match=r"^(connect|reqPositions)"):
        take_snapshot(settings_for(gw, connect_timeout=0.3, request_timeout=0.3))


@pytest.mark.parametrize(
    ("request_name", "code", "label"),
    [
        ("REQ_ACCOUNT_SUMMARY", 322, "reqAccountSummary: error 322"),
        ("REQ_ACCT_DATA", 321, "reqAccountUpdates(DU1234567): error 321"),
        ("REQ_COMPLETED_ORDERS", 322, "reqCompletedOrders: error 322"),
        ("REQ_CONTRACT_DATA", 200, "reqContractDetails"),
    ],
)
def test_an_error_reply_fails_without_retry(
    gateway: StartGateway, request_name: str, code: int, label: str
) -> None:
    gw = gateway(default_state(), ErrorReply(request=request_name, code=code))

    with pytest.raises(SnapshotError) as caught:
        take_snapshot(settings_for(gw, retries=2), known_conids=STOCKS)

    assert str(caught.value).startswith(label)
    assert f"error {code}" in str(caught.value)
    assert not caught.value.retryable
    assert _attempts(gw) == 1


def test_unknown_contract_names_its_conid(gateway: StartGateway) -> None:
    gw = gateway(default_state(), ErrorReply(request="REQ_CONTRACT_DATA", code=200, times=1))

    with pytest.raises(SnapshotError, match=r"conid 723350001.*error 200"):
        take_snapshot(settings_for(gw), known_conids=STOCKS)


def test_a_reply_slower_than_the_timeout_fails(gateway: StartGateway) -> None:
    gw = gateway(default_state(), Delay(request="REQ_ALL_OPEN_ORDERS", ms=1500))

    with pytest.raises(SnapshotError, match=r"^reqAllOpenOrders: no complete answer within 0.3"):
        take_snapshot(settings_for(gw, request_timeout=0.3))


def test_slow_replies_within_the_timeout_are_fine(gateway: StartGateway) -> None:
    state = default_state()
    gw = gateway(state, Delay(ms=5))

    snapshot = take_snapshot(settings_for(gw), known_conids=STOCKS)

    assert_snapshot_matches(snapshot, state, known_conids=STOCKS)


def test_duplicate_client_id_is_reported_not_retried(gateway: StartGateway) -> None:
    gw = gateway(default_state(), DuplicateClientId(client_id=17))

    with pytest.raises(SnapshotError, match="client id 17 is already in use") as caught:
        take_snapshot(settings_for(gw, retries=2))

    assert not caught.value.retryable
    assert _attempts(gw) == 1


def test_a_client_id_held_by_another_connection_is_refused(gateway: StartGateway) -> None:
    gw = gateway(default_state())
    with RawSession(gw.port) as other_app:
        other_app.start_api(client_id=17)
        with pytest.raises(SnapshotError, match="client id 17 is already in use"):
            take_snapshot(settings_for(gw))
        snapshot = take_snapshot(settings_for(gw, client_id=18))
    assert snapshot.snapshots[0]["client_id"] == 18


class _Address:
    """Where `settings_for` points: a port nobody listens on."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
