"""One snapshot attempt: a fresh connection, every request bounded, any shortfall fatal.

The client library reports many failures only through its logs or its error event (an
error for a request without a reqId never ends that request; a dropped socket leaves
non-future waits hanging). Every step therefore races its request against an "abort"
future that the error, disconnect and API-error events complete, and against the request
timeout. A step that does not see its END raises `SnapshotError`: no partial table ever
leaves this module.
"""

from __future__ import annotations

import asyncio
import logging
import math
import uuid
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any, TypeVar

from qm_pipeline.lib.ib import rows
from qm_pipeline.lib.ib.client import (
    IB,
    LIBRARY,
    LIBRARY_VERSION,
    Contract,
    ExecutionFilter,
    RequestError,
    connect_options,
)
from qm_pipeline.lib.ib.model import Snapshot, SnapshotError, SnapshotSettings

log = logging.getLogger(__name__)

T = TypeVar("T")

CLIENT_ID_IN_USE = 326
TRANSIENT_CODES = frozenset({502, 504, 1100, 1101, 1300, 2110})
"""Errors a reconnect can cure: not connected, connectivity lost, socket port reset."""


def _informational(code: int) -> bool:
    """The 21xx farm-status notices, except 2110 (TWS lost its server: data is stale)."""
    return 2100 <= code < 2200 and code != 2110


def _valued(pnl: Any) -> bool:
    """A PnL subscription has reported once its values are no longer the client's NaN."""
    values = [pnl.dailyPnL, pnl.unrealizedPnL, pnl.realizedPnL]
    if hasattr(pnl, "value"):
        values.append(pnl.value)
    return not any(isinstance(v, float) and math.isnan(v) for v in values)


class _Attempt:
    """Connect, collect every table for the selected accounts, disconnect."""

    def __init__(
        self, settings: SnapshotSettings, known_conids: frozenset[int] | None, attempt: int
    ) -> None:
        self.settings = settings
        self.known_conids = known_conids
        self.attempt = attempt
        self.ib = IB()
        self.ib.RequestTimeout = settings.request_timeout
        self.ib.RaiseRequestErrors = True
        self.ib.client.MaxRequests = settings.max_requests_per_second
        self._abort: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._request: str = "connect"
        self._account: str | None = None
        self._completed_states: dict[int, Any] = {}
        self._capture_completed_states()

    def _capture_completed_states(self) -> None:
        """Keep each completed order's OrderState (completedTime/Status) by permId.

        Both libraries' `Wrapper.completedOrder` build the Trade without the OrderState it
        receives, so the completion time would otherwise be lost.
        """
        wrapper = self.ib.wrapper
        original = wrapper.completedOrder

        def capture(contract: Any, order: Any, state: Any) -> None:
            self._completed_states[order.permId] = state
            original(contract, order, state)

        wrapper.completedOrder = capture

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
        where = f"conid {contract.conId}" if contract is not None else None
        self._fail(self._error(text, retryable=code in TRANSIENT_CODES, account=where))

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

    # -- the attempt ------------------------------------------------------------------

    async def run(self) -> Snapshot:
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
            return await self._collect()
        finally:
            for event, handler in hooks:
                event -= handler
            # IB.disconnect() raises when the handshake finished but the API never got ready.
            if ib.client.isReady():
                ib.disconnect()
            else:
                ib.client.disconnect()
            if self._abort.done():
                self._abort.exception()  # retrieved: an abort after the fact is not news

    async def _collect(self) -> Snapshot:
        s, ib = self.settings, self.ib
        taken_at = datetime.now(UTC)
        # connect() runs its own startup requests, each bounded by the connect timeout.
        await self._step(
            "connect",
            ib.connectAsync(
                s.host,
                s.port,
                clientId=s.client_id,
                timeout=s.connect_timeout,
                readonly=s.readonly,
                **connect_options(),
            ),
            timeout=s.connect_timeout * 4,
        )
        accounts = self._select_accounts(ib.managedAccounts())
        wanted = set(accounts)
        server_time = await self._step("reqCurrentTime", ib.reqCurrentTimeAsync())
        all_positions = await self._step("reqPositions", ib.reqPositionsAsync())
        positions = [p for p in all_positions if p.account in wanted]
        values, portfolio = await self._account_updates(accounts)
        summary = [
            rows.account_value_row(v)
            for v in await self._step("reqAccountSummary", ib.accountSummaryAsync())
            if v.account in wanted
        ]
        open_orders, completed = await self._orders(wanted)
        executions = await self._executions(wanted)
        position_rows = [rows.position_row(p) for p in positions]
        held = {r["conid"] for r in [*position_rows, *open_orders, *completed, *executions]}
        details = await self._contract_details(held)
        pnl = await self._pnl(accounts, positions)

        self._raise_if_aborted()
        if not ib.isConnected():
            raise SnapshotError(f"connection to {self._address} lost", retryable=True)
        snapshot_id = uuid.uuid4().hex
        header = {
            "snapshot_id": snapshot_id,
            "taken_at": taken_at,
            "host": s.host,
            "port": s.port,
            "client_id": s.client_id,
            "accounts": ",".join(accounts),
            "library": LIBRARY,
            "library_version": LIBRARY_VERSION,
            "server_version": ib.client.serverVersion(),
            "server_time": server_time.astimezone(UTC),
            "attempts": self.attempt,
        }
        return Snapshot(
            snapshot_id=snapshot_id,
            taken_at=taken_at,
            snapshots=[header],
            accounts=[
                rows.account_row(a, [v for v in values if v["account_id"] == a]) for a in accounts
            ],
            account_values=values,
            account_summary=summary,
            portfolio_items=portfolio,
            positions=position_rows,
            open_orders=open_orders,
            completed_orders=completed,
            executions=executions,
            pnl=pnl,
            contract_details=details,
        )

    def _select_accounts(self, managed: list[str]) -> list[str]:
        unknown = sorted(set(self.settings.accounts) - set(managed))
        if unknown:
            raise SnapshotError(
                f"account(s) {', '.join(unknown)} not managed by {self._address} "
                f"(managed: {', '.join(managed) or 'none'})",
                request="managedAccounts",
                account=unknown[0],
            )
        selected = [a for a in managed if not self.settings.accounts or a in self.settings.accounts]
        if not selected:
            raise SnapshotError(f"{self._address} manages no account", request="managedAccounts")
        return selected

    async def _account_updates(self, accounts: list[str]) -> tuple[list[rows.Row], list[rows.Row]]:
        """Account values and portfolio items, one account at a time.

        With several managed accounts `connect()` subscribes none of them, so `portfolio()`
        would be empty; and TWS keeps a single reqAccountUpdates subscription, which the
        client files under a single key.
        """
        values: list[rows.Row] = []
        portfolio: list[rows.Row] = []
        for account in accounts:
            await self._step(
                "reqAccountUpdates", self.ib.reqAccountUpdatesAsync(account), account=account
            )
            values += [
                rows.account_value_row(v) for v in self.ib.accountValues(account) if not v.modelCode
            ]
            portfolio += [rows.portfolio_row(item) for item in self.ib.portfolio(account)]
        return values, portfolio

    async def _orders(self, wanted: set[str]) -> tuple[list[rows.Row], list[rows.Row]]:
        """Open orders of every client (reqOpenOrders sees only this client id's) and the
        completed orders, API and manual."""
        ib = self.ib
        open_trades = await self._step("reqAllOpenOrders", ib.reqAllOpenOrdersAsync())
        done_trades = await self._step("reqCompletedOrders", ib.reqCompletedOrdersAsync(False))
        open_orders = [
            rows.open_order_row(t) for t in _unique_trades(open_trades) if t.order.account in wanted
        ]
        completed = [
            rows.completed_order_row(t, self._completed_states.get(t.order.permId))
            for t in done_trades
            if t.order.account in wanted
        ]
        return open_orders, completed

    async def _executions(self, wanted: set[str]) -> list[rows.Row]:
        """Today's fills joined to their commission reports by execId.

        The join goes through `ib.fills()`: when connect() already fetched executions, the
        client files the commission reports on the Fill objects it created then, not on
        the new ones this request returns.
        """
        fills = await self._step("reqExecutions", self.ib.reqExecutionsAsync(ExecutionFilter()))
        reports = {f.execution.execId: f.commissionReport for f in self.ib.fills()}
        unique = {f.execution.execId: f for f in fills if f.execution.acctNumber in wanted}
        return [rows.execution_row(f, reports.get(exec_id)) for exec_id, f in unique.items()]

    def _paced(self, requests: int) -> float:
        """Request timeout plus the time the client's pacing needs to send `requests`."""
        rate = self.settings.max_requests_per_second
        return self.settings.request_timeout + (requests / rate if rate else 0)

    async def _pnl(self, accounts: list[str], positions: list[Any]) -> list[rows.Row]:
        """Account PnL and PnL per position, waited for until every value is in.

        The last step on purpose: the subscriptions end with the connection, where
        cancelling them one by one would cost another N/45 s of pacing on a real gateway.
        """
        ib = self.ib
        subs: list[Any] = []
        for account in accounts:
            subs.append(ib.reqPnL(account))
            conids = dict.fromkeys(p.contract.conId for p in positions if p.account == account)
            subs += [ib.reqPnLSingle(account, "", conid) for conid in conids]
        pending = {id(sub) for sub in subs if not _valued(sub)}
        all_in = asyncio.Event()

        def on_update(sub: Any) -> None:
            if id(sub) in pending and _valued(sub):
                pending.discard(id(sub))
                if not pending:
                    all_in.set()

        def missing() -> str:
            left = [s for s in subs if id(s) in pending]
            first = ", ".join(f"{s.account}:{getattr(s, 'conId', 'account')}" for s in left[:5])
            return f"{len(left)} of {len(subs)} subscriptions without values (first: {first})"

        if not pending:
            all_in.set()
        ib.pnlEvent += on_update
        ib.pnlSingleEvent += on_update
        try:
            await self._step(
                "reqPnL/reqPnLSingle",
                all_in.wait(),
                timeout=self._paced(len(subs)),
                missing=missing,
            )
        finally:
            ib.pnlEvent -= on_update
            ib.pnlSingleEvent -= on_update
        return [
            rows.pnl_single_row(sub) if hasattr(sub, "conId") else rows.pnl_row(sub) for sub in subs
        ]

    async def _contract_details(self, held: Iterable[int]) -> list[rows.Row]:
        """Details for the conids the caller does not know yet (None: all of them)."""
        known = self.known_conids or frozenset()
        unknown = sorted(c for c in set(held) if c not in known)
        if not unknown:
            return []
        tasks = [asyncio.ensure_future(self._details(conid)) for conid in unknown]

        async def all_details() -> list[Any]:
            return await asyncio.gather(*tasks)

        try:
            found = await self._step(
                "reqContractDetails", all_details(), timeout=self._paced(len(tasks))
            )
        finally:
            for task in tasks:
                task.cancel()
        return [rows.contract_details_row(d) for d in found]

    async def _details(self, conid: int) -> Any:
        request = f"reqContractDetails(conid {conid})"
        try:
            found = await self.ib.reqContractDetailsAsync(Contract(conId=conid))
        except RequestError as exc:
            raise SnapshotError(
                f"{request}: error {exc.code}: {exc.message}", request="reqContractDetails"
            ) from exc
        match = [d for d in found if d.contract.conId == conid]
        if not match:
            raise SnapshotError(f"{request}: no contract details", request="reqContractDetails")
        return match[0]


async def _discard(task: asyncio.Future[Any]) -> None:
    """Cancel a request we stopped waiting for and let it unwind (its error is moot)."""
    task.cancel()
    await asyncio.wait({task}, timeout=1)
    if task.done() and not task.cancelled():
        task.exception()


def _unique_trades(trades: Iterable[Any]) -> list[Any]:
    """One Trade per order: TWS may report an order twice within one request."""
    return list({(t.order.clientId, t.order.orderId, t.order.permId): t for t in trades}.values())


async def collect(
    settings: SnapshotSettings, known_conids: frozenset[int] | None, attempt: int
) -> Snapshot:
    """Take one snapshot over one fresh connection, or raise `SnapshotError`."""
    return await _Attempt(settings, known_conids, attempt).run()
