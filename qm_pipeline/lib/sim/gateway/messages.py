"""Gateway -> client message layouts, per negotiated server version (TWS_PROTOCOL.md §1.4-1.5).

Each function returns the field list of one message; `wire.frame` turns it into bytes.
The layouts are checked field by field against the decoders of ib_async 2.1 and
ib_insync 0.9.86: a misaligned field is not an error on the client side, it is a message
that is silently dropped, so every count here matters.

Version deltas handled: ERROR's advancedOrderRejectJson (>= 166), CONTRACT_DATA's
version/mdSizeMultiplier (< 164) and size increments (163, >= 164), OPEN_ORDER and
COMPLETED_ORDER's faProfile (< 177) and tails (159, 160, 162, 170), EXECUTION_DATA's
pendingPriceRevision (>= 178). Market data (snapshots with IB's option model) and daily
historical bars use the layouts of servers below 196, the newest spoken here.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from qm_pipeline.lib.sim.gateway.ids import Out
from qm_pipeline.lib.sim.gateway.state import (
    AccountValue,
    Bar,
    CompletedOrder,
    Execution,
    Instrument,
    OpenOrder,
    OptionModel,
    Position,
)
from qm_pipeline.lib.sim.gateway.wire import UNSET_DOUBLE, Field

MIN_SERVER_VERSION = 157
"""Oldest layout spoken; ib_insync and ib_async refuse anything older (TWS 972)."""
MAX_SERVER_VERSION = 178
"""Newest layout spoken (ib_async 2.1's maximum)."""

Msg = list[Field]


def _price(value: Decimal | None) -> Field:
    """An optional price: unset doubles travel as IB's max-double text."""
    return UNSET_DOUBLE if value is None else value


def _tws_time(when: datetime, tz: str) -> str:
    """`20240115 15:31:02 US/Eastern`: the explicit-zone form both clients turn into UTC."""
    return f"{when.astimezone(ZoneInfo(tz)):%Y%m%d %H:%M:%S} {tz}"


def contract_fields(inst: Instrument, *, primary_exchange: bool = False) -> Msg:
    """conId..tradingClass (11 fields), shared by positions, portfolio, orders and fills.

    PORTFOLIO_VALUE carries primaryExchange in the slot where the others carry exchange.
    """
    return [
        inst.conid,
        inst.symbol,
        inst.sec_type,
        inst.expiry,
        inst.strike if inst.strike is not None else 0,
        inst.right,
        inst.multiplier,
        inst.primary_exchange if primary_exchange else inst.exchange,
        inst.currency,
        inst.local_symbol,
        inst.trading_class,
    ]


def server_hello(server_version: int, connected_at: datetime) -> Msg:
    """Handshake reply: exactly two fields, which is how the client recognises it."""
    return [server_version, f"{connected_at:%Y%m%d %H:%M:%S} UTC"]


def managed_accounts(accounts: list[str]) -> Msg:
    return [Out.MANAGED_ACCTS, 1, ",".join(accounts)]


def next_valid_id(order_id: int) -> Msg:
    return [Out.NEXT_VALID_ID, 1, order_id]


def error(sv: int, req_id: int, code: int, text: str, advanced_reject_json: str = "") -> Msg:
    """ERROR; from 166 on the client unpacks a trailing advancedOrderRejectJson (may be empty)."""
    msg: Msg = [Out.ERR_MSG, 2, req_id, code, text]
    if sv >= 166:
        msg.append(advanced_reject_json)
    return msg


def current_time(epoch_seconds: int) -> Msg:
    return [Out.CURRENT_TIME, 1, epoch_seconds]


def acct_value(account_id: str, value: AccountValue) -> Msg:
    return [Out.ACCT_VALUE, 2, value.tag, value.value, value.currency, account_id]


def portfolio_value(account_id: str, pos: Position) -> Msg:
    """Exactly 20 fields (ib_insync unpacks a fixed tuple)."""
    return [
        Out.PORTFOLIO_VALUE,
        8,
        *contract_fields(pos.instrument, primary_exchange=True),
        pos.quantity,
        pos.market_price,
        pos.market_value,
        pos.avg_cost,
        pos.unrealized_pnl,
        pos.realized_pnl,
        account_id,
    ]


def acct_update_time(when: datetime) -> Msg:
    return [Out.ACCT_UPDATE_TIME, 1, f"{when:%H:%M}"]


def acct_download_end(account_id: str) -> Msg:
    return [Out.ACCT_DOWNLOAD_END, 1, account_id]


def account_update_multi(req_id: int, account_id: str, model: str, value: AccountValue) -> Msg:
    return [
        Out.ACCOUNT_UPDATE_MULTI,
        1,
        req_id,
        account_id,
        model,
        value.tag,
        value.value,
        value.currency,
    ]


def account_update_multi_end(req_id: int) -> Msg:
    return [Out.ACCOUNT_UPDATE_MULTI_END, 1, req_id]


def position_data(account_id: str, pos: Position) -> Msg:
    """Exactly 16 fields."""
    return [
        Out.POSITION_DATA,
        3,
        account_id,
        *contract_fields(pos.instrument),
        pos.quantity,
        pos.avg_cost,
    ]


def position_end() -> Msg:
    return [Out.POSITION_END, 1]


def account_summary(req_id: int, account_id: str, value: AccountValue) -> Msg:
    return [Out.ACCOUNT_SUMMARY, 1, req_id, account_id, value.tag, value.value, value.currency]


def account_summary_end(req_id: int) -> Msg:
    return [Out.ACCOUNT_SUMMARY_END, 1, req_id]


def order_status(order: OpenOrder) -> Msg:
    """No version field since 131; the client finds the order by (clientId, orderId)/permId."""
    return [
        Out.ORDER_STATUS,
        order.order_id,
        order.status,
        order.filled,
        order.remaining,
        order.avg_fill_price,
        order.perm_id,
        order.parent_id,
        order.avg_fill_price,
        order.client_id,
        "",
        0,
    ]


def _order_terms(order: OpenOrder | CompletedOrder) -> Msg:
    """action..tif: the six terms both order layouts start with."""
    return [
        order.action,
        order.total_quantity,
        order.order_type,
        _price(order.lmt_price),
        _price(order.aux_price),
        order.tif,
    ]


def open_order(sv: int, account_id: str, order: OpenOrder) -> Msg:
    """OPEN_ORDER: 120 fields at 157, 128 at 176, 127 at 178 (see TWS_PROTOCOL.md §1.5)."""
    msg: Msg = [Out.OPEN_ORDER, order.order_id, *contract_fields(order.instrument)]
    msg += _order_terms(order)
    msg += ["", account_id, "O", 0, order.order_ref, order.client_id, order.perm_id]
    # outsideRth, hidden, discretionaryAmt, goodAfterTime, sharesAllocation, faGroup,
    # faMethod, faPercentage
    msg += [order.outside_rth, 0, 0, "", "", "", "", ""]
    if sv < 177:
        msg.append("")  # faProfile
    # modelCode .. exemptCode
    msg += ["", "", "", "", "", 0, "", -1]
    # auctionStrategy, startingPrice, stockRefPrice, delta, stockRangeLower/Upper
    msg += [0, "", "", "", "", ""]
    # displaySize, blockOrder, sweepToFill, allOrNone, minQty, ocaType, eTradeOnly,
    # firmQuoteOnly, nbboPriceCap, parentId, triggerMethod
    msg += [0, 0, 0, 0, "", 3, 0, 0, "", order.parent_id, 0]
    # volatility, volatilityType, deltaNeutralOrderType (empty: no 8 extras), auxPrice
    msg += ["", "", "", ""]
    # continuousUpdate, referencePriceType, trailStopPrice, trailingPercent, basisPoints,
    # basisPointsType, comboLegsDescrip
    msg += [0, "", "", "", "", "", ""]
    # comboLegCount, orderComboLegCount, smartComboRoutingParamsCount
    msg += [0, 0, 0]
    # scaleInitLevelSize, scaleSubsLevelSize, scalePriceIncrement (empty: no 7 extras),
    # hedgeType (empty: no hedgeParam)
    msg += ["", "", "", ""]
    # optOutSmartRouting, clearingAccount, clearingIntent, notHeld,
    # deltaNeutralContractPresent, algoStrategy (empty: no params)
    msg += [0, "", "", 0, 0, ""]
    # solicited, whatIf, status, 9 margin strings
    msg += [0, 0, order.status, *[""] * 9]
    # commission, minCommission, maxCommission, commissionCurrency, warningText,
    # randomizeSize, randomizePrice
    msg += [UNSET_DOUBLE, UNSET_DOUBLE, UNSET_DOUBLE, "", "", 0, 0]
    # conditionsCount (the PEG BENCH block is absent for other order types)
    msg.append(0)
    # adjustedOrderType, triggerPrice, trailStopPrice, lmtPriceOffset, adjustedStopPrice,
    # adjustedStopLimitPrice, adjustedTrailingAmount, adjustableTrailingUnit
    msg += ["", "", "", "", "", "", "", 0]
    # softDollarTier name/val/displayName, cashQty, dontUseAutoPriceForHedge,
    # isOmsContainer, discretionaryUpToLimitPrice, usePriceMgmtAlgo
    msg += ["", "", "", "", 0, 0, 0, 0]
    msg += _order_tail(sv)
    return msg


def _order_tail(sv: int) -> Msg:
    """duration (159), postToAts (160), autoCancelParent (162): OPEN_ORDER only."""
    tail: Msg = []
    if sv >= 159:
        tail.append("")
    if sv >= 160:
        tail.append("")
    if sv >= 162:
        tail.append(0)
    return tail + _peg_tail(sv)


def _peg_tail(sv: int) -> Msg:
    """minTradeQty, minCompeteSize, competeAgainstBestOffset, midOffsetAtWhole/Half (170)."""
    return ["", "", "", "", ""] if sv >= 170 else []


def open_order_end() -> Msg:
    return [Out.OPEN_ORDER_END, 1]


def completed_order(sv: int, account_id: str, order: CompletedOrder, tz: str) -> Msg:
    """COMPLETED_ORDER: no orderId, no clientId; 97 fields at 176, 96 at 178."""
    msg: Msg = [Out.COMPLETED_ORDER, *contract_fields(order.instrument)]
    msg += _order_terms(order)
    # ocaGroup, account, openClose, origin, orderRef, permId, outsideRth, hidden,
    # discretionaryAmt, goodAfterTime, faGroup, faMethod, faPercentage
    msg += ["", account_id, "O", 0, order.order_ref, order.perm_id, 0, 0, 0, "", "", "", ""]
    if sv < 177:
        msg.append("")  # faProfile
    # modelCode .. exemptCode
    msg += ["", "", "", "", "", 0, "", -1]
    # startingPrice, stockRefPrice, delta, stockRangeLower/Upper, displaySize,
    # sweepToFill, allOrNone, minQty, ocaType, triggerMethod
    msg += ["", "", "", "", "", 0, 0, 0, "", 3, 0]
    # volatility, volatilityType, deltaNeutralOrderType (empty: no 4 extras), auxPrice
    msg += ["", "", "", ""]
    # continuousUpdate, referencePriceType, trailStopPrice, trailingPercent, comboLegsDescrip
    msg += [0, "", "", "", ""]
    # comboLegCount, orderComboLegCount, smartComboRoutingParamsCount
    msg += [0, 0, 0]
    # scaleInitLevelSize, scaleSubsLevelSize, scalePriceIncrement, hedgeType
    msg += ["", "", "", ""]
    # clearingAccount, clearingIntent, notHeld, deltaNeutralContractPresent, algoStrategy
    msg += ["", "", 0, 0, ""]
    # solicited, status, randomizeSize, randomizePrice, conditionsCount
    msg += [0, order.status, 0, 0, 0]
    # trailStopPrice, lmtPriceOffset, cashQty, dontUseAutoPriceForHedge, isOmsContainer,
    # autoCancelDate, filledQuantity, refFuturesConId, autoCancelParent, shareholder,
    # imbalanceOnly, routeMarketableToBbo, parentPermId, completedTime, completedStatus
    msg += ["", "", "", 0, 0, "", order.filled_quantity, 0, 0, "", 0, 0]
    msg += [order.parent_perm_id, _tws_time(order.completed_time, tz), order.completed_status]
    msg += _peg_tail(sv)
    return msg


def completed_orders_end() -> Msg:
    return [Out.COMPLETED_ORDERS_END]


def execution_data(sv: int, req_id: int, account_id: str, exe: Execution, tz: str) -> Msg:
    """31 fields (ib_insync insists on exactly that), 32 from 178 (pendingPriceRevision)."""
    msg: Msg = [Out.EXECUTION_DATA, req_id, exe.order_id, *contract_fields(exe.instrument)]
    msg += [
        exe.exec_id,
        _tws_time(exe.time, tz),
        account_id,
        exe.exchange,
        exe.side,
        exe.shares,
        exe.price,
        exe.perm_id,
        exe.client_id,
        exe.liquidation,
        exe.cum_qty if exe.cum_qty is not None else exe.shares,
        exe.avg_price if exe.avg_price is not None else exe.price,
        exe.order_ref,
        "",
        "",
        "",
        exe.last_liquidity,
    ]
    if sv >= 178:
        msg.append(0)
    return msg


def commission_report(exe: Execution) -> Msg:
    """Exactly 8 fields; must follow the EXECUTION_DATA with the same execId."""
    return [
        Out.COMMISSION_REPORT,
        1,
        exe.exec_id,
        exe.commission,
        exe.commission_currency,
        _price(exe.realized_pnl),
        UNSET_DOUBLE,
        "",
    ]


def exec_details_end(req_id: int) -> Msg:
    return [Out.EXEC_DETAILS_END, 1, req_id]


def pnl(req_id: int, daily: Decimal, unrealized: Decimal, realized: Decimal) -> Msg:
    return [Out.PNL, req_id, daily, unrealized, realized]


def pnl_single(req_id: int, pos: Position | None) -> Msg:
    """Per-position PnL; a conid not held reports position 0 and unset values, as TWS does."""
    if pos is None:
        return [Out.PNL_SINGLE, req_id, 0, UNSET_DOUBLE, UNSET_DOUBLE, UNSET_DOUBLE, UNSET_DOUBLE]
    return [
        Out.PNL_SINGLE,
        req_id,
        pos.quantity,
        pos.daily_pnl,
        pos.unrealized_pnl,
        pos.realized_pnl,
        pos.market_value,
    ]


def market_data_type(req_id: int, kind: int = 1) -> Msg:
    """Which data follows: 1 live, 2 frozen, 3 delayed, 4 delayed frozen."""
    return [Out.MARKET_DATA_TYPE, 1, req_id, kind]


MODEL_TICK = 13
"""modelOptionComputation: IB's own model, what the client files as `modelGreeks`."""


def option_computation(req_id: int, model: OptionModel) -> Msg:
    """TICK_OPTION_COMPUTATION: no version field and a tickAttrib (0: return-based)
    since sv 156, which both clients read."""
    return [
        Out.TICK_OPTION_COMPUTATION,
        req_id,
        MODEL_TICK,
        0,
        model.implied_vol,
        model.delta,
        model.option_price,
        model.pv_dividend,
        model.gamma,
        model.vega,
        model.theta,
        model.underlying_price,
    ]


def tick_snapshot_end(req_id: int) -> Msg:
    return [Out.TICK_SNAPSHOT_END, 1, req_id]


def historical_data(req_id: int, start: str, end: str, bars: list[Bar]) -> Msg:
    """HISTORICAL_DATA: every bar in one message, its start and end as text; no version
    field (sv >= 124) and no separate END message (that came with sv 196)."""
    msg: Msg = [Out.HISTORICAL_DATA, req_id, start, end, len(bars)]
    for bar in bars:
        msg += [f"{bar.day:%Y%m%d}", bar.open, bar.high, bar.low, bar.close, bar.volume,
                bar.wap, bar.count]
    return msg


def contract_data(sv: int, req_id: int, inst: Instrument) -> Msg:
    """CONTRACT_DATA; older servers add a version and the obsolete mdSizeMultiplier."""
    msg: Msg = [Out.CONTRACT_DATA]
    if sv < 164:
        msg.append(8)
    msg += [
        req_id,
        inst.symbol,
        inst.sec_type,
        inst.expiry,
        inst.strike if inst.strike is not None else 0,
        inst.right,
        inst.exchange,
        inst.currency,
        inst.local_symbol,
        inst.market_name,
        inst.trading_class,
        inst.conid,
        inst.min_tick,
    ]
    if sv < 164:
        msg.append(1)  # mdSizeMultiplier
    msg += [
        inst.multiplier,
        inst.order_types,
        inst.valid_exchanges,
        1,  # priceMagnifier
        inst.under_conid,
        inst.long_name,
        inst.primary_exchange,
        inst.contract_month,
        inst.industry,
        inst.category,
        inst.subcategory,
        inst.time_zone_id,
        inst.trading_hours,
        inst.liquid_hours,
        "",  # evRule
        "",  # evMultiplier
        0,  # secIdList count
        1,  # aggGroup
        inst.under_symbol,
        inst.under_sec_type,
        "26,26",  # marketRuleIds
        inst.expiry,  # realExpirationDate
        inst.stock_type,
    ]
    if sv == 163:
        msg.append(1)  # suggestedSizeIncrement
    if sv >= 164:
        msg += [1, 1, 1]  # minSize, sizeIncrement, suggestedSizeIncrement
    return msg


def contract_data_end(req_id: int) -> Msg:
    return [Out.CONTRACT_DATA_END, 1, req_id]
