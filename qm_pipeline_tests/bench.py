"""`make bench`: the benchmark targets, measured in one run and printed with their ratios.

Never asserted in tests (timings on a shared 2-core machine are not test material). Each
figure is measured in a child process so start-up and peak memory are the command's own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

BENCH_DIR = Path(os.environ.get("QM_BENCH_DIR", "bench_data"))


def _timed(args: list[str], env: dict[str, str] | None = None) -> tuple[float, float, int]:
    """Wall seconds, peak RSS (MB) and exit code of one child process.

    The peak is of the child and its descendants together (`qm ingest` parses a large report
    in two processes), sampled every 0.1 s from /proc; elsewhere the child's own rusage."""
    started = time.perf_counter()
    child = subprocess.Popen(args, env={**os.environ, **(env or {})},
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak, done = [0], threading.Event()
    sampler = threading.Thread(target=_sample_tree_rss, args=(child.pid, peak, done))
    sampler.start()
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - started
    done.set()
    sampler.join()
    child.returncode = os.waitstatus_to_exitcode(status)
    return elapsed, max(peak[0], usage.ru_maxrss * 1024) / 2**20, child.returncode


def _sample_tree_rss(root: int, peak: list[int], done: threading.Event) -> None:
    """Keep in `peak[0]` the largest summed RSS (bytes) of `root` and its descendants."""
    while not done.wait(0.1):
        peak[0] = max(peak[0], _tree_rss(root))


def _tree_rss(pid: int) -> int:
    """RSS (bytes) of `pid` and its descendants (Linux /proc); 0 where it cannot be read."""
    try:
        with open(f"/proc/{pid}/statm") as statm:
            total = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        children = []
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as listed:
                children += listed.read().split()
    except OSError:  # ended meanwhile, or no /proc
        return 0
    return total + sum(_tree_rss(int(child)) for child in children)


def _report(path: Path) -> Path:
    from qm_pipeline.lib.flex.sample import SampleSpec, write_report

    if not path.exists():
        spec = SampleSpec(accounts=("U2000001", "U2000002", "U2000003", "U2000004"),
                          start=date(2019, 1, 2), end=date(2023, 12, 29), trades_per_day=10,
                          seed=11)
        started = time.perf_counter()
        write_report(spec, path)
        print(f"generated {path} ({path.stat().st_size / 1e6:.0f} MB) in "
              f"{time.perf_counter() - started:.1f} s")
    return path


def bench_flex_ingest() -> None:
    BENCH_DIR.mkdir(exist_ok=True)
    report = _report(BENCH_DIR / "flex_4x5y_10perday.xml")
    size = report.stat().st_size / 1e6
    py = sys.executable
    scan, _, _ = _timed([py, "-c", "import sys, xml.etree.ElementTree as ET\n"
                         "for _ in ET.iterparse(sys.argv[1]): pass", str(report)])
    ibflex, _, ibflex_code = _timed([py, "-c", "import sys, ibflex.parser as p\n"
                                     "p.parse(sys.argv[1])", str(report)])
    with tempfile.TemporaryDirectory(dir=BENCH_DIR) as data:
        qm = str(Path(sys.executable).with_name("qm"))
        ingest, rss, code = _timed([qm, "ingest", str(report)], {"QM_DATA_DIR": data,
                                                                 "DAGSTER_HOME": ""})
    print(f"\nFlex ingest, {size:.0f} MB report (4 accounts x 5 years x 10 trades/day)")
    print(f"  bare ElementTree.iterparse scan : {scan:7.2f} s")
    status = "" if ibflex_code == 0 else f" (failed, exit {ibflex_code})"
    print(f"  ibflex.parser.parse             : {ibflex:7.2f} s{status}")
    print(f"  qm ingest into DuckDB (process) : {ingest:7.2f} s, peak RSS {rss:.0f} MB"
          f"{'' if code == 0 else f' (FAILED, exit {code})'}")
    print(f"  ingest / bare scan              : {ingest / scan:7.2f} x   (target <= 3)")
    print(f"  ibflex parse / ingest           : {ibflex / ingest:7.2f} x   (target >= 5)")
    print(f"  peak RSS (all its processes)    : {rss:7.0f} MB  (target < 600)")


def bench_live_snapshot() -> None:
    from qm_pipeline.lib.ib.bench import bench_snapshot
    from qm_pipeline.lib.live.store import store_snapshot
    from qm_pipeline.lib.warehouse.engine import Warehouse
    from qm_pipeline.lib.warehouse.migrations import migrate

    result = bench_snapshot(accounts=5, positions_per_account=2000, open_orders_per_account=200)
    with tempfile.TemporaryDirectory(dir=BENCH_DIR) as data:
        warehouse = Warehouse(f"duckdb:///{data}/warehouse.duckdb")
        migrate(warehouse)
        started = time.perf_counter()
        with warehouse.transaction() as tx:
            store_snapshot(tx, result.snapshot)
        stored = time.perf_counter() - started
        warehouse.dispose()
    print("\nLive snapshot from the simulated gateway (real ib_async client, real socket)")
    print(f"  {result.accounts} accounts, {result.positions} positions, {result.open_orders} "
          f"open orders, {result.contract_details} contract details")
    print(f"  take snapshot                   : {result.seconds:7.2f} s   (target < 10)")
    print(f"  store in DuckDB, one transaction: {stored:7.2f} s")


def bench_ledger_replay() -> None:
    script = ("from qm_pipeline.lib.ledger.bench import bench_replay\n"
              "r = bench_replay(n_executions=1_000_000, n_instruments=5_000)\n"
              "print(r.elapsed_seconds, r.peak_rss_mb, r.realized_rows)")
    output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            check=False)
    if output.returncode != 0:
        print(f"\nLedger replay bench failed:\n{output.stderr[-2000:]}")
        return
    seconds, rss, realized = output.stdout.split()[-3:]
    print("\nLedger replay, 1,000,000 executions over 5,000 instruments (broker wash sales)")
    print(f"  replay                          : {float(seconds):7.2f} s   (target < 10)")
    print(f"  peak RSS                        : {float(rss):7.0f} MB  (target < 1024)")
    print(f"  realized lot pieces             : {int(realized):,}")


def bench_reconcile() -> None:
    from qm_pipeline.lib.recon.bench import bench_reconcile as run

    result = run()
    print(f"\nReconciliation, {result.positions:,} positions across {result.accounts} accounts, "
          "three sources (ledger, Flex, live)")
    print(f"  compare, track breaks, decide   : {result.seconds:7.2f} s   (target < 2); "
          f"{result.discrepancies:,} discrepancies")


def bench_analytics() -> None:
    """Synthetic warehouse written in one child (not timed), analytics built in another."""
    BENCH_DIR.mkdir(exist_ok=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=BENCH_DIR) as data:
        made = _analytics_step("generate", data)
        built = _analytics_step("build", data) if made else None
    total = time.perf_counter() - started
    if not made or not built:
        return
    print(f"\nAnalytics build, {made['accounts']} accounts x {made['years']} years "
          f"({made['days']:,} trading days): {built['nav_rows']:,} NAV rows, "
          f"{built['executions']:,} executions")
    print(f"  synthetic warehouse (not timed) : {made['seconds']:7.2f} s; "
          f"{made['position_history']:,} position changes, {made['open_positions']:,} "
          f"daily marks, {made['cash_transactions']:,} cash transactions")
    print(f"  build_analytics                 : {built['seconds']:7.2f} s   (target < 30)")
    print(f"  build / 30 s                    : {built['seconds'] / 30:7.2f} x   (target < 1)")
    print(f"  peak RSS (build process)        : {built['peak_rss_mb']:7.0f} MB")
    print(f"  TWR periods matching IB         : {built['twr_matched']} of "
          f"{built['twr_periods']}; contribution gap {built['contribution_gap']:.1e}")
    print(f"  rows written                    : {built['output_rows']:,} "
          f"({built['attribution_daily_rows']:,} attribution_daily, "
          f"{built['position_daily_rows']:,} position_daily); all of it {total:.1f} s")


def _analytics_step(step: str, folder: str) -> dict | None:
    output = subprocess.run([sys.executable, "-m", "qm_pipeline.lib.analytics.bench", step,
                             folder], capture_output=True, text=True, check=False)
    if output.returncode != 0:
        print(f"\nAnalytics bench failed ({step}):\n{output.stderr[-2000:]}")
        return None
    return json.loads(output.stdout.splitlines()[-1])


BENCHES = [bench_flex_ingest, bench_live_snapshot, bench_ledger_replay, bench_reconcile,
           bench_analytics]


def main() -> None:
    for bench in BENCHES:
        bench()


if __name__ == "__main__":
    main()
