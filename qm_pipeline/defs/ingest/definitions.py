"""The Flex ingest capability: assets (with their checks), the job, the nightly schedule."""


import dagster as dg

from qm_pipeline.defs.ingest.assets import flex_archive, flex_warehouse, published_warehouse
from qm_pipeline.defs.partitions import daily

flex_ingest_job = dg.define_asset_job(
    "flex_ingest",
    selection=dg.AssetSelection.assets(flex_archive, flex_warehouse, published_warehouse),
    partitions_def=daily,
    description="Fetch and archive Flex reports, land raw and core tables, publish the copy.",
)

flex_nightly = dg.build_schedule_from_partitioned_job(
    flex_ingest_job, hour_of_day=6, minute_of_hour=30,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    name="flex_nightly",
    description="Yesterday's Flex statements, after IB has produced them.",
)


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(
        assets=[flex_archive, flex_warehouse, published_warehouse],
        jobs=[flex_ingest_job],
        schedules=[flex_nightly],
    )
