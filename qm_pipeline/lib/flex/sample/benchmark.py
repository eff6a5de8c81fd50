"""A benchmark for the sample: the equal-weighted index of the sample market's US stocks
(the one that splits left out), as the `date,close` CSV the benchmark drop folder reads."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from qm_pipeline.lib.flex.sample.instruments import SPLIT_STOCK, STOCKS
from qm_pipeline.lib.flex.sample.market import Market
from qm_pipeline.lib.flex.sample.spec import SampleSpec

BENCHMARK_SYMBOL = "SMPL"


def write_benchmark(spec: SampleSpec, folder: Path) -> Path:
    """folder/SMPL.csv: 100 on the day before the sample starts, one close per business day."""
    market = Market(spec.seed, spec.start, spec.end, spec.base_currency)
    stocks = [s.instrument for s in STOCKS if s.instrument.currency == "USD"
              and s != SPLIT_STOCK]
    days = [d for d in market.days if d <= spec.end]
    first = {s.conid: market.close(s, days[0]) for s in stocks}
    lines = ["date,close"]
    for day in days:
        level = 100 * sum(market.close(s, day) / first[s.conid] for s in stocks) / len(stocks)
        lines.append(f"{day.isoformat()},{level.quantize(Decimal('0.0001'))}")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{BENCHMARK_SYMBOL}.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
