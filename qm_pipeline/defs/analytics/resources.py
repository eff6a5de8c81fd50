"""How the analytics are computed, as a resource: the environment's settings
(`lib.analytics.config`), with the benchmark and limits overridable per run."""

from dataclasses import replace

import dagster as dg

from qm_pipeline.lib.analytics.config import AnalyticsConfig, config_from_env
from qm_pipeline.lib.settings import Settings


class AnalyticsResource(dg.ConfigurableResource):
    """Empty fields keep the environment's values (QM_BENCHMARK, QM_LIMIT_SINGLE_NAME,
    QM_LIMIT_SECTOR, QM_RISK_FREE_RATE, QM_SORTINO_MAR, QM_SECTOR_MAP ...)."""

    benchmark: str = ""
    single_name_limit: float | None = None
    sector_limit: float | None = None

    def config(self, settings: Settings) -> AnalyticsConfig:
        try:
            config = config_from_env(settings.data_dir)
        except ValueError as exc:
            raise dg.Failure(f"analytics settings: {exc}") from exc
        overrides = {k: v for k, v in (("benchmark", self.benchmark.strip().upper() or None),
                                       ("single_name_limit", self.single_name_limit),
                                       ("sector_limit", self.sector_limit)) if v is not None}
        return replace(config, **overrides)
