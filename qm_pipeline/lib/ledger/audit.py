"""`ledger.positions` changes and their `ledger.audit_log`: every change, with its cause.

`ledger.positions` is the local state a trading application reads and reconciliation
corrects. A replay does not blindly overwrite it: `merge_positions` diffs the stored
episodes with the replay's by `episode_id` and yields the rows to store plus one audit row
per insert, update and delete (cause `replay`). An episode whose status was set by
reconciliation or by hand (`status_source` not `replay`, e.g. CLOSED_EXTERNALLY) keeps that
status and its exit fields (`closed_at`, `exit_reason`) through every replay; the replay
still refreshes quantities and P&L, and logs that it kept them (once, or with each change).
An unchanged rerun changes nothing and logs nothing.

`set_status` is the one way reconciliation (cause `reconciliation`) and people (`manual`)
change a position's status: it updates the row and logs the change in one go.
Audit ids are deterministic (run, episode, action), so a retried run never duplicates rows.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import pyarrow as pa

from qm_pipeline.lib.ledger import outputs
from qm_pipeline.lib.ledger.sources import read_arrow
from qm_pipeline.lib.warehouse.engine import Tx

REPLAY, RECONCILIATION, MANUAL = "replay", "reconciliation", "manual"
CAUSES = (REPLAY, RECONCILIATION, MANUAL)
STATUSES = ("OPEN", "CLOSED", "CLOSED_EXTERNALLY", "EXPIRED")
# What reconciliation (or a person) decides and a replay must not undo.
KEPT_FIELDS = ("status", "closed_at", "exit_reason")

TS = pa.timestamp("us")
POSITIONS = pa.schema([
    *outputs.POSITIONS,
    ("status_source", pa.string()),  # who set status / closed_at / exit_reason: a cause
    ("updated_at", TS),  # last change (UTC)
    ("updated_run_id", pa.string()),
    ("updated_cause", pa.string()),
])
DATA_COLUMNS = [*outputs.POSITIONS.names, "status_source"]

AUDIT_LOG = pa.schema([
    ("audit_id", pa.string()),
    ("logged_at", TS),  # UTC
    ("run_id", pa.string()),
    ("cause", pa.string()),  # replay, reconciliation or manual
    ("action", pa.string()),  # INSERT, UPDATE, DELETE or KEEP (reconciled fields kept)
    ("episode_id", pa.string()),
    ("account_id", pa.string()),
    ("conid", pa.string()),
    ("changed_columns", pa.string()),  # comma-separated
    ("before_values", pa.string()),  # JSON object of the row before (NULL for INSERT)
    ("after_values", pa.string()),  # JSON object of the row after (NULL for DELETE)
    ("note", pa.string()),
])


def audit_id(run_id: str, episode_id: str, action: str) -> str:
    return hashlib.sha256(f"{run_id}|{episode_id}|{action}".encode()).hexdigest()[:32]


def json_scalar(value: Any) -> Any:
    """Money as exact decimal text, times as ISO text: JSON without a binary float."""
    if isinstance(value, Decimal):
        text = format(value.normalize(), "f")
        return "0" if text in ("-0", "0") else text
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def as_json(row: dict | None, columns: Iterable[str] = DATA_COLUMNS) -> str | None:
    if row is None:
        return None
    return json.dumps({c: json_scalar(row.get(c)) for c in columns}, sort_keys=True)


def audit_row(run_id: str, cause: str, action: str, before: dict | None, after: dict | None,
              now: dt.datetime, changed: Iterable[str] = (), note: str | None = None) -> dict:
    row = after or before
    assert row is not None
    return {
        "audit_id": audit_id(run_id, row["episode_id"], action), "logged_at": now,
        "run_id": run_id, "cause": cause, "action": action, "episode_id": row["episode_id"],
        "account_id": row["account_id"], "conid": row["conid"],
        "changed_columns": ",".join(changed) or None,
        "before_values": as_json(before), "after_values": as_json(after), "note": note,
    }


def merge_positions(stored: list[dict], derived: list[dict], run_id: str,
                    now: dt.datetime) -> tuple[list[dict], list[dict]]:
    """(rows to store, audit rows) for a replay deriving `derived` over `stored`."""
    old = {r["episode_id"]: r for r in stored}
    new = {r["episode_id"]: r for r in derived}
    rows, audit = [], []
    for episode in sorted(old.keys() | new.keys()):
        before, replayed = old.get(episode), new.get(episode)
        decided = before is not None and before["status_source"] not in (None, REPLAY)
        if replayed is None:
            if decided:  # reconciliation closed it: keep it, say the replay no longer has it
                assert before is not None
                note = (f"kept: status {before['status']} set by {before['status_source']}; "
                        "the replay no longer derives this episode")
                if before["updated_cause"] == REPLAY:
                    rows.append(before)
                else:
                    kept = {**before, **_stamp(run_id, now)}
                    rows.append(kept)
                    audit.append(audit_row(run_id, REPLAY, "KEEP", before, kept, now,
                                           note=note))
            else:
                audit.append(audit_row(run_id, REPLAY, "DELETE", before, None, now))
            continue
        row = {**replayed, "status_source": REPLAY}
        note = None
        if decided:
            assert before is not None
            row.update({f: before[f] for f in KEPT_FIELDS})
            row["status_source"] = before["status_source"]
            note = (f"kept status {before['status']} set by {before['status_source']}; the "
                    f"replay derives {replayed['status']}")
        if before is None:
            row.update(_stamp(run_id, now))
            rows.append(row)
            audit.append(audit_row(run_id, REPLAY, "INSERT", None, row, now))
            continue
        changed = [c for c in DATA_COLUMNS if row[c] != before[c]]
        first_since_decision = decided and before["updated_cause"] != REPLAY
        if not changed and not first_since_decision:
            rows.append(before)  # unchanged: the stored row, stamps and all
            continue
        row.update(_stamp(run_id, now))
        rows.append(row)
        audit.append(audit_row(run_id, REPLAY, "UPDATE" if changed else "KEEP", before, row,
                               now, changed, note))
    return rows, audit


def _stamp(run_id: str, now: dt.datetime) -> dict:
    return {"updated_at": now, "updated_run_id": run_id, "updated_cause": REPLAY}


def set_status(tx: Tx, episode_id: str, status: str, *, cause: str, run_id: str,
               closed_at: dt.datetime | None = None, exit_reason: str | None = None,
               note: str | None = None, now: dt.datetime | None = None) -> dict:
    """Set a position's status (and exit fields) as `cause` decided, logging the change.

    Reconciliation's SYNC_TO_BROKER uses it for a position gone at the broker:
    `set_status(tx, episode, "CLOSED_EXTERNALLY", cause="reconciliation", run_id=...,
    closed_at=..., exit_reason=...)`. Returns the audit row written."""
    return update_position(tx, episode_id, {"status": status, "closed_at": closed_at,
                                            "exit_reason": exit_reason},
                           cause=cause, run_id=run_id, note=note, now=now)


def _decided(cause: str, row: dict) -> None:
    if cause not in (RECONCILIATION, MANUAL):
        raise ValueError(f"cause must be {RECONCILIATION!r} or {MANUAL!r}, not {cause!r}")
    if row.get("status", "OPEN") not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}, not {row['status']!r}")


def update_position(tx: Tx, episode_id: str, changes: dict[str, Any], *, cause: str,
                    run_id: str, note: str | None = None,
                    now: dt.datetime | None = None) -> dict:
    """Change columns of one `ledger.positions` row as `cause` decided, logging before and
    after in `ledger.audit_log` in the same transaction. Returns the audit row written."""
    _decided(cause, changes)
    unknown = set(changes) - set(outputs.POSITIONS.names)
    if unknown:
        raise ValueError(f"not columns of ledger.positions: {', '.join(sorted(unknown))}")
    types = {f.name: f.type for f in POSITIONS}
    select = ", ".join(f'"{c}"' for c in types)
    found = read_arrow(tx, f"SELECT {select} FROM ledger.positions "
                           f"WHERE episode_id = '{episode_id.replace(chr(39), chr(39) * 2)}'",
                       types).to_pylist()
    if len(found) != 1:
        raise LookupError(f"ledger.positions has {len(found)} rows for episode {episode_id!r}")
    (before,) = found
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    stamps = {"status_source": cause, "updated_at": now, "updated_run_id": run_id,
              "updated_cause": cause}
    after = {**before, **changes, **stamps}
    assignments = ", ".join(f'"{c}" = :{c}' for c in {**changes, **stamps})
    tx.execute(f"UPDATE ledger.positions SET {assignments} WHERE episode_id = :episode_id",
               {**changes, **stamps, "episode_id": episode_id})
    changed = [c for c in DATA_COLUMNS if after[c] != before[c]]
    entry = audit_row(run_id, cause, "UPDATE", before, after, now, changed, note)
    tx.insert("ledger", "audit_log", pa.Table.from_pylist([entry], schema=AUDIT_LOG))
    return entry


def insert_position(tx: Tx, row: dict[str, Any], *, cause: str, run_id: str,
                    note: str | None = None, now: dt.datetime | None = None) -> dict:
    """Add a position the replay does not derive (reconciliation found it only at the
    broker), logged as an INSERT; replays keep it (its status is not theirs)."""
    _decided(cause, row)
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    stored = {**dict.fromkeys(POSITIONS.names), **row, "status_source": cause,
              "updated_at": now, "updated_run_id": run_id, "updated_cause": cause}
    tx.insert("ledger", "positions", pa.Table.from_pylist([stored], schema=POSITIONS))
    entry = audit_row(run_id, cause, "INSERT", None, stored, now, note=note)
    tx.insert("ledger", "audit_log", pa.Table.from_pylist([entry], schema=AUDIT_LOG))
    return entry
