"""Carry out the strategies: local state follows the broker (SYNC_TO_BROKER), orders are
proposed or submitted (SYNC_TO_LOCAL), halting breaks are marked (HALT_AND_ALERT).

Every change to `ledger.positions` goes through the ledger's audit log (cause
`reconciliation`, the run id); order changes keep their before and after in
`recon.actions`. Action and proposal ids are deterministic per break occurrence, so a
rerun that finds the same break does not act twice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from qm_pipeline.lib.ledger.audit import RECONCILIATION, insert_position, update_position
from qm_pipeline.lib.ledger.orders import ORDERS, upsert_orders
from qm_pipeline.lib.recon.decide import Decision
from qm_pipeline.lib.recon.model import (
    Discrepancy,
    Kind,
    OrderProposal,
    Strategy,
    SubmittedOrder,
    stable_id,
)
from qm_pipeline.lib.recon.store import as_json
from qm_pipeline.lib.warehouse.engine import Tx

EXIT_REASON = "External close detected during reconciliation"
Submitter = Callable[[Sequence[OrderProposal]], list[SubmittedOrder]]


@dataclass
class Acting:
    """One run's context and what it did."""

    tx: Tx
    run_id: str
    now: dt.datetime
    broker_time: dt.datetime  # when the broker side was observed
    occurrence: dict[str, str]  # break_id -> run that first saw this occurrence
    done: set[str]  # action and proposal ids already in the warehouse
    submit: Submitter | None = None
    actions: list[dict] = field(default_factory=list)
    proposals: list[dict] = field(default_factory=list)
    halts: list[Discrepancy] = field(default_factory=list)
    new_halts: list[Discrepancy] = field(default_factory=list)

    def action_id(self, d: Discrepancy, action: str, *extra: object) -> str:
        return stable_id(d.break_id, self.occurrence[d.break_id], action, *extra)

    def record(
        self,
        d: Decision,
        action: str,
        target: str,
        before: Any,
        after: Any,
        status: str,
        note: str | None = None,
    ) -> str:
        action_id = self.action_id(d.discrepancy, action)
        if action_id not in self.done:
            self.done.add(action_id)
            self.actions.append(
                {
                    "action_id": action_id,
                    "run_id": self.run_id,
                    "break_id": d.discrepancy.break_id,
                    "strategy": d.strategy.value,
                    "action": action,
                    "target": target,
                    "before_values": before,
                    "after_values": after,
                    "status": status,
                    "taken_at": self.now,
                    "note": note,
                }
            )
        return action


def act(decision: Decision, ctx: Acting) -> str:
    """Carry out one decision; returns what was done, for `recon.discrepancies`."""
    if not decision.acts:
        return "recorded" + (f" ({decision.reason})" if decision.reason else "")
    d = decision.discrepancy
    if decision.strategy is Strategy.HALT_AND_ALERT:
        ctx.halts.append(d)
        if ctx.action_id(d, "HALT") not in ctx.done:
            ctx.new_halts.append(d)
        return ctx.record(
            decision,
            "HALT",
            f"{d.comparison}:{d.subject}",
            None,
            None,
            "alerted",
            "the run fails; downstream assets do not run",
        )
    if decision.strategy is Strategy.SYNC_TO_LOCAL:
        return _propose(decision, ctx)
    if d.kind in (Kind.ORPHAN_LOCAL_ORDER, Kind.STATUS_MISMATCH, Kind.ORPHAN_BROKER_ORDER):
        return _sync_order(decision, ctx)
    return _sync_position(decision, ctx)


def _side(quantity: Decimal) -> str:
    return "LONG" if quantity > 0 else "SHORT"


def _sync_position(decision: Decision, ctx: Acting) -> str:
    d = decision.discrepancy
    note = f"reconciliation {d.comparison}: {d.kind}, cause {d.cause}"
    episode = d.detail.get("episode_id")
    if d.kind is Kind.MISSING_LOCAL:
        entry = insert_position(
            ctx.tx,
            _broker_only(ctx.tx, d, ctx.broker_time),
            cause=RECONCILIATION,
            run_id=ctx.run_id,
            now=ctx.now,
            note=note + "; added from the broker: review it",
        )
        action = "ADD_BROKER_POSITION"
    else:
        assert episode is not None and d.broker_value is not None
        changes: dict[str, Any] = {"quantity": d.broker_value}
        if d.kind is Kind.MISSING_BROKER:
            changes |= {
                "status": "CLOSED_EXTERNALLY",
                "closed_at": ctx.broker_time,
                "exit_reason": EXIT_REASON,
            }
            action = "CLOSE_EXTERNALLY"
        else:
            changes["side"] = _side(d.broker_value)
            action = "UPDATE_QUANTITY"
        entry = update_position(
            ctx.tx,
            episode,
            changes,
            cause=RECONCILIATION,
            run_id=ctx.run_id,
            now=ctx.now,
            note=note,
        )
    return ctx.record(
        decision,
        action,
        f"ledger.positions:{entry['episode_id']}",
        entry["before_values"],
        entry["after_values"],
        "applied",
        f"ledger.audit_log {entry['audit_id']}",
    )


def _broker_only(tx: Tx, d: Discrepancy, opened: dt.datetime) -> dict[str, Any]:
    """A position for a holding only the broker has; numbered after the (account, conid)'s
    episodes so that a replay deriving the same episode later finds this row."""
    assert d.broker_value is not None
    episodes = tx.scalar(
        "SELECT count(*) FROM ledger.positions WHERE account_id = :a AND conid = :c",
        {"a": d.account_id, "c": d.subject},
    )
    return {
        "episode_id": f"{d.account_id}|{d.subject}|{episodes + 1}",
        "account_id": d.account_id,
        "conid": d.subject,
        "symbol": d.symbol,
        "asset_category": d.detail.get("asset_category"),
        "status": "OPEN",
        "side": _side(d.broker_value),
        "quantity": d.broker_value,
        "max_quantity": abs(d.broker_value),
        "opened_at": opened,
        "is_opening_balance": False,
    }


def _order_row(tx: Tx, key: str) -> dict[str, Any] | None:
    found = tx.execute(
        f"SELECT {', '.join(ORDERS.names)} FROM ledger.orders WHERE order_key = :k", {"k": key}
    )
    return dict(zip(ORDERS.names, found[0], strict=True)) if found else None


def _sync_order(decision: Decision, ctx: Acting) -> str:
    d = decision.discrepancy
    if d.kind is Kind.ORPHAN_BROKER_ORDER:
        key = f"broker:{d.detail['perm_id'] or d.subject}"
        before = None
        after = {
            "order_key": key,
            "account_id": d.account_id,
            "conid": d.detail["conid"],
            "symbol": d.symbol,
            "action": d.detail["action"],
            "quantity": d.broker_value,
            "status": d.detail["broker_status"],
            "perm_id": d.detail["perm_id"],
            "broker_order_id": d.detail["order_id"] or None,
            "client_id": d.detail["client_id"],
            "source": "reconciliation",
            "updated_at": ctx.now,
            "note": "placed outside the application: review it",
        }
        action = "ADD_BROKER_ORDER"
    else:
        status = d.detail.get("broker_outcome") or d.detail.get("broker_status")
        if status is None:
            return "recorded (the broker has no trace of the order: a person decides)"
        before = _order_row(ctx.tx, d.detail["order_key"])
        assert before is not None
        after = {**before, "status": status, "updated_at": ctx.now}
        if d.kind is Kind.STATUS_MISMATCH:
            after |= {
                "filled_quantity": d.broker_value,
                "perm_id": before["perm_id"] or d.detail.get("perm_id"),
            }
        action, key = "UPDATE_ORDER_STATUS", d.detail["order_key"]
    upsert_orders(ctx.tx, [after])
    return ctx.record(
        decision,
        action,
        f"ledger.orders:{key}",
        before and as_json(before),
        as_json(after),
        "applied",
    )


def _propose(decision: Decision, ctx: Acting) -> str:
    d = decision.discrepancy
    delta = (d.local_value or Decimal(0)) - (d.broker_value or Decimal(0))
    proposal = OrderProposal(
        ctx.action_id(d, "PROPOSE", delta),
        d.account_id,
        d.subject,
        d.symbol,
        "BUY" if delta > 0 else "SELL",
        abs(delta),
        break_id=d.break_id,
    )
    if proposal.proposal_id in ctx.done:
        return "proposed earlier"
    ctx.done.add(proposal.proposal_id)
    row = {
        "proposal_id": proposal.proposal_id,
        "run_id": ctx.run_id,
        "break_id": d.break_id,
        "account_id": d.account_id,
        "conid": d.subject,
        "symbol": d.symbol,
        "action": proposal.action,
        "quantity": proposal.quantity,
        "order_type": proposal.order_type,
        "status": "proposed",
        "order_id": None,
        "perm_id": None,
        "submitted_at": None,
        "note": "not submitted: order submission is off (allow_order_submission)",
    }
    if ctx.submit is not None:
        row |= _submitted(ctx.submit, proposal, ctx.now)
    ctx.proposals.append(row)
    return f"{row['status']}: {proposal.action} {proposal.quantity:f}"


def _submitted(submit: Submitter, proposal: OrderProposal, now: dt.datetime) -> dict:
    try:
        (placed,) = submit([proposal])
    except Exception as exc:  # the broker's refusal is recorded, the run goes on
        return {"status": "failed", "note": f"submission failed: {exc}"}
    return {
        "status": "submitted",
        "order_id": placed.order_id,
        "perm_id": placed.perm_id,
        "submitted_at": now,
        "note": f"broker status {placed.status}",
    }
