"""The snapshot's tables: column lists, and rows built from the client's objects.

Money and quantities leave here as `Decimal`, converted from the client's floats through
their shortest repr (`Decimal(repr(x))`), never through float arithmetic; NaN, infinities
and IB's unset double become None. Contracts are keyed by conid, never by symbol.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from qm_pipeline.lib.ib.client import util

Row = dict[str, Any]

UNSET_DOUBLE = 1.7976931348623157e308
_UNSET_TEXT_VALUE = Decimal(repr(UNSET_DOUBLE))
PAPER_PREFIXES = ("DU", "DF")
"""IB paper accounts are `DU...` (individual) or `DF...` (advisor master); live ones `U`/`F`."""

CONTRACT_COLUMNS = (
    "conid",
    "symbol",
    "sec_type",
    "expiry",
    "strike",
    "right",
    "multiplier",
    "currency",
    "local_symbol",
    "trading_class",
)

# What an order asks for, shared by open and completed orders.
ORDER_TERMS = ("conid", "symbol", "sec_type", "action", "total_quantity", "order_type",
               "lmt_price", "aux_price", "tif")

TABLES: dict[str, tuple[str, ...]] = {
    "snapshots": (
        "snapshot_id",
        "taken_at",
        "host",
        "port",
        "client_id",
        "accounts",
        "library",
        "library_version",
        "server_version",
        "server_time",
        "attempts",
    ),
    "accounts": ("account_id", "is_paper", "account_type", "base_currency"),
    "account_values": ("account_id", "tag", "currency", "value", "value_decimal"),
    "account_summary": ("account_id", "tag", "currency", "value", "value_decimal"),
    "portfolio_items": (
        "account_id",
        *CONTRACT_COLUMNS,
        "primary_exchange",
        "position",
        "market_price",
        "market_value",
        "average_cost",
        "unrealized_pnl",
        "realized_pnl",
    ),
    "positions": ("account_id", *CONTRACT_COLUMNS, "exchange", "position", "avg_cost"),
    "open_orders": (
        "account_id",
        "order_id",
        "perm_id",
        "client_id",
        "parent_id",
        *ORDER_TERMS,
        "outside_rth",
        "status",
        "filled",
        "remaining",
        "avg_fill_price",
        "order_ref",
    ),
    "completed_orders": (
        "perm_id",
        "account_id",
        *ORDER_TERMS,
        "status",
        "filled_quantity",
        "completed_time",
        "completed_time_text",
        "completed_status",
        "order_ref",
        "parent_perm_id",
    ),
    "executions": (
        "ib_exec_id",
        "account_id",
        "conid",
        "symbol",
        "sec_type",
        "time",
        "side",
        "shares",
        "price",
        "exchange",
        "perm_id",
        "order_id",
        "client_id",
        "cum_qty",
        "avg_price",
        "order_ref",
        "liquidation",
        "last_liquidity",
        "commission",
        "commission_currency",
        "realized_pnl",
    ),
    "pnl": (
        "account_id",
        "conid",
        "daily_pnl",
        "unrealized_pnl",
        "realized_pnl",
        "position",
        "value",
    ),
    "contract_details": (
        *CONTRACT_COLUMNS,
        "exchange",
        "primary_exchange",
        "long_name",
        "industry",
        "category",
        "subcategory",
        "min_tick",
        "time_zone_id",
        "stock_type",
        "under_conid",
        "under_symbol",
        "contract_month",
    ),
    "option_greeks": (
        *CONTRACT_COLUMNS,
        "market_data_type",
        "implied_vol",
        "delta",
        "gamma",
        "vega",
        "theta",
        "option_price",
        "underlying_price",
        "pv_dividend",
        "note",
    ),
}
"""Table -> columns, in order: the one declaration of the snapshot's shape."""

GREEKS = ("implied_vol", "delta", "gamma", "vega", "theta")
"""Model outputs, kept as the floats IB computes them in (prices beside them are Decimal)."""


def dec(x: float | Decimal | None) -> Decimal | None:
    """A client number as Decimal via its shortest repr; NaN, inf and IB's unset give None."""
    if x is None or isinstance(x, Decimal):
        return x
    if isinstance(x, int):
        return Decimal(x)
    if math.isnan(x) or math.isinf(x) or abs(x) >= UNSET_DOUBLE:
        return None
    return Decimal(repr(x))


def text_decimal(text: str) -> Decimal | None:
    """The numeric reading of an account value's text, or None (`INDIVIDUAL`, unset, ...)."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return value if value.is_finite() and abs(value) < _UNSET_TEXT_VALUE else None


def is_paper(account_id: str) -> bool:
    return account_id.startswith(PAPER_PREFIXES)


def _opt(text: str) -> str | None:
    return text or None


def contract_columns(c: Any) -> Row:
    """Identity of a contract; the empty strings and zero strike of a stock become None."""
    return {
        "conid": c.conId,
        "symbol": c.symbol,
        "sec_type": c.secType,
        "expiry": _opt(c.lastTradeDateOrContractMonth),
        "strike": dec(c.strike) if c.strike else None,
        "right": _opt(c.right),
        "multiplier": text_decimal(c.multiplier) if c.multiplier else None,
        "currency": c.currency,
        "local_symbol": _opt(c.localSymbol),
        "trading_class": _opt(c.tradingClass),
    }


def account_value_row(v: Any) -> Row:
    return {
        "account_id": v.account,
        "tag": v.tag,
        "currency": v.currency,
        "value": v.value,
        "value_decimal": text_decimal(v.value),
    }


def account_row(account_id: str, values: list[Row]) -> Row:
    """Paper or live, from the account id (IB has no flag for it); type and base currency
    from the account's own values."""
    by_tag = {v["tag"]: v for v in values}
    net_liq = by_tag.get("NetLiquidation")
    account_type = by_tag.get("AccountType")
    return {
        "account_id": account_id,
        "is_paper": is_paper(account_id),
        "account_type": account_type["value"] if account_type else None,
        "base_currency": net_liq["currency"] if net_liq else None,
    }


def portfolio_row(item: Any) -> Row:
    return {
        "account_id": item.account,
        **contract_columns(item.contract),
        "primary_exchange": _opt(item.contract.primaryExchange),
        "position": dec(item.position),
        "market_price": dec(item.marketPrice),
        "market_value": dec(item.marketValue),
        "average_cost": dec(item.averageCost),
        "unrealized_pnl": dec(item.unrealizedPNL),
        "realized_pnl": dec(item.realizedPNL),
    }


def position_row(pos: Any) -> Row:
    return {
        "account_id": pos.account,
        **contract_columns(pos.contract),
        "exchange": _opt(pos.contract.exchange),
        "position": dec(pos.position),
        "avg_cost": dec(pos.avgCost),
    }


def open_order_row(trade: Any) -> Row:
    o, s, c = trade.order, trade.orderStatus, trade.contract
    return {
        "account_id": o.account,
        "order_id": o.orderId,
        "perm_id": o.permId,
        "client_id": o.clientId,
        "parent_id": o.parentId or None,
        **order_terms(o, c),
        "outside_rth": o.outsideRth,
        "status": s.status,
        "filled": dec(s.filled),
        "remaining": dec(s.remaining),
        "avg_fill_price": dec(s.avgFillPrice),
        "order_ref": _opt(o.orderRef),
    }


def order_terms(o: Any, c: Any) -> Row:
    """The `ORDER_TERMS` columns of an order and its contract."""
    return {
        "conid": c.conId,
        "symbol": c.symbol,
        "sec_type": c.secType,
        "action": o.action,
        "total_quantity": dec(o.totalQuantity),
        "order_type": o.orderType,
        "lmt_price": dec(o.lmtPrice),
        "aux_price": dec(o.auxPrice),
        "tif": o.tif,
    }


def completed_order_row(trade: Any, state: Any | None) -> Row:
    """`state` is the OrderState the client received but does not keep on the Trade."""
    o, c = trade.order, trade.contract
    text = state.completedTime if state is not None else ""
    return {
        "perm_id": o.permId,
        "account_id": o.account,
        **order_terms(o, c),
        "status": trade.orderStatus.status,
        "filled_quantity": dec(o.filledQuantity),
        "completed_time": ib_time(text),
        "completed_time_text": _opt(text),
        "completed_status": _opt(state.completedStatus) if state is not None else None,
        "order_ref": _opt(o.orderRef),
        "parent_perm_id": o.parentPermId or None,
    }


def ib_time(text: str) -> datetime | None:
    """An IB timestamp with its zone (`20240115 15:31:02 US/Eastern`) in UTC; None if the
    text is empty or carries no zone (a naive time would be a guess)."""
    try:
        parsed = util.parseIBDatetime(text) if text else None
    except ValueError:
        return None
    if not isinstance(parsed, datetime) or parsed.tzinfo is None:
        return None
    return parsed.astimezone(UTC)


def execution_row(fill: Any, report: Any) -> Row:
    """A fill joined to the commission report the client filed under the same execId."""
    e, c = fill.execution, fill.contract
    has_report = report is not None and report.execId == e.execId
    return {
        "ib_exec_id": e.execId,
        "account_id": e.acctNumber,
        "conid": c.conId,
        "symbol": c.symbol,
        "sec_type": c.secType,
        "time": e.time.astimezone(UTC),
        "side": e.side,
        "shares": dec(e.shares),
        "price": dec(e.price),
        "exchange": e.exchange,
        "perm_id": e.permId,
        "order_id": e.orderId,
        "client_id": e.clientId,
        "cum_qty": dec(e.cumQty),
        "avg_price": dec(e.avgPrice),
        "order_ref": _opt(e.orderRef),
        "liquidation": e.liquidation,
        "last_liquidity": e.lastLiquidity,
        "commission": dec(report.commission) if has_report else None,
        "commission_currency": report.currency if has_report else None,
        "realized_pnl": dec(report.realizedPNL) if has_report else None,
    }


def pnl_row(pnl: Any) -> Row:
    """Account-level PnL: conid, position and value are NULL."""
    return {
        "account_id": pnl.account,
        "conid": None,
        "daily_pnl": dec(pnl.dailyPnL),
        "unrealized_pnl": dec(pnl.unrealizedPnL),
        "realized_pnl": dec(pnl.realizedPnL),
        "position": None,
        "value": None,
    }


def pnl_single_row(pnl: Any) -> Row:
    return {
        "account_id": pnl.account,
        "conid": pnl.conId,
        "daily_pnl": dec(pnl.dailyPnL),
        "unrealized_pnl": dec(pnl.unrealizedPnL),
        "realized_pnl": dec(pnl.realizedPnL),
        "position": dec(pnl.position),
        "value": dec(pnl.value),
    }


def contract_details_row(details: Any) -> Row:
    c = details.contract
    return {
        **contract_columns(c),
        "exchange": _opt(c.exchange),
        "primary_exchange": _opt(c.primaryExchange),
        "long_name": _opt(details.longName),
        "industry": _opt(details.industry),
        "category": _opt(details.category),
        "subcategory": _opt(details.subcategory),
        "min_tick": dec(details.minTick),
        "time_zone_id": _opt(details.timeZoneId),
        "stock_type": _opt(details.stockType),
        "under_conid": details.underConId or None,
        "under_symbol": _opt(details.underSymbol),
        "contract_month": _opt(details.contractMonth),
    }


def option_greeks_row(contract: Any, ticker: Any | None, note: str | None) -> Row:
    """IB's model values for one option (`ticker.modelGreeks`), or `note` saying why not.

    Units are IB's: vega per volatility point, theta per calendar day, delta and gamma per
    unit of the underlying; the option and underlying prices are IB's model inputs."""
    model = ticker.modelGreeks if ticker is not None else None
    values: Row = dict.fromkeys((*GREEKS, "option_price", "underlying_price", "pv_dividend"))
    if model is not None:
        values |= {name: _float(getattr(model, attr)) for name, attr in _MODEL_FIELDS.items()}
        values |= {"option_price": dec(model.optPrice), "underlying_price": dec(model.undPrice),
                   "pv_dividend": dec(model.pvDividend)}
    return {
        **contract_columns(contract),
        "market_data_type": ticker.marketDataType if ticker is not None else None,
        **values,
        "note": note,
    }


_MODEL_FIELDS = {"implied_vol": "impliedVol", "delta": "delta", "gamma": "gamma",
                 "vega": "vega", "theta": "theta"}


def _float(x: float | None) -> float | None:
    """A model value; NaN, infinities and IB's unset double are None."""
    return None if x is None or not math.isfinite(x) or x == UNSET_DOUBLE else float(x)
