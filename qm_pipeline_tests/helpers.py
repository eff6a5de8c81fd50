"""Small shared helpers: hand-made Flex reports, warehouse snapshots, archive-and-ingest."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

from qm_pipeline.lib.flex.archive import Archive
from qm_pipeline.lib.flex.ingest import ingest_pending
from qm_pipeline.lib.flex.load import LoadResult
from qm_pipeline.lib.settings import Settings
from qm_pipeline.lib.warehouse.engine import Warehouse, q, qualified

# --- Flex XML ----------------------------------------------------------------------------------
# Every row and every container tag is on its own line, so a row's line number is easy to know.


def row(tag: str, attrs: Mapping[str, Any]) -> str:
    """One data element; values are escaped (quoteattr turns newlines into &#10;)."""
    body = " ".join(f"{name}={quoteattr(str(value))}" for name, value in attrs.items())
    return f"<{tag} {body} />"


def section(name: str, *rows: str) -> str:
    return "\n".join([f"<{name}>", *rows, f"</{name}>"])


def statement(*sections: str, account_id: str = "U1234567", from_date: str = "20240101",
              to_date: str = "20240131", when_generated: str = "20240201;120000",
              period: str = "LastMonth") -> str:
    head = row("FlexStatement", {"accountId": account_id, "fromDate": from_date,
                                 "toDate": to_date, "period": period,
                                 "whenGenerated": when_generated})[:-3] + ">"
    return "\n".join([head, *sections, "</FlexStatement>"])


def report(*statements: str, count: int | None = None, before: str = "",
           query_name: str = "qm-test") -> str:
    """A FlexQueryResponse; `before` goes between the root and FlexStatements."""
    lines = [f'<FlexQueryResponse queryName="{query_name}" type="AF">']
    if before:
        lines.append(before)
    lines.append(f'<FlexStatements count="{len(statements) if count is None else count}">')
    lines += [*statements, "</FlexStatements>", "</FlexQueryResponse>", ""]
    return "\n".join(lines)


def trade(transaction_id: str, **overrides: Any) -> dict[str, Any]:
    """Attributes of a plain stock execution; keyword arguments override or add attributes."""
    attrs: dict[str, Any] = {
        "accountId": "U1234567", "currency": "USD", "assetCategory": "STK", "symbol": "ACME",
        "description": "ACME CORP", "conid": "1001", "transactionID": transaction_id,
        "tradeID": f"9{transaction_id}", "tradeDate": "20240115",
        "dateTime": "20240115;101500", "quantity": "10", "tradePrice": "12.5",
        "ibCommission": "-1", "ibCommissionCurrency": "USD", "buySell": "BUY",
        "levelOfDetail": "EXECUTION",
    }
    attrs.update(overrides)
    return attrs


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def line_of(text: str, needle: str) -> int:
    """1-based line of the first line containing `needle`."""
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in the report")


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- warehouse -----------------------------------------------------------------------------------

Snapshot = dict[str, tuple[list[tuple[str, str]], list[tuple]]]


def snapshot(warehouse: Warehouse, schemas: tuple[str, ...] = ("raw", "core", "meta")
             ) -> Snapshot:
    """Every table of `schemas`: its columns with types and all its rows (order-free)."""
    found: Snapshot = {}
    with warehouse.transaction() as tx:
        for schema in schemas:
            for table in tx.tables(schema):
                columns = list(tx.columns(schema, table).items())
                rows = tx.execute(f"SELECT * FROM {qualified(schema, table)}")
                found[f"{schema}.{table}"] = (columns, sorted(rows, key=repr))
    return found


def rows(warehouse: Warehouse, sql: str, **params: Any) -> list[tuple]:
    with warehouse.transaction() as tx:
        return tx.execute(sql, params)


def scalar(warehouse: Warehouse, sql: str, **params: Any) -> Any:
    with warehouse.transaction() as tx:
        return tx.scalar(sql, params)


def table_rows(warehouse: Warehouse, schema: str, table: str, columns: list[str],
               where: str = "", **params: Any) -> list[dict[str, Any]]:
    selected = ", ".join(q(c) for c in columns)
    sql = f"SELECT {selected} FROM {qualified(schema, table)} {where}"
    return [dict(zip(columns, r, strict=True)) for r in rows(warehouse, sql, **params)]


def ingest_files(warehouse: Warehouse, settings: Settings, *paths: Path,
                 run_id: str = "test-run") -> list[LoadResult]:
    """Archive `paths` (as the CLI would) and load everything pending; results by name."""
    archive = Archive(settings.archive_dir)
    for path in paths:
        archive.add_file(path, "cli")
    return sorted(ingest_pending(warehouse, settings, run_id), key=lambda r: r.name)
