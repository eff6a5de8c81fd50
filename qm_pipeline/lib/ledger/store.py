"""The ledger in the warehouse: one replay of the `core` tables, written to schema `ledger`.

`rebuild(warehouse, config, run_id)` reads the inputs column-wise (`sources`), replays them
(`engine.replay`), compares the result with IB's own numbers (`checks`), derives the cash
balances (`balances`) and, in the same transaction, replaces the ledger tables' rows of
the accounts replayed: readers see the previous ledger or the new one, never a mix. The
replay is deterministic and its tables are replaced, so a rerun on unchanged data writes
the same rows; `ledger.positions` is merged rather than replaced (`audit`), so changes to
it are logged and reconciliation's decisions survive.

Tables (columns: `outputs`, `audit`, `balances` and below):
- `lots`, `realized`, `position_history`, `flags`: the engine's tables as it returns them;
- `positions`: the engine's episodes plus who set the status and when the row changed;
- `balance_history`: IB's end-of-day cash, by currency and in base;
- `check_failures`: each disagreement with IB found by this rebuild, with both values;
- `audit_log`: every change to `positions` (kept across rebuilds);
- `runs`: one row per rebuild: when, which accounts, settings and row counts (kept).

Money is DECIMAL(38,18) (NUMERIC(38,18) on PostgreSQL), the engine's own type: nothing is
rounded on the way in (core's DECIMAL(38,12) amounts and the engine's 18-decimal pro-rata
costs fit exactly) and 20 integer digits are plenty for an account.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

import pyarrow as pa

from qm_pipeline.lib.ledger import outputs
from qm_pipeline.lib.ledger.audit import AUDIT_LOG, POSITIONS, merge_positions
from qm_pipeline.lib.ledger.balances import BALANCE_HISTORY, balance_history
from qm_pipeline.lib.ledger.checks import (
    check_closed_lots,
    check_open_positions,
    check_realized_pnl,
)
from qm_pipeline.lib.ledger.config import LedgerConfig
from qm_pipeline.lib.ledger.engine import LedgerResult, replay
from qm_pipeline.lib.ledger.inputs import LedgerInputs
from qm_pipeline.lib.ledger.money import rounded
from qm_pipeline.lib.ledger.settings import describe
from qm_pipeline.lib.ledger.sources import (
    MARKET_TIMEZONE,
    account_filter,
    accounts_in,
    read_arrow,
    read_inputs,
)
from qm_pipeline.lib.warehouse.engine import Tx, Warehouse, q, qualified

SCHEMA = "ledger"
MONEY = pa.decimal128(38, 18)

CHECK_FAILURES = pa.schema([
    ("run_id", pa.string()),
    ("check_name", pa.string()),  # see CROSS_CHECKS
    ("account_id", pa.string()),
    ("conid", pa.string()),
    ("key", pa.string()),  # closing transaction id; with the lot's open time; report date
    ("ours", MONEY),  # NULL: the ledger has no such lot
    ("ibs", MONEY),  # NULL: IB has no such lot
    ("difference", MONEY),  # ours - ibs
])
RUNS = pa.schema([
    ("run_id", pa.string()),
    ("started_at", pa.timestamp("us")),  # UTC
    ("finished_at", pa.timestamp("us")),
    ("accounts", pa.string()),  # comma-separated
    ("default_method", pa.string()),
    ("lot_methods", pa.string()),  # per-account overrides, ACCOUNT=METHOD,...
    ("wash_sales", pa.string()),
    ("owners", pa.string()),
    ("executions", pa.int64()),  # core.trades rows replayed
    ("lots", pa.int64()),
    ("realized", pa.int64()),
    ("positions", pa.int64()),
    ("open_positions", pa.int64()),
    ("position_history", pa.int64()),
    ("balance_history", pa.int64()),
    ("flags", pa.int64()),
    ("check_failures", pa.int64()),
    ("audit_rows", pa.int64()),
    ("replay_seconds", pa.float64()),
])
TABLES: dict[str, pa.Schema] = {
    "lots": outputs.LOTS,
    "realized": outputs.REALIZED,
    "positions": POSITIONS,
    "position_history": outputs.POSITION_HISTORY,
    "balance_history": BALANCE_HISTORY,
    "flags": outputs.FLAGS,
    "check_failures": CHECK_FAILURES,
    "audit_log": AUDIT_LOG,
    "runs": RUNS,
}
# The engine's cross-checks, grouped as the Dagster asset checks report them.
CROSS_CHECKS: dict[str, tuple[str, ...]] = {
    "realized_pnl": ("realized_pnl",),
    "closed_lots": ("closed_lot_quantity", "closed_lot_cost"),
    "open_positions": ("open_position_quantity", "open_position_cost_basis"),
}
_INDEXES = {  # PostgreSQL only (DuckDB's hash joins need none)
    "positions": ("episode_id", "account_id, conid"),
    "audit_log": ("episode_id", "run_id"),
    "realized": ("account_id, close_date", "closing_transaction_id"),
    "position_history": ("account_id, conid, date",),
    "check_failures": ("check_name",),
}


def create_ledger_schema(tx: Tx) -> list[str]:
    """Create the ledger tables, or add columns they lack (additive). Returns what was added."""
    tx.execute(f"CREATE SCHEMA IF NOT EXISTS {q(SCHEMA)}")
    added = []
    for name, schema in TABLES.items():
        added += [f"{SCHEMA}.{name}.{c}" for c in tx.ensure_table(SCHEMA, name, schema)]
    if tx.dialect == "postgresql":
        for name, indexes in _INDEXES.items():
            for columns in indexes:
                index = f"{name}_{columns.replace(', ', '_')}"
                body = ", ".join(q(c.strip()) for c in columns.split(","))
                tx.execute(f"CREATE INDEX IF NOT EXISTS {q(index)} "
                           f"ON {qualified(SCHEMA, name)} ({body})")
    return added


@dataclass
class RebuildResult:
    run_id: str
    accounts: list[str]
    settings: dict[str, str]
    rows: dict[str, int]  # rows written per ledger table
    executions: int
    open_positions: int
    failures: dict[str, int] = field(default_factory=dict)  # per engine check name
    flags: dict[str, int] = field(default_factory=dict)  # per level
    audit: dict[str, int] = field(default_factory=dict)  # per action
    replay_seconds: float = 0.0
    seconds: float = 0.0

    @property
    def check_failures(self) -> int:
        return sum(self.failures.values())


def rebuild(warehouse: Warehouse, config: LedgerConfig, run_id: str,
            accounts: Iterable[str] | None = None,
            timezone: str = MARKET_TIMEZONE) -> RebuildResult:
    """Replay `accounts` (None: every account in the warehouse) and store the ledger, in
    one transaction."""
    started, clock = _now(), time.perf_counter()
    scope = None if accounts is None else sorted(set(accounts))
    with warehouse.transaction() as tx:
        create_ledger_schema(tx)
        replayed = scope if scope is not None else accounts_in(tx)
        inputs = read_inputs(tx, scope, timezone)
        replay_clock = time.perf_counter()
        result = replay(inputs, config)
        replay_seconds = time.perf_counter() - replay_clock
        failures = cross_check(result, inputs, config, run_id)
        balances = balance_history(tx, scope)
        stored = read_arrow(tx, _select("positions", scope),
                            {f.name: f.type for f in POSITIONS}).to_pylist()
        positions, audit = merge_positions(stored, result.positions.to_pylist(), run_id,
                                           started)
        tables = {
            "lots": result.lots, "realized": result.realized,
            "positions": pa.Table.from_pylist(positions, schema=POSITIONS),
            "position_history": result.position_history, "balance_history": balances,
            "flags": result.flags, "check_failures": failures,
        }
        rows = {}
        # a subset rebuild also replaces rows without an account (flags of unreadable rows)
        where = "TRUE" if scope is None else f"({account_filter(scope)} OR account_id IS NULL)"
        for name, data in tables.items():
            tx.execute(f"DELETE FROM {qualified(SCHEMA, name)} WHERE {where}")
            rows[name] = tx.insert(SCHEMA, name, data)
        rows["audit_log"] = tx.insert(SCHEMA, "audit_log",
                                      pa.Table.from_pylist(audit, schema=AUDIT_LOG))
        found = RebuildResult(
            run_id=run_id, accounts=replayed, settings=describe(config), rows=rows,
            executions=inputs_rows(inputs, "trades"),
            open_positions=sum(1 for p in positions if p["status"] == "OPEN"),
            failures=dict(Counter(failures.column("check_name").to_pylist())),
            flags=dict(Counter(result.flags.column("level").to_pylist())),
            audit=dict(Counter(a["action"] for a in audit)),
            replay_seconds=replay_seconds,
        )
        tx.insert(SCHEMA, "runs", _run_row(found, started))
    found.seconds = time.perf_counter() - clock
    return found


def _select(table: str, scope: list[str] | None) -> str:
    columns = ", ".join(q(f.name) for f in TABLES[table])
    return f"SELECT {columns} FROM {qualified(SCHEMA, table)} WHERE {account_filter(scope)}"


def inputs_rows(inputs: LedgerInputs, name: str) -> int:
    data = getattr(inputs, name)
    return data.num_rows if isinstance(data, pa.Table) else len(data)


def cross_check(result: LedgerResult, inputs: LedgerInputs, config: LedgerConfig,
                run_id: str) -> pa.Table:
    """The engine's three cross-checks with IB's numbers, as CHECK_FAILURES rows."""
    found = [
        *check_realized_pnl(result, inputs.trades, config),
        *check_closed_lots(result, inputs.closed_lots, config),
        *check_open_positions(result, inputs.open_positions),
    ]
    rows = [{
        "run_id": run_id, "check_name": m["check"], "account_id": m["account_id"],
        "conid": m["conid"], "key": m["key"], "ours": _money(m["ours"]),
        "ibs": _money(m["ibs"]),
        "difference": None if m["ours"] is None or m["ibs"] is None
        else _money(m["ours"] - m["ibs"]),
    } for m in found]
    return pa.Table.from_pylist(rows, schema=CHECK_FAILURES)


def _money(value: Decimal | None) -> Decimal | None:
    return None if value is None else rounded(value)


def _run_row(found: RebuildResult, started: dt.datetime) -> pa.Table:
    rows = found.rows
    return pa.Table.from_pylist([{
        "run_id": found.run_id, "started_at": started, "finished_at": _now(),
        "accounts": ",".join(found.accounts), **found.settings,
        "executions": found.executions, "lots": rows["lots"], "realized": rows["realized"],
        "positions": rows["positions"], "open_positions": found.open_positions,
        "position_history": rows["position_history"],
        "balance_history": rows["balance_history"], "flags": rows["flags"],
        "check_failures": rows["check_failures"], "audit_rows": rows["audit_log"],
        "replay_seconds": found.replay_seconds,
    }], schema=RUNS)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)
