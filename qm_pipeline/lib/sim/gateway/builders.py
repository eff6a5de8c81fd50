"""Ready-made gateway states: a small realistic one for demos and tests, a large one for benchmarks.

Account values and summary rows are computed from the positions and cash with simple
margin rules, so NetLiquidation, GrossPositionValue and friends agree with the portfolio
the same gateway reports.
"""

from __future__ import annotations

import itertools
import random
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from qm_pipeline.lib.sim.gateway.state import (
    CENT,
    AccountState,
    AccountValue,
    Bar,
    CompletedOrder,
    Execution,
    GatewayState,
    Instrument,
    OpenOrder,
    OptionModel,
    Position,
)

INIT_MARGIN = Decimal("0.25")
MAINT_MARGIN = Decimal("0.20")

SUMMARY_TAGS = (
    "AccountType",
    "NetLiquidation",
    "TotalCashValue",
    "SettledCash",
    "BuyingPower",
    "EquityWithLoanValue",
    "GrossPositionValue",
    "InitMarginReq",
    "MaintMarginReq",
    "AvailableFunds",
    "ExcessLiquidity",
    "Cushion",
    "SMA",
    "Leverage",
)
"""Tags the account summary reports (all among those `reqAccountSummary` asks for)."""


def _money(x: Decimal) -> str:
    return str(x.quantize(CENT))


def account_values(
    positions: Iterable[Position],
    cash: dict[str, Decimal],
    fx: dict[str, Decimal],
    *,
    base: str = "USD",
    account_type: str = "INDIVIDUAL",
) -> tuple[list[AccountValue], list[AccountValue]]:
    """(values, summary) for an account: per-currency and BASE rows, then base-only totals.

    `fx` maps each currency to its rate into `base` (TWS's `ExchangeRate` tag).
    """
    stock: dict[str, Decimal] = defaultdict(Decimal)
    option: dict[str, Decimal] = defaultdict(Decimal)
    unrealized: dict[str, Decimal] = defaultdict(Decimal)
    realized: dict[str, Decimal] = defaultdict(Decimal)
    gross = Decimal(0)
    for p in positions:
        ccy = p.instrument.currency
        bucket = option if p.instrument.sec_type in ("OPT", "FOP") else stock
        bucket[ccy] += p.market_value
        unrealized[ccy] += p.unrealized_pnl
        realized[ccy] += p.realized_pnl
        gross += abs(p.market_value) * fx[ccy]
    currencies = sorted(set(cash) | set(stock) | set(option))
    per_ccy = {
        "CashBalance": cash,
        "TotalCashBalance": cash,
        "StockMarketValue": stock,
        "OptionMarketValue": option,
        "UnrealizedPnL": unrealized,
        "RealizedPnL": realized,
    }
    values: list[AccountValue] = []
    for tag, amounts in per_ccy.items():
        in_base = sum((amounts.get(c, Decimal(0)) * fx[c] for c in currencies), Decimal(0))
        values += [AccountValue(tag, _money(amounts.get(c, Decimal(0))), c) for c in currencies]
        values.append(AccountValue(tag, _money(in_base), "BASE"))
    values += [AccountValue("ExchangeRate", str(fx[c]), c) for c in currencies]
    total_cash = sum((cash.get(c, Decimal(0)) * fx[c] for c in currencies), Decimal(0))
    net_liq = total_cash + sum(((stock[c] + option[c]) * fx[c] for c in currencies), Decimal(0))
    init, maint = gross * INIT_MARGIN, gross * MAINT_MARGIN
    available, excess = net_liq - init, net_liq - maint
    totals = {
        "NetLiquidation": net_liq,
        "TotalCashValue": total_cash,
        "SettledCash": total_cash,
        "BuyingPower": available * 4,
        "EquityWithLoanValue": net_liq,
        "GrossPositionValue": gross,
        "InitMarginReq": init,
        "MaintMarginReq": maint,
        "AvailableFunds": available,
        "ExcessLiquidity": excess,
        "SMA": available,
    }
    base_rows = [AccountValue(tag, _money(v), base) for tag, v in totals.items()]
    ratios = [
        AccountValue("Cushion", str((excess / net_liq).quantize(Decimal("0.000001")))),
        AccountValue("Leverage-S", str((gross / net_liq).quantize(Decimal("0.01")))),
        AccountValue("AccountType", account_type),
    ]
    values += base_rows + ratios
    summary = [v for v in base_rows + ratios if v.tag in SUMMARY_TAGS]
    summary.append(AccountValue("Leverage", ratios[1].value))
    return values, summary


def _account(
    account_id: str,
    positions: list[Position],
    cash: dict[str, Decimal],
    fx: dict[str, Decimal],
    **lists: list,
) -> AccountState:
    values, summary = account_values(positions, cash, fx)
    return AccountState(account_id, "USD", values, summary, positions, **lists)


def _today(hour: int, minute: int) -> datetime:
    now = datetime.now(UTC)
    return now.replace(hour=hour, minute=minute, second=0, microsecond=0)


def _stock(conid: int, symbol: str, **details: Any) -> Instrument:
    return Instrument(conid, symbol, local_symbol=symbol, stock_type="COMMON", **details)


def _aapl_option(conid: int, strike: int, right: str) -> Instrument:
    return Instrument(
        conid,
        "AAPL",
        "OPT",
        expiry="20260116",
        strike=Decimal(strike),
        right=right,
        multiplier="100",
        local_symbol=f"AAPL  260116{right}{strike:05d}000",
        trading_class="AAPL",
        long_name="APPLE INC",
        industry="Technology",
        category="Computers",
        subcategory="Computers",
        under_conid=265598,
        under_symbol="AAPL",
        under_sec_type="STK",
        market_name="AAPL",
        contract_month="202601",
    )


def default_state() -> GatewayState:
    """Two paper accounts: stocks in USD and EUR, a long call and a short put, orders from
    client ids 1 and 2 plus a manual TWS order, completed orders and today's fills."""
    tech = {"industry": "Technology", "primary_exchange": "NASDAQ", "trading_class": "NMS"}
    fund = {"industry": "Funds", "category": "Equity Fund", "subcategory": "Growth-Large Cap"}
    aapl = _stock(
        265598, "AAPL", long_name="APPLE INC", category="Computers", subcategory="Computers",
        market_name="NMS", **tech,
    )  # fmt: skip
    msft = _stock(
        272093, "MSFT", long_name="MICROSOFT CORP", category="Software",
        subcategory="Applications Software", market_name="NMS", **tech,
    )  # fmt: skip
    sap = _stock(
        14204, "SAP", long_name="SAP SE", industry="Technology", category="Software",
        subcategory="Enterprise Software", primary_exchange="IBIS", currency="EUR",
        trading_class="XETRA", time_zone_id="MET", market_name="XETRA",
    )  # fmt: skip
    spy = Instrument(
        756733, "SPY", primary_exchange="ARCA", local_symbol="SPY", trading_class="SPY",
        long_name="SPDR S&P 500 ETF TRUST", stock_type="ETF", market_name="SPY", **fund,
    )  # fmt: skip
    qqq = Instrument(
        320227571, "QQQ", primary_exchange="NASDAQ", local_symbol="QQQ", trading_class="NMS",
        long_name="INVESCO QQQ TRUST SERIES 1", stock_type="ETF", **fund,
    )  # fmt: skip
    aapl_call = _aapl_option(723350001, 200, "C")
    aapl_put = _aapl_option(723350002, 180, "P")
    fx = {"USD": Decimal(1), "EUR": Decimal("1.0850")}
    d = Decimal
    first = _account(
        "DU1234567",
        [
            Position(aapl, d(100), d("150.25"), d("189.50"), d(0), d("120.00")),
            Position(msft, d(50), d("310.10"), d("415.20"), d("35.40"), d("-42.50")),
            Position(aapl_call, d(2), d("1250.00"), d("14.35"), d(0), d("31.00")),
            Position(sap, d(20), d("120.50"), d("190.40"), d(0), d("12.80")),
        ],
        {"USD": d("25000.00"), "EUR": d("3000.00")},
        fx,
        open_orders=[
            OpenOrder(
                order_id=11, perm_id=1_000_011, client_id=1, instrument=aapl, action="BUY",
                total_quantity=d(10), lmt_price=d("180.00"), order_ref="dip",
            ),
            OpenOrder(
                order_id=12, perm_id=1_000_012, client_id=1, instrument=aapl_call,
                action="SELL", total_quantity=d(1), lmt_price=d("16.50"), tif="GTC",
                status="PreSubmitted",
            ),
            OpenOrder(
                order_id=13, perm_id=1_000_013, client_id=1, instrument=msft, action="BUY",
                total_quantity=d(20), lmt_price=d("414.00"), filled=d(5),
                avg_fill_price=d("413.95"),
            ),
        ],
        completed_orders=[
            CompletedOrder(
                perm_id=1_000_010, client_id=1, instrument=aapl, action="BUY",
                total_quantity=d(100), completed_time=_today(14, 31), lmt_price=d("189.20"),
                filled_quantity=d(100), completed_status="Filled Size: 100",
            ),
        ],
        executions=[
            Execution(
                exec_id="0000e0d5.67a1b2c3.01.01", instrument=aapl, order_id=10, client_id=1,
                perm_id=1_000_010, time=_today(14, 31), side="BOT", shares=d(60),
                price=d("189.10"), commission=d("1.00"),
            ),
            Execution(
                exec_id="0000e0d5.67a1b2c3.02.01", instrument=aapl, order_id=10, client_id=1,
                perm_id=1_000_010, time=_today(14, 31), side="BOT", shares=d(40),
                price=d("189.20"), commission=d("0.35"), cum_qty=d(100),
                avg_price=d("189.14"),
            ),
            Execution(
                exec_id="0000f1e6.67a1b2c4.01.01", instrument=sap, order_id=9, client_id=1,
                perm_id=1_000_009, time=_today(8, 5), side="SLD", shares=d(5),
                price=d("191.00"), commission=d("1.25"), commission_currency="EUR",
                realized_pnl=d("348.75"), exchange="IBIS",
            ),
        ],
    )  # fmt: skip
    second = _account(
        "DU7654321",
        [
            Position(spy, d(10), d("420.00"), d("500.15"), d(0), d("-15.30")),
            Position(aapl_put, d(-2), d("310.00"), d("2.15"), d("45.50"), d("8.00")),
        ],
        {"USD": d("12000.00")},
        fx,
        open_orders=[
            OpenOrder(
                order_id=5, perm_id=1_000_005, client_id=2, instrument=spy, action="SELL",
                total_quantity=d(5), order_type="STP", aux_price=d("480.00"), tif="GTC",
                order_ref="stop-loss",
            ),
            OpenOrder(  # typed into TWS by hand: client 0, order id 0
                order_id=0, perm_id=1_000_006, client_id=0, instrument=msft, action="BUY",
                total_quantity=d(5), lmt_price=d("400.00"), order_ref="manual",
            ),
        ],
        completed_orders=[
            CompletedOrder(
                perm_id=1_000_004, client_id=0, instrument=spy, action="SELL",
                total_quantity=d(5), completed_time=_today(15, 2), lmt_price=d("510.00"),
                status="Cancelled", completed_status="Cancelled by Trader",
            ),
        ],
        executions=[
            Execution(
                exec_id="0000e0d5.67a1b2c5.01.01", instrument=aapl_put, order_id=3,
                client_id=2, perm_id=1_000_003, time=_today(15, 45), side="BOT", shares=d(1),
                price=d("2.10"), commission=d("0.65"), realized_pnl=d("45.50"),
                exchange="CBOE",
            ),
        ],
    )  # fmt: skip
    models = {
        aapl_call.conid: OptionModel(
            d("0.2431"), d("0.4612"), d("14.3312"), d("0.9612"), d("0.0098"), d("0.6105"),
            d("-0.0512"), d("189.50"),
        ),
        aapl_put.conid: OptionModel(
            d("0.2705"), d("-0.1523"), d("2.1488"), d("0.9612"), d("0.0061"), d("0.3907"),
            d("-0.0297"), d("189.50"),
        ),
    }  # fmt: skip
    bars = {spy.conid: daily_bars(d("400.00"), years=3, seed=spy.conid)}
    return GatewayState(
        [first, second], {qqq.conid: qqq}, next_order_id=20, option_models=models,
        daily_bars=bars,
    )  # fmt: skip


def daily_bars(first_close: Decimal, *, years: int, seed: int) -> list[Bar]:
    """Weekday bars ending today: a seeded random walk in cents, so the same seed gives
    the same closes to the cent whichever day the state is built."""
    rng = random.Random(seed)
    today = datetime.now(UTC).date()
    day, close, bars = today - timedelta(days=365 * years), first_close, []
    while day <= today:
        if day.weekday() < 5:
            prior, close = close, (close * Decimal(1 + rng.gauss(3e-4, 0.01))).quantize(CENT)
            high, low = max(prior, close) + CENT * 20, min(prior, close) - CENT * 20
            volume = Decimal(rng.randint(40_000_000, 90_000_000))
            bars.append(Bar(day, prior, high, low, close, volume, (high + low) / 2, 250_000))
        day += timedelta(days=1)
    return bars


_INDUSTRIES = (
    ("Technology", "Software", "Applications Software"),
    ("Financial", "Banks", "Money Center Banks"),
    ("Consumer, Cyclical", "Retail", "Retail-Apparel"),
    ("Energy", "Oil&Gas", "Oil Comp-Integrated"),
    ("Industrial", "Machinery-Diversified", "Machinery-General Indust"),
)


def _universe(size: int) -> list[Instrument]:
    """Stocks, and every 10th..: options on the stock just before them (7 stocks : 3 options)."""
    out: list[Instrument] = []
    for k in range(size):
        industry, category, subcategory = _INDUSTRIES[k % len(_INDUSTRIES)]
        details = {"industry": industry, "category": category, "subcategory": subcategory}
        if k % 10 < 7:
            symbol = f"S{k:05d}"
            out.append(
                Instrument(
                    100_000 + k, symbol, primary_exchange="NYSE", local_symbol=symbol,
                    trading_class=symbol, long_name=f"SIMULATED {symbol} INC",
                    stock_type="COMMON", **details,
                )
            )  # fmt: skip
        else:
            under = f"S{k - k % 10:05d}"
            strike, right = Decimal(50 + 5 * (k % 7)), "C" if k % 2 else "P"
            out.append(
                Instrument(
                    100_000 + k, under, "OPT", "20261218", strike, right, "100",
                    local_symbol=f"{under} 261218{right}{int(strike):05d}000",
                    trading_class=under, long_name=f"SIMULATED {under} INC",
                    under_conid=100_000 + k - k % 10, under_symbol=under,
                    under_sec_type="STK", **details,
                )
            )  # fmt: skip
    return out


def _random_position(rng: random.Random, inst: Instrument) -> Position:
    cents = Decimal("0.01")
    if inst.sec_type == "OPT":
        qty = Decimal(rng.choice((-1, 1)) * rng.randint(1, 20))
        price = Decimal(rng.randint(10, 2500)) * cents
        avg_cost = (price * Decimal(rng.randint(80, 120)) * cents * 100).quantize(cents)
    else:
        qty = Decimal(rng.randint(1, 500))
        price = Decimal(rng.randint(500, 50000)) * cents
        avg_cost = (price * Decimal(rng.randint(70, 130)) * cents).quantize(cents)
    return Position(
        inst,
        qty,
        avg_cost,
        price,
        Decimal(rng.randint(-50000, 50000)) * cents,
        Decimal(rng.randint(-20000, 20000)) * cents,
    )


def make_state(
    accounts: int = 5,
    positions_per_account: int = 2000,
    open_orders_per_account: int = 200,
    *,
    executions_per_account: int = 50,
    completed_orders_per_account: int = 20,
    seed: int = 0,
    paper: bool = True,
) -> GatewayState:
    """A large deterministic state for benchmarks: same seed, same accounts, to the cent."""
    rng = random.Random(seed)
    universe = _universe(positions_per_account * 3 // 2 + 1)
    perm_ids = itertools.count(2_000_000)
    order_ids: dict[int, Iterator[int]] = {c: itertools.count(1) for c in (1, 2, 7)}
    exec_seq = itertools.count(1)
    fx = {"USD": Decimal(1)}
    prefix = "DU" if paper else "U"
    out = []
    for n in range(accounts):
        held = rng.sample(universe, positions_per_account)
        positions = [_random_position(rng, inst) for inst in held]
        orders = []
        for _ in range(open_orders_per_account):
            client_id = rng.choice((0, 1, 2, 7))
            inst = rng.choice(held)
            orders.append(
                OpenOrder(
                    0 if client_id == 0 else next(order_ids[client_id]), next(perm_ids),
                    client_id, inst, rng.choice(("BUY", "SELL")), Decimal(rng.randint(1, 100)),
                    "LMT", Decimal(rng.randint(100, 50000)) * Decimal("0.01"),
                    tif=rng.choice(("DAY", "GTC")),
                )
            )  # fmt: skip
        completed = [
            CompletedOrder(
                next(perm_ids), rng.choice((0, 1, 2)), rng.choice(held), "BUY", Decimal(10),
                _today(14, 0) - timedelta(minutes=i), filled_quantity=Decimal(10),
            )
            for i in range(completed_orders_per_account)
        ]  # fmt: skip
        fills = [
            Execution(
                f"0000sim.{next(exec_seq):08x}.01.01", rng.choice(held), 1, 1, next(perm_ids),
                _today(14, 0) - timedelta(minutes=i), rng.choice(("BOT", "SLD")), Decimal(10),
                Decimal(rng.randint(100, 50000)) * Decimal("0.01"), Decimal("1.00"),
            )
            for i in range(executions_per_account)
        ]  # fmt: skip
        out.append(
            _account(
                f"{prefix}{1_000_000 + n}",
                positions,
                {"USD": Decimal(rng.randint(10_000, 1_000_000))},
                fx,
                open_orders=orders,
                completed_orders=completed,
                executions=fills,
            )
        )
    return GatewayState(out, next_order_id=100_000)
