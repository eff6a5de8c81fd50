"""Load the archive's pending reports, each in its own transaction, and say what happened.

A report that fails (bad XML, a value that cannot be typed) leaves the warehouse exactly as
before, is marked failed in the archive with its error, and does not stop the other reports.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from qm_pipeline.lib.flex.archive import Archive, ArchivedReport
from qm_pipeline.lib.flex.errors import FlexInputError
from qm_pipeline.lib.flex.load import LoadResult, already_loaded, load_plan
from qm_pipeline.lib.flex.prepare import plan_load
from qm_pipeline.lib.flex.reader import read_report
from qm_pipeline.lib.settings import Settings
from qm_pipeline.lib.warehouse.engine import Warehouse

Progress = Callable[[str, int, int], None]  # (file name, bytes done, bytes total)


def ingest_report(warehouse: Warehouse, settings: Settings, report: ArchivedReport,
                  run_id: str, progress: Progress | None = None) -> LoadResult:
    started = time.perf_counter()
    with warehouse.transaction() as tx:
        if already_loaded(tx, report.sha256):
            return LoadResult(report.sha256, report.original_name, "duplicate",
                              notes=["the same bytes were loaded before: nothing to do"])
    total = report.path.stat().st_size
    done = 0

    def advance(size: int) -> None:
        nonlocal done
        done += size
        if progress:
            progress(report.original_name, done, total)

    parsed = read_report(report.path, progress=advance)
    plan = plan_load(parsed, report.sha256, report.original_name,
                     date_order=settings.date_order,
                     date_order_fallback=settings.date_order_fallback)
    del parsed
    with warehouse.transaction() as tx:
        if already_loaded(tx, report.sha256):  # another run got there first
            return LoadResult(report.sha256, report.original_name, "duplicate")
        result = load_plan(tx, plan, report, run_id)
    result.seconds = time.perf_counter() - started
    return result


def ingest_pending(warehouse: Warehouse, settings: Settings, run_id: str,
                   progress: Progress | None = None) -> list[LoadResult]:
    archive = Archive(settings.archive_dir)
    results = []
    for report in archive.pending():
        try:
            result = ingest_report(warehouse, settings, report, run_id, progress)
        except FlexInputError as exc:
            archive.failed(report.sha256, str(exc))
            results.append(LoadResult(report.sha256, report.original_name, "failed",
                                      error=str(exc)))
            continue
        archive.done(report.sha256)
        results.append(result)
    return results
