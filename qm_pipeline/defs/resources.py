"""Resources shared by every capability: the warehouse and the Flex Web Service.

Secrets come from the environment through `dg.EnvVar` (never stored in run config); a token
that is not set simply turns the web-service source off.
"""


import os
from functools import cached_property

import dagster as dg
from pydantic import PrivateAttr

from qm_pipeline.lib.flex.webservice import DEFAULT_BASE_URL, FlexWebServiceClient
from qm_pipeline.lib.settings import Settings, load_settings
from qm_pipeline.lib.warehouse.engine import Warehouse
from qm_pipeline.lib.warehouse.migrations import migrate


class WarehouseResource(dg.ConfigurableResource):
    """The warehouse URL and data folder; unset fields fall back to QM_DATABASE_URL and
    QM_DATA_DIR (default: a DuckDB file under ./qm_data)."""

    database_url: str | None = None
    data_dir: str | None = None
    _warehouse: Warehouse | None = PrivateAttr(default=None)

    @cached_property
    def settings(self) -> Settings:
        return load_settings(self.data_dir, self.database_url)

    def get(self) -> Warehouse:
        """The migrated warehouse (migrations run once per process, before first use)."""
        if self._warehouse is None:
            self._warehouse = Warehouse(self.settings.database_url)
            migrate(self._warehouse)
        return self._warehouse

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._warehouse is not None:
            self._warehouse.dispose()


class FlexWebServiceResource(dg.ConfigurableResource):
    """IB's Flex Web Service: a token (secret, from QM_FLEX_TOKEN) and a query id."""

    token: str | None = None
    query_id: str | None = None
    base_url: str = DEFAULT_BASE_URL

    def configured(self, query_id: str | None = None) -> bool:
        return bool(self.token and (query_id or self.query_id))

    def client(self) -> FlexWebServiceClient:
        if not self.token:
            raise dg.Failure("QM_FLEX_TOKEN is not set: the Flex Web Service cannot be used")
        return FlexWebServiceClient(self.token, base_url=self.base_url)


def _env(name: str) -> dg.EnvVar | None:
    return dg.EnvVar(name) if os.environ.get(name) else None


def resources() -> dict[str, dg.ConfigurableResource]:
    return {
        "warehouse": WarehouseResource(),
        "flex_web_service": FlexWebServiceResource(
            token=_env("QM_FLEX_TOKEN"),
            query_id=_env("QM_FLEX_QUERY_ID"),
            base_url=os.environ.get("QM_FLEX_BASE_URL", DEFAULT_BASE_URL),
        ),
    }
