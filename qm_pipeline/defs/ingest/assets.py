"""Flex reports to the warehouse: fetch and archive, then land raw rows and core tables.

The landing is one multi-asset (raw landing and each core table are its specs) because each
report's rows go in as one transaction across raw and core.
"""


from datetime import date, timedelta

import dagster as dg

from qm_pipeline.defs.ingest.checks import CHECK_SPECS, landing_checks
from qm_pipeline.defs.ingest.keys import ARCHIVE, CORE_KEYS, INGEST_LOG, RAW_ROWS
from qm_pipeline.defs.partitions import daily, single_run
from qm_pipeline.defs.resources import FlexWebServiceResource, WarehouseResource
from qm_pipeline.lib import progress
from qm_pipeline.lib.flex.archive import Archive
from qm_pipeline.lib.flex.ingest import ingest_pending
from qm_pipeline.lib.flex.load import LoadResult
from qm_pipeline.lib.flex.sources import archive_drop_folder, archive_paths, archive_web_service
from qm_pipeline.lib.warehouse.publish import publish_copy


class FlexFetchConfig(dg.Config):
    """What to pull this run; by default the partition window from the web service (when a
    token and query are set) plus whatever waits in the drop folder."""

    paths: list[str] = []  # noqa: RUF012 (pydantic copies defaults)
    query_id: str | None = None
    # An explicit report-date window (YYYY-MM-DD) instead of the run's partitions: a CLI pull
    # of years of history is one run of one partition, not thousands of partition events.
    from_date: str | None = None
    to_date: str | None = None
    use_web_service: bool = True
    use_drop_folder: bool = True


@dg.asset(
    key=ARCHIVE, group_name="raw", partitions_def=daily, backfill_policy=single_run,
    pool="warehouse", kinds={"xml"},
    description="Flex reports archived byte for byte under QM_DATA_DIR/raw, by SHA-256.",
)
def flex_archive(
    context: dg.AssetExecutionContext, config: FlexFetchConfig, warehouse: WarehouseResource,
    flex_web_service: FlexWebServiceResource,
) -> dg.MaterializeResult:
    settings = warehouse.settings
    archive = Archive(settings.archive_dir)
    archived = archive_paths(archive, config.paths)
    if config.use_drop_folder:
        archived += archive_drop_folder(archive, settings.inbox_dir)
    query_id = config.query_id or flex_web_service.query_id
    if config.use_web_service and flex_web_service.configured(query_id):
        start, end = _fetch_window(context, config)
        with flex_web_service.client() as client:
            archived += archive_web_service(archive, client, query_id, start, end)
    elif config.use_web_service:
        context.log.info("Flex Web Service not configured (QM_FLEX_TOKEN, QM_FLEX_QUERY_ID)")
    new = [r for r in archived if not r.already_archived]
    context.log.info(f"archived {len(archived)} report(s), {len(new)} new")
    return dg.MaterializeResult(metadata={
        "reports": len(archived), "new_reports": len(new),
        "names": dg.MetadataValue.json([r.original_name for r in archived]),
        "archive": dg.MetadataValue.path(str(settings.archive_dir)),
    })


def _fetch_window(context: dg.AssetExecutionContext, config: FlexFetchConfig
                  ) -> tuple[date, date]:
    if config.from_date and config.to_date:
        return date.fromisoformat(config.from_date), date.fromisoformat(config.to_date)
    window = context.partition_time_window  # end is exclusive; IB's td is inclusive
    start = window.start.date()
    return start, max(start, min(window.end.date() - timedelta(days=1), date.today()))


def _summary(results: list[LoadResult]) -> str:
    lines = ["| report | status | accounts | rows | drift |", "|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r.name} | {r.status} | {', '.join(r.accounts)} | {r.rows_loaded} | "
                     f"{', '.join(r.drift[:5]) or '-'} |")
    return "\n".join(lines)


@dg.multi_asset(
    specs=[
        dg.AssetSpec(RAW_ROWS, deps=[ARCHIVE], group_name="raw", kinds={"duckdb"},
                     description="Every row of every section, all attributes as text."),
        dg.AssetSpec(INGEST_LOG, deps=[ARCHIVE], group_name="raw",
                     description="Rows seen and loaded per file, account, section and tag."),
        *[dg.AssetSpec(key, deps=[RAW_ROWS], group_name="core") for key in CORE_KEYS],
    ],
    check_specs=CHECK_SPECS, partitions_def=daily, backfill_policy=single_run, pool="warehouse",
)
def flex_warehouse(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """Load every archived report waiting to be loaded, one transaction per report."""
    results = ingest_pending(warehouse.get(), warehouse.settings, context.run.run_id,
                             progress.current())
    for result in results:
        context.log.info(f"{result.name}: {result.status}"
                         + (f" ({result.error})" if result.error else ""))
    loaded = [r for r in results if r.status == "loaded"]
    yield dg.MaterializeResult(asset_key=RAW_ROWS, metadata={
        "reports_loaded": len(loaded), "rows": sum(r.rows_loaded for r in loaded),
        "summary": dg.MetadataValue.md(_summary(results)),
    })
    yield dg.MaterializeResult(asset_key=INGEST_LOG, metadata={
        "schema_drift": dg.MetadataValue.json(sorted({d for r in results for d in r.drift})),
        "notes": dg.MetadataValue.json([f"{r.name}: {n}" for r in results for n in r.notes]),
    })
    for key in CORE_KEYS:
        rows = sum(r.core_rows.get(key.path[-1], 0) for r in loaded)
        yield dg.MaterializeResult(asset_key=key, metadata={"rows_written": rows})
    with warehouse.get().transaction() as tx:
        yield from landing_checks(tx)
    failed = [r for r in results if r.status == "failed"]
    if failed:
        # The errors name the archived copy (by SHA-256); the file's own name says which of
        # the reports handed in it was.
        raise dg.Failure(
            f"{len(failed)} report(s) could not be loaded and left the warehouse unchanged: "
            f"{', '.join(r.name for r in failed)}",
            metadata={"errors": dg.MetadataValue.json([f"{r.name}: {r.error}" for r in failed])},
        )


@dg.asset(
    key=["published", "warehouse"], group_name="publish", deps=[*CORE_KEYS, INGEST_LOG],
    partitions_def=daily, backfill_policy=single_run, pool="warehouse",
    description="Read-only copy of the DuckDB warehouse for analysts, swapped in atomically.",
)
def published_warehouse(warehouse: WarehouseResource) -> dg.MaterializeResult:
    target = publish_copy(warehouse.get(), warehouse.settings.published_path)
    if target is None:
        return dg.MaterializeResult(metadata={"skipped": "PostgreSQL: analysts query it directly"})
    return dg.MaterializeResult(metadata={"path": dg.MetadataValue.path(str(target)),
                                          "bytes": target.stat().st_size})
