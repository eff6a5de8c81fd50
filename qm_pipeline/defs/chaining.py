"""One job after another: a run-status sensor that starts `request_job` once for each
successful run of `monitored_jobs` (the run key makes a re-evaluation a no-op)."""

from collections.abc import Sequence

import dagster as dg


def run_after_success(name: str, monitored_jobs: Sequence, request_job,
                      description: str) -> dg.SensorDefinition:
    @dg.run_status_sensor(
        run_status=dg.DagsterRunStatus.SUCCESS, name=name, monitored_jobs=list(monitored_jobs),
        request_job=request_job, default_status=dg.DefaultSensorStatus.RUNNING,
        description=description)
    def chained(context: dg.RunStatusSensorContext):
        return dg.RunRequest(run_key=f"after-{context.dagster_run.run_id}")

    return chained
