"""Replay benchmark: synthetic executions through `replay`, timed, with peak memory.

`make bench` runs `python -m qm_pipeline.lib.ledger.bench`. The synthetic history is
plausible rather than random noise: three years of orders filled in one to four
executions; per instrument, positions opened, scaled in and scaled out until flat (one
in ten short), some left open at the end; prices wandering ±10 % around a level (so
about half the sales are losses and the wash-sale tracker works),
IB-style commissions, a share of EUR instruments with a daily FX rate and a share of
options (multiplier 100). Executions are built straight into Arrow columns, the form
the warehouse hands them over in.
"""

from __future__ import annotations

import resource
import sys
import time
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from qm_pipeline.lib.ledger.config import LedgerConfig, WashMode
from qm_pipeline.lib.ledger.engine import replay
from qm_pipeline.lib.ledger.inputs import LedgerInputs

_START_US = 1_672_531_200_000_000  # 2023-01-01
_SPAN_US = 3 * 365 * 86_400_000_000


@dataclass(frozen=True)
class BenchResult:
    n_executions: int
    n_instruments: int
    synth_seconds: float
    elapsed_seconds: float  # the replay alone
    peak_rss_mb: float  # whole process, synthesis included
    realized_rows: int
    open_lots: int
    positions: int

    def __str__(self) -> str:
        return (f"{self.n_executions:,} executions over {self.n_instruments:,} instruments: "
                f"replay {self.elapsed_seconds:.2f} s, peak RSS {self.peak_rss_mb:,.0f} MB "
                f"(synthesis {self.synth_seconds:.2f} s; {self.realized_rows:,} realized rows, "
                f"{self.open_lots:,} open lots, {self.positions:,} position episodes)")


def bench_replay(n_executions: int = 1_000_000, n_instruments: int = 5_000, seed: int = 7,
                 config: LedgerConfig | None = None) -> BenchResult:
    t0 = time.perf_counter()
    trades = synthesize(n_executions, n_instruments, seed)
    t1 = time.perf_counter()
    result = replay(LedgerInputs(trades=trades), config)
    t2 = time.perf_counter()
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return BenchResult(n_executions, n_instruments, t1 - t0, t2 - t1, peak_kb / 1024,
                       result.realized.num_rows, result.lots.num_rows, result.positions.num_rows)


def synthesize(n_executions: int, n_instruments: int, seed: int) -> pa.Table:
    """`n_executions` executions over `n_instruments` conids in two accounts, as Arrow."""
    rng = np.random.default_rng(seed)
    n_orders = n_executions // 2 + 1  # orders fill in 1 to 4 executions (cut to fit)
    inst_of_order = rng.integers(0, n_instruments, n_orders)
    is_option = np.arange(n_instruments) % 20 == 0
    is_eur = np.arange(n_instruments) % 5 == 1
    size = np.where(is_option[inst_of_order], rng.integers(1, 10, n_orders),
                    rng.integers(100, 1_000, n_orders))
    order_qty = _orders(inst_of_order, size, rng.random(n_orders), n_instruments)
    order, fill, qty = _fills(order_qty, rng.integers(1, 5, n_orders), n_executions)
    n = len(qty)
    inst = inst_of_order[order]
    ts = (np.sort(rng.integers(0, _SPAN_US, n_orders)) + _START_US)[order] + fill
    level = np.where(is_option, rng.integers(50, 1_000, n_instruments),
                     rng.integers(500, 50_000, n_instruments))  # cents
    order_price = level[inst_of_order] * rng.uniform(0.9, 1.1, n_orders)
    price = np.maximum(1, order_price[order].astype(np.int64) + rng.integers(-1, 2, n))
    multiplier = np.where(is_option, 100, 1)
    proceeds = -qty * price * multiplier[inst]  # cents
    commission = -np.maximum(10_000, np.abs(qty) * 50)  # 1/10000: max(1.00, 0.005/share)
    day = (ts // 86_400_000_000).astype(np.int32)
    fx = np.where(is_eur[inst], 10_500 + (day % 97) * 7, 10_000)  # 1/10000
    names = np.array([f"{'OPT' if is_option[i] else 'STK'}{i}" for i in range(n_instruments)])
    conid = pa.array(names).take(pa.array(inst))
    return pa.table({
        "account_id": _pick(["U1", "U2"], inst % 2),
        "conid": conid,
        "symbol": conid,
        "asset_category": _pick(["STK", "OPT"], is_option[inst]),
        "currency": _pick(["USD", "EUR"], is_eur[inst]),
        "fx_rate_to_base": _decimals(fx, 4),
        "multiplier": _decimals(multiplier[inst], 0),
        "put_call": _pick([None, "C"], is_option[inst]),
        "trade_date": pa.array(day, pa.date32()),
        "date_time": pa.array(ts, pa.timestamp("us")),
        "quantity": _decimals(qty, 0),
        "trade_price": _decimals(price, 2),
        "proceeds": _decimals(proceeds, 2),
        "ib_commission": _decimals(commission, 4),
        "transaction_type": _pick(["ExchTrade"], np.zeros(n, np.int8)),
        "transaction_id": pa.array(np.arange(n) + 5_000_000_000).cast(pa.string()),
    })


def _pick(values: list[str | None], index: np.ndarray) -> pa.Array:
    """values[index] as a string column, taken in Arrow: numpy string arrays of a million
    rows would be temporaries of tens of MB each, left in the heap the replay is measured in."""
    return pa.array(values, pa.string()).take(pa.array(np.asarray(index, np.int8)))


def _orders(inst: np.ndarray, size: np.ndarray, draw: np.ndarray,
            n_instruments: int) -> np.ndarray:
    """Signed order quantities, position by position as traders build them: a position
    opens (long, or short one time in ten), scales in with up to two more orders, then
    scales out (half, or all) until flat; whatever is held at the end stays open."""
    held = [0] * n_instruments
    adds = [0] * n_instruments
    out = np.empty(len(inst), dtype=np.int64)
    for i, (k, s, u) in enumerate(zip(inst.tolist(), size.tolist(), draw.tolist(), strict=True)):
        h = held[k]
        if h == 0:  # open: u also picks the side and how many adds follow
            q = -s if u < 0.1 else s
            adds[k] = int(u * 10) % 3
        elif adds[k] and u < 0.5:  # scale in
            q = s if h > 0 else -s
            adds[k] -= 1
        else:  # scale out: all, or half
            adds[k] = 0
            q = -h if u > 0.7 or abs(h) < 2 else -(h // 2 if h > 0 else -(-h // 2))
        held[k] = h + q
        out[i] = q
    return out


def _fills(order_qty: np.ndarray, n_fills: np.ndarray,
           n_executions: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Splits orders into partial fills: (order index, fill number, signed quantity) per
    execution, `n_executions` of them (the last orders are dropped or cut to fit)."""
    fills = np.minimum(n_fills, np.abs(order_qty))
    order = np.repeat(np.arange(len(order_qty)), fills)[:n_executions]
    start = np.concatenate([[0], np.cumsum(fills)[:-1]])
    fill = np.arange(len(order)) - start[order]
    share = np.abs(order_qty[order]) // fills[order]
    rest = np.abs(order_qty[order]) - share * (fills[order] - 1)
    qty = np.where(fill == 0, rest, share) * np.sign(order_qty[order])
    return order, fill, qty


def _decimals(unscaled: np.ndarray, scale: int) -> pa.Array:
    """decimal128 values from unscaled int64 (value x 10**scale), built from raw buffers."""
    low = np.asarray(unscaled, dtype=np.int64)
    words = np.empty((len(low), 2), dtype=np.int64)
    words[:, 0] = low
    words[:, 1] = np.where(low < 0, -1, 0)  # two's complement sign extension
    return pa.Array.from_buffers(pa.decimal128(18, scale), len(low),
                                 [None, pa.py_buffer(words)])


if __name__ == "__main__":  # python -m qm_pipeline.lib.ledger.bench [executions] [wash mode]
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    mode = WashMode(sys.argv[2]) if len(sys.argv) > 2 else LedgerConfig().wash_sales
    print(f"wash sales: {mode.value}; {bench_replay(n, config=LedgerConfig(wash_sales=mode))}")
