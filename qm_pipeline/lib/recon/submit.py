"""SYNC_TO_LOCAL submission: market orders that make the broker hold what local state holds.

DANGEROUS: this places real orders at Interactive Brokers, at market, for real accounts.
Nothing is sent unless the caller passes `allow_order_submission=True` AND the settings are
not read-only; `SubmissionRefused` says which of the two stopped it.

Safety, in order:
* every proposal is checked (action, quantity, conid) and every contract is resolved at the
  broker before the first order goes out, so a bad proposal stops the batch with nothing
  placed;
* each order carries `orderRef = "qm-recon:<proposal_id>"`, and the broker's open and
  completed orders are searched for that reference first, so a rerun (after a crash, a
  timeout, a dropped connection) reports the order it finds instead of placing it again.
  TWS reports completed orders for its current session only: the check covers reruns of
  the same day, which is when a crash leaves a batch half done. An order found is reported
  with its status, Cancelled included: a rejected proposal is not retried under the same id;
* orders go out one at a time, each waited for (bounded) until TWS acknowledges it; the
  first failure stops the batch with `SubmissionError`, naming the proposal and listing
  what was already submitted.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Awaitable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from types import TracebackType
from typing import Any, TypeVar

from qm_pipeline.lib.ib.client import IB, LIBRARY, Contract, RequestError
from qm_pipeline.lib.ib.model import SnapshotSettings
from qm_pipeline.lib.ib.session import connecting, disconnect
from qm_pipeline.lib.recon.model import OrderProposal, SubmittedOrder

log = logging.getLogger(__name__)

T = TypeVar("T")

# The client shim exports no MarketOrder; take it from the same library the shim chose.
MarketOrder = importlib.import_module(LIBRARY).MarketOrder

ORDER_REF_PREFIX = "qm-recon:"
AWAITING_BROKER = frozenset({"PendingSubmit", "ValidationError"})
"""Statuses the client sets itself before TWS has acknowledged an order (ib_async marks an
order ValidationError on a warning about it, while the order stays live)."""
REJECTED = frozenset({"Cancelled", "ApiCancelled", "Inactive"})


class SubmissionRefused(Exception):
    """Submission is switched off: nothing was sent to the broker."""


class SubmissionError(Exception):
    """A batch that stopped part way. `proposal_id` is the proposal it stopped at (None:
    before the first one); `submitted` what was placed or found at the broker before it.
    Rerunning the same proposals is safe: placed orders are found by their orderRef."""

    def __init__(
        self, message: str, *, proposal_id: str | None, submitted: list[SubmittedOrder]
    ) -> None:
        super().__init__(message)
        self.proposal_id = proposal_id
        self.submitted = submitted


class _Failed(Exception):
    """A broker request that failed; `SubmissionError` adds which proposal it was for."""


def order_ref(proposal_id: str) -> str:
    """The reference a proposal's order carries at the broker, and is found by on a rerun."""
    return f"{ORDER_REF_PREFIX}{proposal_id}"


def submit_proposals(
    settings: SnapshotSettings,
    proposals: Sequence[OrderProposal],
    *,
    allow_order_submission: bool,
) -> list[SubmittedOrder]:
    """Place a market order for each proposal the broker does not already have, in order.

    Returns one `SubmittedOrder` per proposal: the new order once TWS acknowledged it, or
    the order found under the proposal's orderRef (completed orders have order id 0 on the
    wire). Raises `SubmissionRefused` when not allowed, `ValueError` for a malformed
    proposal (both before connecting), `SubmissionError` when the broker fails or rejects.
    """
    _refuse_unless_allowed(settings, allow_order_submission)
    orders = [_market_order(p) for p in proposals]
    if not proposals:
        return []
    return asyncio.run(_submit(settings, proposals, orders))


def _refuse_unless_allowed(settings: SnapshotSettings, allow_order_submission: bool) -> None:
    reasons = []
    if not allow_order_submission:
        reasons.append("allow_order_submission is off")
    if settings.readonly:
        reasons.append("the client settings are read-only (SnapshotSettings.readonly)")
    if reasons:
        raise SubmissionRefused(
            f"order submission refused: {' and '.join(reasons)}; nothing was sent"
        )


def _market_order(proposal: OrderProposal) -> Any:
    """The order for a proposal, refusing anything that is not a plain, exact market order."""
    problem = _problem(proposal)
    if problem:
        raise ValueError(f"{_describe(proposal)}: {problem}; nothing was sent")
    return MarketOrder(
        proposal.action,
        float(proposal.quantity),
        account=proposal.account_id,
        orderRef=order_ref(proposal.proposal_id),
    )


def _problem(proposal: OrderProposal) -> str | None:
    """What makes a proposal unsafe to send, if anything.

    Both client libraries carry `totalQuantity` as a float and send `str(float)`: only a
    quantity that float spells back exactly is accepted, so the broker never receives a
    rounded one (any realistic share or contract count, fractional ones included, is exact).
    """
    quantity = proposal.quantity
    if proposal.order_type != "MKT":
        return f"order type {proposal.order_type} is not supported (MKT only)"
    if proposal.action not in ("BUY", "SELL"):
        return f"action {proposal.action!r} is neither BUY nor SELL"
    if not proposal.conid.isdigit():
        return f"conid {proposal.conid!r} is not a number"
    if not quantity.is_finite() or quantity <= 0:
        return f"quantity {quantity} is not positive"
    if Decimal(repr(float(quantity))) != quantity:
        return f"quantity {quantity} is not exact as the client's float"
    return None


def _describe(proposal: OrderProposal) -> str:
    what = proposal.symbol or f"conid {proposal.conid}"
    return (
        f"proposal {proposal.proposal_id} ({proposal.action} {proposal.quantity} {what} "
        f"in {proposal.account_id})"
    )


async def _submit(
    settings: SnapshotSettings, proposals: Sequence[OrderProposal], orders: list[Any]
) -> list[SubmittedOrder]:
    submitted: list[SubmittedOrder] = []
    with _stopping_at(None, submitted):
        async with _Broker(settings) as broker:
            found = await broker.orders_by_ref()
            pairs = list(zip(proposals, orders, strict=True))
            contracts = await _contracts(broker, [p for p, o in pairs if o.orderRef not in found])
            for proposal, order in pairs:
                with _stopping_at(proposal, submitted):
                    if order.orderRef not in found:
                        log.warning("placing %s (orderRef %s)", _describe(proposal), order.orderRef)
                        found[order.orderRef] = await broker.place(contracts[proposal.conid], order)
                    submitted.append(_submitted(proposal, found[order.orderRef]))
    return submitted


async def _contracts(broker: _Broker, proposals: list[OrderProposal]) -> dict[str, Any]:
    """Every contract to trade, resolved before the first order goes out, so an unknown
    conid stops the batch with nothing placed."""
    contracts: dict[str, Any] = {}
    for proposal in proposals:
        if proposal.conid not in contracts:
            with _stopping_at(proposal, []):
                contracts[proposal.conid] = await broker.contract(proposal.conid)
    return contracts


@contextmanager
def _stopping_at(proposal: OrderProposal | None, submitted: list[SubmittedOrder]) -> Iterator[None]:
    """Turn a broker failure into a `SubmissionError` that says where the batch stopped."""
    try:
        yield
    except _Failed as exc:
        where = _describe(proposal) if proposal else "before the first proposal"
        raise SubmissionError(
            f"order submission stopped at {where}: {exc}; {len(submitted)} order(s) submitted "
            "before it; rerunning is safe (orders are found by orderRef)",
            proposal_id=proposal.proposal_id if proposal else None,
            submitted=list(submitted),
        ) from exc


def _submitted(proposal: OrderProposal, trade: Any) -> SubmittedOrder:
    perm_id = trade.order.permId or trade.orderStatus.permId
    return SubmittedOrder(
        proposal_id=proposal.proposal_id,
        order_id=trade.order.orderId,
        perm_id=perm_id or None,
        status=trade.orderStatus.status,
    )


class _Broker:
    """One trading connection. Every request is bounded by the request timeout and cut
    short when the connection drops, since the client leaves some waits hanging then."""

    def __init__(self, settings: SnapshotSettings) -> None:
        self.settings = settings
        self.ib = IB()
        self.ib.RequestTimeout = settings.request_timeout
        self.ib.RaiseRequestErrors = True
        self._lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    @property
    def address(self) -> str:
        return f"{self.settings.host}:{self.settings.port}"

    def _on_lost(self, *_reason: Any) -> None:
        if not self._lost.done():
            self._lost.set_result(None)

    async def __aenter__(self) -> _Broker:
        s = self.settings
        self.ib.disconnectedEvent += self._on_lost
        await self.bounded(f"connect to {self.address}", connecting(self.ib, s),
                           s.connect_timeout * 4)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.ib.disconnectedEvent -= self._on_lost
        disconnect(self.ib)

    async def bounded(self, what: str, awaitable: Awaitable[T], timeout: float | None = None) -> T:
        """Await one request, or raise `_Failed` on an error, a timeout or a lost connection."""
        self._check_connected(what)
        task = asyncio.ensure_future(awaitable)
        limit = timeout or self.settings.request_timeout
        await asyncio.wait({task, self._lost}, timeout=limit, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            task.cancel()
            self._check_connected(what)
            raise _Failed(f"{what}: no answer within {limit:g} s")
        try:
            return task.result()
        except RequestError as exc:
            raise _Failed(f"{what}: error {exc.code}: {exc.message}") from exc
        except (OSError, TimeoutError) as exc:  # ConnectionError included
            raise _Failed(f"{what}: {type(exc).__name__}: {exc}") from exc

    def _check_connected(self, what: str) -> None:
        if self._lost.done():
            raise _Failed(f"{what}: connection to {self.address} lost")

    async def orders_by_ref(self) -> dict[str, Any]:
        """Every order the broker reports (all clients' open orders, and API orders
        completed this session), by orderRef; an open order wins over a completed one."""
        ib = self.ib
        working = await self.bounded("reqAllOpenOrders", ib.reqAllOpenOrdersAsync())
        done = await self.bounded("reqCompletedOrders", ib.reqCompletedOrdersAsync(True))
        return {t.order.orderRef: t for t in [*done, *working] if t.order.orderRef}

    async def contract(self, conid: str) -> Any:
        """The contract to route by conid: through SMART where the instrument trades there
        (stocks, options), else its own exchange (futures)."""
        what = f"reqContractDetails(conid {conid})"
        found = await self.bounded(
            what, self.ib.reqContractDetailsAsync(Contract(conId=int(conid)))
        )
        details = next((d for d in found if d.contract.conId == int(conid)), None)
        if details is None:
            raise _Failed(f"{what}: no such contract")
        smart = "SMART" in details.validExchanges.split(",")
        return Contract(conId=int(conid), exchange="SMART" if smart else details.contract.exchange)

    async def place(self, contract: Any, order: Any) -> Any:
        """Place one order and wait until TWS has acknowledged (or rejected) it."""
        self._check_connected("placeOrder")
        trade = self.ib.placeOrder(contract, order)
        what = f"placeOrder(orderId {trade.order.orderId})"
        await self.bounded(what, _acknowledged(trade))
        if trade.orderStatus.status in REJECTED:
            entry = trade.log[-1]
            raise _Failed(f"{what}: rejected ({trade.orderStatus.status}): {entry.message}")
        return trade


async def _acknowledged(trade: Any) -> None:
    while trade.orderStatus.status in AWAITING_BROKER:
        await trade.statusEvent
