"""`core.prices`: one price history per instrument, from the marks the data already carries.

Sources, best first for a given instrument and day (each row names its source and the row
it came from, so a price can be traced):
1. `benchmark_csv`: QM_DATA_DIR/benchmarks/<SYMBOL>.csv (`date,close`), as instrument
   `BENCH:<SYMBOL>` (no conid): the benchmark drop folder;
2. `benchmark_live`: the closes of `live.daily_bars` (TWS's historical data, fetched by the
   `live/daily_bars` asset), also as `BENCH:<SYMBOL>`: adjusted closes are not marks of a
   held position, so they carry no conid; `ADJUSTED_LAST` wins over `TRADES` on a day;
3. `flex_mark`: OpenPositions' `markPrice` at each report date (IB's closing mark);
4. `flex_close`: the `closePrice` IB writes on every execution of that day;
5. `live_mark`: the market price of a complete live snapshot (the newest of the day).

The table is rebuilt whole in one transaction (a rerun writes the same rows). A benchmark
file with a bad row stops the build with the file, row and field named, and the
warehouse keeps the previous prices.
"""

from __future__ import annotations

import csv
import datetime as dt
from decimal import Decimal, InvalidOperation
from pathlib import Path

import pyarrow as pa

from qm_pipeline.lib.warehouse.engine import Tx

PRICE = pa.decimal128(38, 12)
_QUANTUM = Decimal(1).scaleb(-12)
PRICES = pa.schema([
    ("instrument_id", pa.string()),  # the conid, or BENCH:<SYMBOL>
    ("conid", pa.string()),
    ("symbol", pa.string()),
    ("currency", pa.string()),
    ("date", pa.date32()),
    ("price", PRICE),
    ("source", pa.string()),  # benchmark_csv, benchmark_live, flex_mark, flex_close, live_mark
    ("source_ref", pa.string()),  # file sha256:line, snapshot id, bars fetched, csv path:row
])
BENCHMARK_PREFIX = "BENCH:"

_CANDIDATES = (
    "SELECT conid, conid, symbol, currency, report_date, mark_price, 3, 'flex_mark', "
    "file_sha256 || ':' || CAST(source_line AS VARCHAR) FROM core.open_positions "
    "WHERE mark_price IS NOT NULL AND (level_of_detail = 'SUMMARY' OR level_of_detail IS NULL) "
    "UNION ALL SELECT conid, conid, symbol, currency, trade_date, close_price, 4, 'flex_close', "
    "file_sha256 || ':' || CAST(source_line AS VARCHAR) FROM core.trades "
    "WHERE close_price IS NOT NULL AND close_price <> 0 AND conid IS NOT NULL"
)
_LIVE = (
    " UNION ALL SELECT p.conid, p.conid, p.symbol, p.currency, CAST(s.taken_at AS DATE), "
    "p.market_price, 5, 'live_mark', s.snapshot_id || '@' || CAST(s.taken_at AS VARCHAR) "
    "FROM live.portfolio_items p JOIN live.snapshots s ON s.snapshot_id = p.snapshot_id "
    "WHERE s.status = 'complete' AND p.market_price IS NOT NULL"
)
_BARS = (
    f" UNION ALL SELECT '{BENCHMARK_PREFIX}' || symbol, NULL, symbol, currency, date, close, 2, "
    "'benchmark_live', 'live.daily_bars:' || what_to_show || '/' || conid || '@' || "
    "CAST(fetched_at AS VARCHAR) FROM live.daily_bars WHERE close IS NOT NULL"
)


def rebuild_prices(tx: Tx, benchmark_dir: Path) -> dict[str, int]:
    """Replace `core.prices`; returns rows per source."""
    benchmarks = read_benchmarks(benchmark_dir)
    tx.ensure_table("core", "prices", PRICES)
    tx.execute("DELETE FROM core.prices")
    live_tables = tx.tables("live")
    live = (_LIVE if "portfolio_items" in live_tables else "") + (
        _BARS if "daily_bars" in live_tables else "")
    with tx.readable(benchmarks) as bench:
        tx.execute(
            "INSERT INTO core.prices SELECT instrument_id, conid, symbol, currency, date, price, "
            "source, source_ref FROM (SELECT *, row_number() OVER (PARTITION BY instrument_id, "
            "date ORDER BY priority, source_ref) AS pick FROM ("
            f"SELECT instrument_id, conid, symbol, currency, date, price, 1 AS priority, source, "
            f"source_ref FROM {bench} UNION ALL {_CANDIDATES}{live}) "
            "AS c (instrument_id, conid, symbol, currency, date, price, priority, source, "
            "source_ref)) AS ranked WHERE pick = 1")
    return dict(tx.execute("SELECT source, count(*) FROM core.prices GROUP BY source"))


def read_benchmarks(folder: Path) -> pa.Table:
    """Every `<SYMBOL>.csv` in the drop folder, as price rows."""
    rows: list[dict] = []
    for path in sorted(folder.glob("*.csv")) if folder.is_dir() else []:
        rows += _benchmark_rows(path)
    return pa.Table.from_pylist(rows, schema=PRICES)


def _benchmark_rows(path: Path) -> list[dict]:
    symbol = path.stem.upper()
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        fields = {name.strip().lower(): name for name in reader.fieldnames or []}
        if not {"date", "close"} <= fields.keys():
            raise ValueError(f"{path}: row 1: the header needs the fields 'date' and 'close'")
        return [_benchmark_row(path, symbol, line, row[fields["date"]], row[fields["close"]])
                for line, row in enumerate(reader, start=2)]


def _benchmark_row(path: Path, symbol: str, line: int, day: str, close: str) -> dict:
    try:
        date = dt.date.fromisoformat(day.strip())
    except ValueError:
        raise ValueError(f"{path}: row {line}: field 'date': {day!r} is not YYYY-MM-DD") from None
    try:
        price = Decimal(close.strip())
    except InvalidOperation:
        raise ValueError(f"{path}: row {line}: field 'close': {close!r} is not a number") from None
    if not price.is_finite() or price <= 0:
        raise ValueError(f"{path}: row {line}: field 'close': {close!r} is not a positive price")
    return {"instrument_id": BENCHMARK_PREFIX + symbol, "conid": None, "symbol": symbol,
            "currency": None, "date": date, "price": price.quantize(_QUANTUM),
            "source": "benchmark_csv", "source_ref": f"{path.name}:{line}"}
