"""The IB Gateway / TWS connection, as a Dagster resource."""

import os

import dagster as dg

from qm_pipeline.lib.ib.snapshot import SnapshotSettings


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


class IBGatewayResource(dg.ConfigurableResource):
    """Where TWS or IB Gateway listens (QM_IB_HOST, QM_IB_PORT, QM_IB_CLIENT_ID and
    QM_IB_HISTORY_CLIENT_ID), which accounts to read (empty: all managed ones), timeouts
    (never unbounded) and read-only mode. IB Gateway's defaults are 4001 (live) and 4002
    (paper); TWS uses 7496 / 7497."""

    host: str = "127.0.0.1"
    port: int = 4001
    client_id: int = 17
    history_client_id: int = 18
    """The daily-bars fetch's own id, so it can run beside a snapshot."""
    accounts: list[str] = []  # noqa: RUF012 (pydantic copies defaults)
    connect_timeout: float = 10.0
    request_timeout: float = 30.0
    readonly: bool = True
    retries: int = 2

    def settings(self, client_id: int | None = None) -> SnapshotSettings:
        return SnapshotSettings(
            host=self.host, port=self.port, client_id=client_id or self.client_id,
            accounts=tuple(self.accounts), connect_timeout=self.connect_timeout,
            request_timeout=self.request_timeout, readonly=self.readonly,
            retries=self.retries,
        )


def gateway_from_env() -> IBGatewayResource:
    accounts = [a for a in os.environ.get("QM_IB_ACCOUNTS", "").split(",") if a]
    return IBGatewayResource(
        host=os.environ.get("QM_IB_HOST", "127.0.0.1"),
        port=_env_int("QM_IB_PORT", 4001),
        client_id=_env_int("QM_IB_CLIENT_ID", 17),
        history_client_id=_env_int("QM_IB_HISTORY_CLIENT_ID", 18),
        accounts=accounts,
    )
