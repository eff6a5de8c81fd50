"""Breaks across runs (`track_breaks`): one row per break_id that ages while the
difference persists, resolves only when a comparison that covers it stops finding it, and
reopens as a new occurrence; rerunning the same run counts nothing twice.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

from qm_pipeline.lib.recon.model import Cause, Comparison, Discrepancy, Kind, Severity
from qm_pipeline.lib.recon.store import track_breaks

ACC = "U1234567"
AAPL = "265598"
LIVE = Comparison.LEDGER_VS_LIVE
COVERED = {(LIVE.value, ACC)}
T0 = dt.datetime(2024, 11, 26, 14, 30)
T1 = T0 + dt.timedelta(minutes=5)
T2 = T0 + dt.timedelta(minutes=10)
D = Decimal


def closed(broker: str = "0", kind: Kind = Kind.MISSING_BROKER) -> Discrepancy:
    return Discrepancy(
        LIVE,
        kind,
        Severity.CRITICAL,
        ACC,
        AAPL,
        D(2),
        D(broker),
        Cause.EXTERNAL_CLOSE,
        "AAPL",
        D(100),
        {"episode_id": "ep-1", "executed_since_flex": D("-0.50")},
    )


def first_run():
    rows, _, _ = track_breaks({}, [closed()], COVERED, "run-0", T0)
    return rows


def test_break_id_is_stable_and_ignores_values():
    """Same comparison, type, account and subject: same break, whatever the values; a
    different type is a different break."""
    moved = Discrepancy(LIVE, Kind.MISSING_BROKER, Severity.MINOR, ACC, AAPL, D(9), D(1))
    assert closed().break_id == moved.break_id
    assert closed().break_id != closed(kind=Kind.QUANTITY_MISMATCH).break_id


def test_new_break():
    """First sighting: OPEN, first = last = this run, one run, age 0, occurrence 1."""
    rows, new, resolved = track_breaks({}, [closed()], COVERED, "run-0", T0)
    assert (new, resolved) == (1, 0)
    (row,) = rows.values()
    assert row["break_id"] == closed().break_id
    assert (row["comparison"], row["kind"], row["severity"], row["cause"]) == (
        "LEDGER_VS_LIVE",
        "MISSING_BROKER",
        "CRITICAL",
        "EXTERNAL_CLOSE",
    )
    assert (row["local_value"], row["broker_value"], row["pct"]) == (D(2), D(0), D(100))
    assert (row["status"], row["first_seen_run"], row["first_seen_at"]) == ("OPEN", "run-0", T0)
    assert (row["last_seen_run"], row["last_seen_at"]) == ("run-0", T0)
    assert (row["runs_seen"], row["age_seconds"], row["occurrences"]) == (1, 0, 1)
    assert json.loads(row["detail"]) == {"episode_id": "ep-1", "executed_since_flex": "-0.5"}


def test_persisting_break_ages_in_one_row():
    """Seen again 5 minutes later: the same row, first seen kept, last seen moved, two
    runs, 300 s old, not new; the values are the latest."""
    rows, new, resolved = track_breaks(first_run(), [closed("1")], COVERED, "run-1", T1)
    assert (new, resolved, len(rows)) == (0, 0, 1)
    (row,) = rows.values()
    assert (row["first_seen_run"], row["first_seen_at"]) == ("run-0", T0)
    assert (row["last_seen_run"], row["last_seen_at"]) == ("run-1", T1)
    assert (row["runs_seen"], row["age_seconds"], row["occurrences"]) == (2, 300, 1)
    assert row["broker_value"] == D(1)


def test_same_run_twice_counts_once():
    """Rerunning the same run id finds the break but adds no run and no new break."""
    rows, new, _ = track_breaks(first_run(), [closed()], COVERED, "run-0", T1)
    (row,) = rows.values()
    assert (new, row["runs_seen"], row["occurrences"]) == (0, 1, 1)


def test_unseen_break_resolves_when_its_comparison_covered_the_account():
    """Not found by a run that compared LEDGER_VS_LIVE for the account: RESOLVED with
    the time and run; its history is kept."""
    rows, new, resolved = track_breaks(first_run(), [], COVERED, "run-1", T1)
    assert (new, resolved) == (0, 1)
    (row,) = rows.values()
    assert (row["status"], row["resolved_at"], row["resolved_run"]) == ("RESOLVED", T1, "run-1")
    assert (row["first_seen_run"], row["runs_seen"], row["occurrences"]) == ("run-0", 1, 1)


def test_unseen_break_stays_open_when_not_covered():
    """A run that did not compare that (comparison, account), e.g. the live side was
    unknown or another account, resolves nothing: a failed query is not a fix."""
    for covered in (set(), {(Comparison.LEDGER_VS_FLEX.value, ACC)}, {(LIVE.value, "U7")}):
        assert track_breaks(first_run(), [], covered, "run-1", T1) == ({}, 0, 0)


def test_resolved_break_is_not_resolved_again():
    resolved_rows, _, _ = track_breaks(first_run(), [], COVERED, "run-1", T1)
    assert track_breaks(resolved_rows, [], COVERED, "run-2", T2) == ({}, 0, 0)


def test_reopened_break_is_a_new_occurrence():
    """Found again after it resolved: OPEN again, new, first seen now, one run, age 0,
    resolution cleared, occurrences 2."""
    resolved_rows, _, _ = track_breaks(first_run(), [], COVERED, "run-1", T1)
    rows, new, resolved = track_breaks(resolved_rows, [closed()], COVERED, "run-2", T2)
    assert (new, resolved) == (1, 0)
    (row,) = rows.values()
    assert (row["status"], row["first_seen_run"], row["first_seen_at"]) == ("OPEN", "run-2", T2)
    assert (row["runs_seen"], row["age_seconds"], row["occurrences"]) == (1, 0, 2)
    assert (row["resolved_at"], row["resolved_run"]) == (None, None)
