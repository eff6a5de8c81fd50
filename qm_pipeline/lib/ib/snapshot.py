"""Take a complete, all-or-nothing snapshot of the IB accounts through the TWS API.

`take_snapshot(settings)` connects with the real client (ib_async, or ib_insync; see
`client`), collects every live table for the managed accounts (`collect`), and retries the
whole snapshot on a fresh connection after a dropped socket or a timeout, with bounded
exponential back-off. It returns a `Snapshot` or raises `SnapshotError`: a failed query is
an unknown, never an empty portfolio (DOMAIN.md §3).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from qm_pipeline.lib.ib.collect import collect
from qm_pipeline.lib.ib.model import Snapshot, SnapshotError, SnapshotSettings
from qm_pipeline.lib.ib.rows import TABLES
from qm_pipeline.lib.ib.session import retried

__all__ = ["TABLES", "Snapshot", "SnapshotError", "SnapshotSettings", "take_snapshot"]


async def take_snapshot_async(
    settings: SnapshotSettings, known_conids: Iterable[int] | None = None
) -> Snapshot:
    """`take_snapshot` for callers already inside an event loop."""
    known = frozenset(known_conids) if known_conids is not None else None
    return await retried(settings, lambda n: collect(settings, known, n), "snapshot")


def take_snapshot(
    settings: SnapshotSettings, known_conids: Iterable[int] | None = None
) -> Snapshot:
    """Connect, collect every table for the selected accounts, disconnect.

    `known_conids`: contracts the caller already has details for; details are requested
    for every other conid in the snapshot (None: for all of them). Runs its own event
    loop, so call it from synchronous code (a Dagster asset, the CLI).
    """
    return asyncio.run(take_snapshot_async(settings, known_conids))
