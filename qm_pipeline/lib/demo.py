"""The demo: the whole Flex path on a fresh machine with no IB account.

A generated two-account history (stocks, options, a split, a transfer, dividends, two
currencies) is served by the project's fake Flex Web Service on 127.0.0.1, pulled with the
real client in windows of at most 365 days, archived, loaded and published; the ledger is
rebuilt; then the real ib_async client snapshots the project's simulated IB Gateway, which
shows the same accounts except one stock sold behind the pipeline's back, and
reconciliation finds it.
"""

from __future__ import annotations

import os
import secrets
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import date
from pathlib import Path

from qm_pipeline.lib.flex.sample import SampleSpec, write_reports
from qm_pipeline.lib.flex.sample.benchmark import BENCHMARK_SYMBOL, write_benchmark
from qm_pipeline.lib.sim.flex_service import FakeFlexService
from qm_pipeline.lib.sim.gateway import GatewayThread
from qm_pipeline.lib.sim.gateway.mirror import mirror_state
from qm_pipeline.lib.warehouse.engine import Tx, Warehouse
from qm_pipeline.runner import RunOutcome

DEMO_SPEC = SampleSpec(accounts=("U1000001", "U1000002"), start=date(2024, 1, 2),
                       end=date(2025, 6, 30), trades_per_day=4, seed=7)
DEMO_QUERY = "424242"
DEMO_CLIENT_ID = 17


def _window(path: Path) -> tuple[str, str]:
    for _, element in ET.iterparse(path, events=("start",)):
        if element.tag == "FlexStatement":
            return element.get("fromDate", ""), element.get("toDate", "")
    raise ValueError(f"{path}: no FlexStatement")


def _served_reports(folder: Path) -> Callable[[date | None, date | None], bytes]:
    files = {_window(p): p for p in write_reports(DEMO_SPEC, folder)}

    def provide(fd: date | None, td: date | None) -> bytes:
        key = (f"{fd:%Y%m%d}", f"{td:%Y%m%d}") if fd and td else max(files)
        return files[key].read_bytes()

    return provide


def closed_behind_our_back(tx: Tx) -> tuple[str, str, str]:
    """The demo's external close: the first stock the first account holds, (account, conid,
    symbol), as if sold by hand in TWS without the pipeline knowing."""
    found = tx.execute("SELECT account_id, conid, symbol FROM ledger.positions WHERE status = "
                       "'OPEN' AND asset_category = 'STK' ORDER BY account_id, conid LIMIT 1")
    if not found:
        raise RuntimeError("the demo ledger holds no stock to close behind its back")
    return found[0]


def run_demo(database_url: str, ingest: Callable[[tuple[str, str]], RunOutcome],
             rebuild: Callable[[], RunOutcome],
             snapshot: Callable[[str, int, int], RunOutcome],
             reconcile: Callable[[], RunOutcome],
             report: Callable[[], RunOutcome] | None = None,
             data_dir: Path | None = None) -> list[RunOutcome]:
    """Serve, fetch and load the demo history, rebuild the ledger, then snapshot a
    simulated gateway that mirrors the accounts except one position closed behind the
    pipeline's back, and reconcile: the close is detected (SYNC_TO_BROKER marks it
    CLOSED_EXTERNALLY) and shown in the report.

    The callables run the jobs (the CLI passes its own runners, with progress and
    summaries); the demo stops at the first that fails."""
    token = secrets.token_hex(16)
    with tempfile.TemporaryDirectory() as folder, FakeFlexService(
        {DEMO_QUERY: _served_reports(Path(folder))}, tokens=token
    ) as service:
        os.environ.update(QM_FLEX_TOKEN=token, QM_FLEX_QUERY_ID=DEMO_QUERY,
                          QM_FLEX_BASE_URL=service.base_url)
        outcomes = [ingest((DEMO_SPEC.start.isoformat(), DEMO_SPEC.end.isoformat()))]
    if not outcomes[-1].success:
        return outcomes
    outcomes.append(rebuild())
    if not outcomes[-1].success:
        return outcomes
    warehouse = Warehouse(database_url)
    with warehouse.transaction() as tx:
        account, conid, _ = closed_behind_our_back(tx)
        state = mirror_state(tx, closed=[(account, conid)])
    warehouse.dispose()
    with GatewayThread(state, None) as gateway:
        outcomes.append(snapshot(gateway.host, gateway.port, DEMO_CLIENT_ID))
    if outcomes[-1].success:
        outcomes.append(reconcile())
    if report is not None and data_dir is not None and outcomes[-1].success:
        outcomes.append(_report(report, data_dir))
    return outcomes


# The sample's instruments by sector: the mapping file a user would drop in.
DEMO_SECTORS = {"NVLT": "Technology", "ORBX": "Technology", "KSTL": "Industrials",
                "HRBR": "Financials", "MDWL": "Health Care", "FJRD": "Energy",
                "SLTE": "Consumer Staples", "BRSK": "Consumer Discretionary",
                "QNTA": "Health Care", "CRVX": "Consumer Discretionary",
                "ELBW": "Industrials", "LUMF": "Consumer Staples"}


def _report(report: Callable[[], RunOutcome], data_dir: Path) -> RunOutcome:
    """Analytics and tearsheets against the sample's own benchmark, with a sector map."""
    write_benchmark(DEMO_SPEC, data_dir / "benchmarks")
    mappings = data_dir / "mappings"
    mappings.mkdir(parents=True, exist_ok=True)
    (mappings / "sectors.csv").write_text(
        "symbol,sector\n" + "".join(f"{k},{v}\n" for k, v in DEMO_SECTORS.items()))
    os.environ.setdefault("QM_BENCHMARK", BENCHMARK_SYMBOL)
    return report()
