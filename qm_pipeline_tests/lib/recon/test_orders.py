"""Order reconciliation: the application's pending orders against the broker's working
orders, matched by perm id, else (client id, order id), else order ref; each discrepancy
type with its severity, cause and detail.
"""

from __future__ import annotations

from decimal import Decimal

from qm_pipeline.lib.recon.model import Cause, Comparison, Kind, Severity
from qm_pipeline.lib.recon.orders import compare_orders

ACC, OTHER_ACC = "U1234567", "U7654321"
AAPL = "265598"
D = Decimal


def local(key: str = "bot-1", **kw: object) -> dict:
    """A pending ledger.orders row: BUY 10 AAPL, client 7, order 42, perm 9001."""
    return {
        "order_key": key,
        "account_id": ACC,
        "conid": AAPL,
        "symbol": "AAPL",
        "action": "BUY",
        "quantity": D(10),
        "status": "Submitted",
        "filled_quantity": D(0),
        "broker_order_id": 42,
        "perm_id": 9001,
        "client_id": 7,
        "order_ref": "bot-1",
        **kw,
    }


def working(**kw: object) -> dict:
    """A live.open_orders row for the same order."""
    return {
        "account_id": ACC,
        "order_id": 42,
        "perm_id": 9001,
        "client_id": 7,
        "conid": AAPL,
        "symbol": "AAPL",
        "action": "BUY",
        "total_quantity": D(10),
        "status": "Submitted",
        "filled": D(0),
        "remaining": D(10),
        "order_ref": "bot-1",
        **kw,
    }


def run(pending, open_orders, completed=(), executions=(), accounts=frozenset({ACC})):
    return compare_orders(
        list(pending), list(open_orders), list(completed), list(executions), set(accounts)
    )


def test_same_order_on_both_sides_matches():
    """Same ids, status and filled quantity: matched, no discrepancy."""
    assert run([local()], [working()]) == ([], 1)


def test_matching_by_perm_id_alone():
    """The perm id is enough, whatever the other ids say."""
    mine = local(broker_order_id=None, client_id=None, order_ref=None)
    theirs = working(order_id=99, client_id=3, order_ref="")
    assert run([mine], [theirs]) == ([], 1)


def test_matching_by_client_and_order_id():
    """Without perm ids, (client id, order id) identifies the order; the same order id
    from another client is another order."""
    mine = local(perm_id=None, order_ref=None)
    assert run([mine], [working(perm_id=0, order_ref="")]) == ([], 1)
    found, matched = run([mine], [working(perm_id=0, order_ref="", client_id=8)])
    assert matched == 0
    assert sorted(d.kind for d in found) == [Kind.ORPHAN_BROKER_ORDER, Kind.ORPHAN_LOCAL_ORDER]


def test_matching_by_order_ref():
    """Without perm or order ids, the order reference the application set matches."""
    mine = local(perm_id=None, broker_order_id=None)
    assert run([mine], [working(perm_id=0, order_id=0, client_id=0)]) == ([], 1)


def test_orphan_local_order_cancelled_at_the_broker_is_timing():
    """Pending locally, not working at the broker, found Cancelled among completed orders:
    only the local record lags: MODERATE, TIMING, the broker's outcome in the detail."""
    completed = [{"perm_id": 9001, "account_id": ACC, "status": "Cancelled", "order_ref": ""}]
    (d,), matched = run([local()], [], completed)
    assert matched == 0
    assert (d.comparison, d.kind, d.severity, d.cause) == (
        Comparison.ORDERS,
        Kind.ORPHAN_LOCAL_ORDER,
        Severity.MODERATE,
        Cause.TIMING,
    )
    assert (d.account_id, d.subject, d.symbol) == (ACC, "bot-1", "AAPL")
    assert (d.local_value, d.broker_value) == (D(10), None)
    assert d.detail == {
        "local_status": "Submitted",
        "broker_outcome": "Cancelled",
        "order_key": "bot-1",
    }


def test_orphan_local_order_found_in_executions_is_filled():
    """Not in completed orders but executed (matched by client and order id): Filled."""
    execution = {
        "account_id": ACC,
        "perm_id": 0,
        "order_id": 42,
        "client_id": 7,
        "order_ref": "",
        "shares": D(10),
        "side": "BOT",
    }
    (d,), _ = run([local(perm_id=None)], [], executions=[execution])
    assert (d.severity, d.cause, d.detail["broker_outcome"]) == (
        Severity.MODERATE,
        Cause.TIMING,
        "Filled",
    )


def test_completed_order_status_wins_over_executions():
    """A partly filled then cancelled order: the completed order's status is the outcome."""
    completed = [{"perm_id": 9001, "account_id": ACC, "status": "Cancelled", "order_ref": ""}]
    execution = {
        "account_id": ACC,
        "perm_id": 9001,
        "order_id": 42,
        "client_id": 7,
        "order_ref": "",
    }
    (d,), _ = run([local()], [], completed, [execution])
    assert d.detail["broker_outcome"] == "Cancelled"


def test_orphan_local_order_unknown_to_the_broker_is_critical():
    """Nowhere at the broker: nobody knows what became of it: CRITICAL, UNKNOWN."""
    (d,), _ = run([local()], [])
    assert (d.kind, d.severity, d.cause) == (
        Kind.ORPHAN_LOCAL_ORDER,
        Severity.CRITICAL,
        Cause.UNKNOWN,
    )
    assert d.detail["broker_outcome"] is None


def test_orphan_broker_order_placed_in_tws():
    """A working order nobody recorded, client 0 and order id 0: placed by hand in TWS;
    CRITICAL, named by its perm id."""
    theirs = working(
        perm_id=5555,
        order_id=0,
        client_id=0,
        order_ref="",
        action="SELL",
        total_quantity=D(3),
        status="PreSubmitted",
    )
    (d,), matched = run([], [theirs])
    assert matched == 0
    assert (d.kind, d.severity, d.cause) == (
        Kind.ORPHAN_BROKER_ORDER,
        Severity.CRITICAL,
        Cause.UNKNOWN,
    )
    assert (d.subject, d.local_value, d.broker_value) == ("5555", None, D(3))
    assert d.detail == {
        "broker_status": "PreSubmitted",
        "placed_in_tws": True,
        "perm_id": 5555,
        "order_id": 0,
        "client_id": 0,
        "conid": AAPL,
        "action": "SELL",
    }


def test_orphan_broker_order_from_another_api_client_is_not_tws():
    """An unrecorded order from API client 3 is an orphan, but not placed in TWS."""
    (d,), _ = run([], [working(perm_id=5556, order_id=12, client_id=3, order_ref="")])
    assert (d.kind, d.detail["placed_in_tws"]) == (Kind.ORPHAN_BROKER_ORDER, False)


def test_status_mismatch():
    """Same order, local Submitted, broker PreSubmitted: STATUS_MISMATCH, MINOR, TIMING,
    both statuses in the detail."""
    (d,), matched = run([local()], [working(status="PreSubmitted")])
    assert matched == 0
    assert (d.kind, d.severity, d.cause, d.subject) == (
        Kind.STATUS_MISMATCH,
        Severity.MINOR,
        Cause.TIMING,
        "bot-1",
    )
    assert d.detail == {
        "local_status": "Submitted",
        "broker_status": "PreSubmitted",
        "order_key": "bot-1",
        "perm_id": 9001,
    }


def test_filled_quantity_difference_is_a_status_mismatch():
    """Same status, broker filled 4 of 10, local recorded none (None counts as 0)."""
    (d,), _ = run([local(filled_quantity=None)], [working(filled=D(4))])
    assert (d.kind, d.local_value, d.broker_value) == (Kind.STATUS_MISMATCH, None, D(4))


def test_accounts_not_recording_orders_are_skipped():
    """Only `accounts` (those whose application records orders) are compared: a TWS
    order in another account is no orphan there, nor is a local order of another account."""
    theirs = working(account_id=OTHER_ACC, perm_id=5555, order_id=0, client_id=0)
    mine = local(key="bot-2", account_id=OTHER_ACC, perm_id=7777)
    assert run([mine], [theirs]) == ([], 0)
