"""Build every analytics table from the warehouse in one pass, and write them in one
transaction: readers see the previous analytics or the new ones, never a mix, and a rerun
on the same data writes the same rows.

Analytics do not run on a state reconciliation halted (issue 6): when the newest
`recon.runs` row is halted, `build_analytics` refuses with `AnalyticsHalted`, naming it.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pandas as pd

from qm_pipeline.lib.analytics import sources
from qm_pipeline.lib.analytics.account_tables import (
    attribution_rows,
    performance_rows,
    risk_rows,
    twr_rows,
)
from qm_pipeline.lib.analytics.accounts import ALL
from qm_pipeline.lib.analytics.concentration import (
    UNMAPPED,
    gross_shares,
    group_gross_weights,
    herfindahl,
    limit_breaches,
    top_n_share,
)
from qm_pipeline.lib.analytics.config import AnalyticsConfig
from qm_pipeline.lib.analytics.daily import portfolio_daily_table
from qm_pipeline.lib.analytics.holdings import exposure, option_greeks, value_holdings, with_all
from qm_pipeline.lib.analytics.model_greeks import prefer_ib_model, read_model_greeks
from qm_pipeline.lib.analytics.positions import (
    ZERO,
    AccountPositions,
    account_positions,
    calendar,
    fx_to_base,
    marks,
)
from qm_pipeline.lib.analytics.prices import BENCHMARK_PREFIX, rebuild_prices
from qm_pipeline.lib.analytics.risk import price_returns
from qm_pipeline.lib.analytics.store import write_tables
from qm_pipeline.lib.warehouse.engine import Tx, Warehouse

Progress = Callable[[str], None]


class AnalyticsHalted(RuntimeError):
    """The newest reconciliation halted: analytics would describe a state nobody trusts."""


@dataclass
class AnalyticsResult:
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    as_of: dt.date | None = None
    benchmark: pd.Series | None = None  # daily returns of the benchmark, if configured
    recon: dict | None = None
    unpriced: list[str] = field(default_factory=list)  # held "account:conid" without price
    prices: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def twr_mismatches(self) -> pd.DataFrame:
        checks = self.tables.get("twr_checks", pd.DataFrame())
        return checks[~checks["matches"]] if not checks.empty else checks

    def breaches(self) -> list[str]:
        table = self.tables.get("concentration", pd.DataFrame())
        return [b for text in table.get("breaches", []) if text for b in text.split("; ")]


@dataclass
class Inputs:
    nav: pd.DataFrame
    flows: pd.DataFrame
    lines: pd.DataFrame
    periods: pd.DataFrame
    history: pd.DataFrame
    realized: pd.DataFrame
    cash: pd.DataFrame
    fx: pd.DataFrame
    prices: pd.DataFrame
    instruments: pd.DataFrame
    positions: pd.DataFrame
    industries: dict[str, str]
    margin: pd.DataFrame
    bases: dict[str, str]
    model_greeks: pd.DataFrame


def build_analytics(warehouse: Warehouse, config: AnalyticsConfig, benchmark_dir: Path,
                    progress: Progress = lambda _: None) -> AnalyticsResult:
    """Refresh `core.prices`, compute every table, write them: one transaction."""
    started = time.perf_counter()
    with warehouse.transaction() as tx:
        recon = sources.latest_recon(tx)
        if recon and recon["halted"]:
            raise AnalyticsHalted(
                f"reconciliation run {recon['run_id']} halted at {recon['finished_at']}: "
                "analytics do not run on a halted state (resolve the breaks, reconcile again)")
        price_rows = rebuild_prices(tx, benchmark_dir)
        progress(f"core.prices: {sum(price_rows.values())} rows {price_rows}")
        inputs = read_inputs(tx)
        progress(f"read {len(inputs.nav)} NAV rows, {len(inputs.history)} position changes")
        result = compute(inputs, config, progress)
        write_tables(tx, result.tables)
    result.recon, result.prices = recon, price_rows
    result.seconds = time.perf_counter() - started
    return result


def read_inputs(tx: Tx) -> Inputs:
    prices = sources.frame(tx, "SELECT instrument_id, conid, date, price, source "
                               "FROM core.prices", ["instrument_id", "conid", "date", "price",
                                                    "source"])
    return Inputs(
        nav=sources.read_nav(tx), flows=sources.read_flows(tx),
        lines=sources.read_pnl_lines(tx), periods=sources.read_periods(tx),
        history=sources.read_position_history(tx),
        realized=sources.read_position_realized(tx), cash=sources.read_trade_cash(tx),
        fx=sources.read_fx(tx), prices=prices, instruments=sources.read_instruments(tx),
        positions=sources.read_open_positions(tx), industries=sources.read_industries(tx),
        margin=sources.read_margin(tx), bases=sources.read_base_currencies(tx),
        model_greeks=read_model_greeks(tx))


def compute(inputs: Inputs, config: AnalyticsConfig,
            progress: Progress = lambda _: None) -> AnalyticsResult:
    daily = portfolio_daily_table(inputs.nav, inputs.flows, inputs.lines)
    result = AnalyticsResult(tables={"portfolio_daily": daily})
    if daily.empty:
        return result
    result.as_of = pd.Timestamp(daily["date"].max()).date()
    result.benchmark = _benchmark_returns(inputs.prices, config.benchmark)
    holdings = _holdings(inputs, config)
    result.unpriced = [f"{h.account_id}:{h.conid}" for h in holdings.itertuples()
                       if h.market_value is None] if not holdings.empty else []
    per_account = _per_account(inputs, daily, holdings, result, config, progress)
    result.tables |= per_account | _holding_tables(holdings, daily, result.as_of, config,
                                                   inputs.model_greeks)
    result.tables["margin"] = _margin(inputs.margin)
    return result


def _floats(daily: pd.DataFrame, account: str) -> pd.DataFrame:
    own = daily[daily["account_id"] == account].set_index("date")
    return own.assign(**{c: own[c].astype("float64") for c in ("nav", "external_flow", "pnl")})


def _per_account(inputs: Inputs, daily: pd.DataFrame, holdings: pd.DataFrame,
                 result: AnalyticsResult, config: AnalyticsConfig,
                 progress: Progress) -> dict[str, pd.DataFrame]:
    parts: dict[str, list[pd.DataFrame]] = {k: [] for k in (
        "performance", "risk", "twr_checks", "position_daily", "attribution_daily",
        "attribution")}
    positions = _positions(inputs, daily)
    pnl_by_account = {a: p.pnl for a, p in positions.items()}
    instrument_returns = _instrument_returns(inputs.prices)
    for account in daily["account_id"].unique():
        own = _floats(daily, account)
        pnl = _for(account, pnl_by_account)
        parts["performance"].append(performance_rows(own, result.benchmark, config)
                                    .assign(account_id=account))
        held = _held(holdings, account)
        parts["risk"].append(risk_rows(own["daily_return"], held, instrument_returns,
                                       float(own["nav"].iloc[-1]), config)
                             .assign(account_id=account, as_of=result.as_of))
        parts["twr_checks"].append(pd.DataFrame(twr_rows(account, own, inputs.periods)))
        by_position, by_group, by_window = attribution_rows(
            pnl, own, _levels(pnl.columns, inputs.instruments, holdings, config))
        parts["attribution_daily"].append(by_group.assign(account_id=account))
        parts["attribution"].append(by_window.assign(account_id=account))
        if account != ALL:
            parts["position_daily"].append(_position_daily(
                account, positions[account], inputs.realized, by_position))
        progress(f"{account}: {len(own)} days, {pnl.shape[1]} positions")
    return {name: pd.concat([f for f in frames if not f.empty], ignore_index=True)
            if any(not f.empty for f in frames) else pd.DataFrame()
            for name, frames in parts.items()}


def _positions(inputs: Inputs, daily: pd.DataFrame) -> dict[str, AccountPositions]:
    """Per account: dates x conid value, P&L and unrealized P&L in base (`positions`)."""
    found = {}
    for account, history in inputs.history.groupby("account_id"):
        own = daily[daily["account_id"] == account]
        if own.empty:
            continue
        cash = inputs.cash[inputs.cash["account_id"] == account]
        dates = calendar(history, cash, pd.DatetimeIndex(pd.to_datetime(own["date"])))
        rates = fx_to_base(inputs.fx, inputs.bases.get(account, "USD"), dates)
        found[account] = account_positions(
            history, cash, marks(inputs.prices, history, dates), rates, dates)
    return found


def _for(account: str, pnl_by_account: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The account's position P&L; for ALL, every account's, labelled account:conid."""
    if account != ALL:
        return pnl_by_account.get(account, pd.DataFrame())
    frames = {a: p.add_prefix(f"{a}:") for a, p in pnl_by_account.items()}
    return pd.concat(frames.values(), axis=1).fillna(0.0) if frames else pd.DataFrame()


def _levels(columns: pd.Index, instruments: pd.DataFrame, holdings: pd.DataFrame,
            config: AnalyticsConfig) -> dict[str, dict[str, str]]:
    """Asset class and sector of each position column (conid, or account:conid for ALL)."""
    classes = dict(zip(instruments["conid"].astype(str), instruments["asset_category"],
                       strict=True))
    sector_of = dict(zip(holdings.get("conid", []), holdings.get("sector", []), strict=True))
    conids = {c: str(c).split(":")[-1] for c in columns}
    sectors = {c: config.sectors.get(k) or sector_of.get(k) or "UNMAPPED"
               for c, k in conids.items()}
    return {"asset_class": {c: classes.get(k) or "UNKNOWN" for c, k in conids.items()},
            "sector": sectors}


def _position_daily(account: str, positions: AccountPositions, realized: pd.DataFrame,
                    contributions: pd.DataFrame) -> pd.DataFrame:
    """The account's positions on the days they had a value, P&L or a close; realized P&L
    as the warehouse summed it (exact), 0 on the days without a close."""
    own = realized[realized["account_id"] == account]
    closes = (own.assign(date=pd.to_datetime(own["date"]))
              .pivot(index="date", columns="conid", values="amount")
              .reindex(index=positions.value.index, columns=positions.value.columns)
              .astype(object))
    frame = pd.concat({"value_base": positions.value, "pnl_base": positions.pnl,
                       "realized_pnl_base": closes, "unrealized_pnl_base": positions.unrealized,
                       "contribution": contributions.drop(columns="residual")}, axis=1)
    long = frame.stack(level=1, future_stack=True).rename_axis(["date", "conid"]).reset_index()
    long = long[(long["value_base"].fillna(0) != 0) | (long["pnl_base"].fillna(0) != 0)
                | long["realized_pnl_base"].notna()]
    return long.assign(account_id=account,
                       realized_pnl_base=long["realized_pnl_base"].fillna(ZERO))


def _holdings(inputs: Inputs, config: AnalyticsConfig) -> pd.DataFrame:
    if inputs.positions.empty:
        return pd.DataFrame()
    newest = inputs.fx.sort_values("date").drop_duplicates(["currency", "to_currency"], keep="last")
    rates = {(c, t): r for c, t, r in newest[["currency", "to_currency", "rate"]]
             .itertuples(index=False)}
    prices = inputs.prices[inputs.prices["conid"].notna()]
    return value_holdings(inputs.positions, inputs.instruments, prices, rates, inputs.bases,
                          config.sectors, inputs.industries)


def _held(holdings: pd.DataFrame, account: str) -> pd.Series:
    if holdings.empty:
        return pd.Series(dtype="float64")
    own = holdings if account == ALL else holdings[holdings["account_id"] == account]
    own = own[own["market_value"].notna()]
    return own.groupby("conid")["market_value"].sum().astype("float64")


def _instrument_returns(prices: pd.DataFrame) -> pd.DataFrame:
    """Daily returns per instrument on the dates any instrument has a price. A price the
    reports do not carry for a day (Flex marks come with executions and statement ends) is
    the last one known: that day's return is 0 and the move shows on the next mark, so the
    holdings' scenarios keep every day instead of only the days all of them were marked."""
    priced = prices[prices["conid"].notna()]
    wide = priced.assign(date=pd.to_datetime(priced["date"]),
                         price=priced["price"].astype("float64")).pivot_table(
        index="date", columns="conid", values="price", aggfunc="last")
    return price_returns(wide.ffill())


def _benchmark_returns(prices: pd.DataFrame, symbol: str | None) -> pd.Series | None:
    if not symbol:
        return None
    rows = prices[prices["instrument_id"] == BENCHMARK_PREFIX + symbol]
    if rows.empty:
        raise ValueError(f"benchmark {symbol}: no prices (drop {symbol}.csv with date,close "
                         "into QM_DATA_DIR/benchmarks)")
    series = rows.set_index(pd.to_datetime(rows["date"]))["price"].astype("float64")
    return series.sort_index().pct_change(fill_method=None).dropna()


def _holding_tables(holdings: pd.DataFrame, daily: pd.DataFrame, as_of: dt.date,
                    config: AnalyticsConfig, model: pd.DataFrame) -> dict[str, pd.DataFrame]:
    if holdings.empty:
        return {}
    navs = {a: n for a, n in daily.sort_values("date").groupby("account_id")["nav"].last()
            .items()}
    both = with_all(holdings)
    spots = _spots(holdings)
    weights = _weights(both, navs, as_of)
    return {"exposure": exposure(both, navs, as_of),
            "position_weights": weights,
            "concentration": _concentration(weights, as_of, config),
            "greeks": prefer_ib_model(option_greeks(holdings, spots, as_of,
                                                    config.risk_free_rate), model, as_of)}


def _spots(holdings: pd.DataFrame) -> dict[str, float]:
    priced = holdings[holdings["price"].notna()]
    return {str(c): float(p) for c, p in zip(priced["conid"], priced["price"], strict=True)}


def _weights(both: pd.DataFrame, navs: dict[str, Decimal], as_of: dt.date) -> pd.DataFrame:
    valued = both[both["market_value"].notna()]
    grouped = valued.groupby(["account_id", "conid", "symbol", "sector"], as_index=False)[
        "market_value"].sum()
    grouped["weight"] = [float(v / navs[a]) if navs.get(a) else float("nan")
                         for a, v in zip(grouped["account_id"], grouped["market_value"],
                                         strict=True)]
    return grouped.assign(as_of=as_of)


def _concentration(weights: pd.DataFrame, as_of: dt.date,
                   config: AnalyticsConfig) -> pd.DataFrame:
    rows = []
    for account, own in weights.groupby("account_id"):
        w = own.set_index("symbol")["weight"]
        # a sector nobody mapped is unknown, not concentrated: it is left out of the limit
        sectors = {s: g for s, g in zip(own["symbol"], own["sector"], strict=True)
                   if g != UNMAPPED}
        found = [b for b in limit_breaches(w, config.single_name_limit, sectors,
                                           config.sector_limit) if b.name != UNMAPPED]
        by_sector = group_gross_weights(w, sectors).drop(UNMAPPED, errors="ignore")
        by_sector = by_sector.sort_values(ascending=False)
        shares = gross_shares(w)
        rows.append({"account_id": account, "as_of": as_of, "positions": len(w),
                     "top_n": config.top_n, "top_n_share": top_n_share(w, config.top_n),
                     "herfindahl": herfindahl(w), "largest_name": shares.index[0],
                     "largest_weight": float(w.abs().max()),
                     "largest_sector": by_sector.index[0] if len(by_sector) else None,
                     "largest_sector_weight": float(by_sector.iloc[0]) if len(by_sector)
                     else None,
                     "single_name_limit": config.single_name_limit,
                     "sector_limit": config.sector_limit,
                     "breaches": "; ".join(
                         f"{account} {b.kind} {b.name} {b.weight:.1%} > {b.limit:.0%}"
                         for b in found) or None})
    return pd.DataFrame(rows)


def _margin(margin: pd.DataFrame) -> pd.DataFrame:
    """Margin utilisation (maintenance margin / net liquidation) and IB's cushion, per
    complete live snapshot."""
    if margin.empty:
        return margin
    nlv = margin["net_liquidation"].astype("float64")
    return margin.assign(utilization=margin["maintenance_margin"].astype("float64") / nlv)
