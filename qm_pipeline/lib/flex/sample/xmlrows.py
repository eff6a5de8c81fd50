"""Flex XML rows: one function per element, with IB's attribute names and value formats.

Names are the ones ibflex's dataclasses declare (the project's registry of real Flex names)
and the layout follows real exports in shared/flex_corpus: dates `yyyyMMdd`, date-times
`yyyyMMdd;HHmmss`, decimals without exponent or trailing zeros, "" for absent values,
`multiplier="0"` on cash rows that name no security. Free text goes through `escape`.
`Trade` and `Lot` rows are most of a large file, so they are f-strings over parts cached
per account and instrument; the rarer rows use the generic `element`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from functools import cache, lru_cache
from html import escape as _html_escape

from qm_pipeline.lib.flex.sample.instruments import Instrument
from qm_pipeline.lib.flex.sample.records import (
    CashRecord,
    ClosedLot,
    CorporateActionRecord,
    OptionEventRecord,
    PositionLine,
    TradeRecord,
    TransferRecord,
    Valuation,
)
from qm_pipeline.lib.flex.sample.spec import AccountProfile

Value = str | int | Decimal | date | datetime | None


def escape(text: str) -> str:
    """Attribute-safe text: &, <, >, " and ' become entities."""
    return _html_escape(text, quote=True)


def num(value: Decimal) -> str:
    """IB's decimal form: plain notation, no trailing zeros, "0" for zero (never "-0")."""
    if not value:
        return "0"
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


@lru_cache(maxsize=8192)
def stamp(day: date | None) -> str:
    return f"{day.year:04d}{day.month:02d}{day.day:02d}" if day else ""


def stamp_time(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return f"{stamp(moment.date())};{moment.hour:02d}{moment.minute:02d}{moment.second:02d}"


def _text(value: Value) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return num(value)
    if isinstance(value, datetime):
        return stamp_time(value)
    if isinstance(value, date):
        return stamp(value)
    return escape(str(value))


def element(tag: str, attributes: Iterable[tuple[str, Value]], *static: str) -> str:
    """`<tag a="..." .../>` with values formatted by type; `static` parts go in verbatim."""
    parts = [f'{name}="{_text(value)}"' for name, value in attributes]
    return f"<{tag} {' '.join([*static, *parts])} />\n"


@cache
def account(profile: AccountProfile) -> str:
    return f'accountId="{escape(profile.account_id)}" acctAlias="{escape(profile.alias)}" model=""'


@cache
def security(instrument: Instrument) -> str:
    """The attributes every row about a security repeats (its description apart)."""
    under = instrument.underlying
    return " ".join(
        f'{name}="{_text(value)}"'
        for name, value in (
            ("assetCategory", instrument.category),
            ("subCategory", instrument.put_call if instrument.is_option else "COMMON"),
            ("symbol", instrument.symbol),
            ("conid", instrument.conid),
            ("securityID", instrument.isin),
            ("securityIDType", "ISIN" if instrument.isin else ""),
            ("cusip", instrument.cusip),
            ("isin", instrument.isin),
            ("figi", ""),
            ("listingExchange", instrument.listing_exchange),
            ("underlyingConid", under.conid if under else ""),
            ("underlyingSymbol", under.symbol if under else ""),
            ("underlyingSecurityID", under.isin if under else ""),
            ("underlyingListingExchange", under.listing_exchange if under else ""),
            ("issuer", ""),
            ("issuerCountryCode", instrument.country),
            ("multiplier", instrument.multiplier),
            ("strike", instrument.strike),
            ("expiry", instrument.expiry),
            ("putCall", instrument.put_call),
            ("principalAdjustFactor", ""),
        )
    )


@cache
def described(instrument: Instrument) -> str:
    return f'{security(instrument)} description="{escape(instrument.description)}"'


# A cash row that names no security: IB prints the same attributes empty, multiplier 0.
_NO_SECURITY = (
    'assetCategory="" subCategory="" symbol="" conid="" securityID="" securityIDType="" '
    'cusip="" isin="" figi="" listingExchange="" underlyingConid="" underlyingSymbol="" '
    'underlyingSecurityID="" underlyingListingExchange="" issuer="" issuerCountryCode="" '
    'multiplier="0" strike="" expiry="" putCall="" principalAdjustFactor=""'
)
_TRAILER = 'serialNumber="" deliveryType="" commodityType="" fineness="0.0" weight="0.0"'


@cache
def _priced(acct: str, instrument: Instrument) -> str:
    return f'{acct} currency="{instrument.currency}"'


def statement_open(
    profile: AccountProfile, start: date, end: date, generated: datetime
) -> str:
    return (
        f'<FlexStatement accountId="{escape(profile.account_id)}" fromDate="{stamp(start)}" '
        f'toDate="{stamp(end)}" period="" whenGenerated="{stamp_time(generated)}">\n'
    )


def account_information(profile: AccountProfile) -> str:
    return element("AccountInformation", (
        ("currency", profile.base_currency),
        ("name", profile.name),
        ("accountType", "Individual"),
        ("customerType", "Individual"),
        ("accountCapabilities", "Margin"),
        ("tradingPermissions", "Stocks,Options,Forex"),
        ("dateOpened", profile.date_opened),
        ("dateFunded", profile.date_opened),
        ("dateClosed", ""),
        ("street", f"{profile.index + 1} Harbour Street"),
        ("street2", ""),
        ("city", profile.city),
        ("state", ""),
        ("country", profile.country),
        ("postalCode", f"{1000 + profile.index * 7}"),
        ("masterName", ""),
        ("ibEntity", "IBIE"),
        ("primaryEmail", f"{profile.account_id.lower()}@example.com"),
    ), account(profile))


def equity_summary(profile: AccountProfile, valuation: Valuation) -> str:
    return element("EquitySummaryByReportDateInBase", (
        ("currency", profile.base_currency),
        ("reportDate", valuation.day),
        ("cash", valuation.cash),
        ("cashLong", valuation.cash_long),
        ("cashShort", valuation.cash_short),
        ("stock", valuation.stock),
        ("stockLong", valuation.stock_long),
        ("stockShort", valuation.stock_short),
        ("options", valuation.options),
        ("optionsLong", valuation.options_long),
        ("optionsShort", valuation.options_short),
        ("bonds", "0"),
        ("funds", "0"),
        ("interestAccruals", "0"),
        ("dividendAccruals", "0"),
        ("total", valuation.total),
        ("totalLong", valuation.total_long),
        ("totalShort", valuation.total_short),
    ), account(profile))


def change_in_nav(
    profile: AccountProfile, start: date, end: date, fields: dict[str, Decimal]
) -> str:
    return element(
        "ChangeInNAV",
        (("currency", profile.base_currency), ("fromDate", start), ("toDate", end),
         *fields.items()),
        account(profile),
    )


def cash_report(
    profile: AccountProfile, start: date, end: date, currency: str, level: str,
    fields: dict[str, Decimal],
) -> str:
    return element(
        "CashReportCurrency",
        (("currency", currency), ("levelOfDetail", level), ("fromDate", start), ("toDate", end),
         *fields.items()),
        account(profile),
    )


def interest_accrual(
    profile: AccountProfile, start: date, end: date, currency: str, fields: dict[str, Decimal]
) -> str:
    return element(
        "InterestAccrualsCurrency",
        (("currency", currency), ("fromDate", start), ("toDate", end), *fields.items()),
        account(profile),
    )


def open_position(profile: AccountProfile, line: PositionLine) -> str:
    return element("OpenPosition", (
        ("fxRateToBase", line.fx_rate),
        ("reportDate", line.day),
        ("position", line.quantity),
        ("markPrice", line.mark),
        ("positionValue", line.value),
        ("openPrice", line.cost_price),
        ("costBasisPrice", line.cost_price),
        ("costBasisMoney", line.cost_basis),
        ("percentOfNAV", line.percent_of_nav),
        ("fifoPnlUnrealized", line.unrealized),
        ("side", line.side),
        ("levelOfDetail", line.level),
        ("openDateTime", line.opened),
        ("holdingPeriodDateTime", line.opened),
        ("vestingDate", ""),
        ("code", ""),
        ("originatingOrderID", line.open_order_id),
        ("originatingTransactionID", line.open_transaction_id),
        ("accruedInt", ""),
    ), _priced(account(profile), line.instrument), described(line.instrument))


def trade(acct: str, record: TradeRecord) -> str:
    """A `Trade` row (levelOfDetail EXECUTION)."""
    instrument = record.instrument
    when = stamp_time(record.when)
    day = when[:8]
    executed = record.transaction_type == "ExchTrade"
    return (
        f"<Trade {_priced(acct, instrument)} fxRateToBase=\"{num(record.fx_rate)}\" "
        f"{described(instrument)} tradeID=\"{record.trade_id}\" relatedTradeID=\"\" "
        f"reportDate=\"{day}\" dateTime=\"{when}\" tradeDate=\"{day}\" "
        f"settleDateTarget=\"{stamp(record.settle)}\" "
        f"transactionType=\"{record.transaction_type}\" exchange=\"{record.exchange}\" "
        f"quantity=\"{num(record.quantity)}\" tradePrice=\"{num(record.price)}\" "
        f"tradeMoney=\"{num(-record.proceeds)}\" proceeds=\"{num(record.proceeds)}\" taxes=\"0\" "
        f"ibCommission=\"{num(record.commission)}\" ibCommissionCurrency=\"{instrument.currency}\" "
        f"netCash=\"{num(record.net_cash)}\" closePrice=\"{num(record.close_price)}\" "
        f"openCloseIndicator=\"{record.open_close}\" notes=\"{record.notes}\" "
        f"cost=\"{num(record.cost)}\" fifoPnlRealized=\"{num(record.realized)}\" fxPnl=\"0\" "
        f"mtmPnl=\"{num(record.mtm)}\" origTradePrice=\"0\" origTradeDate=\"\" origTradeID=\"\" "
        f"origOrderID=\"0\" origTransactionID=\"0\" buySell=\"{record.buy_sell}\" "
        f"clearingFirmID=\"\" ibOrderID=\"{record.order_id}\" "
        f"transactionID=\"{record.transaction_id}\" ibExecID=\"{record.exec_id}\" "
        f"relatedTransactionID=\"\" rtn=\"\" brokerageOrderID=\"\" orderReference=\"\" "
        f"volatilityOrderLink=\"\" exchOrderId=\"N/A\" "
        f"extExecID=\"{record.exec_id.upper() if executed else 'N/A'}\" "
        f"orderTime=\"{when if executed else ''}\" openDateTime=\"\" holdingPeriodDateTime=\"\" "
        f"whenRealized=\"\" whenReopened=\"\" levelOfDetail=\"EXECUTION\" changeInPrice=\"0\" "
        f"changeInQuantity=\"0\" orderType=\"{record.order_type}\" traderID=\"\" "
        f"isAPIOrder=\"N\" accruedInt=\"0\" initialInvestment=\"\" positionActionID=\"\" "
        f"{_TRAILER} />\n"
    )


def lot(acct: str, record: TradeRecord, closed: ClosedLot) -> str:
    """A `Lot` row (CLOSED_LOT): the opening side of a lot the closing `record` consumed.

    It repeats the closing trade's transactionID, tradeID and dates; `quantity`, `cost` and
    `tradePrice` describe the lot (signed by the lot's side: long lots positive), and
    `buySell` is the closing direction.
    """
    instrument = record.instrument
    when = stamp_time(record.when)
    opened = stamp_time(closed.opened)
    return (
        f"<Lot {_priced(acct, instrument)} fxRateToBase=\"{num(record.fx_rate)}\" "
        f"{described(instrument)} tradeID=\"{record.trade_id}\" reportDate=\"{when[:8]}\" "
        f"dateTime=\"{when}\" tradeDate=\"{when[:8]}\" "
        f"transactionType=\"{record.transaction_type}\" exchange=\"{record.exchange}\" "
        f"quantity=\"{num(closed.quantity)}\" tradePrice=\"{num(closed.open_price)}\" "
        f"closePrice=\"{num(record.close_price)}\" openCloseIndicator=\"C\" notes=\"\" "
        f"cost=\"{num(closed.cost)}\" fifoPnlRealized=\"{num(closed.realized)}\" "
        f"buySell=\"{record.buy_sell}\" ibOrderID=\"{record.order_id}\" "
        f"transactionID=\"{record.transaction_id}\" openDateTime=\"{opened}\" "
        f"holdingPeriodDateTime=\"{opened}\" levelOfDetail=\"CLOSED_LOT\" />\n"
    )


def option_event(profile: AccountProfile, record: OptionEventRecord) -> str:
    return element("OptionEAE", (
        ("fxRateToBase", record.fx_rate),
        ("date", record.day),
        ("transactionType", record.kind),
        ("quantity", record.quantity),
        ("tradePrice", record.trade_price),
        ("markPrice", record.mark_price),
        ("proceeds", record.proceeds),
        ("commisionsAndTax", record.commission),  # sic: IB's spelling
        ("costBasis", record.cost_basis),
        ("realizedPnl", record.realized),
        ("fxPnl", "0"),
        ("mtmPnl", record.mtm),
        ("tradeID", record.trade_id),
    ), _priced(account(profile), record.instrument), described(record.instrument))


def corporate_action(profile: AccountProfile, record: CorporateActionRecord) -> str:
    return element("CorporateAction", (
        ("fxRateToBase", record.fx_rate),
        ("description", record.description),
        ("reportDate", record.when.date()),
        ("dateTime", record.when),
        ("actionDescription", record.description),
        ("amount", "0"),
        ("proceeds", "0"),
        ("value", record.value),
        ("quantity", record.quantity),
        ("fifoPnlRealized", "0"),
        ("mtmPnl", "0"),
        ("code", ""),
        ("type", record.kind),
        ("transactionID", record.transaction_id),
        ("actionID", record.action_id),
        ("levelOfDetail", "DETAIL"),
    ), _priced(account(profile), record.instrument), security(record.instrument))


def cash_transaction(profile: AccountProfile, record: CashRecord) -> str:
    # The row's own description (dividend text, fee text) stands for the security's name.
    about = security(record.instrument) if record.instrument else _NO_SECURITY
    return element("CashTransaction", (
        ("fxRateToBase", record.fx_rate),
        ("description", record.description),
        ("dateTime", record.when),
        ("settleDate", record.settle),
        ("availableForTradingDate", ""),
        ("amount", record.amount),
        ("type", record.kind),
        ("tradeID", ""),
        ("code", ""),
        ("transactionID", record.transaction_id),
        ("reportDate", record.when.date()),
        ("exDate", record.ex_date),
        ("clientReference", ""),
        ("actionID", record.action_id),
        ("levelOfDetail", "DETAIL"),
    ), f'{account(profile)} currency="{record.currency}"', about, _TRAILER)


def transfer(profile: AccountProfile, record: TransferRecord) -> str:
    return element("Transfer", (
        ("fxRateToBase", record.fx_rate),
        ("reportDate", record.when.date()),
        ("date", record.when.date()),
        ("dateTime", record.when),
        ("settleDate", record.when.date()),
        ("type", record.kind),
        ("direction", record.direction),
        ("company", "--"),
        ("account", record.counterparty),
        ("accountName", ""),
        ("deliveringBroker", ""),
        ("quantity", record.quantity),
        ("transferPrice", "0"),
        ("positionAmount", record.position_amount),
        ("positionAmountInBase", record.position_amount_base),
        ("pnlAmount", record.pnl_amount),
        ("pnlAmountInBase", record.pnl_amount_base),
        ("fxPnl", "0"),
        ("cashTransfer", "0"),
        ("code", ""),
        ("clientReference", ""),
        ("transactionID", record.transaction_id),
        ("levelOfDetail", "TRANSFER"),
    ), _priced(account(profile), record.instrument), described(record.instrument), _TRAILER)


def security_info(instrument: Instrument) -> str:
    return element("SecurityInfo", (
        ("maturity", ""),
        ("issueDate", ""),
        ("underlyingCategory", "STK" if instrument.is_option else ""),
        ("settlementPolicyMethod", "Delivery" if instrument.is_option else ""),
        ("code", ""),
    ), f'currency="{instrument.currency}"', described(instrument))


def conversion_rate(day: date, currency: str, base: str, rate: Decimal) -> str:
    return element("ConversionRate", (
        ("reportDate", day), ("fromCurrency", currency), ("toCurrency", base), ("rate", rate),
    ))
