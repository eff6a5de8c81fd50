"""What one simulated business day produced, as plain records the writer and summary read.

Records carry values already in IB's signs and quanta (see `money`), so formatting them is
a lookup, never a computation: the writer cannot drift from the simulation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from qm_pipeline.lib.flex.sample.instruments import Instrument
from qm_pipeline.lib.flex.sample.money import ZERO


@dataclass(frozen=True, slots=True)
class ClosedLot:
    """The part of one FIFO lot a closing trade consumed (a `Lot` CLOSED_LOT row)."""

    quantity: Decimal  # signed by the lot's side: long lots positive, short lots negative
    cost: Decimal  # that part of the lot's basis (incl. its opening commission); long +, short -
    realized: Decimal  # its share of the closing net cash minus `cost`
    open_price: Decimal
    opened: datetime
    open_transaction_id: str


@dataclass(frozen=True, slots=True)
class TradeRecord:
    """One execution (`Trade`, levelOfDetail EXECUTION) and the lots it closed."""

    instrument: Instrument
    when: datetime
    settle: date
    transaction_type: str  # ExchTrade or BookTrade
    exchange: str
    order_type: str
    quantity: Decimal  # signed: sells negative
    price: Decimal
    proceeds: Decimal  # -quantity * price * multiplier
    commission: Decimal  # negative
    net_cash: Decimal  # proceeds + commission
    cost: Decimal  # -(basis of the lots closed) + basis of the lot opened
    realized: Decimal  # fifoPnlRealized == sum of the closed lots' realized
    close_price: Decimal
    mtm: Decimal  # (closePrice - tradePrice) * quantity * multiplier
    open_close: str  # O, C or C;O
    notes: str
    transaction_id: str
    trade_id: str
    order_id: str
    exec_id: str
    fx_rate: Decimal
    lots: tuple[ClosedLot, ...]

    @property
    def buy_sell(self) -> str:
        return "BUY" if self.quantity > 0 else "SELL"


@dataclass(frozen=True, slots=True)
class CashRecord:
    """A `CashTransaction` (levelOfDetail DETAIL)."""

    kind: str  # IB's type: Dividends, Withholding Tax, Deposits/Withdrawals, ...
    currency: str
    amount: Decimal
    description: str
    when: datetime
    settle: date
    transaction_id: str
    fx_rate: Decimal
    instrument: Instrument | None = None
    action_id: str = ""
    ex_date: date | None = None


@dataclass(frozen=True, slots=True)
class CorporateActionRecord:
    kind: str  # IB's Reorg code, FS for a forward split
    instrument: Instrument
    when: datetime
    quantity: Decimal  # shares added
    value: Decimal  # their value at the day's close
    description: str
    transaction_id: str
    action_id: str
    fx_rate: Decimal


@dataclass(frozen=True, slots=True)
class TransferRecord:
    """A position transferred in (`Transfer`): valued at the day's close, basis kept."""

    kind: str  # ACATS
    direction: str  # IN
    instrument: Instrument
    when: datetime
    quantity: Decimal
    position_amount: Decimal
    position_amount_base: Decimal
    pnl_amount: Decimal  # value minus the basis it arrives with
    pnl_amount_base: Decimal
    counterparty: str
    transaction_id: str
    fx_rate: Decimal


@dataclass(frozen=True, slots=True)
class OptionEventRecord:
    """An `OptionEAE` row: the option's expiry, assignment or exercise, or the stock delivery."""

    kind: str  # Expiration, Assignment, Exercise (option row) or Buy / Sell (delivery row)
    instrument: Instrument
    day: date
    quantity: Decimal
    trade_price: Decimal
    mark_price: Decimal
    proceeds: Decimal
    commission: Decimal
    cost_basis: Decimal
    realized: Decimal
    mtm: Decimal
    trade_id: str
    fx_rate: Decimal


@dataclass(frozen=True, slots=True)
class Movement:
    """One change of a currency's cash, tagged with its CashReport line."""

    currency: str
    line: str  # a CashReportCurrency attribute: commissions, dividends, netTradesSales, ...
    amount: Decimal


@dataclass(frozen=True)
class Valuation:
    """End-of-day cash and positions in base (`EquitySummaryByReportDateInBase`)."""

    day: date
    rates: dict[str, Decimal]
    cash_by_currency: dict[str, Decimal]
    positions_by_currency: dict[str, Decimal]  # local market value of all positions
    cash_long: Decimal = ZERO
    cash_short: Decimal = ZERO
    stock_long: Decimal = ZERO
    stock_short: Decimal = ZERO
    options_long: Decimal = ZERO
    options_short: Decimal = ZERO

    @property
    def cash(self) -> Decimal:
        return self.cash_long + self.cash_short

    @property
    def stock(self) -> Decimal:
        return self.stock_long + self.stock_short

    @property
    def options(self) -> Decimal:
        return self.options_long + self.options_short

    @property
    def total_long(self) -> Decimal:
        return self.cash_long + self.stock_long + self.options_long

    @property
    def total_short(self) -> Decimal:
        return self.cash_short + self.stock_short + self.options_short

    @property
    def total(self) -> Decimal:
        """NAV in base: cash plus positions marked at the day's close."""
        return self.total_long + self.total_short


@dataclass
class DayResult:
    """Everything that happened to one account on one business day."""

    day: date
    rates: dict[str, Decimal]
    trades: list[TradeRecord] = field(default_factory=list)
    option_events: list[OptionEventRecord] = field(default_factory=list)
    corporate_actions: list[CorporateActionRecord] = field(default_factory=list)
    cash: list[CashRecord] = field(default_factory=list)
    transfers: list[TransferRecord] = field(default_factory=list)
    movements: list[Movement] = field(default_factory=list)
    interest_accrued: dict[str, Decimal] = field(default_factory=dict)
    interest_reversed: dict[str, Decimal] = field(default_factory=dict)
    valuation: Valuation | None = None


@dataclass(frozen=True, slots=True)
class PositionLine:
    """An `OpenPosition` row: SUMMARY once per conid, LOT once per open FIFO lot."""

    level: str  # SUMMARY or LOT
    instrument: Instrument
    day: date
    quantity: Decimal
    mark: Decimal
    value: Decimal  # quantity * mark * multiplier
    cost_basis: Decimal
    cost_price: Decimal  # cost_basis / (quantity * multiplier)
    fx_rate: Decimal
    percent_of_nav: Decimal
    opened: datetime | None = None
    open_transaction_id: str = ""
    open_order_id: str = ""

    @property
    def unrealized(self) -> Decimal:
        return self.value - self.cost_basis

    @property
    def side(self) -> str:
        return "Long" if self.quantity > 0 else "Short"
