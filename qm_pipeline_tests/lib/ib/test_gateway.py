"""The simulated gateway itself: handshake, wire layouts per version, request semantics."""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
import sys
from decimal import Decimal

import pytest

from qm_pipeline.lib.ib.client import IB, Contract, LimitOrder
from qm_pipeline.lib.sim.gateway import GatewayServer, default_state
from qm_pipeline_tests.lib.ib.conftest import StartGateway
from qm_pipeline_tests.lib.ib.raw_api import RawSession


@pytest.mark.parametrize(
    ("client", "server_max", "expected"),
    [
        ("v157..178", 178, 178),
        ("v157..176", 178, 176),
        ("v157..200", 178, 178),
        ("v157..178", 163, 163),
    ],
)
def test_server_version_is_the_lower_of_both_maxima(
    gateway: StartGateway, client: str, server_max: int, expected: int
) -> None:
    gw = gateway(max_server_version=server_max)
    with RawSession(gw.port, client) as session:
        version, connected_at = session.read()
    assert int(version) == expected
    assert re.fullmatch(r"\d{8} \d\d:\d\d:\d\d UTC", connected_at)


@pytest.mark.parametrize("client", ["v100..156", "v179..200"])
def test_clients_outside_157_to_178_are_hung_up_on(gateway: StartGateway, client: str) -> None:
    gw = gateway()
    with RawSession(gw.port, client) as session, pytest.raises(ConnectionError):
        session.read()


def test_a_peer_not_speaking_the_protocol_is_hung_up_on(gateway: StartGateway) -> None:
    gw = gateway()
    with socket.create_connection(("127.0.0.1", gw.port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\n\r\n")
        assert sock.recv(100) == b""


@pytest.mark.parametrize(("server_version", "error_fields"), [(157, 5), (165, 5), (166, 6)])
def test_start_api_answers_accounts_next_id_and_farm_status(
    gateway: StartGateway, server_version: int, error_fields: int
) -> None:
    """ERROR grows advancedOrderRejectJson at 166; without it ib_async/insync lose errors."""
    gw = gateway(max_server_version=server_version)
    with RawSession(gw.port) as session:
        replies = session.start_api(client_id=5)
    assert ["15", "1", "DU1234567,DU7654321"] in replies
    assert replies[-1] == ["9", "1", "20"]
    farm = [m for m in replies if m[0] == "4"]
    assert [m[3] for m in farm] == ["2104", "2106", "2158"]
    assert {len(m) for m in farm} == {error_fields}
    (start,) = gw.server.requests_named("START_API")
    assert (start.client_id, start.fields["client_id"]) == (5, "5")


# Field counts per message and server version: ib_insync unpacks POSITION_DATA,
# PORTFOLIO_VALUE, EXECUTION_DATA and COMMISSION_REPORT into fixed-size tuples, and
# OPEN_ORDER/COMPLETED_ORDER/CONTRACT_DATA change shape with the version.
LAYOUTS = {
    157: {"5": 120, "3": 12, "101": 92, "11": 31, "59": 8, "61": 16, "7": 20, "10": 39},
    163: {"5": 123, "3": 12, "101": 92, "11": 31, "59": 8, "61": 16, "7": 20, "10": 40},
    176: {"5": 128, "3": 12, "101": 97, "11": 31, "59": 8, "61": 16, "7": 20, "10": 40},
    178: {"5": 127, "3": 12, "101": 96, "11": 32, "59": 8, "61": 16, "7": 20, "10": 40},
}


@pytest.mark.parametrize("server_version", sorted(LAYOUTS))
def test_message_layouts_per_server_version(gateway: StartGateway, server_version: int) -> None:
    gw = gateway(max_server_version=server_version)
    with RawSession(gw.port) as session:
        session.start_api(client_id=1)
        session.send(16, 1)  # REQ_ALL_OPEN_ORDERS
        messages = session.read_until(53)
        session.send(99, 0)  # REQ_COMPLETED_ORDERS
        messages += session.read_until(102)
        session.send(7, 3, 40, 0, "", "", "", "", "", "")  # REQ_EXECUTIONS
        messages += session.read_until(55)
        session.send(61, 1)  # REQ_POSITIONS
        messages += session.read_until(62)
        session.send(6, 2, 1, "DU1234567")  # REQ_ACCT_DATA
        messages += session.read_until(54)
        session.send(9, 8, 41, 723350001, *[""] * 11, 0, "", "", "")  # REQ_CONTRACT_DATA
        messages += session.read_until(52)
    sizes: dict[str, set[int]] = {}
    for msg in messages:
        sizes.setdefault(msg[0], set()).add(len(msg))
    for msg_id, size in LAYOUTS[server_version].items():
        assert sizes[msg_id] == {size}, msg_id
    # Each COMMISSION_REPORT right after the EXECUTION_DATA with its execId.
    pairs = [(m[14], messages[i + 1][:3]) for i, m in enumerate(messages) if m[0] == "11"]
    assert len(pairs) == 4
    assert all(report == ["59", "1", exec_id] for exec_id, report in pairs)


def test_contract_lookup_by_fields_and_unknown_contract_error(gateway: StartGateway) -> None:
    gw = gateway()
    with RawSession(gw.port) as session:
        session.start_api(client_id=1)
        session.send(
            9,
            8,
            7,
            0,
            "AAPL",
            "OPT",
            "20260116",
            "200.0",
            "C",
            "",
            "SMART",
            "",
            "",
            "",
            "",
            0,
            "",
            "",
            "",
        )
        found = session.read_until(52)
        session.send(9, 8, 8, 999, *[""] * 11, 0, "", "", "")
        (unknown,) = session.read_until(4)
    assert [m[12] for m in found if m[0] == "10"] == ["723350001"]
    assert unknown[:5] == [
        "4",
        "2",
        "8",
        "200",
        "No security definition has been found for the request",
    ]


def test_execution_filter_by_account_side_and_time(gateway: StartGateway) -> None:
    gw = gateway()

    def exec_ids(*criteria: str) -> list[str]:
        session.send(7, 3, 50, 0, *criteria)
        return [m[14] for m in session.read_until(55) if m[0] == "11"]

    with RawSession(gw.port) as session:
        session.start_api(client_id=1)
        assert exec_ids("DU7654321", "", "", "", "", "") == ["0000e0d5.67a1b2c5.01.01"]
        assert exec_ids("", "", "", "", "", "SELL") == ["0000f1e6.67a1b2c4.01.01"]
        assert exec_ids("", "", "SAP", "STK", "", "") == ["0000f1e6.67a1b2c4.01.01"]
        late = default_state().accounts[1].executions[0].time.strftime("%Y%m%d-%H:%M:%S")
        assert exec_ids("", late, "", "", "", "") == ["0000e0d5.67a1b2c5.01.01"]
    (first, *_) = gw.server.requests_named("REQ_EXECUTIONS")
    assert first.fields["acct_code"] == "DU7654321" and first.fields["req_id"] == "50"


def test_pnl_streams_until_cancelled(gateway: StartGateway) -> None:
    gw = gateway(pnl_interval=0.05)
    with RawSession(gw.port, timeout=0.5) as session:
        session.start_api(client_id=1)
        session.send(94, 60, "DU7654321", "", 756733)  # REQ_PNL_SINGLE
        updates = [session.read() for _ in range(3)]
        session.send(95, 60)  # CANCEL_PNL_SINGLE
        with pytest.raises(TimeoutError):  # at most one update was in flight, then silence
            for _ in range(3):
                session.read()
    assert updates[0] == ["95", "60", "10", "-15.30", "801.50", "0", "5001.50"]
    assert updates[1] == updates[0]


def test_one_shot_requests(gateway: StartGateway) -> None:
    gw = gateway()
    with RawSession(gw.port) as session:
        session.start_api(client_id=1)
        session.send(8, 1, 1)  # REQ_IDS
        assert session.read() == ["9", "1", "20"]
        session.send(17, 1)  # REQ_MANAGED_ACCTS
        assert session.read() == ["15", "1", "DU1234567,DU7654321"]
        session.send(49, 1)  # REQ_CURRENT_TIME
        msg_id, _, epoch = session.read()
    assert (msg_id, int(epoch) > 1_700_000_000) == ("49", True)


@pytest.mark.usefixtures("no_client_errors")
def test_async_server_with_the_real_client_orders_and_client_ids() -> None:
    """As an async context manager: open orders are per client id; PLACE_ORDER and
    CANCEL_ORDER are acknowledged the way TWS does, and land in the state."""

    async def scenario() -> None:
        state = default_state()
        async with GatewayServer(state) as gw:
            ib = IB()
            ib.RequestTimeout = 2
            await ib.connectAsync(gw.host, gw.port, clientId=2, timeout=2)
            assert [(t.order.clientId, t.order.orderId) for t in ib.openTrades()] == [(2, 5)]
            trade = ib.placeOrder(
                Contract(conId=265598, exchange="SMART"), LimitOrder("BUY", 3, 185.0)
            )
            await asyncio.sleep(0.1)
            assert trade.orderStatus.status == "Submitted" and trade.order.permId > 0
            ib.cancelOrder(trade.order)
            await asyncio.sleep(0.1)
            assert trade.orderStatus.status == "Cancelled"
            ib.disconnect()

            manual = IB()
            manual.RequestTimeout = 2
            await manual.connectAsync(gw.host, gw.port, clientId=0, timeout=2)
            assert [(t.order.clientId, t.order.permId) for t in manual.openTrades()] == [
                (0, 1_000_006)
            ]
            manual.disconnect()

            (placed,) = gw.requests_named("PLACE_ORDER")
            assert (placed.client_id, placed.fields["action"], placed.fields["lmt_price"]) == (
                2,
                "BUY",
                "185.0",
            )
            assert placed.fields["con_id"] == "265598"
            assert (
                gw.requests_named("CANCEL_ORDER")[0].fields["order_id"] == placed.fields["order_id"]
            )
            assert gw.requests_named("REQ_AUTO_OPEN_ORDERS")[0].client_id == 0
        (booked,) = [o for o in state.accounts[0].completed_orders if o.status == "Cancelled"]
        assert (booked.instrument.symbol, booked.total_quantity, booked.lmt_price) == (
            "AAPL",
            3,
            Decimal("185.0"),
        )

    asyncio.run(scenario())


def test_runs_standalone() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "qm_pipeline.lib.sim.gateway", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        port = int(re.search(r"127\.0\.0\.1:(\d+)", line).group(1))  # type: ignore[union-attr]
        with RawSession(port) as session:
            assert session.start_api(client_id=1)[0] == ["15", "1", "DU1234567,DU7654321"]
    finally:
        proc.terminate()
        proc.wait(5)
