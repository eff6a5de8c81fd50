"""Analytics benchmark: `build_analytics` over 10 accounts x 10 years of daily data.

`make bench` runs `python -m qm_pipeline.lib.analytics.bench generate DIR` (not timed),
then `... build DIR` in a fresh process: the build's seconds and peak RSS are its own.

Ingesting ten years of Flex reports and replaying the ledger would take minutes, so the
warehouse is written directly: migrated, then the rows `analytics.sources` reads, bulk
inserted as Arrow. The history is consistent rather than random noise. A market of
instruments (a fifth of them EUR, with a daily EUR.USD rate) walks by geometric Brownian
motion over the trading days. Each account holds a fixed set of instruments and trades
them about `trades_per_day` times a day towards random target sizes (sometimes zero: a
position closed), paying IB-style commissions. It gets its capital at inception, a deposit
(now and then a withdrawal) each quarter, dividends (withholding tax on EUR ones),
monthly interest and fees. Its daily NAV is cash plus positions at the day's close, so
the ledger's rows agree with it: position history (end-of-day quantity and mark on each
trade day), realized P&L at average cost, OPEN positions, and daily OpenPositions marks
as daily Flex statements would bring them. IB's yearly `ChangeInNAV.twr` is computed
from the same NAVs and flows with IB's linking, so every TWR check should match.
"""

from __future__ import annotations

import cProfile
import dataclasses
import gc
import hashlib
import json
import pstats
import resource
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from pandas.tseries.holiday import USFederalHolidayCalendar

from qm_pipeline.lib.ledger.store import create_ledger_schema
from qm_pipeline.lib.warehouse.engine import Tx, Warehouse
from qm_pipeline.lib.warehouse.migrations import migrate

BENCHMARK = "SMPL"
WAREHOUSE = "warehouse.duckdb"
BENCHMARKS = "benchmarks"
LAST_YEAR = 2024


@dataclass(frozen=True)
class Synthetic:
    """What `synthesize` wrote."""

    accounts: int
    years: int
    days: int  # trading days per account
    instruments: int  # in the market (each account holds `instruments_per_account`)
    nav_rows: int
    executions: int
    cash_transactions: int
    position_history: int
    realized: int
    open_positions: int  # daily OpenPositions SUMMARY rows (the marks)
    seconds: float


@dataclass(frozen=True)
class BuildBench:
    """One timed `build_analytics` and the sanity figures of what it built."""

    nav_rows: int
    executions: int
    seconds: float
    peak_rss_mb: float  # the whole process (generation included when run in one process)
    twr_periods: int
    twr_matched: int
    contribution_gap: float
    output_rows: int  # rows of every analytics table together
    position_daily_rows: int
    attribution_daily_rows: int


def synthesize(folder: Path, accounts: int = 10, years: int = 10,
               instruments_per_account: int = 40, trades_per_day: int = 5,
               seed: int = 17) -> Synthetic:
    """Write `folder/warehouse.duckdb` and `folder/benchmarks/SMPL.csv`."""
    started = time.perf_counter()
    folder = Path(folder)
    days = trading_days(years)
    rng = np.random.default_rng(seed)
    market = _Market(rng, days, max(instruments_per_account,
                                    accounts * instruments_per_account // 4))
    _write_benchmark(rng, days, folder / BENCHMARKS / f"{BENCHMARK}.csv")
    warehouse = Warehouse(f"duckdb:///{folder / WAREHOUSE}")
    migrate(warehouse)
    counts = dict.fromkeys(("nav", "trades", "cash", "history", "realized", "marks"), 0)
    with warehouse.transaction() as tx:
        create_ledger_schema(tx)
        _static(tx, market, accounts)
        for a in range(accounts):
            book = _Account(rng, market, _account_id(a), instruments_per_account,
                            trades_per_day)
            for name, count in book.store(tx).items():
                counts[name] += count
    warehouse.dispose()
    return Synthetic(accounts, years, len(days), market.size, counts["nav"], counts["trades"],
                     counts["cash"], counts["history"], counts["realized"], counts["marks"],
                     time.perf_counter() - started)


def run_build(folder: Path, profile: Path | None = None) -> BuildBench:
    """Time one `build_analytics` on the synthesized warehouse (cProfile it into `profile`)."""
    from qm_pipeline.lib.analytics.build import build_analytics
    from qm_pipeline.lib.analytics.checks import contribution_gap
    from qm_pipeline.lib.analytics.config import AnalyticsConfig

    folder = Path(folder)
    warehouse = Warehouse(f"duckdb:///{folder / WAREHOUSE}")
    with warehouse.transaction() as tx:
        nav_rows = tx.scalar("SELECT count(*) FROM core.nav_daily")
        executions = tx.scalar("SELECT count(*) FROM core.trades")
    config = AnalyticsConfig(benchmark=BENCHMARK)
    gc.collect()
    profiler = cProfile.Profile() if profile else None
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    result = build_analytics(warehouse, config, folder / BENCHMARKS)
    if profiler:
        profiler.disable()
    seconds = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    warehouse.dispose()
    if profiler:
        pstats.Stats(profiler).dump_stats(str(profile))
    checks = result.tables.get("twr_checks", pd.DataFrame())
    return BuildBench(
        nav_rows=int(nav_rows), executions=int(executions), seconds=seconds,
        peak_rss_mb=peak_kb / 1024, twr_periods=len(checks),
        twr_matched=len(checks) - len(result.twr_mismatches),
        contribution_gap=contribution_gap(result.tables),
        output_rows=sum(len(t) for t in result.tables.values()),
        position_daily_rows=len(result.tables.get("position_daily", ())),
        attribution_daily_rows=len(result.tables.get("attribution_daily", ())))


def bench_analytics(folder: Path | None = None, **sizes: int) -> tuple[Synthetic, BuildBench]:
    """Synthesize, then build, in this process (peak RSS includes the synthesis)."""
    if folder is None:
        with tempfile.TemporaryDirectory() as scratch:
            return bench_analytics(Path(scratch), **sizes)
    made = synthesize(folder, **sizes)
    return made, run_build(folder)


def trading_days(years: int, last_year: int = LAST_YEAR) -> pd.DatetimeIndex:
    """Weekdays of `years` calendar years, US federal holidays left out (~252 a year)."""
    business = pd.offsets.CustomBusinessDay(calendar=USFederalHolidayCalendar())
    return pd.date_range(f"{last_year - years + 1}-01-01", f"{last_year}-12-31", freq=business)


class _Market:
    """Daily closes of `size` stocks (every fifth one in EUR) and EUR.USD."""

    def __init__(self, rng: np.random.Generator, days: pd.DatetimeIndex, size: int) -> None:
        self.days, self.size = days, size
        self.day_values = days.values.astype("datetime64[D]")
        n = len(days)
        self.is_eur = np.arange(size) % 5 == 4
        vol = rng.uniform(0.01, 0.03, size)
        drift = rng.normal(0.0003, 0.0003, size)
        steps = rng.normal(drift - vol ** 2 / 2, vol, (n, size))
        steps[0] = 0.0
        level = rng.uniform(15.0, 400.0, size)
        self.close = np.maximum(0.01, np.round(level * np.exp(np.cumsum(steps, axis=0)), 2))
        eurusd = np.cumsum(rng.normal(0.0, 0.004, n))
        self.eurusd = np.round(1.12 * np.exp(eurusd - eurusd[0]), 6)
        self.fx = np.where(self.is_eur[None, :], self.eurusd[:, None], 1.0)  # into USD
        self.conid = np.array([str(270_000 + 1_117 * u) for u in range(size)])
        self.symbol = np.array([_symbol(u) for u in range(size)])
        self.currency = np.where(self.is_eur, "EUR", "USD")
        self.dividend_phase = rng.integers(0, 63, size)  # quarterly dividends


class _Account:
    """One account's ten years: trades, cash, positions and NAV, all consistent."""

    def __init__(self, rng: np.random.Generator, market: _Market, account: str,
                 holdings: int, trades_per_day: int) -> None:
        self.rng, self.m, self.account = rng, market, account
        n_days = len(market.days)
        self.held = rng.choice(market.size, holdings, replace=False)  # slot -> instrument
        self.trades = self._trades(n_days * trades_per_day, holdings)
        self.quantity = self._daily_quantity(n_days, holdings)
        self.cash_rows = self._cash_transactions()
        self._nav()

    def _trades(self, n: int, holdings: int) -> dict[str, np.ndarray]:
        """Executions towards random target sizes (a quarter of them close the position),
        in slot-then-time order, with average-cost realized P&L on every sale."""
        rng, m = self.rng, self.m
        day = np.sort(rng.integers(0, len(m.days), n))
        slot = rng.integers(0, holdings, n)
        order = np.lexsort((np.arange(n), slot))
        day, slot = day[order], slot[order]
        inst = self.held[slot]
        close, fx = m.close[day, inst], m.fx[day, inst]
        value = np.where(rng.random(n) < 0.25, 0.0, rng.uniform(10_000, 80_000, n))
        target = np.round(value / (close * fx)).astype(np.int64)
        previous = np.concatenate([[0], target[:-1]])
        previous[np.r_[True, slot[1:] != slot[:-1]]] = 0
        keep = target != previous
        day, slot, inst, close, fx = day[keep], slot[keep], inst[keep], close[keep], fx[keep]
        target, quantity = target[keep], (target - previous)[keep]
        k = len(day)
        price = np.maximum(0.01, np.round(close * (1 + rng.normal(0.0, 0.002, k)), 2))
        proceeds = np.round(-quantity * price, 2)
        commission = -np.round(np.maximum(1.0, 0.005 * np.abs(quantity)), 2)
        net_cash = proceeds + commission
        realized, cost = _average_cost(slot, quantity, net_cash * fx)
        return {"day": day, "slot": slot, "inst": inst, "close": close, "fx": fx,
                "target": target, "quantity": quantity, "price": price,
                "proceeds": proceeds, "commission": commission, "net_cash": net_cash,
                "realized": realized, "cost": cost,
                "seconds": rng.integers(34_200, 57_600, k)}  # 9:30 to 16:00

    def _daily_quantity(self, n_days: int, holdings: int) -> np.ndarray:
        """days x slot: end-of-day quantity, carried between trade days."""
        t = self.trades
        last = np.r_[(t["slot"][1:] != t["slot"][:-1]) | (t["day"][1:] != t["day"][:-1]), True]
        self.eod = last
        set_at = np.zeros((n_days, holdings), dtype=bool)
        values = np.zeros((n_days, holdings), dtype=np.int64)
        set_at[t["day"][last], t["slot"][last]] = True
        values[t["day"][last], t["slot"][last]] = t["target"][last]
        source = np.maximum.accumulate(np.where(set_at, np.arange(n_days)[:, None], 0), axis=0)
        return values[source, np.arange(holdings)[None, :]]

    def _cash_transactions(self) -> dict[str, np.ndarray]:
        """Deposits (the capital at inception, then quarterly), dividends with withholding
        on EUR ones, monthly interest and fees: day, slot (-1: none), type, amount, fx."""
        rng, m, n_days = self.rng, self.m, len(self.m.days)
        months = np.flatnonzero(np.r_[True, m.days.month[1:] != m.days.month[:-1]])[1:]
        quarters = months[(m.days.month[months] - 1) % 3 == 0]
        deposits = np.where(rng.random(len(quarters)) < 0.1,
                            -np.round(rng.uniform(20_000, 60_000, len(quarters))),
                            np.round(rng.uniform(10_000, 100_000, len(quarters))))
        inst = self.held
        pays = ((np.arange(n_days)[:, None] + m.dividend_phase[inst][None, :]) % 63 == 0)
        pays &= self.quantity > 0
        pays[0] = False
        d_day, d_slot = np.nonzero(pays)
        d_inst = inst[d_slot]
        dividends = np.round(self.quantity[d_day, d_slot] * m.close[d_day, d_inst] * 0.004, 2)
        eur = m.is_eur[d_inst]
        parts = [
            (np.r_[0, quarters], -1, "Deposits/Withdrawals",
             np.r_[1_500_000.0, deposits]),
            (d_day, d_slot, "Dividends", dividends),
            (d_day[eur], d_slot[eur], "Withholding Tax", -np.round(dividends[eur] * 0.15, 2)),
            (months, -1, "Broker Interest Received",
             np.round(rng.uniform(20.0, 400.0, len(months)), 2)),
            (months, -1, "Other Fees", np.full(len(months), -10.0)),
        ]
        day = np.concatenate([np.asarray(p[0]) for p in parts])
        slot = np.concatenate([np.broadcast_to(p[1], len(p[0])) for p in parts])
        kind = np.concatenate([np.full(len(p[0]), p[2]) for p in parts])
        amount = np.concatenate([p[3] for p in parts])
        fx = np.where(slot >= 0, m.fx[day, inst[np.maximum(slot, 0)]], 1.0)
        order = np.argsort(day, kind="stable")
        return {"day": day[order], "slot": slot[order], "type": kind[order],
                "amount": amount[order], "fx": fx[order]}

    def _nav(self) -> None:
        """NAV = cash (every cash movement in base, summed) + positions at the close."""
        m, t, c = self.m, self.trades, self.cash_rows
        n_days = len(m.days)
        cash = np.cumsum(np.bincount(t["day"], t["net_cash"] * t["fx"], n_days)
                         + np.bincount(c["day"], c["amount"] * c["fx"], n_days))
        self.stock = np.round((self.quantity * m.close[:, self.held]
                               * m.fx[:, self.held]).sum(axis=1), 2)
        self.nav = np.round(cash + self.stock, 2)
        self.cash = np.round(self.nav - self.stock, 2)
        flow = np.bincount(c["day"], np.where(c["type"] == "Deposits/Withdrawals",
                                              c["amount"], 0.0), n_days)
        flow[0] = 0.0  # the capital at inception belongs to no return (the first NAV holds it)
        self.returns = np.r_[np.nan, (self.nav[1:] - self.nav[:-1] - flow[1:])
                             / (self.nav[:-1] + flow[1:])]
        self.flow = flow

    def store(self, tx: Tx) -> dict[str, int]:
        files = _Files(self.account, self.m.days)
        rows = {"nav": self._store_nav(tx, files), "trades": self._store_trades(tx, files),
                "cash": self._store_cash(tx, files)}
        self._store_periods(tx, files)
        rows |= self._store_ledger(tx)
        rows["marks"] = self._store_marks(tx, files)
        return rows

    def _store_nav(self, tx: Tx, files: _Files) -> int:
        n = len(self.m.days)
        all_days = np.arange(n)
        return tx.insert("core", "nav_daily", pa.table({
            "account_id": _repeat(self.account, n), "currency": _repeat("USD", n),
            "report_date": pa.array(self.m.day_values),
            "cash": _decimal(self.cash, 2), "stock": _decimal(self.stock, 2),
            "total": _decimal(self.nav, 2), "file_sha256": files.sha(all_days),
            "source_line": files.lines(n)}))

    def _store_trades(self, tx: Tx, files: _Files) -> int:
        m, t = self.m, self.trades
        chronological = np.lexsort((t["seconds"], t["day"]))
        t = {k: v[chronological] for k, v in t.items()}
        n, inst = len(t["day"]), t["inst"]
        stamp = (m.day_values[t["day"]].astype("datetime64[us]")
                 + t["seconds"].astype("timedelta64[s]"))
        ids = np.char.add(f"{self.account[1:]}", np.arange(n).astype("U9"))
        return tx.insert("core", "trades", pa.table({
            "transaction_type": _repeat("ExchTrade", n),
            "buy_sell": pa.array(np.where(t["quantity"] > 0, "BUY", "SELL")),
            "asset_category": _repeat("STK", n), "account_id": _repeat(self.account, n),
            "currency": pa.array(m.currency[inst]), "fx_rate_to_base": _decimal(t["fx"], 6),
            "symbol": pa.array(m.symbol[inst]), "conid": pa.array(m.conid[inst]),
            "multiplier": _decimal(np.ones(n), 0),
            "report_date": pa.array(m.day_values[t["day"]]),
            "trade_date": pa.array(m.day_values[t["day"]]),
            "quantity": _decimal(t["quantity"], 0), "trade_price": _decimal(t["price"], 2),
            "proceeds": _decimal(t["proceeds"], 2), "net_cash": _decimal(t["net_cash"], 2),
            "ib_commission": _decimal(t["commission"], 2), "close_price": _decimal(t["close"], 2),
            "level_of_detail": _repeat("EXECUTION", n), "transaction_id": pa.array(ids),
            "date_time": pa.array(stamp), "file_sha256": files.sha(t["day"]),
            "source_line": files.lines(n)}))

    def _store_cash(self, tx: Tx, files: _Files) -> int:
        m, c = self.m, self.cash_rows
        n, slot = len(c["day"]), c["slot"]
        inst = self.held[np.maximum(slot, 0)]
        own = slot >= 0
        day = m.day_values[c["day"]]
        return tx.insert("core", "cash_transactions", pa.table({
            "type": pa.array(c["type"]),
            "asset_category": pa.array(np.where(own, "STK", None)),
            "account_id": _repeat(self.account, n),
            "currency": pa.array(np.where(own, m.currency[inst], "USD")),
            "fx_rate_to_base": _decimal(c["fx"], 6),
            "conid": pa.array(np.where(own, m.conid[inst], None)),
            "symbol": pa.array(np.where(own, m.symbol[inst], None)),
            "amount": _decimal(c["amount"], 2),
            "date_time": pa.array(day.astype("datetime64[us]")),
            "report_date": pa.array(day), "settle_date": pa.array(day),
            "transaction_id": pa.array(np.char.add(f"C{self.account[1:]}",
                                                   np.arange(n).astype("U9"))),
            "level_of_detail": _repeat("DETAIL", n), "file_sha256": files.sha(c["day"]),
            "source_line": files.lines(n)}))

    def _store_periods(self, tx: Tx, files: _Files) -> int:
        """IB's ChangeInNAV of each yearly statement, its TWR linked as IB does."""
        years = self.m.days.year.to_numpy()
        rows = []
        for year in np.unique(years):
            inside = np.flatnonzero(years == year)
            first, last = inside[0], inside[-1]
            returns = self.returns[inside]
            twr = float(np.prod(1.0 + returns[~np.isnan(returns)]) - 1.0) * 100
            opening = self.nav[first - 1] if first > 0 else 0.0
            rows.append((first, last, opening, self.nav[last], self.flow[inside].sum(),
                         round(twr, 9)))
        first, last, opening, ending, flows, twr = (np.array(c) for c in zip(*rows, strict=True))
        n = len(rows)
        return tx.insert("core", "change_in_nav", pa.table({
            "account_id": _repeat(self.account, n),
            "from_date": pa.array(self.m.day_values[first]),
            "to_date": pa.array(self.m.day_values[last]),
            "starting_value": _decimal(opening, 2), "deposits_withdrawals": _decimal(flows, 2),
            "ending_value": _decimal(ending, 2), "twr": _decimal(twr, 9),
            "currency": _repeat("USD", n), "file_sha256": files.sha(last),
            "source_line": files.lines(n)}))

    def _store_ledger(self, tx: Tx) -> dict[str, int]:
        m, t = self.m, self.trades
        eod = self.eod
        inst = t["inst"][eod]
        n = int(eod.sum())
        mark = t["close"][eod]
        history = tx.insert("ledger", "position_history", pa.table({
            "account_id": _repeat(self.account, n), "conid": pa.array(m.conid[inst]),
            "date": pa.array(m.day_values[t["day"][eod]]),
            "quantity": _decimal(t["target"][eod], 0), "mark": _decimal(mark, 2),
            "market_value": _decimal(t["target"][eod] * mark, 2),
            "currency": pa.array(m.currency[inst])}))
        sold = t["quantity"] < 0
        inst, n = t["inst"][sold], int(sold.sum())
        close_day = m.day_values[t["day"][sold]]
        proceeds_base = t["net_cash"][sold] * t["fx"][sold]
        realized = tx.insert("ledger", "realized", pa.table({
            "seq": pa.array(np.arange(n)), "account_id": _repeat(self.account, n),
            "conid": pa.array(m.conid[inst]), "symbol": pa.array(m.symbol[inst]),
            "asset_category": _repeat("STK", n), "currency": pa.array(m.currency[inst]),
            "close_date": pa.array(close_day),
            "quantity": _decimal(-t["quantity"][sold], 0),
            "proceeds_base": _decimal(proceeds_base, 6),
            "cost_base": _decimal(proceeds_base - t["realized"][sold], 6),
            "realized_pnl_base": _decimal(t["realized"][sold], 6),
            "method": _repeat("FIFO", n), "close_reason": _repeat("TRADE", n),
            "is_opening_balance": pa.array(np.zeros(n, dtype=bool))}))
        final = self.quantity[-1]
        held = np.flatnonzero(final > 0)
        inst, n = self.held[held], len(held)
        last_cost = _last_per_slot(t["slot"], t["cost"], len(self.held))[held]
        tx.insert("ledger", "positions", pa.table({
            "episode_id": pa.array(np.char.add(f"{self.account}:", m.conid[inst])),
            "account_id": _repeat(self.account, n), "conid": pa.array(m.conid[inst]),
            "symbol": pa.array(m.symbol[inst]), "asset_category": _repeat("STK", n),
            "currency": pa.array(m.currency[inst]), "multiplier": _decimal(np.ones(n), 0),
            "status": _repeat("OPEN", n), "side": _repeat("LONG", n),
            "quantity": _decimal(final[held], 0), "cost_basis_base": _decimal(last_cost, 6),
        }))
        return {"history": history, "realized": realized}

    def _store_marks(self, tx: Tx, files: _Files) -> int:
        """OpenPositions SUMMARY rows of each daily statement: the day's marks."""
        m = self.m
        day, slot = np.nonzero(self.quantity > 0)
        inst, n = self.held[slot], len(day)
        mark, fx = m.close[day, inst], m.fx[day, inst]
        quantity = self.quantity[day, slot]
        return tx.insert("core", "open_positions", pa.table({
            "side": _repeat("Long", n), "asset_category": _repeat("STK", n),
            "account_id": _repeat(self.account, n), "currency": pa.array(m.currency[inst]),
            "fx_rate_to_base": _decimal(fx, 6), "report_date": pa.array(m.day_values[day]),
            "symbol": pa.array(m.symbol[inst]), "conid": pa.array(m.conid[inst]),
            "multiplier": _decimal(np.ones(n), 0), "position": _decimal(quantity, 0),
            "mark_price": _decimal(mark, 2), "position_value": _decimal(quantity * mark, 2),
            "position_value_in_base": _decimal(quantity * mark * fx, 2),
            "level_of_detail": _repeat("SUMMARY", n), "file_sha256": files.sha(day),
            "source_line": files.lines(n)}))


class _Files:
    """The daily Flex statements the rows came from: one sha256 per account and day, and
    line numbers counting up."""

    def __init__(self, account: str, days: pd.DatetimeIndex) -> None:
        self.by_day = pa.array([hashlib.sha256(f"{account}:{d:%Y-%m-%d}".encode()).hexdigest()
                                for d in days])
        self.next_line = 1

    def sha(self, day: np.ndarray) -> pa.Array:
        return self.by_day.take(pa.array(np.asarray(day, dtype=np.int64)))

    def lines(self, n: int) -> pa.Array:
        start, self.next_line = self.next_line, self.next_line + n
        return pa.array(np.arange(start, start + n, dtype=np.int64))


def _static(tx: Tx, market: _Market, accounts: int) -> None:
    """Accounts, instruments and the daily EUR.USD rate."""
    ids = [_account_id(a) for a in range(accounts)]
    tx.insert("core", "accounts", pa.table({
        "account_id": pa.array(ids), "currency": _repeat("USD", accounts),
        "name": pa.array([f"Bench account {a + 1}" for a in range(accounts)])}))
    n = market.size
    tx.insert("core", "instruments", pa.table({
        "conid": pa.array(market.conid), "symbol": pa.array(market.symbol),
        "description": pa.array(np.char.add(market.symbol, " ORD")),
        "asset_category": _repeat("STK", n), "currency": pa.array(market.currency),
        "multiplier": _decimal(np.ones(n), 0),
        "issuer_country_code": pa.array(np.where(market.is_eur, "DE", "US")),
        "listing_exchange": pa.array(np.where(market.is_eur, "IBIS", "NASDAQ"))}))
    days = len(market.days)
    tx.insert("core", "fx_rates", pa.table({
        "report_date": pa.array(market.day_values), "from_currency": _repeat("EUR", days),
        "to_currency": _repeat("USD", days), "rate": _decimal(market.eurusd, 6)}))


def _write_benchmark(rng: np.random.Generator, days: pd.DatetimeIndex, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    walk = np.cumsum(rng.normal(0.0003, 0.011, len(days)))
    close = np.round(2_000.0 * np.exp(walk - walk[0]), 2)
    pd.DataFrame({"date": days.strftime("%Y-%m-%d"), "close": close}).to_csv(
        path, index=False, float_format="%.2f")


def _average_cost(slot: np.ndarray, quantity: np.ndarray, cash_base: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Realized P&L of each sale at average cost (in base), and the cost held after each
    execution; rows in slot-then-time order, positions long only."""
    realized = np.zeros(len(slot))
    cost = np.zeros(len(slot))
    held, basis, current = 0, 0.0, -1
    for i, (s, q, paid) in enumerate(zip(slot.tolist(), quantity.tolist(), cash_base.tolist(),
                                         strict=True)):
        if s != current:
            held, basis, current = 0, 0.0, s
        if q > 0:
            held, basis = held + q, basis - paid
        else:
            part = basis * -q / held
            realized[i] = paid - part
            held, basis = held + q, basis - part
        cost[i] = basis
    return realized, cost


def _last_per_slot(slot: np.ndarray, values: np.ndarray, slots: int) -> np.ndarray:
    found = np.zeros(slots)
    last = np.r_[slot[1:] != slot[:-1], True]
    found[slot[last]] = values[last]
    return found


def _decimal(values: np.ndarray, scale: int) -> pa.Array:
    """decimal128(18, scale) from floats rounded to `scale` places, built from raw buffers."""
    low = np.round(np.asarray(values, dtype="float64") * 10.0 ** scale).astype(np.int64)
    words = np.empty((len(low), 2), dtype=np.int64)
    words[:, 0] = low
    words[:, 1] = np.where(low < 0, -1, 0)  # two's complement sign extension
    return pa.Array.from_buffers(pa.decimal128(18, scale), len(low),
                                 [None, pa.py_buffer(words.tobytes())])


def _repeat(value: str, n: int) -> pa.Array:
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, dtype=np.int32)),
                                          pa.array([value])).cast(pa.string())


def _account_id(a: int) -> str:
    return f"U{3_000_001 + a}"


def _symbol(u: int) -> str:
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return "".join(letters[(u // 26 ** k + 7 * k) % 26] for k in (2, 1, 0)) + "X"


def _main(argv: list[str]) -> None:
    """generate DIR | build DIR [PROFILE] | (nothing: both, in a temporary folder)."""
    if argv[:1] == ["generate"]:
        print(json.dumps(dataclasses.asdict(synthesize(Path(argv[1])))))
    elif argv[:1] == ["build"]:
        profile = Path(argv[2]) if len(argv) > 2 else None
        print(json.dumps(dataclasses.asdict(run_build(Path(argv[1]), profile))))
    else:
        made, built = bench_analytics()
        print(made)
        print(built)


if __name__ == "__main__":
    _main(sys.argv[1:])

