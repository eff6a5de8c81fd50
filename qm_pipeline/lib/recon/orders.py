"""Order reconciliation: the application's pending orders (`ledger.orders`) against the
broker's working orders in the latest live snapshot.

Orders match by perm id, else by (client id, order id), else by order reference. A local
pending order the broker no longer works is ORPHAN_LOCAL_ORDER; the snapshot's completed
orders and executions tell whether it filled or was cancelled (then it is only the local
record lagging: MODERATE, cause TIMING), otherwise nobody knows (CRITICAL). A working order
the application never recorded was placed outside it, e.g. by hand in TWS:
ORPHAN_BROKER_ORDER, CRITICAL. Accounts whose application records no orders at all are
not compared: every broker order would otherwise be an orphan.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from qm_pipeline.lib.recon.model import Cause, Comparison, Discrepancy, Kind, Severity


def _keys(order: dict) -> list[tuple]:
    """Identities an order can be found by, strongest first (IDs of 0 are unset)."""
    keys: list[tuple] = []
    if order.get("perm_id"):
        keys.append(("perm", order["perm_id"]))
    broker_id = order.get("broker_order_id", order.get("order_id"))
    if broker_id:
        keys.append(("id", order.get("client_id"), broker_id))
    if order.get("order_ref"):
        keys.append(("ref", order["order_ref"]))
    return keys


def _index(orders: Iterable[dict]) -> dict[tuple, dict]:
    index: dict[tuple, dict] = {}
    for order in orders:
        for key in _keys(order):
            index.setdefault(key, order)
    return index


def _find(order: dict, index: dict[tuple, dict]) -> dict | None:
    return next((index[k] for k in _keys(order) if k in index), None)


def _outcome(
    order: dict, completed: dict[tuple, dict], executions: dict[tuple, dict]
) -> str | None:
    done = _find(order, completed)
    if done is not None:
        return done["status"]
    return "Filled" if _find(order, executions) is not None else None


def _subject(order: dict) -> str:
    return str(order.get("order_key") or order.get("perm_id") or order.get("order_id"))


def compare_orders(
    local_pending: list[dict],
    open_orders: list[dict],
    completed: list[dict],
    executions: list[dict],
    accounts: set[str],
) -> tuple[list[Discrepancy], int]:
    """(discrepancies, matched orders) for `accounts` (those recording orders that the
    snapshot covered)."""
    local_pending = [o for o in local_pending if o["account_id"] in accounts]
    working = [o for o in open_orders if o["account_id"] in accounts]
    broker, mine = _index(working), _index(local_pending)
    done, filled = _index(completed), _index(executions)
    found, matched = [], 0
    for order in local_pending:
        theirs = _find(order, broker)
        if theirs is None:
            outcome = _outcome(order, done, filled)
            found.append(
                Discrepancy(
                    Comparison.ORDERS,
                    Kind.ORPHAN_LOCAL_ORDER,
                    Severity.MODERATE if outcome else Severity.CRITICAL,
                    order["account_id"],
                    _subject(order),
                    order["quantity"],
                    None,
                    Cause.TIMING if outcome else Cause.UNKNOWN,
                    order.get("symbol"),
                    detail={
                        "local_status": order["status"],
                        "broker_outcome": outcome,
                        "order_key": order["order_key"],
                    },
                )
            )
        elif theirs["status"] != order["status"] or (
            (theirs.get("filled") or Decimal(0)) != (order.get("filled_quantity") or Decimal(0))
        ):
            found.append(
                Discrepancy(
                    Comparison.ORDERS,
                    Kind.STATUS_MISMATCH,
                    Severity.MINOR,
                    order["account_id"],
                    _subject(order),
                    order.get("filled_quantity"),
                    theirs.get("filled"),
                    Cause.TIMING,
                    order.get("symbol"),
                    detail={
                        "local_status": order["status"],
                        "broker_status": theirs["status"],
                        "order_key": order["order_key"],
                        "perm_id": theirs.get("perm_id"),
                    },
                )
            )
        else:
            matched += 1
    for order in working:
        if _find(order, mine) is None:
            manual = not order.get("client_id") and not order.get("order_id")
            found.append(
                Discrepancy(
                    Comparison.ORDERS,
                    Kind.ORPHAN_BROKER_ORDER,
                    Severity.CRITICAL,
                    order["account_id"],
                    _subject(order),
                    None,
                    order["total_quantity"],
                    Cause.UNKNOWN,
                    order.get("symbol"),
                    detail={
                        "broker_status": order["status"],
                        "placed_in_tws": manual,
                        "perm_id": order.get("perm_id"),
                        "order_id": order.get("order_id"),
                        "client_id": order.get("client_id"),
                        "conid": order.get("conid"),
                        "action": order.get("action"),
                    },
                )
            )
    return found, matched
