"""Fixtures: a real simulated gateway on an ephemeral port, and a watch on the client's logs.

The client library swallows its decoding errors (it logs them and drops the message), so
a layout mistake shows up only as an ERROR record: every test here fails on one from the
decoder, and the healthy-path tests on any ERROR from the decoder, wrapper or client.
The client is imported only through `qm_pipeline.lib.ib.client`, so the same tests run
under ib_insync in an environment that has only that library.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from qm_pipeline.lib.ib.client import LIBRARY, LOGGER_NAMES
from qm_pipeline.lib.ib.snapshot import SnapshotSettings
from qm_pipeline.lib.sim.gateway import Fault, FaultPlan, GatewayState, GatewayThread
from qm_pipeline_tests.logs import SIMULATOR_LOGGER, error_records

StartGateway = Callable[..., GatewayThread]


@pytest.fixture(autouse=True)
def no_decoder_or_simulator_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Any test: a message the client could not decode, or a request the simulator failed
    on, is a simulator bug."""
    caplog.set_level(logging.WARNING)
    yield
    assert not error_records(caplog, {f"{LIBRARY}.Decoder", SIMULATOR_LOGGER})


@pytest.fixture
def no_client_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Healthy paths: not a single ERROR from the client's decoder, wrapper or client."""
    yield
    assert not error_records(caplog, set(LOGGER_NAMES))


@pytest.fixture
def gateway() -> Iterator[StartGateway]:
    """`gateway(state, *faults, **server_options)` starts one; all are stopped at teardown."""
    started: list[GatewayThread] = []

    def start(state: GatewayState | None = None, *faults: Fault, **options: Any) -> GatewayThread:
        gw = GatewayThread(state, FaultPlan(*faults), **options)
        assert gw.start() == ("127.0.0.1", gw.port) and gw.port > 0
        started.append(gw)
        return gw

    yield start
    for gw in started:
        gw.stop()


def settings_for(gw: GatewayThread, **overrides: Any) -> SnapshotSettings:
    """Short timeouts and no retries unless a test asks: fault tests must stay fast."""
    options: dict[str, Any] = {
        "host": gw.host,
        "port": gw.port,
        "connect_timeout": 2.0,
        "request_timeout": 2.0,
        "retries": 0,
        "backoff": 0.05,
    }
    return SnapshotSettings(**{**options, **overrides})
