"""How reconciliation judges and acts, as a resource: strategies per severity and account,
thresholds, cash tolerance, the order-submission opt-in and where alerts go."""

import os
from dataclasses import replace

import dagster as dg

from qm_pipeline.lib.recon.config import ReconConfig, config_from_env, parse_strategies
from qm_pipeline.lib.recon.model import Strategy
from qm_pipeline.lib.recon.notify import LogNotifier, Notifier, Notifiers, WebhookNotifier


class ReconResource(dg.ConfigurableResource):
    """Defaults come from the environment (QM_RECON_STRATEGIES "MINOR=WARN_ONLY,
    CRITICAL=HALT_AND_ALERT,U1:CRITICAL=SYNC_TO_BROKER", QM_RECON_MINOR_PCT,
    QM_RECON_CRITICAL_PCT, QM_RECON_CASH_PCT, QM_RECON_CASH_FLOORS, QM_RECON_ALLOW_ORDERS);
    run config overrides them. `strategy` applies one strategy to every severity. The
    webhook URL is a secret: only from QM_RECON_WEBHOOK_URL (an EnvVar), never logged."""

    strategy: str = ""
    strategies: str = ""
    allow_order_submission: bool = False
    webhook_url: str | None = None

    def config(self) -> ReconConfig:
        try:
            config = config_from_env()
            if self.strategies:
                defaults, accounts = parse_strategies(self.strategies)
                config = replace(config, strategies=defaults, account_strategies=accounts)
            if self.strategy:
                config = config.with_strategy(Strategy(self.strategy.upper()))
        except ValueError as exc:
            raise dg.Failure(f"reconciliation settings: {exc}") from exc
        if self.allow_order_submission:
            config = replace(config, allow_order_submission=True)
        return config

    def notifier(self) -> Notifier:
        if self.webhook_url:
            return Notifiers(LogNotifier(), WebhookNotifier(self.webhook_url))
        return LogNotifier()


def recon_from_env() -> ReconResource:
    url = dg.EnvVar("QM_RECON_WEBHOOK_URL") if os.environ.get("QM_RECON_WEBHOOK_URL") else None
    return ReconResource(webhook_url=url)
