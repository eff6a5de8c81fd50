"""The per-account rows of the analytics tables: performance (with XIRR), risk, TWR checks
and attribution. Each function takes one account's float daily table and returns rows."""

from __future__ import annotations

import json

import pandas as pd

from qm_pipeline.lib.analytics.attribution import (
    daily_contributions,
    group_contributions,
    link_contributions,
)
from qm_pipeline.lib.analytics.config import AnalyticsConfig
from qm_pipeline.lib.analytics.performance import performance_table
from qm_pipeline.lib.analytics.risk import PositionRisk, position_var, to_frame, var_table
from qm_pipeline.lib.analytics.twr_check import check_period_twr
from qm_pipeline.lib.analytics.windows import windows
from qm_pipeline.lib.analytics.xirr import money_weighted_return

PORTFOLIO, POSITIONS = "portfolio", "positions"


def performance_rows(daily: pd.DataFrame, benchmark: pd.Series | None,
                     config: AnalyticsConfig) -> pd.DataFrame:
    """`performance.performance_table` plus the money-weighted return (XIRR) of each window,
    from the NAV at the close the window starts from to its last NAV."""
    returns = daily["daily_return"].dropna()
    if returns.empty:
        return pd.DataFrame()
    table = performance_table(returns, daily.index[0], benchmark=benchmark,
                              rf=config.risk_free_rate, mar=config.mar)
    closes, flows = daily.index, daily["external_flow"][daily["external_flow"] != 0.0]
    table["mwr"] = [money_weighted_return(daily["nav"], flows, _opening_close(closes, start), end)
                    for start, end in zip(table["start"], table["end"], strict=True)]
    return table


def _opening_close(closes: pd.DatetimeIndex, start) -> pd.Timestamp:
    before = closes[closes < pd.Timestamp(start)]
    return before.max() if len(before) else closes[0]


def risk_rows(returns: pd.Series, held: pd.Series, instrument_returns: pd.DataFrame,
              nav: float, config: AnalyticsConfig) -> pd.DataFrame:
    """1-day VaR and CVaR, each method labelled: from the account's own returns
    (`portfolio`) and from today's holdings over their instruments' history (`positions`)."""
    frames = []
    if len(returns.dropna()) > 1:
        frames.append(to_frame(var_table(returns, seed=config.seed,
                                         simulations=config.simulations))
                      .assign(level=PORTFOLIO, observations=len(returns.dropna()),
                              uncovered=None))
    found = position_var(held, instrument_returns, nav, seed=config.seed,
                         simulations=config.simulations) if not held.empty else None
    if found is not None and found.results:
        frames.append(_positions_frame(found))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _positions_frame(found: PositionRisk) -> pd.DataFrame:
    return to_frame(found.results).assign(level=POSITIONS, observations=len(found.scenarios),
                                          uncovered=",".join(found.uncovered) or None)


def twr_rows(account: str, daily: pd.DataFrame, periods: pd.DataFrame) -> list[dict]:
    """Each IB statement period of the account: our linked TWR against `ChangeInNAV.twr`."""
    rows = []
    for p in periods[periods["account_id"] == account].itertuples(index=False):
        check = check_period_twr(daily, p.from_date, p.to_date, float(p.twr))
        rows.append({
            "account_id": account, "from_date": check.start, "to_date": check.end,
            "computed_pct": check.computed * 100, "reported_pct": check.reported * 100,
            "gap_bp": check.gap_bp, "matches": check.matches, "return_days": check.return_days,
            "explanation": json.dumps([{"date": d.date.isoformat(), "reason": d.reason,
                                        "daily_return": d.daily_return,
                                        "external_flow": d.external_flow,
                                        "remaining_gap_bp": d.remaining_gap_bp}
                                       for d in check.days]) if check.days else None,
            "source": p.source})
    return rows


def attribution_rows(position_pnl: pd.DataFrame, daily: pd.DataFrame,
                     levels: dict[str, dict[str, str]]
                     ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(per position per day, per group per day, per group per window) contributions.

    `levels`: level name -> {position column -> group}; the position level is implied.
    Every day's contributions sum to its return and every window's to its linked return
    (`attribution` checks both)."""
    daily_positions = daily_contributions(position_pnl, daily)
    by_level = {"position": daily_positions} | {
        level: group_contributions(daily_positions, groups) for level, groups in levels.items()}
    per_day = pd.concat([_long_days(level, c) for level, c in by_level.items()],
                        ignore_index=True)
    returns = daily["daily_return"].dropna()
    per_window = [_window_rows(level, c, w) for level, c in by_level.items()
                  for w in windows(returns.index[-1], daily.index[0])] if len(returns) else []
    windows_frame = pd.concat(per_window, ignore_index=True) if per_window else pd.DataFrame()
    return daily_positions, per_day, windows_frame


def _long_days(level: str, contributions: pd.DataFrame) -> pd.DataFrame:
    stacked = contributions.rename_axis(index="date", columns="group").stack()
    stacked = stacked[stacked != 0.0].rename("contribution").reset_index()
    return stacked.assign(level=level)


def _window_rows(level: str, contributions: pd.DataFrame, window) -> pd.DataFrame:
    part = contributions.loc[pd.Timestamp(window.start):pd.Timestamp(window.end)]
    linked = link_contributions(part) if not part.empty else pd.Series(dtype="float64")
    return pd.DataFrame({"window": window.name, "start": window.start, "end": window.end,
                         "level": level, "group": linked.index.astype(str),
                         "contribution": linked.to_numpy()})
