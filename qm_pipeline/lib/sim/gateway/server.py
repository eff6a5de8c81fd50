"""The simulated IB Gateway: an asyncio TCP server speaking the TWS API socket protocol.

One `_Session` per connection does the handshake (server version = min(client max, 178),
refusing < 157 like TWS), then reads requests, records them, and writes the replies built
by `replies` through the fault plan. PnL subscriptions are per session and re-sent every
`pnl_interval` seconds until cancelled, as TWS streams them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from types import TracebackType

from qm_pipeline.lib.sim.gateway import messages as m
from qm_pipeline.lib.sim.gateway.builders import default_state
from qm_pipeline.lib.sim.gateway.decode import Request, decode
from qm_pipeline.lib.sim.gateway.faults import (
    Delay,
    DropConnection,
    DuplicateClientId,
    ErrorReply,
    FaultPlan,
    NeverEnd,
    RefuseConnection,
)
from qm_pipeline.lib.sim.gateway.ids import In
from qm_pipeline.lib.sim.gateway.replies import HANDLERS, INVALID_ACCOUNT, Context, Reply
from qm_pipeline.lib.sim.gateway.state import GatewayState
from qm_pipeline.lib.sim.gateway.wire import (
    ProtocolError,
    frame,
    read_fields,
    read_handshake,
)

log = logging.getLogger(__name__)

CLIENT_ID_IN_USE = 326
CLIENT_ID_IN_USE_TEXT = (
    "Unable to connect as the client id is already in use. Retry with a unique client id."
)
FARM_STATUS = (
    (2104, "Market data farm connection is OK:usfarm"),
    (2106, "HMDS data farm connection is OK:ushmds"),
    (2158, "Sec-def data farm connection is OK:secdefnj"),
)
"""The informational 'errors' TWS sends right after START_API."""


class GatewayServer:
    """A simulated gateway on 127.0.0.1; `async with GatewayServer(state) as gw: gw.port`.

    `port=0` picks a free port; `max_server_version` caps the negotiated version (176 is
    what ib_insync 0.9.86 gets); `pnl_interval` is how often PnL subscriptions are re-sent
    (None: only their first update); `farm_status` adds TWS's 2104/2106/2158 notices.
    """

    def __init__(
        self,
        state: GatewayState | None = None,
        faults: FaultPlan | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        max_server_version: int = m.MAX_SERVER_VERSION,
        pnl_interval: float | None = 1.0,
        farm_status: bool = True,
    ) -> None:
        if not m.MIN_SERVER_VERSION <= max_server_version <= m.MAX_SERVER_VERSION:
            raise ValueError(
                f"max_server_version must be within "
                f"{m.MIN_SERVER_VERSION}..{m.MAX_SERVER_VERSION}, got {max_server_version}"
            )
        self.state = state if state is not None else default_state()
        self.faults = faults if faults is not None else FaultPlan()
        self.host = host
        self.max_server_version = max_server_version
        self.pnl_interval = pnl_interval
        self.farm_status = farm_status
        self._port = port
        self._server: asyncio.Server | None = None
        self._sessions: set[asyncio.Task[None]] = set()
        self._client_ids: set[int] = set()
        self._requests: list[Request] = []
        self._lock = threading.Lock()

    @property
    def port(self) -> int:
        """The bound port (the ephemeral one when constructed with port=0)."""
        return self._port

    async def start(self) -> GatewayServer:
        self._server = await asyncio.start_server(self._on_connect, self.host, self._port)
        self._port = self._server.sockets[0].getsockname()[1]
        log.info("simulated gateway listening on %s:%d", self.host, self._port)
        return self

    async def stop(self) -> None:
        """Stop listening and hang up on every client."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for task in list(self._sessions):
            task.cancel()
        await asyncio.gather(*self._sessions, return_exceptions=True)

    async def __aenter__(self) -> GatewayServer:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def requests(self) -> list[Request]:
        """Every request received so far, in order, across connections."""
        with self._lock:
            return list(self._requests)

    def requests_named(self, *names: str) -> list[Request]:
        return [r for r in self.requests if r.name in names]

    def _record(self, request: Request) -> None:
        with self._lock:
            self._requests.append(request)

    def _claim_client_id(self, client_id: int) -> bool:
        with self._lock:
            if client_id in self._client_ids:
                return False
            self._client_ids.add(client_id)
            return True

    def _release_client_id(self, client_id: int) -> None:
        with self._lock:
            self._client_ids.discard(client_id)

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        try:
            await _Session(self, reader, writer).run()
        except asyncio.CancelledError:
            pass  # stop() hung up on this client; asyncio would log a cancelled handler
        finally:
            self._sessions.discard(task)


class _Session:
    """One client connection: handshake, request loop, PnL streaming, fault application."""

    def __init__(
        self, server: GatewayServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.sv = 0
        self.client_id: int | None = None
        self._pnl_subs: dict[int, Callable[[], m.Msg]] = {}
        self._pnl_task: asyncio.Task[None] | None = None
        self._write_lock = asyncio.Lock()

    async def run(self) -> None:
        try:
            if self.server.faults.take(RefuseConnection):
                return
            if not await self._handshake():
                return
            while await self._dispatch(await read_fields(self.reader)):
                pass
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client hung up
        except ProtocolError as exc:
            log.warning("closing connection: %s", exc)
        except Exception:
            log.exception("simulated gateway failed; closing the connection")
        finally:
            await self._close()

    async def _close(self) -> None:
        if self._pnl_task is not None:
            self._pnl_task.cancel()
        if self.client_id is not None:
            self.server._release_client_id(self.client_id)
        self.writer.close()
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            await self.writer.wait_closed()

    async def _handshake(self) -> bool:
        low, high, _options = await read_handshake(self.reader)
        sv = min(high, self.server.max_server_version)
        if sv < max(low, m.MIN_SERVER_VERSION):
            log.warning(
                "client speaks v%d..%d, gateway needs >= %d: closing",
                low,
                high,
                m.MIN_SERVER_VERSION,
            )
            return False
        self.sv = sv
        await self._send([m.server_hello(sv, datetime.now(UTC))])
        return True

    async def _dispatch(self, fields: list[str]) -> bool:
        """Answer one request; False means the connection must close."""
        if not fields:
            return True
        request = decode(fields, self.client_id)
        if request.msg_id == In.START_API:
            return await self._start_api(request)
        self.server._record(request)
        if self.client_id is None:
            log.warning("%s before START_API ignored", request.name)
            return True
        if request.msg_id in (In.REQ_PNL, In.REQ_PNL_SINGLE):
            reply = self._subscribe_pnl(request)
        elif request.msg_id in (In.CANCEL_PNL, In.CANCEL_PNL_SINGLE):
            self._pnl_subs.pop(request.as_int("req_id"), None)
            reply = Reply()
        elif request.msg_id in HANDLERS:
            ctx = Context(self.sv, self.client_id, datetime.now(UTC))
            reply = HANDLERS[In(request.msg_id)](self.server.state, request, ctx)
        else:
            log.info("unhandled request %s %s", request.name, request.extra)
            return True
        return await self._respond(request.name, reply)

    async def _start_api(self, request: Request) -> bool:
        client_id = request.as_int("client_id")
        self.server._record(dataclasses.replace(request, client_id=client_id))
        duplicate = self.server.faults.take(DuplicateClientId, None, client_id)
        if duplicate or not self.server._claim_client_id(client_id):
            await self._send([m.error(self.sv, -1, CLIENT_ID_IN_USE, CLIENT_ID_IN_USE_TEXT)])
            return False
        self.client_id = client_id
        state = self.server.state
        data = [m.managed_accounts(state.managed_accounts)]
        if self.server.farm_status:
            data += [m.error(self.sv, -1, code, text) for code, text in FARM_STATUS]
        return await self._respond(request.name, Reply(data, m.next_valid_id(state.next_order_id)))

    def _subscribe_pnl(self, request: Request) -> Reply:
        """Register a PnL stream and answer with its first update (PnL has no END)."""
        req_id = request.as_int("req_id")
        account = self.server.state.account(request.get("account"))
        if account is None:
            text = f"Invalid account code {request.get('account')}"
            return Reply([m.error(self.sv, req_id, INVALID_ACCOUNT, text)], req_id=req_id)
        if request.msg_id == In.REQ_PNL:

            def update() -> m.Msg:
                return m.pnl(req_id, *account.pnl())

        else:
            conid = request.as_int("con_id")

            def update() -> m.Msg:
                return m.pnl_single(req_id, account.position(conid))

        self._pnl_subs[req_id] = update
        if self.server.pnl_interval and self._pnl_task is None:
            self._pnl_task = asyncio.create_task(self._stream_pnl(self.server.pnl_interval))
        # The first update is what completes a subscription: NeverEnd withholds it.
        return Reply(end=update(), req_id=req_id)

    async def _stream_pnl(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            await self._send([update() for update in list(self._pnl_subs.values())])

    async def _respond(self, request: str, reply: Reply) -> bool:
        """Write a reply through the fault plan; False when a fault closed the connection."""
        faults, client_id = self.server.faults, self.client_id
        delay = faults.take(Delay, request, client_id)
        if delay:
            await asyncio.sleep(delay.ms / 1000)
        error = faults.take(ErrorReply, request, client_id)
        if error:
            await self._send([m.error(self.sv, reply.req_id, error.code, error.message)])
            return True
        out = list(reply.messages)
        if reply.end is not None and not faults.take(NeverEnd, request, client_id):
            out.append(reply.end)
        drop = faults.take(DropConnection, request, client_id)
        if drop:
            await self._send(out[: drop.after_messages])
            return False
        await self._send(out)
        return True

    async def _send(self, msgs: list[m.Msg]) -> None:
        if not msgs:
            return
        async with self._write_lock:
            self.writer.write(b"".join(frame(msg) for msg in msgs))
            await self.writer.drain()
