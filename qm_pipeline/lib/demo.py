"""The demo: the whole Flex path on a fresh machine with no IB account.

A generated two-account history (stocks, options, a split, a transfer, dividends, two
currencies) is served by the project's fake Flex Web Service on 127.0.0.1, pulled with the
real client in windows of at most 365 days, archived, loaded and published; then the real
ib_async client snapshots the project's simulated IB Gateway.
"""

from __future__ import annotations

import os
import secrets
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TypeVar

from qm_pipeline.lib.flex.sample import SampleSpec, write_reports
from qm_pipeline.lib.sim.flex_service import FakeFlexService
from qm_pipeline.lib.sim.gateway import GatewayThread, default_state

Outcome = TypeVar("Outcome")

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


def run_demo(ingest: Callable[[tuple[str, str]], Outcome],
             snapshot: Callable[[str, int, int], Outcome]) -> tuple[Outcome, Outcome]:
    """Serve, fetch and load the demo history, then snapshot the simulated gateway.

    `ingest((from, to))` and `snapshot(host, port, client_id)` run the jobs (the CLI passes
    its own runners, with progress and summaries)."""
    token = secrets.token_hex(16)
    with tempfile.TemporaryDirectory() as folder, FakeFlexService(
        {DEMO_QUERY: _served_reports(Path(folder))}, tokens=token
    ) as service:
        os.environ.update(QM_FLEX_TOKEN=token, QM_FLEX_QUERY_ID=DEMO_QUERY,
                          QM_FLEX_BASE_URL=service.base_url)
        loaded = ingest((DEMO_SPEC.start.isoformat(), DEMO_SPEC.end.isoformat()))
    with GatewayThread(default_state(), None) as gateway:
        live = snapshot(gateway.host, gateway.port, DEMO_CLIENT_ID)
    return loaded, live
