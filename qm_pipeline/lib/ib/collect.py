"""One snapshot attempt: every table for the selected accounts over one `Session`.

Each request is a bounded step of the session, so any shortfall raises `SnapshotError`:
no partial table ever leaves this module. IB's option model values are the one optional
part: an option whose market data the account is not subscribed to gets a row saying so.
"""

from __future__ import annotations

import asyncio
import copy
import math
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from qm_pipeline.lib.ib import rows
from qm_pipeline.lib.ib.client import (
    LIBRARY,
    LIBRARY_VERSION,
    Contract,
    ExecutionFilter,
    RequestError,
)
from qm_pipeline.lib.ib.model import Snapshot, SnapshotError, SnapshotSettings
from qm_pipeline.lib.ib.session import Session

OPTION_TYPES = frozenset({"OPT", "FOP"})
SNAPSHOT_SECONDS = 11.0
"""How long TWS may take to complete a market-data snapshot (it waits up to 11 s for ticks)."""


def _valued(pnl: Any) -> bool:
    """A PnL subscription has reported once its values are no longer the client's NaN."""
    values = [pnl.dailyPnL, pnl.unrealizedPnL, pnl.realizedPnL]
    if hasattr(pnl, "value"):
        values.append(pnl.value)
    return not any(isinstance(v, float) and math.isnan(v) for v in values)


class _Attempt(Session):
    """Collect every table for the selected accounts."""

    def __init__(
        self, settings: SnapshotSettings, known_conids: frozenset[int] | None, attempt: int
    ) -> None:
        super().__init__(settings, attempt)
        self.known_conids = known_conids
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

    async def collect(self) -> Snapshot:
        s, ib = self.settings, self.ib
        taken_at = datetime.now(UTC)
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
        greeks = await self._option_greeks(positions)
        pnl = await self._pnl(accounts, positions)

        self._ensure_connected()
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
            option_greeks=greeks,
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

    async def _option_greeks(self, positions: list[Any]) -> list[rows.Row]:
        """IB's model values (implied volatility and Greeks) for each option held, from one
        market-data snapshot per contract; a row with a note where there are none."""
        held = {p.contract.conId: p.contract for p in positions
                if p.contract.secType in OPTION_TYPES}
        if not self.settings.option_greeks or not held:
            return []
        tasks = [asyncio.ensure_future(self.ib.reqTickersAsync(_routable(c)))
                 for c in held.values()]

        async def all_tickers() -> list[Any]:
            return await asyncio.gather(*tasks, return_exceptions=True)

        try:
            answers, notes = await self._tolerant_step(
                "reqMktData(snapshot)", all_tickers, held,
                timeout=self._paced(len(tasks)) + SNAPSHOT_SECONDS)
        finally:
            for task in tasks:
                task.cancel()
        return [rows.option_greeks_row(contract, *_ticker_or_note(answer, notes.get(conid)))
                for (conid, contract), answer in zip(held.items(), answers, strict=True)]

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


def _routable(contract: Any) -> Any:
    """The position's contract, with SMART routing where TWS sent no exchange."""
    routable = copy.copy(contract)
    routable.exchange = contract.exchange or "SMART"
    return routable


def _ticker_or_note(answer: Any, note: str | None) -> tuple[Any, str | None]:
    """(ticker, None), or (None, why there are no model values)."""
    if isinstance(answer, BaseException):
        if isinstance(answer, RequestError):
            return None, note or f"error {answer.code}: {answer.message}"
        return None, note or repr(answer)
    ticker = answer[0]
    if ticker.modelGreeks is None:
        return None, note or "the snapshot carried no model values"
    return ticker, None


def _unique_trades(trades: Iterable[Any]) -> list[Any]:
    """One Trade per order: TWS may report an order twice within one request."""
    return list({(t.order.clientId, t.order.orderId, t.order.permId): t for t in trades}.values())


async def collect(
    settings: SnapshotSettings, known_conids: frozenset[int] | None, attempt: int
) -> Snapshot:
    """Take one snapshot over one fresh connection, or raise `SnapshotError`."""
    session = _Attempt(settings, known_conids, attempt)
    return await session.run(session.collect)
