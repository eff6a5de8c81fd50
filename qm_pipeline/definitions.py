"""The code location: every capability under `defs/`, run in-process, one warehouse writer."""

from __future__ import annotations

import dagster as dg

import qm_pipeline.defs
from qm_pipeline.defs.resources import resources

defs = dg.Definitions.merge(
    dg.load_defs(qm_pipeline.defs),
    dg.Definitions(resources=resources(), executor=dg.in_process_executor),
)
