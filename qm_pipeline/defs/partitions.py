"""Daily partitions by report date; accounts stay a column (date x account multi-partition
backfills have open Dagster bugs: #18852, #23996, #28861)."""

from __future__ import annotations

import os

import dagster as dg

daily = dg.DailyPartitionsDefinition(
    start_date=os.environ.get("QM_PARTITIONS_START", "2020-01-01"), end_offset=1
)
# A UI backfill over many days runs as one run that pulls 365-day windows.
single_run = dg.BackfillPolicy.single_run()
