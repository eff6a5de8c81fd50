"""What happens to an account besides trading: cash in and out, income, fees, a split, a transfer.

Schedule (business days, so every spec shows each kind of row):
- an initial deposit on the first day; one more deposit (mid-April) and one withdrawal
  (mid-October) each year;
- a position transferred in by ACATS, with lots that keep their old dates and basis. Odd
  accounts sell none of that stock for a year, so the lots show in the next statement's
  OpenPositions LOT rows (originatingTransactionID the transfer's); even ones trade it
  at once, so the lots' only trace is the CLOSED_LOT rows (open dates, cost) of the FIFO
  sales that consume them: between them the ways IB shows transferred lots;
- dividends on the ex-date holdings, paid with the source country's withholding tax under
  the same actionID;
- the 4-for-1 forward split of the stock bought on day one (`CorporateAction` type FS);
- on a month's first business day: the previous month's broker interest (credit interest on
  positive balances, debit interest on borrowed ones) and the month's market-data fee.

Interest accrues daily on the end-of-day balance (actual/360, weekends counted on the Friday)
and is posted rounded to the cent; the unposted remainder stays accrued. Accruals are
reported in `InterestAccruals` but, like dividends before their pay date, are not part of NAV
here: NAV is cash plus positions.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from qm_pipeline.lib.flex.sample import dates
from qm_pipeline.lib.flex.sample.ids import IdSource
from qm_pipeline.lib.flex.sample.instruments import TRANSFER_STOCK, Instrument, month_abbr
from qm_pipeline.lib.flex.sample.market import Dividend, Market
from qm_pipeline.lib.flex.sample.money import ZERO, cents, derived, floor_to, to_base
from qm_pipeline.lib.flex.sample.portfolio import OpenLot, Portfolio
from qm_pipeline.lib.flex.sample.records import (
    CashRecord,
    CorporateActionRecord,
    DayResult,
    TransferRecord,
)
from qm_pipeline.lib.flex.sample.spec import AccountProfile, SampleSpec

_CREDIT_RATE = {"USD": Decimal("0.0383"), "EUR": Decimal("0.0240")}
_DEBIT_RATE = {"USD": Decimal("0.0683"), "EUR": Decimal("0.0540")}
_WITHHOLDING = {"US": Decimal("0.15"), "DE": Decimal("0.26375"), "FR": Decimal("0.25")}
_MARKET_DATA_FEE = Decimal("-1.50")
_POSTING_TIME = time(20, 20)
# The split and the transfer in are applied before the day's trading (`start_of_day`), so
# their rows are stamped before the open: a replay in time order must see them before that
# day's trades, which already trade the split or transferred shares.
_BEFORE_OPEN = time(8, 0)
_TRANSFER_COUNTERPARTY = "12345678"
_TRANSFER_KEPT = timedelta(days=365)  # by odd accounts


class InterestBook:
    """Accrued, not yet posted, broker interest per currency and side (CREDIT / DEBIT)."""

    def __init__(self) -> None:
        self._accrued: dict[tuple[str, str], Decimal] = {}

    def balance(self, currency: str) -> Decimal:
        return sum((v for (ccy, _), v in self._accrued.items() if ccy == currency), ZERO)

    def accrue(self, cash: dict[str, Decimal], days: int) -> dict[str, Decimal]:
        accrued = {}
        for currency, balance in sorted(cash.items()):
            side, rate = ("CREDIT", _CREDIT_RATE) if balance > 0 else ("DEBIT", _DEBIT_RATE)
            amount = derived(balance * rate[currency] * days / 360)
            if amount:
                key = (currency, side)
                self._accrued[key] = self._accrued.get(key, ZERO) + amount
                accrued[currency] = amount
        return accrued

    def post(self) -> list[tuple[str, str, Decimal]]:
        """(currency, side, amount) to post now; the amounts leave the accrual balance."""
        posted = []
        for (currency, side), balance in sorted(self._accrued.items()):
            amount = cents(balance)
            if amount:
                self._accrued[(currency, side)] = balance - amount
                posted.append((currency, side, amount))
        return posted


class Lifecycle:
    def __init__(
        self,
        spec: SampleSpec,
        market: Market,
        profile: AccountProfile,
        portfolio: Portfolio,
        ids: IdSource,
    ) -> None:
        self._market = market
        self._profile = profile
        self._portfolio = portfolio
        self._ids = ids
        self.interest = InterestBook()
        first = dates.on_or_after(spec.start)
        self._deposits = {first: profile.initial_deposit}
        self._withdrawals = set()
        for year in range(spec.start.year, spec.end.year + 1):
            april, october = (dates.on_or_after(date(year, m, 15)) for m in (4, 10))
            if april > first:
                self._deposits[april] = profile.initial_deposit / 10
            self._withdrawals.add(october)
        span = spec.end - spec.start
        self._transfer_day = dates.on_or_after(
            spec.start + span * 3 // 20 + timedelta(days=profile.index)
        )
        self._dividends_by_ex: dict[date, list[Dividend]] = defaultdict(list)
        for dividend in market.dividends:
            self._dividends_by_ex[dividend.ex_date].append(dividend)
        self._entitled: list[tuple[Dividend, Decimal]] = []
        self._previous: date | None = None

    def start_of_day(self, day: date, result: DayResult, nav: Decimal) -> None:
        """Everything booked before the day's trading, in IB's usual order."""
        if self._previous and day.month != self._previous.month:
            self._post_interest(result, self._previous)
            self._charge_fees(result, day)
        if day in self._deposits:
            self._cash(result, "Deposits/Withdrawals", self._profile.base_currency,
                       self._deposits[day], "CASH RECEIPTS / ELECTRONIC FUND TRANSFERS",
                       "deposits", time(12, 0))
        if day == self._market.split.ex_date:
            self._split(result, day)
        self._dividends(result, day)
        if day == self._transfer_day:
            self._transfer_in(result, day)
        if day in self._withdrawals:
            self._withdraw(result, nav)
        self._previous = day

    def end_of_day(self, day: date, result: DayResult) -> None:
        days = (dates.on_or_after(day + timedelta(days=1)) - day).days
        result.interest_accrued = self.interest.accrue(self._portfolio.cash, days)

    def _cash(
        self,
        result: DayResult,
        kind: str,
        currency: str,
        amount: Decimal,
        description: str,
        line: str,
        at: time = _POSTING_TIME,
        *,
        instrument: Instrument | None = None,
        action_id: str = "",
        ex_date: date | None = None,
    ) -> None:
        self._portfolio.post(currency, line, amount)
        result.cash.append(
            CashRecord(
                kind=kind,
                currency=currency,
                amount=amount,
                description=description,
                when=datetime.combine(result.day, at),
                settle=result.day,
                transaction_id=self._ids.transaction(),
                fx_rate=result.rates[currency],
                instrument=instrument,
                action_id=action_id,
                ex_date=ex_date,
            )
        )

    def _post_interest(self, result: DayResult, accrual_day: date) -> None:
        label = f"{month_abbr(accrual_day)}-{accrual_day.year}"
        for currency, side, amount in self.interest.post():
            kind = "Broker Interest Received" if side == "CREDIT" else "Broker Interest Paid"
            self._cash(result, kind, currency, amount, f"{currency} {side} INT FOR {label}",
                       "brokerInterest")
            reversed_ = result.interest_reversed
            reversed_[currency] = reversed_.get(currency, ZERO) - amount

    def _charge_fees(self, result: DayResult, day: date) -> None:
        self._cash(result, "Other Fees", "USD", _MARKET_DATA_FEE,
                   f"NASDAQ (UTP TAPE C) LEVEL 1 FOR {month_abbr(day)} {day.year}", "otherFees")

    def _withdraw(self, result: DayResult, nav: Decimal) -> None:
        base = self._profile.base_currency
        available = max(self._portfolio.cash.get(base, ZERO) / 2, Decimal(1000))
        amount = max(floor_to(min(nav * Decimal("0.04"), available), Decimal(100)), Decimal(100))
        self._cash(result, "Deposits/Withdrawals", base, -amount,
                   f"DISBURSEMENT INITIATED BY {self._profile.name.upper()}", "withdrawals",
                   time(12, 0))

    def _dividends(self, result: DayResult, day: date) -> None:
        for dividend in self._dividends_by_ex.get(day, ()):
            held = self._portfolio.position(dividend.stock.instrument)
            if held > 0:
                self._entitled.append((dividend, held))
        due = [(d, shares) for d, shares in self._entitled if d.pay_date == day]
        self._entitled = [(d, shares) for d, shares in self._entitled if d.pay_date != day]
        for dividend, shares in due:
            instrument = dividend.stock.instrument
            gross = cents(shares * dividend.rate)
            tax = -cents(gross * _WITHHOLDING[instrument.country])
            text = (f"{instrument.symbol}({instrument.isin}) CASH DIVIDEND "
                    f"{instrument.currency} {dividend.rate:.8f} PER SHARE")
            common = {"instrument": instrument, "action_id": dividend.action_id,
                      "ex_date": dividend.ex_date}
            self._cash(result, "Dividends", instrument.currency, gross,
                       f"{text} (Ordinary Dividend)", "dividends", **common)
            self._cash(result, "Withholding Tax", instrument.currency, tax,
                       f"{text} - {instrument.country} TAX", "withholdingTax", **common)

    def _split(self, result: DayResult, day: date) -> None:
        split = self._market.split
        instrument = split.stock.instrument
        added = self._portfolio.split(instrument, split.ratio)
        if not added:
            return
        name = f"{instrument.symbol}({instrument.isin})"
        result.corporate_actions.append(
            CorporateActionRecord(
                kind="FS",
                instrument=instrument,
                when=datetime.combine(day, _BEFORE_OPEN),
                quantity=added,
                value=added * self._market.close(instrument, day),
                description=(f"{name} SPLIT {split.ratio} FOR 1 "
                             f"({instrument.symbol}, {instrument.description}, {instrument.isin})"),
                transaction_id=self._ids.transaction(),
                action_id=str(140_000_000 + int(instrument.conid) % 10_000_000),
                fx_rate=result.rates[instrument.currency],
            )
        )

    def _transfer_in(self, result: DayResult, day: date) -> None:
        """Shares moved in from another broker, with the basis and dates they had there."""
        instrument = TRANSFER_STOCK.instrument
        close = self._market.close(instrument, day)
        transaction_id = self._ids.transaction()
        start = self._market.days[0]
        lots = []
        for years_back, quantity, basis_ratio in ((2, 100, "0.72"), (1, 50, "0.9")):
            opened = dates.on_or_after(start.replace(year=start.year - years_back, day=14))
            basis = cents(close * Decimal(basis_ratio) * quantity)
            lots.append(OpenLot(Decimal(quantity), basis, derived(basis / quantity),
                                datetime.combine(opened, time(10, 15)), transaction_id, ""))
        self._portfolio.receive(instrument, lots)
        quantity = sum((lot.quantity for lot in lots), ZERO)
        if self._profile.index % 2:
            self._portfolio.keep(instrument, None, day + _TRANSFER_KEPT)
        value = quantity * close
        rate = result.rates[instrument.currency]
        pnl = value - sum((lot.cost for lot in lots), ZERO)
        result.transfers.append(
            TransferRecord(
                kind="ACATS",
                direction="IN",
                instrument=instrument,
                when=datetime.combine(day, _BEFORE_OPEN),
                quantity=quantity,
                position_amount=value,
                position_amount_base=to_base(value, rate),
                pnl_amount=pnl,
                pnl_amount_base=to_base(pnl, rate),
                counterparty=_TRANSFER_COUNTERPARTY,
                transaction_id=transaction_id,
                fx_rate=rate,
            )
        )
