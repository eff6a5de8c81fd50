"""The per-run reconciliation report: text for people and logs, JSON for programs,
markdown for Dagster's metadata. One summary dict feeds all three, so they never disagree.

It reads like an operator's note: "Matched: 2 positions / Closed externally: 1 (AAPL 2
contracts, entry 2024-11-25) / Warnings: ...".
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from qm_pipeline.lib.recon.store import plain

ACTION_TITLES = {
    "CLOSE_EXTERNALLY": "Closed externally",
    "UPDATE_QUANTITY": "Quantity set to broker's",
    "ADD_BROKER_POSITION": "Added from broker (review)",
    "UPDATE_ORDER_STATUS": "Order status follows broker",
    "ADD_BROKER_ORDER": "Broker order recorded (review)",
    "HALT": "Halting",
}


def _number(value: Any) -> str:
    return (
        "-"
        if value is None
        else f"{value.normalize():f}"
        if hasattr(value, "normalize")
        else str(value)
    )


def _entry(row: dict) -> str:
    opened = row.get("opened_at") or ""
    return f", entry {str(opened)[:10]}" if opened else ""


def _described(row: dict) -> str:
    name = row.get("symbol") or row["subject"]
    return (f"{name} {row['account_id']} local {_number(row['local_value'])} / broker "
            f"{_number(row['broker_value'])}{_entry(row)}")


def summary(
    run: dict,
    breaks: list[dict],
    actions: list[dict],
    proposals: list[dict],
    matched: dict[str, int],
) -> dict:
    """Everything a report shows; `breaks` are this run's open ones (with detail dicts)."""
    return {
        "run": run,
        "matched": matched,
        "breaks": breaks,
        "actions": actions,
        "proposals": proposals,
        "by_severity": dict(Counter(b["severity"] for b in breaks)),
    }


def text_report(s: dict) -> str:
    run = s["run"]
    lines = [
        f"Reconciliation {run['run_id']} at {run['finished_at']:%Y-%m-%d %H:%M} UTC: "
        f"{run['status'].upper()}"
    ]
    flex = json.loads(run["flex_dates"] or "{}")
    lines.append(
        "Flex end of day: " + (", ".join(f"{a} {d}" for a, d in sorted(flex.items())) or "none")
    )
    lines.append(
        f"Live snapshot: {run['live_snapshot_id']} taken {run['live_taken_at']} UTC"
        if run["live_snapshot_id"]
        else f"Live: unknown ({run['live_problem']})"
    )
    if run["unreconciled_accounts"]:
        lines.append(
            "Not reconciled (the broker shows them, no local state): "
            f"{run['unreconciled_accounts']}"
        )
    for comparison, count in s["matched"].items():
        lines.append(f"Matched ({comparison}): {count}")
    acted = Counter(a["action"] for a in s["actions"])
    by_break = {a["break_id"]: a for a in s["actions"]}
    for action, title in ACTION_TITLES.items():
        if acted[action]:
            items = [
                _described(b)
                for b in s["breaks"]
                if by_break.get(b["break_id"], {}).get("action") == action
            ]
            lines.append(f"{title}: {acted[action]} ({'; '.join(items)})")
    for p in s["proposals"]:
        lines.append(
            f"Proposed order ({p['status']}): {p['action']} {_number(p['quantity'])} "
            f"{p['symbol'] or p['conid']} in {p['account_id']}"
        )
    lines.append(
        f"Warnings: {len(s['breaks'])} open break(s) "
        f"{dict(sorted(s['by_severity'].items())) or ''}".rstrip()
    )
    for b in s["breaks"]:
        lines.append(
            f"  {b['severity']:<8} {b['comparison']:<17} {b['kind']:<19} "
            f"{_described(b)} cause {b['cause']}, {b['runs_seen']} run(s) -> "
            f"{b['action_taken']}"
        )
    return "\n".join(lines) + "\n"


def markdown_report(s: dict, text: str) -> str:
    """The text report's head as a list, its breaks as a table."""
    lines = text.splitlines()
    head, rows = lines[: -len(s["breaks"]) or None], s["breaks"]
    table = [
        "| severity | comparison | type | account | subject | local | broker | cause | "
        "seen | action |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    table += [
        f"| {b['severity']} | {b['comparison']} | {b['kind']} | {b['account_id']} | "
        f"{b.get('symbol') or b['subject']} | {_number(b['local_value'])} | "
        f"{_number(b['broker_value'])} | {b['cause']} | {b['runs_seen']} | "
        f"{b['action_taken']} |"
        for b in rows
    ]
    return "\n\n".join(
        [
            "\n".join(f"- {line}" if i else f"**{line}**" for i, line in enumerate(head)),
            "\n".join(table) if rows else "No open breaks.",
        ]
    )


def write_reports(s: dict, text: str, folder: Path) -> tuple[Path, Path]:
    """`recon_<run>.txt` (the text report) and `.json` under `folder`
    (QM_DATA_DIR/reports)."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"recon_{s['run']['run_id']}"
    text_path, json_path = stem.with_suffix(".txt"), stem.with_suffix(".json")
    text_path.write_text(text, encoding="utf-8")
    json_path.write_text(json.dumps(plain(s), indent=2, sort_keys=True), encoding="utf-8")
    return text_path, json_path
