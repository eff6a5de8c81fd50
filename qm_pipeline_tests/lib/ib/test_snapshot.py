"""The snapshot collector against the simulated gateway, with the real client over a socket."""

from __future__ import annotations

from datetime import timedelta

import pytest

from qm_pipeline.lib.ib.client import LIBRARY, LIBRARY_VERSION, MAX_SERVER_VERSION
from qm_pipeline.lib.ib.model import Snapshot
from qm_pipeline.lib.ib.rows import TABLES
from qm_pipeline.lib.ib.snapshot import SnapshotError, SnapshotSettings, take_snapshot
from qm_pipeline.lib.sim.gateway import default_state, make_state
from qm_pipeline_tests.lib.ib.conftest import StartGateway, settings_for
from qm_pipeline_tests.lib.ib.expected import STOCKS, assert_snapshot_matches

pytestmark = pytest.mark.usefixtures("no_client_errors")


def test_snapshot_fields_follow_the_table_declaration() -> None:
    names = list(Snapshot.__dataclass_fields__)
    assert names[:2] == ["snapshot_id", "taken_at"]
    assert names[2:] == list(TABLES)


@pytest.mark.parametrize("server_version", [157, 163, 176, 178])
def test_snapshot_is_complete_and_exact(gateway: StartGateway, server_version: int) -> None:
    """Every table, row and column, across the version-dependent layouts (176 is what
    ib_insync 0.9.86 negotiates: OPEN_ORDER with faProfile, 31-field executions)."""
    state = default_state()
    gw = gateway(state, max_server_version=server_version)

    snapshot = take_snapshot(settings_for(gw), known_conids=STOCKS)

    assert_snapshot_matches(snapshot, state, known_conids=STOCKS)
    (header,) = snapshot.snapshots
    assert header["snapshot_id"] == snapshot.snapshot_id
    assert header["server_version"] == min(server_version, MAX_SERVER_VERSION)
    assert header["accounts"] == "DU1234567,DU7654321"
    assert (header["host"], header["port"], header["client_id"]) == ("127.0.0.1", gw.port, 17)
    assert (header["library"], header["library_version"]) == (LIBRARY, LIBRARY_VERSION)
    assert header["attempts"] == 1
    assert header["server_time"].utcoffset() == timedelta(0)
    assert abs(header["server_time"] - header["taken_at"]) < timedelta(seconds=5)
    assert header["taken_at"].utcoffset() == timedelta(0)


def test_multi_account_portfolio_options_and_other_clients_orders(gateway: StartGateway) -> None:
    """The facts the pipeline relies on, spelled out (the exact comparison is above)."""
    gw = gateway(default_state())

    snapshot = take_snapshot(settings_for(gw), known_conids=STOCKS)

    by_account = {(r["account_id"], r["conid"]) for r in snapshot.portfolio_items}
    assert ("DU1234567", 265598) in by_account and ("DU7654321", 756733) in by_account
    put = next(r for r in snapshot.positions if r["conid"] == 723350002)
    assert (put["sec_type"], put["right"], put["strike"], put["expiry"]) == (
        "OPT",
        "P",
        180,
        "20260116",
    )
    assert put["multiplier"] == 100 and put["position"] == -2
    assert {(r["client_id"], r["order_id"]) for r in snapshot.open_orders} == {
        (1, 11),
        (1, 12),
        (1, 13),
        (2, 5),
        (0, 0),
    }
    joined = {
        r["ib_exec_id"]: (r["commission"], r["commission_currency"]) for r in snapshot.executions
    }
    assert joined["0000f1e6.67a1b2c4.01.01"] == (pytest.approx(1.25), "EUR")
    assert all(r["commission"] is not None for r in snapshot.executions)
    assert {r["conid"] for r in snapshot.contract_details} == {723350001, 723350002}
    assert all(r["is_paper"] for r in snapshot.accounts)


def test_the_gateway_saw_one_request_per_account_position_and_unknown_conid(
    gateway: StartGateway,
) -> None:
    state = default_state()
    gw = gateway(state)

    take_snapshot(settings_for(gw, client_id=23), known_conids=STOCKS)

    server = gw.server
    (start,) = server.requests_named("START_API")
    assert start.client_id == 23
    assert [r.get("account") for r in server.requests_named("REQ_ACCT_DATA")] == [
        "DU1234567",
        "DU7654321",
    ]
    assert all(r.get("subscribe") == "1" for r in server.requests_named("REQ_ACCT_DATA"))
    assert len(server.requests_named("REQ_ALL_OPEN_ORDERS")) == 1
    assert [r.get("api_only") for r in server.requests_named("REQ_COMPLETED_ORDERS")] == ["0"]
    assert {r.get("acct_code") for r in server.requests_named("REQ_EXECUTIONS")} == {""}
    assert sorted(r.get("account") for r in server.requests_named("REQ_PNL")) == [
        "DU1234567",
        "DU7654321",
    ]
    singles = {
        (r.get("account"), r.as_int("con_id")) for r in server.requests_named("REQ_PNL_SINGLE")
    }
    held = {(a.account_id, p.instrument.conid) for a in state.accounts for p in a.positions}
    assert singles == held
    details = sorted(r.as_int("con_id") for r in server.requests_named("REQ_CONTRACT_DATA"))
    assert details == [723350001, 723350002]
    assert all(r.client_id == 23 for r in server.requests)


def test_without_known_conids_every_held_contract_is_described(gateway: StartGateway) -> None:
    state = default_state()
    gw = gateway(state)

    snapshot = take_snapshot(settings_for(gw))

    assert_snapshot_matches(snapshot, state, known_conids=None)
    assert 320227571 not in {r["conid"] for r in snapshot.contract_details}  # QQQ: not held


def test_account_filter_keeps_only_the_selected_account(gateway: StartGateway) -> None:
    state = default_state()
    gw = gateway(state)

    snapshot = take_snapshot(settings_for(gw, accounts=("DU7654321",)), known_conids=STOCKS)

    assert_snapshot_matches(snapshot, state, accounts=["DU7654321"], known_conids=STOCKS)
    assert [r.get("account") for r in gw.server.requests_named("REQ_ACCT_DATA")] == ["DU7654321"]


def test_an_account_the_gateway_does_not_manage_is_an_error(gateway: StartGateway) -> None:
    gw = gateway(default_state())

    with pytest.raises(SnapshotError, match="U999 not managed") as caught:
        take_snapshot(settings_for(gw, accounts=("U999",), retries=2))

    assert not caught.value.retryable
    assert len(gw.server.requests_named("START_API")) == 1


def test_live_single_account_book_of_generated_positions(gateway: StartGateway) -> None:
    """A live (`U...`) account, alone on its gateway: connect() already subscribes it."""
    state = make_state(
        1, 40, 15, executions_per_account=5, completed_orders_per_account=4, paper=False
    )
    gw = gateway(state)

    snapshot = take_snapshot(settings_for(gw, max_requests_per_second=0))

    assert_snapshot_matches(snapshot, state)
    assert [(r["account_id"], r["is_paper"]) for r in snapshot.accounts] == [("U1000000", False)]


def test_generated_multi_account_book(gateway: StartGateway) -> None:
    state = make_state(3, 60, 20, executions_per_account=6, seed=7)
    gw = gateway(state)
    known = set(sorted(state.instruments)[10:])

    # The simulator does not pace requests; the client need not either.
    snapshot = take_snapshot(settings_for(gw, max_requests_per_second=0), known_conids=known)

    assert_snapshot_matches(snapshot, state, known_conids=known)
    assert len(snapshot.positions) == 180 and len(snapshot.open_orders) == 60


def test_settings_refuse_a_zero_timeout() -> None:
    with pytest.raises(ValueError, match="wait forever"):
        SnapshotSettings(request_timeout=0)
