"""How the ledger replays: lot method per account, wash-sale mode, owners, as a resource."""

import os

import dagster as dg

from qm_pipeline.lib.ledger.config import LedgerConfig
from qm_pipeline.lib.ledger.settings import from_env, ledger_config
from qm_pipeline.lib.ledger.sources import MARKET_TIMEZONE


class LedgerResource(dg.ConfigurableResource):
    """Replay settings. Defaults come from the environment (`QM_LEDGER_METHOD` FIFO,
    `QM_LEDGER_METHODS` "U1=LIFO,U2=HIFO", `QM_WASH_SALES` broker|taxpayer|none,
    `QM_LEDGER_OWNERS` "U1=ada,U2=ada"); run config overrides them. `accounts` limits a
    rebuild to some accounts (empty: all); `market_timezone` dates live snapshot marks."""

    method: str = "FIFO"
    methods: str = ""
    wash_sales: str = "broker"
    owners: str = ""
    accounts: list[str] = []  # noqa: RUF012 (pydantic copies defaults)
    market_timezone: str = MARKET_TIMEZONE

    def config(self) -> LedgerConfig:
        try:
            return ledger_config(self.method, self.methods, self.wash_sales, self.owners)
        except ValueError as exc:
            raise dg.Failure(f"ledger settings: {exc}") from exc


def ledger_from_env() -> LedgerResource:
    return LedgerResource(**from_env(),
                          market_timezone=os.environ.get("QM_MARKET_TIMEZONE", MARKET_TIMEZONE))
