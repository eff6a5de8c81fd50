"""One reconciliation run: read both sides, compare, decide, act, record, report; the
warehouse changes in one transaction, so a failure leaves it as it was.

`reconcile(warehouse, config, run_id)` returns a `ReconResult`; `halted` tells the caller
(the Dagster asset check, `qm reconcile`) to fail so nothing downstream runs on broken
state. Alerts go out after the commit, once per halting break occurrence.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from qm_pipeline.lib.recon import cash, orders, positions
from qm_pipeline.lib.recon.apply import Acting, Submitter, act
from qm_pipeline.lib.recon.config import ReconConfig
from qm_pipeline.lib.recon.decide import decide
from qm_pipeline.lib.recon.model import Comparison, Discrepancy
from qm_pipeline.lib.recon.notify import Notifier
from qm_pipeline.lib.recon.report import markdown_report, summary, text_report, write_reports
from qm_pipeline.lib.recon.sources import MARKET_TIMEZONE, ReconInputs, read_inputs
from qm_pipeline.lib.recon.store import (
    as_json,
    known_ids,
    stored_breaks,
    track_breaks,
    write_breaks,
    write_rows,
)
from qm_pipeline.lib.warehouse.engine import Warehouse


@dataclass
class ReconResult:
    run_id: str
    status: str  # ok, warnings, halted
    halting_breaks: int  # breaks under HALT_AND_ALERT in this run
    discrepancies: int
    new_breaks: int
    resolved_breaks: int
    actions: int
    proposals: int
    matched: dict[str, int]
    by_severity: dict[str, int]
    live_problem: str | None
    text: str
    markdown: str
    report_paths: tuple[Path, Path] | None

    @property
    def halted(self) -> bool:
        return self.halting_breaks > 0


def known_accounts(inputs: ReconInputs) -> set[str]:
    """Accounts with local state: Flex reports or a ledger."""
    return set(inputs.flex_dates) | {a for a, _ in inputs.local}


def live_accounts(inputs: ReconInputs, timezone: str = MARKET_TIMEZONE) -> set[str]:
    """Known accounts the live snapshot covers and saw after their Flex report's day. A
    managed account without local state is left out (every position would be MISSING_LOCAL);
    the run names it in `unreconciled_accounts`."""
    if inputs.live is None:
        return set()
    seen = inputs.live.taken_at.replace(tzinfo=dt.UTC).astimezone(ZoneInfo(timezone)).date()
    return {
        a
        for a in inputs.live.accounts & known_accounts(inputs)
        if a not in inputs.flex_dates or inputs.flex_dates[a] < seen
    }


def compare(
    inputs: ReconInputs, config: ReconConfig, live: set[str]
) -> tuple[list[Discrepancy], dict[str, int], set[tuple[str, str]]]:
    """(discrepancies, matched per comparison, (comparison, account) pairs compared)."""
    flex_accounts = set(inputs.flex_dates)
    changed = frozenset(
        k
        for k, when in inputs.reconciled_after.items()
        if k[0] in inputs.flex_dates and when.date() > inputs.flex_dates[k[0]]
    )
    executed = inputs.live.executed if inputs.live else {}
    evidence = positions.Evidence(executed, changed)
    books = {Comparison.LEDGER_VS_FLEX: (inputs.local, inputs.flex, flex_accounts)}
    if inputs.live is not None:
        books[Comparison.LEDGER_VS_LIVE] = (inputs.local, inputs.live.book, live)
        books[Comparison.FLEX_VS_LIVE] = (inputs.flex, inputs.live.book, live & flex_accounts)
    found, matched, covered = [], {}, set()
    for comparison, (left, right, accounts) in books.items():
        result = positions.compare_books(comparison, left, right, config, evidence, accounts)
        found += result.discrepancies
        matched[comparison.value] = result.matched
        covered |= {(comparison.value, a) for a in accounts}
    more = [
        (
            Comparison.CASH_ROLL_VS_FLEX,
            cash.compare_roll_forward(inputs.roll_forward, config),
            {a for a, _ in inputs.roll_forward},
        )
    ]
    if inputs.live is not None:
        traded = {a for a, _ in executed}
        more.append(
            (
                Comparison.CASH_FLEX_VS_LIVE,
                cash.compare_live_cash(inputs.roll_forward, inputs.live.cash, live, traded, config),
                live,
            )
        )
        order_accounts = inputs.order_accounts & live
        more.append(
            (
                Comparison.ORDERS,
                orders.compare_orders(
                    inputs.local_orders,
                    inputs.live.open_orders,
                    inputs.live.completed_orders,
                    inputs.live.executions,
                    order_accounts,
                ),
                order_accounts,
            )
        )
    for comparison, (rows, count), accounts in more:
        found += rows
        matched[comparison.value] = count
        covered |= {(comparison.value, a) for a in accounts}
    return found, matched, covered


def _external(inputs: ReconInputs) -> set[tuple[str, str]]:
    """Keys with executions placed by hand in TWS (client 0) or liquidations."""
    if inputs.live is None:
        return set()
    return {
        (e["account_id"], e["conid"])
        for e in inputs.live.executions
        if not e["client_id"] or e["liquidation"]
    }


def reconcile(
    warehouse: Warehouse,
    config: ReconConfig,
    run_id: str,
    *,
    notifier: Notifier | None = None,
    submit: Submitter | None = None,
    reports_dir: Path | None = None,
    now: dt.datetime | None = None,
) -> ReconResult:
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    if submit is not None and not config.allow_order_submission:
        submit = None  # proposals only: submission needs the explicit opt-in
    with warehouse.transaction() as tx:
        inputs = read_inputs(tx)
        live = live_accounts(inputs)
        found, matched, covered = compare(inputs, config, live)
        stored = stored_breaks(tx)
        rows, new, resolved = track_breaks(stored, found, covered, run_id, now)
        ctx = Acting(
            tx,
            run_id,
            now,
            inputs.live.taken_at if inputs.live else now,
            {d.break_id: rows[d.break_id]["first_seen_run"] for d in found},
            known_ids(tx, "actions", "action_id") | known_ids(tx, "proposals", "proposal_id"),
            submit,
        )
        external = _external(inputs)
        for d in found:
            decision = decide(d, config, live, external)
            rows[d.break_id] |= {
                "strategy": decision.strategy.value,
                "action_taken": act(decision, ctx),
            }
        write_breaks(tx, rows)
        write_rows(tx, "actions", ctx.actions)
        write_rows(tx, "proposals", ctx.proposals)
        status = "halted" if ctx.halts else "warnings" if found else "ok"
        run = {
            "run_id": run_id,
            "started_at": now,
            "finished_at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
            "accounts": ",".join(sorted({a for _, a in covered})),
            "settings": as_json(
                {
                    "strategies": config.strategies,
                    "accounts": config.account_strategies,
                    "cash_tolerance_pct": config.cash_tolerance_pct,
                }
            ),
            "flex_dates": as_json(inputs.flex_dates),
            "live_snapshot_id": inputs.live.snapshot_id if inputs.live else None,
            "live_taken_at": inputs.live.taken_at if inputs.live else None,
            "live_problem": inputs.live_problem,
            "unreconciled_accounts": ",".join(
                sorted((inputs.live.accounts if inputs.live else set()) - known_accounts(inputs))
            )
            or None,
            "compared": json.dumps(matched),
            "discrepancies": len(found),
            "new_breaks": new,
            "resolved_breaks": resolved,
            "actions": len(ctx.actions),
            "halted": bool(ctx.halts),
            "status": status,
            "report_text": None,
            "report_json": None,
        }
        opened = [_with_detail(rows[d.break_id], d) for d in found]
        report = summary(run, opened, ctx.actions, ctx.proposals, matched)
        text = text_report(report)
        paths = write_reports(report, text, reports_dir) if reports_dir else None
        if paths:
            run |= {"report_text": str(paths[0]), "report_json": str(paths[1])}
        write_rows(tx, "runs", [run])
    if notifier is not None and ctx.new_halts:
        notifier.alert(
            f"qm-pipeline reconciliation {run_id} halted",
            text,
            {"run_id": run_id, "halting_breaks": len(ctx.halts)},
        )
    return ReconResult(
        run_id,
        status,
        len(ctx.halts),
        len(found),
        new,
        resolved,
        len(ctx.actions),
        len(ctx.proposals),
        matched,
        report["by_severity"],
        inputs.live_problem,
        text,
        markdown_report(report, text),
        paths,
    )


def _with_detail(row: dict, d: Discrepancy) -> dict:
    return {**row, **{k: d.detail.get(k) for k in ("asset_category", "opened_at")}}
