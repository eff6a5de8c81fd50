"""Fixtures: snapshots taken from the simulated gateway with the real client, and a watch on
the client's logs (as in `lib/ib`: the client swallows decoding errors and only logs them, so
every test here fails on an ERROR from its decoder, wrapper or client, or from the simulator)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest

from qm_pipeline.lib.ib.client import LOGGER_NAMES
from qm_pipeline.lib.ib.model import Snapshot
from qm_pipeline.lib.ib.snapshot import SnapshotSettings, take_snapshot
from qm_pipeline.lib.sim.gateway import AccountState, GatewayState, GatewayThread
from qm_pipeline.lib.sim.gateway.builders import account_values
from qm_pipeline_tests.logs import SIMULATOR_LOGGER, error_records

TakeSnapshot = Callable[..., Snapshot]


@pytest.fixture(autouse=True)
def no_client_or_simulator_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every snapshot here is a healthy one: not a single ERROR from the client or simulator."""
    caplog.set_level(logging.WARNING)
    yield
    assert not error_records(caplog, {*LOGGER_NAMES, SIMULATOR_LOGGER})


@pytest.fixture
def take() -> Iterator[TakeSnapshot]:
    """`take(state, **settings)`: one snapshot of `state` through a simulated gateway."""
    started: list[GatewayThread] = []

    def snapshot(state: GatewayState, known_conids: set[int] | None = None,
                 **overrides: Any) -> Snapshot:
        gw = GatewayThread(state)
        gw.start()
        started.append(gw)
        options: dict[str, Any] = {"host": gw.host, "port": gw.port, "connect_timeout": 5.0,
                                   "request_timeout": 5.0, "retries": 0}
        return take_snapshot(SnapshotSettings(**{**options, **overrides}), known_conids)

    yield snapshot
    for gw in started:
        gw.stop()


def next_second() -> None:
    """Wait until the wall clock enters a new second: `taken_at` is stored to the second."""
    time.sleep(1.02 - time.time() % 1)


def reprice(account: AccountState, conid: int, price: Decimal) -> None:
    """Move one holding's market price and restate the account's values and summary, as TWS
    would (cash and exchange rates as they were)."""
    position = account.position(conid)
    assert position is not None
    position.market_price = price
    cash = {v.currency: Decimal(v.value) for v in account.values
            if v.tag == "CashBalance" and v.currency != "BASE"}
    fx = {v.currency: Decimal(v.value) for v in account.values if v.tag == "ExchangeRate"}
    account.values, account.summary = account_values(account.positions, cash, fx,
                                                      base=account.base_currency)
