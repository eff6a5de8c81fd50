"""Run a `GatewayServer` on its own event loop in a background thread, for synchronous callers.

The Dagster assets and the CLI use the blocking client API, which runs its own event loop;
the simulator therefore needs a loop of its own on another thread.
"""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType
from typing import Any

from qm_pipeline.lib.sim.gateway.faults import FaultPlan
from qm_pipeline.lib.sim.gateway.server import GatewayServer
from qm_pipeline.lib.sim.gateway.state import GatewayState

START_TIMEOUT = 10.0


class GatewayThread:
    """`with GatewayThread(state, faults) as gw: take_snapshot(... port=gw.port)`."""

    def __init__(
        self,
        state: GatewayState | None = None,
        faults: FaultPlan | None = None,
        **options: Any,
    ) -> None:
        self.server = GatewayServer(state, faults, **options)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def port(self) -> int:
        return self.server.port

    def start(self) -> tuple[str, int]:
        """Start serving; returns (host, port) once the socket is listening."""
        self._thread = threading.Thread(target=self._run, name="sim-gateway", daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT):
            raise TimeoutError("simulated gateway did not start")
        if self._error is not None:
            raise self._error
        return self.host, self.port

    def stop(self) -> None:
        if self._thread is None:
            return
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(START_TIMEOUT)
        self._thread = None

    def __enter__(self) -> GatewayThread:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            await self.server.start()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await self.server.stop()
