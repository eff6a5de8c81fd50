"""The demo: the whole Flex path on a fresh machine with no IB account.

A generated two-account history (stocks, options, a split, a transfer, dividends, two
currencies) is served by the project's fake Flex Web Service on 127.0.0.1, pulled with the
real client in windows of at most 365 days, archived, loaded and published.
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
from qm_pipeline.lib.settings import Settings
from qm_pipeline.lib.sim.flex_service import FakeFlexService

DEMO_SPEC = SampleSpec(accounts=("U1000001", "U1000002"), start=date(2024, 1, 2),
                       end=date(2025, 6, 30), trades_per_day=4, seed=7)
DEMO_QUERY = "424242"


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


def run_demo(settings: Settings, run: Callable[..., object]):
    """Serve, fetch and load the demo history; `run(config, partition_range=...)` runs the
    ingest job (the CLI passes its progress-reporting runner)."""
    token = secrets.token_hex(16)
    with tempfile.TemporaryDirectory() as folder, FakeFlexService(
        {DEMO_QUERY: _served_reports(Path(folder))}, tokens=token
    ) as service:
        os.environ.update(QM_FLEX_TOKEN=token, QM_FLEX_QUERY_ID=DEMO_QUERY,
                          QM_FLEX_BASE_URL=service.base_url)
        config = {"ops": {"raw__flex_archive": {"config": {"paths": [],
                                                            "use_drop_folder": True}}}}
        return run(config, partition_range=(DEMO_SPEC.start.isoformat(),
                                            DEMO_SPEC.end.isoformat()))
