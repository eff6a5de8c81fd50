"""Portfolio analytics as plain functions (no Dagster, no database): the metrics of
issue 6, with DOMAIN.md §5's conventions applied in one place each.

Inputs cross `boundary` once: warehouse Decimal money becomes float64 series indexed by
date (`to_series` for one value per date, `daily_sums` for flows). Everything else takes
and returns float64 pandas objects and small frozen dataclasses.

    daily = returns.portfolio_daily(nav, flows)         # one account
    table = accounts.portfolio_daily_long(nav_rows, flow_rows)  # every account and ALL
    twr_check.check_period_twr(daily, from_date, to_date, change_in_nav_twr_pct)
    xirr.money_weighted_return(nav, flows)
    performance.performance_table(daily["daily_return"].dropna(), inception, benchmark=b)
    risk.var_table(returns); risk.position_var(market_values, risk.price_returns(prices))
    greeks.black_scholes(contract, vol); greeks.implied_vol(contract, mark)
    concentration.weights(...), herfindahl(...), limit_breaches(...)
    attribution.daily_contributions(position_pnl, daily); link_contributions(...)

Modules: `conventions` (252 days, daily rates), `boundary` (Decimal -> float), `returns`
(IB-linked returns, TWR index, drawdown), `accounts` (ALL, long table), `twr_check`
(period TWR vs IB), `xirr`, `windows`, `performance`, `relative` (vs benchmark), `risk`
(VaR/CVaR), `greeks`, `concentration`, `attribution`.
"""
