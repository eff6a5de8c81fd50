"""`ledger.orders`: the orders a trading application placed, as it recorded them.

The application writes its pending orders here (through the SQLAlchemy model
`LedgerOrder`, or `qm orders import` of a CSV or JSON file); reconciliation compares the
pending ones with the broker's working orders and, under SYNC_TO_BROKER, makes their
status follow the broker. `order_key` is the application's own id; imports upsert on it,
so importing the same file twice changes nothing.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pyarrow as pa

from qm_pipeline.lib.warehouse.engine import Tx

MONEY = pa.decimal128(38, 18)
ORDERS = pa.schema([
    ("order_key", pa.string()),  # the application's id of the order
    ("account_id", pa.string()),
    ("conid", pa.string()),
    ("symbol", pa.string()),
    ("action", pa.string()),  # BUY or SELL
    ("quantity", MONEY),  # positive
    ("order_type", pa.string()),  # MKT, LMT, STP...
    ("limit_price", MONEY),
    ("status", pa.string()),  # IB's order statuses: PendingSubmit, Submitted, Filled, ...
    ("filled_quantity", MONEY),
    ("broker_order_id", pa.int64()),  # IB orderId (per client id)
    ("perm_id", pa.int64()),  # IB permId (unique per account)
    ("client_id", pa.int64()),
    ("order_ref", pa.string()),
    ("submitted_at", pa.timestamp("us")),  # UTC
    ("updated_at", pa.timestamp("us")),  # UTC
    ("source", pa.string()),  # application, import, or reconciliation (found at the broker)
    ("note", pa.string()),
])
REQUIRED = ("order_key", "account_id", "conid", "action", "quantity", "status")
_DECIMALS = {f.name for f in ORDERS if pa.types.is_decimal(f.type)}
_INTEGERS = {f.name for f in ORDERS if pa.types.is_integer(f.type)}
_TIMES = {f.name for f in ORDERS if pa.types.is_timestamp(f.type)}


class OrderFileError(ValueError):
    """A bad order file, naming the file, the row (1-based, header excluded) and field."""


def _value(name: str, text: Any, where: str) -> Any:
    if text is None or text == "":
        return None
    try:
        if name in _DECIMALS:
            if isinstance(text, float):
                raise InvalidOperation("a binary float; write the number as text")
            return Decimal(str(text))
        if name in _INTEGERS:
            return int(text)
        if name in _TIMES:
            return dt.datetime.fromisoformat(str(text))
    except (InvalidOperation, ValueError) as exc:
        raise OrderFileError(f"{where}, field {name!r}: {text!r} is not valid ({exc})") from None
    return str(text)


def order_row(record: dict[str, Any], where: str, now: dt.datetime) -> dict[str, Any]:
    unknown = set(record) - set(ORDERS.names)
    if unknown:
        raise OrderFileError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    row = {name: _value(name, record.get(name), where) for name in ORDERS.names}
    missing = [name for name in REQUIRED if row[name] is None]
    if missing:
        raise OrderFileError(f"{where}: missing {', '.join(missing)}")
    if row["action"] not in ("BUY", "SELL"):
        raise OrderFileError(f"{where}, field 'action': {row['action']!r} is not BUY or SELL")
    row["source"] = row["source"] or "import"
    row["updated_at"] = row["updated_at"] or now
    return row


def read_order_file(path: Path) -> list[dict[str, Any]]:
    """Rows of a CSV (header = column names) or JSON (a list of objects) order file."""
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        try:
            records = json.loads(text, parse_float=str)
        except json.JSONDecodeError as exc:
            raise OrderFileError(f"{path}: not JSON: {exc}") from None
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise OrderFileError(f"{path}: expected a JSON list of objects")
    else:
        records = list(csv.DictReader(io.StringIO(text)))
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    return [order_row(r, f"{path}: row {n}", now) for n, r in enumerate(records, 1)]


def upsert_orders(tx: Tx, rows: Iterable[dict[str, Any]]) -> int:
    """Insert or replace orders by `order_key`, in the caller's transaction."""
    data = pa.Table.from_pylist(list(rows), schema=ORDERS)
    if not data.num_rows:
        return 0
    keys = data.column("order_key").to_pylist()
    if len(set(keys)) != len(keys):
        raise OrderFileError("the same order_key appears twice in one import")
    staged = tx.staged(data)
    tx.execute(f"DELETE FROM ledger.orders WHERE order_key IN (SELECT order_key FROM {staged})")
    return tx.insert("ledger", "orders", data)
