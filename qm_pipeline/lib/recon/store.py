"""The `recon` schema: runs, breaks tracked across runs, actions and order proposals.

A break (`recon.discrepancies`) is one row per `break_id` (comparison, type, account,
subject) that ages while the difference persists: first and last seen, runs seen, age;
when a comparison that covers it runs and no longer finds it, it is RESOLVED with the time
and run; if it comes back it reopens as a new occurrence. `recon.actions` and
`recon.proposals` have deterministic ids (break, occurrence, action), so rerunning the
same reconciliation adds nothing (DOMAIN.md section 4).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from typing import Any

import pyarrow as pa

from qm_pipeline.lib.ledger.audit import json_scalar
from qm_pipeline.lib.recon.model import Discrepancy
from qm_pipeline.lib.warehouse.engine import Tx

MONEY = pa.decimal128(38, 18)
TS = pa.timestamp("us")  # UTC

RUNS = pa.schema(
    [
        ("run_id", pa.string()),
        ("started_at", TS),
        ("finished_at", TS),
        ("accounts", pa.string()),
        ("settings", pa.string()),  # JSON
        ("flex_dates", pa.string()),  # JSON account -> date of the Flex positions compared
        ("live_snapshot_id", pa.string()),
        ("live_taken_at", TS),
        ("live_problem", pa.string()),  # why the live side was unknown (never read as flat)
    ("unreconciled_accounts", pa.string()),  # live accounts without local state
        ("compared", pa.string()),  # JSON comparison -> {matched, differences}
        ("discrepancies", pa.int64()),
        ("new_breaks", pa.int64()),
        ("resolved_breaks", pa.int64()),
        ("actions", pa.int64()),
        ("halted", pa.bool_()),
        ("status", pa.string()),  # ok, warnings, halted
        ("report_text", pa.string()),
        ("report_json", pa.string()),  # file paths
    ]
)
DISCREPANCIES = pa.schema(
    [
        ("break_id", pa.string()),
        ("comparison", pa.string()),
        ("kind", pa.string()),
        ("severity", pa.string()),
        ("cause", pa.string()),
        ("account_id", pa.string()),
        ("subject", pa.string()),  # conid, currency, order key or perm id, strategy
        ("symbol", pa.string()),
        ("local_value", MONEY),
        ("broker_value", MONEY),
        ("pct", MONEY),
        ("detail", pa.string()),  # JSON
        ("strategy", pa.string()),
        ("action_taken", pa.string()),
        ("status", pa.string()),  # OPEN or RESOLVED
        ("first_seen_run", pa.string()),
        ("first_seen_at", TS),
        ("last_seen_run", pa.string()),
        ("last_seen_at", TS),
        ("runs_seen", pa.int64()),
        ("age_seconds", pa.int64()),
        ("resolved_at", TS),
        ("resolved_run", pa.string()),
        ("occurrences", pa.int64()),
    ]
)
ACTIONS = pa.schema(
    [
        ("action_id", pa.string()),
        ("run_id", pa.string()),
        ("break_id", pa.string()),
        ("strategy", pa.string()),
        ("action", pa.string()),
        ("target", pa.string()),  # e.g. ledger.positions:<episode>, ledger.orders:<key>
        ("before_values", pa.string()),
        ("after_values", pa.string()),  # JSON
        ("status", pa.string()),  # applied, proposed, submitted, refused, failed, alerted
        ("taken_at", TS),
        ("note", pa.string()),
    ]
)
PROPOSALS = pa.schema(
    [
        ("proposal_id", pa.string()),
        ("run_id", pa.string()),
        ("break_id", pa.string()),
        ("account_id", pa.string()),
        ("conid", pa.string()),
        ("symbol", pa.string()),
        ("action", pa.string()),
        ("quantity", MONEY),
        ("order_type", pa.string()),
        ("status", pa.string()),  # proposed, submitted, refused, failed
        ("order_id", pa.int64()),
        ("perm_id", pa.int64()),
        ("submitted_at", TS),
        ("note", pa.string()),
    ]
)
TABLES = {"runs": RUNS, "discrepancies": DISCREPANCIES, "actions": ACTIONS, "proposals": PROPOSALS}


def create_recon_schema(tx: Tx) -> None:
    from qm_pipeline.lib.ledger.orders import ORDERS

    tx.execute("CREATE SCHEMA IF NOT EXISTS recon")
    for name, schema in TABLES.items():
        tx.ensure_table("recon", name, schema)
    tx.ensure_table("ledger", "orders", ORDERS)


def plain(value: Any) -> Any:
    """`value` with Decimals and times as text, for JSON (no float ever touches money)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    return json_scalar(value)


def as_json(value: Any) -> str:
    return json.dumps(plain(value), sort_keys=True)


def stored_breaks(tx: Tx) -> dict[str, dict]:
    names = DISCREPANCIES.names
    return {
        r[0]: dict(zip(names, r, strict=True))
        for r in tx.execute(f"SELECT {', '.join(names)} FROM recon.discrepancies")
    }


def track_breaks(
    stored: dict[str, dict],
    found: Iterable[Discrepancy],
    covered: set[tuple[str, str]],
    run_id: str,
    now: dt.datetime,
) -> tuple[dict[str, dict], int, int]:
    """(break rows to write, new breaks, resolved breaks). `covered`: the (comparison,
    account) pairs this run compared completely: only their unseen breaks resolve."""
    rows: dict[str, dict] = {}
    new = 0
    for d in found:
        old = stored.get(d.break_id)
        ongoing = old is not None and old["status"] == "OPEN"
        first_run, first_at = (
            (old["first_seen_run"], old["first_seen_at"]) if ongoing else (run_id, now)
        )
        new += not ongoing
        rows[d.break_id] = {
            "break_id": d.break_id,
            "comparison": d.comparison.value,
            "kind": d.kind.value,
            "severity": d.severity.value,
            "cause": d.cause.value,
            "account_id": d.account_id,
            "subject": d.subject,
            "symbol": d.symbol,
            "local_value": d.local_value,
            "broker_value": d.broker_value,
            "pct": None if d.pct is None else round(d.pct, 18),
            "detail": as_json(d.detail),
            "strategy": None,
            "action_taken": None,
            "status": "OPEN",
            "first_seen_run": first_run,
            "first_seen_at": first_at,
            "last_seen_run": run_id,
            "last_seen_at": now,
            "runs_seen": (old["runs_seen"] + (old["last_seen_run"] != run_id)) if ongoing else 1,
            "age_seconds": int((now - first_at).total_seconds()),
            "resolved_at": None,
            "resolved_run": None,
            "occurrences": (
                old["occurrences"] if ongoing else (old or {}).get("occurrences", 0) + 1
            ),
        }
    resolved = 0
    for break_id, old in stored.items():
        if (
            break_id not in rows
            and old["status"] == "OPEN"
            and (old["comparison"], old["account_id"]) in covered
        ):
            rows[break_id] = {
                **old,
                "status": "RESOLVED",
                "resolved_at": now,
                "resolved_run": run_id,
            }
            resolved += 1
    return rows, new, resolved


def write_breaks(tx: Tx, rows: dict[str, dict]) -> None:
    if not rows:
        return
    data = pa.Table.from_pylist(list(rows.values()), schema=DISCREPANCIES)
    staged = tx.staged(data.select(["break_id"]))
    tx.execute(f"DELETE FROM recon.discrepancies WHERE break_id IN (SELECT break_id FROM {staged})")
    tx.insert("recon", "discrepancies", data)


def known_ids(tx: Tx, table: str, column: str) -> set[str]:
    return {i for (i,) in tx.execute(f"SELECT {column} FROM recon.{table}")}


def write_rows(tx: Tx, table: str, rows: list[dict]) -> int:
    if not rows:
        return 0
    return tx.insert("recon", table, pa.Table.from_pylist(rows, schema=TABLES[table]))
