"""How long a snapshot of a large book takes against the simulated gateway (`make bench`).

The simulator does not pace requests, so the client's own pacing is switched off here;
against a real gateway the ~45 requests/second limit dominates (one reqPnLSingle per
position): budget about positions / 45 seconds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from qm_pipeline.lib.ib.model import Snapshot
from qm_pipeline.lib.ib.snapshot import SnapshotSettings, take_snapshot
from qm_pipeline.lib.sim.gateway import GatewayThread, make_state


@dataclass(frozen=True)
class BenchResult:
    accounts: int
    positions: int
    open_orders: int
    contract_details: int
    seconds: float
    rows: dict[str, int]
    snapshot: Snapshot

    def __str__(self) -> str:
        return (
            f"snapshot of {self.accounts} accounts, {self.positions} positions, "
            f"{self.open_orders} open orders, {self.contract_details} contract details: "
            f"{self.seconds:.2f} s"
        )


def bench_snapshot(
    accounts: int = 5,
    positions_per_account: int = 2000,
    open_orders_per_account: int = 200,
    *,
    unknown_conids: int = 100,
    seed: int = 0,
) -> BenchResult:
    """Time one `take_snapshot` of a `make_state(...)` book; `unknown_conids` of its
    contracts are treated as new (details requested), the rest as already known."""
    state = make_state(accounts, positions_per_account, open_orders_per_account, seed=seed)
    conids = sorted(state.instruments)
    known = conids[unknown_conids:]
    with GatewayThread(state, pnl_interval=None) as gateway:
        settings = SnapshotSettings(
            port=gateway.port,
            connect_timeout=30,
            request_timeout=60,
            retries=0,
            max_requests_per_second=0,
        )
        start = time.perf_counter()
        snapshot = take_snapshot(settings, known_conids=known)
        seconds = time.perf_counter() - start
    tables = snapshot.tables()
    return BenchResult(
        accounts=len(tables["accounts"]),
        positions=len(tables["positions"]),
        open_orders=len(tables["open_orders"]),
        contract_details=len(tables["contract_details"]),
        seconds=seconds,
        rows={name: len(rows) for name, rows in tables.items()},
        snapshot=snapshot,
    )


if __name__ == "__main__":
    print(bench_snapshot())
