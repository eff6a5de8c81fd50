"""Asset keys of the Flex ingest capability (they mirror the warehouse schemas)."""

import dagster as dg

from qm_pipeline.lib.flex.core_tables import CORE_TABLES

ARCHIVE = dg.AssetKey(["raw", "flex_archive"])
RAW_ROWS = dg.AssetKey(["raw", "flex_rows"])
INGEST_LOG = dg.AssetKey(["raw", "flex_ingest_log"])
CORE_KEYS = [dg.AssetKey(["core", t.name]) for t in CORE_TABLES] + [
    dg.AssetKey(["core", "instruments"])
]
