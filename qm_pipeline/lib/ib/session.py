"""One connection to TWS / IB Gateway on which every request is bounded and any shortfall fatal.

The client library reports many failures only through its logs or its error event (an
error for a request without a reqId never ends that request; a dropped socket leaves
non-future waits hanging). Every step therefore races its request against an "abort"
future that the error, disconnect and API-error events complete, and against the request
timeout. A step that does not see its END raises `SnapshotError`: no partial answer ever
leaves a session. The snapshot (`collect`) and the historical bars (`history`) are the
work run on it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from qm_pipeline.lib.ib.client import IB, RequestError, connect_options
from qm_pipeline.lib.ib.model import SnapshotError, SnapshotSettings

log = logging.getLogger(__name__)

T = TypeVar("T")

CLIENT_ID_IN_USE = 326
TRANSIENT_CODES = frozenset({502, 504, 1100, 1101, 1300, 2110})
"""Errors a reconnect can cure: not connected, connectivity lost, socket port reset."""


def _informational(code: int) -> bool:
    """The 21xx farm-status notices, except 2110 (TWS lost its server: data is stale)."""
    return 2100 <= code < 2200 and code != 2110


class Session:
    """Connect, run the caller's requests as bounded steps, disconnect."""

    def __init__(self, settings: SnapshotSettings, attempt: int) -> None:
        self.settings = settings
        self.attempt = attempt
        self.ib = IB()
        self.ib.RequestTimeout = settings.request_timeout
        self.ib.RaiseRequestErrors = True
        self.ib.client.MaxRequests = settings.max_requests_per_second
        self._abort: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._request: str = "connect"
        self._account: str | None = None
        self._tolerated: dict[int, str] | None = None

    # -- failure plumbing -------------------------------------------------------------

    @property
    def _address(self) -> str:
        return f"{self.settings.host}:{self.settings.port}"

    def _error(self, text: str, *, retryable: bool, account: str | None = None) -> SnapshotError:
        """An error about the request in flight: `request(account): text`."""
        account = account or self._account
        label = f"{self._request}({account})" if account else self._request
        return SnapshotError(
            f"{label}: {text}", request=self._request, account=account, retryable=retryable
        )

    def _fail(self, error: SnapshotError) -> None:
        if not self._abort.done():
            self._abort.set_exception(error)

    def _raise_if_aborted(self) -> None:
        if self._abort.done():
            error = self._abort.exception()
            assert isinstance(error, SnapshotError)
            raise error

    def _on_error(self, req_id: int, code: int, message: str, contract: Any = None) -> None:
        if _informational(code):
            return
        if code == CLIENT_ID_IN_USE:
            text = (
                f"client id {self.settings.client_id} is already in use at {self._address} "
                "(error 326); set another SnapshotSettings.client_id"
            )
            self._fail(self._error(text, retryable=False))
            return
        text = f"error {code} (reqId {req_id}): {message}"
        if self._is_tolerated(code, contract):
            self._tolerated[contract.conId] = text  # type: ignore[index]
            return
        where = f"conid {contract.conId}" if contract is not None else None
        self._fail(self._error(text, retryable=code in TRANSIENT_CODES, account=where))

    def _is_tolerated(self, code: int, contract: Any) -> bool:
        tolerated = self._tolerated
        return (tolerated is not None and contract is not None
                and contract.conId in tolerated and code not in TRANSIENT_CODES)

    def _on_lost(self, *_reason: Any) -> None:
        self._fail(self._error(f"connection to {self._address} lost", retryable=True))

    def _on_api_error(self, message: str) -> None:
        self._fail(self._error(f"connection to {self._address} failed: {message}", retryable=True))

    async def _step(
        self,
        request: str,
        awaitable: Awaitable[T],
        *,
        account: str | None = None,
        timeout: float | None = None,
        missing: Callable[[], str] | None = None,
    ) -> T:
        """Await one request, bounded by the timeout and aborted by any fatal event."""
        self._request, self._account = request, account
        self._raise_if_aborted()
        task = asyncio.ensure_future(awaitable)
        limit = timeout or self.settings.request_timeout
        await asyncio.wait({task, self._abort}, timeout=limit, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            await _discard(task)
            self._raise_if_aborted()
            detail = f"; {missing()}" if missing else ""
            raise self._error(f"no complete answer within {limit:g} s{detail}", retryable=True)
        try:
            return task.result()
        except RequestError as exc:
            text = f"error {exc.code}: {exc.message}"
            raise self._error(text, retryable=exc.code in TRANSIENT_CODES) from exc
        except TimeoutError as exc:
            raise self._error(f"timed out ({exc!r})", retryable=True) from exc
        except OSError as exc:  # ConnectionError and ConnectionRefusedError included
            verb = "failed" if request == "connect" else "lost"
            text = f"connection to {self._address} {verb}: {exc!r}"
            raise self._error(text, retryable=True) from exc

    async def _tolerant_step(
        self, request: str, work: Callable[[], Awaitable[T]], conids: Iterable[int],
        *, timeout: float,
    ) -> tuple[T, dict[int, str]]:
        """A step whose API errors about `conids` are notes (conid -> error), not failures:
        for optional data such as market data, which a missing subscription refuses. A lost
        connection or a timeout still fails the session."""
        self._tolerated = dict.fromkeys(conids, "")
        try:
            result = await self._step(request, work(), timeout=timeout)
            return result, {conid: note for conid, note in self._tolerated.items() if note}
        finally:
            self._tolerated = None

    def _paced(self, requests: int) -> float:
        """Request timeout plus the time the client's pacing needs to send `requests`."""
        rate = self.settings.max_requests_per_second
        return self.settings.request_timeout + (requests / rate if rate else 0)

    # -- the connection ---------------------------------------------------------------

    async def run(self, work: Callable[[], Awaitable[T]]) -> T:
        """Connect, await `work()`, and disconnect whatever happened."""
        ib = self.ib
        hooks = [
            (ib.errorEvent, self._on_error),
            (ib.disconnectedEvent, self._on_lost),
            # Before the API is ready the client reports a closed socket only here.
            (ib.client.conn.disconnected, self._on_lost),
            (ib.client.apiError, self._on_api_error),
        ]
        for event, handler in hooks:
            event += handler
        try:
            await self._connect()
            return await work()
        finally:
            for event, handler in hooks:
                event -= handler
            disconnect(ib)
            if self._abort.done():
                self._abort.exception()  # retrieved: an abort after the fact is not news

    async def _connect(self) -> None:
        s = self.settings
        await self._step("connect", connecting(self.ib, s), timeout=s.connect_timeout * 4)

    def _ensure_connected(self) -> None:
        """The last check before a result leaves: nothing aborted, the socket still up."""
        self._raise_if_aborted()
        if not self.ib.isConnected():
            raise SnapshotError(f"connection to {self._address} lost", retryable=True)


def connecting(ib: Any, settings: SnapshotSettings) -> Awaitable[Any]:
    """`connectAsync` as the settings say; it bounds the handshake and each of its startup
    requests by the connect timeout (the caller bounds the whole, e.g. 4x that)."""
    s = settings
    return ib.connectAsync(s.host, s.port, clientId=s.client_id, timeout=s.connect_timeout,
                           readonly=s.readonly, **connect_options())


def disconnect(ib: Any) -> None:
    """Close the connection, whether or not the API got ready: `IB.disconnect()` raises when
    the handshake finished but the API never became ready."""
    if ib.client.isReady():
        ib.disconnect()
    else:
        ib.client.disconnect()


async def retried(settings: SnapshotSettings, attempt: Callable[[int], Awaitable[T]],
                  what: str) -> T:
    """`attempt(n)` until it succeeds, on a fresh connection each time, while the error is
    retryable (a dropped socket, a timeout), with bounded exponential back-off."""
    attempts = settings.retries + 1
    n, delay = 1, settings.backoff
    while True:
        try:
            return await attempt(n)
        except SnapshotError as exc:
            if not exc.retryable or n == attempts:
                exc.add_note(f"{what} gave up after attempt {n} of {attempts}")
                raise
            log.warning("%s attempt %d of %d failed: %s; retrying in %.1f s",
                        what, n, attempts, exc, delay)
        await asyncio.sleep(delay)
        n, delay = n + 1, min(delay * 2, settings.backoff_max)


async def _discard(task: asyncio.Future[Any]) -> None:
    """Cancel a request we stopped waiting for and let it unwind (its error is moot)."""
    task.cancel()
    await asyncio.wait({task}, timeout=1)
    if task.done() and not task.cancelled():
        task.exception()
