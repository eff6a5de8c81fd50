"""The snapshot's settings, result and error types."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from qm_pipeline.lib.ib.rows import TABLES, Row


@dataclass(frozen=True)
class SnapshotSettings:
    """Where and how to take a snapshot.

    `readonly=True` matches an API session without trading permission and skips the open
    and completed order requests `connect` would make (the collector asks for them itself).
    `max_requests_per_second` is the client's own pacing: TWS disconnects clients that send
    more than about 50 messages a second, so keep the library's 45 against a real gateway;
    0 disables pacing (benchmarks against the simulator only).
    """

    host: str = "127.0.0.1"
    port: int = 4002
    client_id: int = 17
    """A dedicated id: 0 would bind manual TWS orders, and trading apps usually own 1."""
    accounts: tuple[str, ...] = ()
    """Only these managed accounts (empty: all of them)."""
    connect_timeout: float = 10.0
    request_timeout: float = 30.0
    """Bound on each request; never 0 (the client's 0 means wait forever)."""
    readonly: bool = True
    retries: int = 2
    """Extra attempts after a dropped connection or a timeout (0: try once)."""
    backoff: float = 1.0
    """Seconds before the first retry; doubles for each further one."""
    backoff_max: float = 30.0
    max_requests_per_second: int = 45
    option_greeks: bool = True
    """Ask for IB's model values (a market-data snapshot) for each option position."""

    def __post_init__(self) -> None:
        for name in ("connect_timeout", "request_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0 (0 would mean wait forever)")
        if self.retries < 0 or self.backoff < 0 or self.max_requests_per_second < 0:
            raise ValueError("retries, backoff and max_requests_per_second must be >= 0")


class SnapshotError(Exception):
    """The snapshot is not complete: nothing of it may be stored.

    `request` names the API call that failed (`reqPositions`, `reqAccountUpdates`, ...),
    `account` the account it was for, if any; `retryable` says whether trying again on a
    fresh connection can help (a dropped socket, a timeout) or not (an API error, a client
    id in use, an unknown account).
    """

    def __init__(
        self,
        message: str,
        *,
        request: str = "",
        account: str | None = None,
        retryable: bool = False,
    ) -> None:
        super().__init__(message)
        self.request = request
        self.account = account
        self.retryable = retryable


@dataclass(frozen=True)
class Snapshot:
    """One complete, consistent read of the accounts: a list of rows per live table.

    Column names and order are `rows.TABLES`; money and quantities are `Decimal`, times
    UTC-aware `datetime`, unknowns None. Rows carry no snapshot id: `snapshot_id` is
    meant to be added as a column when the tables are stored.
    """

    snapshot_id: str
    taken_at: datetime
    snapshots: list[Row]
    accounts: list[Row]
    account_values: list[Row]
    account_summary: list[Row]
    portfolio_items: list[Row]
    positions: list[Row]
    open_orders: list[Row]
    completed_orders: list[Row]
    executions: list[Row]
    pnl: list[Row]
    contract_details: list[Row]
    option_greeks: list[Row]

    def tables(self) -> dict[str, list[Row]]:
        """Table name -> rows, in `TABLES` order."""
        return {name: getattr(self, name) for name in TABLES}
