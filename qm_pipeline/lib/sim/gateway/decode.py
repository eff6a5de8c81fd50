"""Client -> gateway requests: field names per message (TWS_PROTOCOL.md §1.6) and the record.

Requests are kept as named text fields, exactly as received, so a test can assert what
the client asked (`req.fields["acct_code"] == ""`) without the simulator interpreting it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from qm_pipeline.lib.sim.gateway.ids import In
from qm_pipeline.lib.sim.gateway.wire import ProtocolError

CONTRACT = (
    "con_id",
    "symbol",
    "sec_type",
    "last_trade_date_or_contract_month",
    "strike",
    "right",
    "multiplier",
    "exchange",
    "primary_exchange",
    "currency",
    "local_symbol",
    "trading_class",
)
"""The 12 fields `Client.send` expands a Contract into."""

LAYOUTS: dict[In, tuple[str, ...]] = {
    In.REQ_MKT_DATA: (
        "version",
        "req_id",
        *CONTRACT,
        "delta_neutral",
        "generic_ticks",
        "snapshot",
        "regulatory_snapshot",
        "options",
    ),
    In.CANCEL_MKT_DATA: ("version", "req_id"),
    In.REQ_HISTORICAL_DATA: (
        "req_id",
        *CONTRACT,
        "include_expired",
        "end_date_time",
        "bar_size",
        "duration",
        "use_rth",
        "what_to_show",
        "format_date",
        "keep_up_to_date",
        "chart_options",
    ),
    In.CANCEL_HISTORICAL_DATA: ("version", "req_id"),
    In.PLACE_ORDER: (
        "order_id",
        *CONTRACT,
        "sec_id_type",
        "sec_id",
        "action",
        "total_quantity",
        "order_type",
        "lmt_price",
        "aux_price",
        "tif",
        "oca_group",
        "account",
        "open_close",
        "origin",
        "order_ref",
        "transmit",
        "parent_id",
    ),
    In.CANCEL_ORDER: ("version", "order_id", "manual_cancel_order_time"),
    In.REQ_OPEN_ORDERS: ("version",),
    In.REQ_ACCT_DATA: ("version", "subscribe", "account"),
    In.REQ_EXECUTIONS: (
        "version",
        "req_id",
        "client_id",
        "acct_code",
        "time",
        "symbol",
        "sec_type",
        "exchange",
        "side",
    ),
    In.REQ_IDS: ("version", "num_ids"),
    In.REQ_CONTRACT_DATA: (
        "version",
        "req_id",
        *CONTRACT,
        "include_expired",
        "sec_id_type",
        "sec_id",
        "issuer_id",
    ),
    In.REQ_AUTO_OPEN_ORDERS: ("version", "auto_bind"),
    In.REQ_ALL_OPEN_ORDERS: ("version",),
    In.REQ_MANAGED_ACCTS: ("version",),
    In.REQ_CURRENT_TIME: ("version",),
    In.REQ_POSITIONS: ("version",),
    In.REQ_ACCOUNT_SUMMARY: ("version", "req_id", "group", "tags"),
    In.CANCEL_ACCOUNT_SUMMARY: ("version", "req_id"),
    In.CANCEL_POSITIONS: ("version",),
    In.START_API: ("version", "client_id", "optional_capabilities"),
    In.REQ_ACCOUNT_UPDATES_MULTI: ("version", "req_id", "account", "model_code", "ledger_and_nlv"),
    In.CANCEL_ACCOUNT_UPDATES_MULTI: ("version", "req_id"),
    In.REQ_PNL: ("req_id", "account", "model_code"),
    In.CANCEL_PNL: ("req_id",),
    In.REQ_PNL_SINGLE: ("req_id", "account", "model_code", "con_id"),
    In.CANCEL_PNL_SINGLE: ("req_id",),
    In.REQ_COMPLETED_ORDERS: ("api_only",),
}


@dataclass(frozen=True)
class Request:
    """One received request: its id and name, named fields, and whatever followed them."""

    msg_id: int
    name: str
    client_id: int | None
    """The connection's client id (None before START_API)."""
    fields: dict[str, str]
    extra: tuple[str, ...] = ()
    received_at: float = field(default_factory=time.monotonic)

    def get(self, name: str, default: str = "") -> str:
        return self.fields.get(name, default)

    def as_int(self, name: str, default: int = 0) -> int:
        """A numeric field; empty (the client's encoding of unset) gives `default`."""
        text = self.fields.get(name, "")
        return int(text) if text else default


def decode(fields: list[str], client_id: int | None) -> Request:
    """Name the fields of a request; unknown message ids keep all fields in `extra`."""
    try:
        msg_id = int(fields[0])
    except ValueError as exc:
        raise ProtocolError(f"message id {fields[0]!r} is not a number") from exc
    try:
        kind = In(msg_id)
    except ValueError:
        return Request(msg_id, f"UNKNOWN_{msg_id}", client_id, {}, tuple(fields[1:]))
    names = LAYOUTS[kind]
    values = fields[1:]
    return Request(
        msg_id,
        kind.name,
        client_id,
        dict(zip(names, values, strict=False)),
        tuple(values[len(names) :]),
    )
