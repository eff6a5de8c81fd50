"""Reconciliation benchmark: 100,000 positions across 20 accounts, three sources.

The three books agree on most positions and differ in the ways reconciliation exists for:
about 1% closed at the broker, 1% only at the broker, 2% partly closed, a few side flips;
the live side also trades some positions today (TIMING). Timed: the three position
comparisons, cash and orders (`compare`), and break tracking against the previous run.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from dataclasses import dataclass
from decimal import Decimal

from qm_pipeline.lib.recon.config import ReconConfig
from qm_pipeline.lib.recon.decide import decide
from qm_pipeline.lib.recon.model import Book, Holding
from qm_pipeline.lib.recon.run import compare
from qm_pipeline.lib.recon.sources import LiveSide, ReconInputs
from qm_pipeline.lib.recon.store import track_breaks


@dataclass(frozen=True)
class ReconBench:
    positions: int
    accounts: int
    discrepancies: int
    seconds: float


def synthetic_inputs(positions: int = 100_000, accounts: int = 20,
                     seed: int = 11) -> ReconInputs:
    rng = random.Random(seed)
    local: Book = {}
    flex: Book = {}
    live: Book = {}
    executed: dict[tuple[str, str], Decimal] = {}
    for n in range(positions):
        key = (f"U{1000000 + n % accounts}", str(100000 + n))
        quantity = Decimal(rng.randint(1, 2000)) * (-1 if n % 10 == 0 else 1)
        held = Holding(quantity, f"S{n}", "STK", f"{key[0]}|{key[1]}|1")
        draw = rng.random()
        local[key] = flex[key] = held
        if draw < 0.01:
            continue  # closed at the broker
        if draw < 0.03:
            live[key] = Holding(quantity // 2 or Decimal(1), held.symbol, "STK")
        elif draw < 0.04:
            live[key] = Holding(-quantity, held.symbol, "STK")
        elif draw < 0.06:
            executed[key] = Decimal(10)
            live[key] = Holding(quantity + 10, held.symbol, "STK")
        else:
            live[key] = held
    for n in range(positions // 100):  # only at the broker
        live[(f"U{1000000 + n % accounts}", str(900000 + n))] = Holding(Decimal(5), f"X{n}")
    taken = dt.datetime(2024, 12, 2, 15)
    side = LiveSide("bench", taken, {a for a, _ in local}, live, {}, executed, [], [], [])
    dates = dict.fromkeys((a for a, _ in local), dt.date(2024, 11, 29))
    return ReconInputs(local, {}, dates, flex, {}, side, None)


def bench_reconcile(positions: int = 100_000, accounts: int = 20) -> ReconBench:
    inputs = synthetic_inputs(positions, accounts)
    config = ReconConfig()
    live = set(inputs.live.accounts) if inputs.live else set()
    start = time.perf_counter()
    found, _, covered = compare(inputs, config, live)
    rows, _, _ = track_breaks({}, found, covered, "bench", dt.datetime(2024, 12, 2, 16))
    decisions = [decide(d, config, live, set()) for d in found]
    seconds = time.perf_counter() - start
    assert len(rows) == len(decisions) == len(found)
    return ReconBench(positions, accounts, len(found), seconds)


if __name__ == "__main__":
    result = bench_reconcile()
    print(f"{result.positions:,} positions, {result.accounts} accounts, three sources: "
          f"{result.discrepancies:,} discrepancies in {result.seconds:.2f} s")
