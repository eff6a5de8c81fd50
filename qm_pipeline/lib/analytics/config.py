"""How the analytics are computed: rates, benchmark, limits and the user's mappings.

Every setting has an environment variable (the Dagster resource and `qm analytics` start
from them); a bad value is an error naming the variable, not a silent default.

- QM_BENCHMARK: benchmark symbol, read from `core.prices` (instrument `BENCH:<symbol>`,
  loaded from QM_DATA_DIR/benchmarks/<symbol>.csv). Default: none.
- QM_RISK_FREE_RATE (annual, default 0) and QM_SORTINO_MAR (annual; default: the
  risk-free rate; IB's PortfolioAnalyst uses 0.0751), DOMAIN.md §5.
- QM_LIMIT_SINGLE_NAME and QM_LIMIT_SECTOR: gross weight limits as fractions of NAV
  (default 0.25 and 0.40); exceeding one is an asset-check warning.
- QM_TOP_N: how many names the top-N share counts (default 5).
- QM_SECTOR_MAP: a CSV of `conid or symbol,sector` that overrides the industry from the
  live contract details (default QM_DATA_DIR/mappings/sectors.csv, if present).
- QM_VAR_SEED / QM_VAR_SIMULATIONS: the Monte-Carlo VaR's seed and size.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path

SIMULATIONS = 100_000  # the Monte-Carlo VaR's defaults
SEED = 0


@dataclass(frozen=True)
class AnalyticsConfig:
    benchmark: str | None = None
    risk_free_rate: float = 0.0
    mar: float | None = None
    single_name_limit: float = 0.25
    sector_limit: float = 0.40
    top_n: int = 5
    sectors: dict[str, str] = field(default_factory=dict)  # conid or symbol -> sector
    seed: int = SEED
    simulations: int = SIMULATIONS


def benchmark_from_env() -> str | None:
    """QM_BENCHMARK, as the symbol it names (also what `live/daily_bars` fetches)."""
    return (os.environ.get("QM_BENCHMARK") or "").strip().upper() or None


def config_from_env(data_dir: Path) -> AnalyticsConfig:
    env = os.environ.get
    sector_map = Path(env("QM_SECTOR_MAP") or data_dir / "mappings" / "sectors.csv")
    mar = env("QM_SORTINO_MAR")
    return AnalyticsConfig(
        benchmark=benchmark_from_env(),
        risk_free_rate=_number("QM_RISK_FREE_RATE", 0.0),
        mar=None if not mar else _number("QM_SORTINO_MAR", 0.0),
        single_name_limit=_number("QM_LIMIT_SINGLE_NAME", 0.25),
        sector_limit=_number("QM_LIMIT_SECTOR", 0.40),
        top_n=int(_number("QM_TOP_N", 5)),
        sectors=read_sector_map(sector_map) if sector_map.is_file() else {},
        seed=int(_number("QM_VAR_SEED", SEED)),
        simulations=int(_number("QM_VAR_SIMULATIONS", SIMULATIONS)),
    )


def read_sector_map(path: Path) -> dict[str, str]:
    """`key,sector` rows (a header row `conid,sector` or `symbol,sector` is allowed)."""
    found = {}
    with path.open(newline="", encoding="utf-8") as handle:
        for line, row in enumerate(csv.reader(handle), start=1):
            if not row or (row[0].strip().lower() in ("conid", "symbol", "") and line == 1):
                continue
            if len(row) < 2 or not row[1].strip():
                raise ValueError(f"{path}: row {line}: field 'sector' is missing")
            found[row[0].strip()] = row[1].strip()
    return found


def _number(name: str, default: float) -> float:
    text = os.environ.get(name)
    if not text:
        return default
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{name}={text!r} is not a number") from None
