"""Replay settings from text: the environment, resource config or CLI options.

    QM_LEDGER_METHOD   FIFO (default), LIFO, HIFO or SPECIFIC: every account's lot method
    QM_LEDGER_METHODS  per-account overrides, e.g. "U1=LIFO,U2=HIFO"
    QM_WASH_SALES      broker (default: IB's own rule), taxpayer (across an owner's
                       accounts) or none
    QM_LEDGER_OWNERS   taxpayer of each account for taxpayer mode, e.g. "U1=ada,U2=ada"
                       (an account not listed is its own taxpayer)
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from qm_pipeline.lib.ledger.config import LedgerConfig, LotMethod, WashMode

ENV = {"method": "QM_LEDGER_METHOD", "methods": "QM_LEDGER_METHODS",
       "wash_sales": "QM_WASH_SALES", "owners": "QM_LEDGER_OWNERS"}
DEFAULTS = {"method": LotMethod.FIFO.value, "methods": "", "wash_sales": WashMode.BROKER.value,
            "owners": ""}


def parse_pairs(text: str, what: str) -> dict[str, str]:
    """"U1=LIFO, U2=HIFO" as {"U1": "LIFO", "U2": "HIFO"}; malformed text is an error."""
    found: dict[str, str] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        account, sep, value = item.partition("=")
        if not sep or not account.strip() or not value.strip():
            raise ValueError(f"{what}: expected ACCOUNT=VALUE pairs separated by commas, "
                             f"got {item.strip()!r}")
        found[account.strip()] = value.strip()
    return found


def lot_method(text: str) -> LotMethod:
    try:
        return LotMethod(text.strip().upper())
    except ValueError:
        choices = ", ".join(m.value for m in LotMethod)
        raise ValueError(f"unknown lot method {text!r} (use {choices})") from None


def wash_mode(text: str) -> WashMode:
    try:
        return WashMode(text.strip().lower())
    except ValueError:
        choices = ", ".join(m.value for m in WashMode)
        raise ValueError(f"unknown wash-sale mode {text!r} (use {choices})") from None


def ledger_config(method: str = "FIFO", methods: str = "", wash_sales: str = "broker",
                  owners: str = "") -> LedgerConfig:
    """A LedgerConfig from the settings' text forms (validated)."""
    return LedgerConfig(
        lot_methods={a: lot_method(m) for a, m in parse_pairs(methods, "lot methods").items()},
        default_method=lot_method(method),
        wash_sales=wash_mode(wash_sales),
        owners=parse_pairs(owners, "owners"),
    )


def from_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The settings' text forms from the environment (defaults where unset)."""
    environ = os.environ if environ is None else environ
    return {key: environ.get(name) or DEFAULTS[key] for key, name in ENV.items()}


def describe(config: LedgerConfig) -> dict[str, str]:
    """The settings a ledger was built with, as text (for metadata and `ledger.runs`)."""
    return {
        "default_method": config.default_method.value,
        "lot_methods": ",".join(f"{a}={LotMethod(m).value}"
                                for a, m in sorted(config.lot_methods.items())),
        "wash_sales": config.wash_sales.value,
        "owners": ",".join(f"{a}={o}" for a, o in sorted(config.owners.items())),
    }
