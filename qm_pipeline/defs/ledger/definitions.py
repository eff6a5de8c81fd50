"""The ledger capability: the ledger tables, their checks against IB, and two jobs: a
rebuild alone, and the Flex ingest followed by a rebuild (the `flex_ingest` job itself is
left as it is)."""

import dagster as dg

from qm_pipeline.defs.ingest.assets import flex_archive, flex_warehouse, published_warehouse
from qm_pipeline.defs.ledger.assets import ledger_tables
from qm_pipeline.defs.ledger.checks import ledger_cross_checks
from qm_pipeline.defs.ledger.resources import ledger_from_env
from qm_pipeline.defs.partitions import daily

ledger_rebuild_job = dg.define_asset_job(
    "ledger_rebuild", selection=dg.AssetSelection.assets(ledger_tables),
    description="Replay the core tables into the ledger and check it against IB's numbers.",
)

flex_ingest_ledger_job = dg.define_asset_job(
    "flex_ingest_ledger",
    selection=dg.AssetSelection.assets(flex_archive, flex_warehouse, published_warehouse,
                                       ledger_tables),
    partitions_def=daily,
    description="The Flex ingest, then a ledger rebuild on what it loaded.",
)


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(
        assets=[ledger_tables], asset_checks=[ledger_cross_checks],
        jobs=[ledger_rebuild_job, flex_ingest_ledger_job],
        resources={"ledger": ledger_from_env()},
    )
