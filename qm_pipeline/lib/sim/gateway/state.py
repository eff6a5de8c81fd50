"""What the simulated gateway knows about the accounts: plain dataclasses, Decimal money.

Portfolio items, account PnL and per-position PnL are derived from the positions (as TWS
derives them from its own books), so a test states a position once and every message that
mentions it agrees. Account values and summary rows are stated explicitly: they are what
TWS reports, not something the simulator should re-derive (`builders` fills them
consistently for the ready-made states).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

CENT = Decimal("0.01")


@dataclass(frozen=True)
class Instrument:
    """One contract (keyed by `conid`) with the descriptive fields of its contract details."""

    conid: int
    symbol: str
    sec_type: str = "STK"
    expiry: str = ""
    """lastTradeDateOrContractMonth, `YYYYMMDD`."""
    strike: Decimal | None = None
    right: str = ""
    """`C` or `P` for options."""
    multiplier: str = ""
    """As IB sends it (text, e.g. `100`); empty means 1."""
    exchange: str = "SMART"
    primary_exchange: str = ""
    currency: str = "USD"
    local_symbol: str = ""
    trading_class: str = ""
    long_name: str = ""
    industry: str = ""
    category: str = ""
    subcategory: str = ""
    min_tick: Decimal = CENT
    time_zone_id: str = "US/Eastern"
    stock_type: str = ""
    under_conid: int = 0
    under_symbol: str = ""
    under_sec_type: str = ""
    contract_month: str = ""
    market_name: str = ""
    valid_exchanges: str = "SMART,NYSE,NASDAQ,ARCA,BATS,IEX"
    order_types: str = "LMT,MKT,STP,STPLMT,TRAIL"
    trading_hours: str = "20240115:0930-20240115:1600"
    liquid_hours: str = "20240115:0930-20240115:1600"

    @property
    def factor(self) -> Decimal:
        """The multiplier as a number (market value = quantity x price x factor)."""
        return Decimal(self.multiplier) if self.multiplier else Decimal(1)


@dataclass
class Position:
    """A holding; `avg_cost` follows TWS: per share for STK, price x multiplier for OPT."""

    instrument: Instrument
    quantity: Decimal
    avg_cost: Decimal
    market_price: Decimal
    realized_pnl: Decimal = Decimal(0)
    daily_pnl: Decimal = Decimal(0)

    @property
    def market_value(self) -> Decimal:
        return (self.quantity * self.market_price * self.instrument.factor).quantize(CENT)

    @property
    def unrealized_pnl(self) -> Decimal:
        return (self.market_value - self.quantity * self.avg_cost).quantize(CENT)


@dataclass
class OpenOrder:
    """A working order; `client_id` 0 with `order_id` 0 is an order typed into TWS by hand."""

    order_id: int
    perm_id: int
    client_id: int
    instrument: Instrument
    action: str
    total_quantity: Decimal
    order_type: str = "LMT"
    lmt_price: Decimal | None = None
    aux_price: Decimal | None = None
    tif: str = "DAY"
    status: str = "Submitted"
    filled: Decimal = Decimal(0)
    avg_fill_price: Decimal = Decimal(0)
    order_ref: str = ""
    parent_id: int = 0
    outside_rth: bool = False

    @property
    def remaining(self) -> Decimal:
        return self.total_quantity - self.filled


@dataclass
class CompletedOrder:
    """A filled or cancelled order; the wire carries no orderId/clientId for these."""

    perm_id: int
    client_id: int
    """Not sent; decides whether `reqCompletedOrders(apiOnly=True)` includes it (0 = manual)."""
    instrument: Instrument
    action: str
    total_quantity: Decimal
    completed_time: datetime
    order_type: str = "LMT"
    lmt_price: Decimal | None = None
    aux_price: Decimal | None = None
    tif: str = "DAY"
    status: str = "Filled"
    filled_quantity: Decimal = Decimal(0)
    completed_status: str = ""
    order_ref: str = ""
    parent_perm_id: int = 0


@dataclass
class Execution:
    """A fill of today with its commission report; `realized_pnl` None = unset (opening)."""

    exec_id: str
    instrument: Instrument
    order_id: int
    client_id: int
    perm_id: int
    time: datetime
    side: str
    """`BOT` or `SLD`, as TWS spells it."""
    shares: Decimal
    price: Decimal
    commission: Decimal
    commission_currency: str = "USD"
    realized_pnl: Decimal | None = None
    exchange: str = "ISLAND"
    cum_qty: Decimal | None = None
    avg_price: Decimal | None = None
    order_ref: str = ""
    liquidation: int = 0
    last_liquidity: int = 1


@dataclass(frozen=True)
class OptionModel:
    """IB's model values for an option (tick type 13, `modelGreeks` on the client side):
    what a market-data snapshot of an option reports beside its prices."""

    implied_vol: Decimal
    delta: Decimal
    option_price: Decimal
    pv_dividend: Decimal
    gamma: Decimal
    vega: Decimal
    theta: Decimal
    underlying_price: Decimal


@dataclass(frozen=True)
class Bar:
    """One daily bar of the historical-data service."""

    day: date
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    wap: Decimal
    count: int


@dataclass(frozen=True)
class AccountValue:
    """One `(tag, currency)` value; the currency is a code, `BASE`, or empty (e.g. Cushion)."""

    tag: str
    value: str
    currency: str = ""


@dataclass
class AccountState:
    """Everything the gateway reports for one managed account."""

    account_id: str
    base_currency: str = "USD"
    values: list[AccountValue] = field(default_factory=list)
    """ACCT_VALUE / ACCOUNT_UPDATE_MULTI rows, by currency and BASE."""
    summary: list[AccountValue] = field(default_factory=list)
    """ACCOUNT_SUMMARY rows (base currency, or empty for ratios)."""
    positions: list[Position] = field(default_factory=list)
    open_orders: list[OpenOrder] = field(default_factory=list)
    completed_orders: list[CompletedOrder] = field(default_factory=list)
    executions: list[Execution] = field(default_factory=list)

    def position(self, conid: int) -> Position | None:
        return next((p for p in self.positions if p.instrument.conid == conid), None)

    def pnl(self) -> tuple[Decimal, Decimal, Decimal]:
        """Account (daily, unrealized, realized) PnL: the sums over its positions."""
        return (
            sum((p.daily_pnl for p in self.positions), Decimal(0)),
            sum((p.unrealized_pnl for p in self.positions), Decimal(0)),
            sum((p.realized_pnl for p in self.positions), Decimal(0)),
        )


@dataclass
class GatewayState:
    """The managed accounts plus the contract registry that REQ_CONTRACT_DATA answers from.

    Every instrument referenced by a position, order or execution is registered on
    construction; `instruments` may add reference-only contracts (known but not held).
    """

    accounts: list[AccountState]
    instruments: dict[int, Instrument] = field(default_factory=dict)
    next_order_id: int = 1
    next_perm_id: int = 900_000_000
    tws_timezone: str = "US/Eastern"
    """How execution and completion times are spelled on the wire (`... US/Eastern`)."""
    server_time: datetime | None = None
    """REQ_CURRENT_TIME answer; None means the wall clock."""
    option_models: dict[int, OptionModel] = field(default_factory=dict)
    """By conid: what a market-data snapshot reports (options without one get no Greeks)."""
    daily_bars: dict[int, list[Bar]] = field(default_factory=dict)
    """By conid, oldest first: what REQ_HISTORICAL_DATA serves (one series whatever
    `whatToShow` asks: the simulator keeps no separate adjusted or midpoint history)."""

    def __post_init__(self) -> None:
        for account in self.accounts:
            held = itertools.chain(
                account.positions,
                account.open_orders,
                account.completed_orders,
                account.executions,
            )
            for item in held:
                self.instruments.setdefault(item.instrument.conid, item.instrument)

    @property
    def managed_accounts(self) -> list[str]:
        return [a.account_id for a in self.accounts]

    def account(self, account_id: str) -> AccountState | None:
        return next((a for a in self.accounts if a.account_id == account_id), None)

    def open_orders(self) -> list[tuple[str, OpenOrder]]:
        """All working orders of all clients, with their account."""
        return [(a.account_id, o) for a in self.accounts for o in a.open_orders]

    def add_open_order(self, account_id: str, order: OpenOrder) -> None:
        """Book an order placed through the API (PLACE_ORDER)."""
        account = self.account(account_id) or self.accounts[0]
        self.instruments.setdefault(order.instrument.conid, order.instrument)
        account.open_orders.append(order)
        self.next_order_id = max(self.next_order_id, order.order_id + 1)

    def cancel_open_order(
        self, client_id: int, order_id: int, when: datetime
    ) -> tuple[str, OpenOrder] | None:
        """Move an order of this client to the completed orders as Cancelled."""
        for account in self.accounts:
            for order in account.open_orders:
                if (order.client_id, order.order_id) == (client_id, order_id):
                    account.open_orders.remove(order)
                    order.status = "Cancelled"
                    account.completed_orders.append(_cancelled(order, when))
                    return account.account_id, order
        return None

    def new_perm_id(self) -> int:
        self.next_perm_id += 1
        return self.next_perm_id


def _cancelled(order: OpenOrder, when: datetime) -> CompletedOrder:
    return CompletedOrder(
        perm_id=order.perm_id,
        client_id=order.client_id,
        instrument=order.instrument,
        action=order.action,
        total_quantity=order.total_quantity,
        completed_time=when,
        order_type=order.order_type,
        lmt_price=order.lmt_price,
        aux_price=order.aux_price,
        tif=order.tif,
        status="Cancelled",
        filled_quantity=order.filled,
        completed_status="Cancelled by API",
        order_ref=order.order_ref,
    )
