"""What the gateway answers to each request: pure functions of (state, request, context).

A `Reply` separates the data messages from the one message that completes the request
(its `*_END`, or the single answer of a one-shot request), so the server can inject the
"never send the END" and "drop after N messages" faults without knowing any layout.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from qm_pipeline.lib.sim.gateway import history
from qm_pipeline.lib.sim.gateway import messages as m
from qm_pipeline.lib.sim.gateway.decode import Request
from qm_pipeline.lib.sim.gateway.ids import In
from qm_pipeline.lib.sim.gateway.state import Execution, GatewayState, Instrument, OpenOrder

NO_HISTORICAL_DATA = 162
NO_SECURITY_DEFINITION = 200
VALIDATION_FAILED = 321
INVALID_ACCOUNT = VALIDATION_FAILED  # "Error validating request ... Invalid account code"
ORDER_NOT_FOUND = 10147


@dataclass(frozen=True)
class Context:
    """Per-connection facts a reply depends on."""

    server_version: int
    client_id: int
    now: datetime


@dataclass
class Reply:
    messages: list[m.Msg] = field(default_factory=list)
    end: m.Msg | None = None
    req_id: int = -1
    """Where an injected ERROR for this request is addressed (-1: not tied to a request)."""


Handler = Callable[[GatewayState, Request, Context], Reply]


def positions(state: GatewayState, req: Request, ctx: Context) -> Reply:
    data = [m.position_data(a.account_id, p) for a in state.accounts for p in a.positions]
    return Reply(data, m.position_end())


def account_data(state: GatewayState, req: Request, ctx: Context) -> Reply:
    """REQ_ACCT_DATA: account values, then the portfolio, then the download end."""
    if not req.as_int("subscribe"):
        return Reply()
    account = state.account(req.get("account"))
    if account is None:
        text = f"Error validating request.-'bB' : cause - Invalid account code {req.get('account')}"
        return Reply([m.error(ctx.server_version, -1, INVALID_ACCOUNT, text)])
    data = [m.acct_value(account.account_id, v) for v in account.values]
    data += [m.portfolio_value(account.account_id, p) for p in account.positions]
    data.append(m.acct_update_time(ctx.now))
    return Reply(data, m.acct_download_end(account.account_id))


def account_updates_multi(state: GatewayState, req: Request, ctx: Context) -> Reply:
    req_id, wanted, model = req.as_int("req_id"), req.get("account"), req.get("model_code")
    accounts = [a for a in state.accounts if wanted in ("", "All", a.account_id)]
    data = [
        m.account_update_multi(req_id, a.account_id, model, v) for a in accounts for v in a.values
    ]
    return Reply(data, m.account_update_multi_end(req_id), req_id)


def account_summary(state: GatewayState, req: Request, ctx: Context) -> Reply:
    """Summary rows of every account whose tag was asked for (group `All`)."""
    req_id = req.as_int("req_id")
    tags = set(req.get("tags").split(","))
    data = [
        m.account_summary(req_id, a.account_id, v)
        for a in state.accounts
        for v in a.summary
        if v.tag in tags
    ]
    return Reply(data, m.account_summary_end(req_id), req_id)


def _orders(state: GatewayState, ctx: Context, client_id: int | None) -> Reply:
    data: list[m.Msg] = []
    for account_id, order in state.open_orders():
        if client_id is None or order.client_id == client_id:
            data += [m.open_order(ctx.server_version, account_id, order), m.order_status(order)]
    return Reply(data, m.open_order_end())


def open_orders(state: GatewayState, req: Request, ctx: Context) -> Reply:
    """This client's orders only; client 0 owns the manual TWS orders (clientId 0) too."""
    return _orders(state, ctx, ctx.client_id)


def all_open_orders(state: GatewayState, req: Request, ctx: Context) -> Reply:
    return _orders(state, ctx, None)


def completed_orders(state: GatewayState, req: Request, ctx: Context) -> Reply:
    api_only = bool(req.as_int("api_only"))
    data = [
        m.completed_order(ctx.server_version, a.account_id, o, state.tws_timezone)
        for a in state.accounts
        for o in a.completed_orders
        if not (api_only and o.client_id == 0)
    ]
    return Reply(data, m.completed_orders_end())


def executions(state: GatewayState, req: Request, ctx: Context) -> Reply:
    """Each EXECUTION_DATA immediately followed by its COMMISSION_REPORT (order matters)."""
    req_id = req.as_int("req_id")
    since = _filter_time(req.get("time"), state.tws_timezone)
    data: list[m.Msg] = []
    for account in state.accounts:
        for exe in account.executions:
            if _exec_matches(req, account.account_id, exe, since):
                data.append(
                    m.execution_data(
                        ctx.server_version, req_id, account.account_id, exe, state.tws_timezone
                    )
                )
                data.append(m.commission_report(exe))
    return Reply(data, m.exec_details_end(req_id), req_id)


def _exec_matches(req: Request, account_id: str, exe: Execution, since: datetime | None) -> bool:
    """ExecutionFilter semantics: an empty (or 0 client id) criterion matches everything."""
    side = {"BUY": "BOT", "SELL": "SLD"}.get(req.get("side").upper(), req.get("side").upper())
    checks = (
        (req.as_int("client_id"), exe.client_id),
        (req.get("acct_code"), account_id),
        (req.get("symbol"), exe.instrument.symbol),
        (req.get("sec_type"), exe.instrument.sec_type),
        (req.get("exchange"), exe.exchange),
        (side, exe.side),
    )
    if any(wanted and wanted != actual for wanted, actual in checks):
        return False
    return since is None or exe.time >= since


def _filter_time(text: str, tz: str) -> datetime | None:
    """`yyyymmdd-hh:mm:ss` (UTC) or `yyyymmdd hh:mm:ss [zone]` (TWS's zone if none)."""
    if not text:
        return None
    if "-" in text:
        return datetime.strptime(text, "%Y%m%d-%H:%M:%S").replace(tzinfo=UTC)
    day, clock, *zone = text.split()
    naive = datetime.strptime(f"{day} {clock}", "%Y%m%d %H:%M:%S")
    return naive.replace(tzinfo=ZoneInfo(zone[0] if zone else tz))


def contract_data(state: GatewayState, req: Request, ctx: Context) -> Reply:
    """Details of every registered contract matching the request; ERROR 200 if none does."""
    req_id, con_id = req.as_int("req_id"), req.as_int("con_id")
    if con_id:
        found = [state.instruments[con_id]] if con_id in state.instruments else []
    else:
        found = [i for i in state.instruments.values() if _contract_matches(req, i)]
    if not found:
        return _unknown_contract(ctx, req_id)
    data = [m.contract_data(ctx.server_version, req_id, i) for i in found]
    return Reply(data, m.contract_data_end(req_id), req_id)


def _contract_matches(req: Request, inst: Instrument) -> bool:
    """Match on the fields the request fills in (symbol-based lookups, no conid)."""
    strike = req.get("strike")
    checks = (
        (req.get("symbol"), inst.symbol),
        (req.get("sec_type"), inst.sec_type),
        (req.get("last_trade_date_or_contract_month"), inst.expiry),
        (req.get("right"), inst.right),
        (req.get("currency"), inst.currency),
        (Decimal(strike) if strike and float(strike) else None, inst.strike),
    )
    return any(w for w, _ in checks) and all(not w or w == a for w, a in checks)


def market_data(state: GatewayState, req: Request, ctx: Context) -> Reply:
    """A market-data request: the data type, IB's option model where the state has one,
    and, for a snapshot, TICK_SNAPSHOT_END (a subscription streams on without an end)."""
    req_id, con_id = req.as_int("req_id"), req.as_int("con_id")
    if con_id not in state.instruments:
        return _unknown_contract(ctx, req_id)
    data = [m.market_data_type(req_id)]
    model = state.option_models.get(con_id)
    if model is not None:
        data.append(m.option_computation(req_id, model))
    end = m.tick_snapshot_end(req_id) if req.get("snapshot") == "1" else None
    return Reply(data, end, req_id)


def historical_data(state: GatewayState, req: Request, ctx: Context) -> Reply:
    """Daily bars of the requested window in one message; errors as TWS words them: 321
    for a request it cannot validate, 162 for a window without data."""
    req_id, con_id = req.as_int("req_id"), req.as_int("con_id")
    if con_id not in state.instruments:
        return _unknown_contract(ctx, req_id)
    sv = ctx.server_version
    if req.get("bar_size") != "1 day":
        text = f"Error validating request: bar size {req.get('bar_size')!r} is not simulated"
        return Reply([m.error(sv, req_id, VALIDATION_FAILED, text)])
    try:
        end = history.end_date(req.get("end_date_time"), ctx.now)
        start = history.start_date(req.get("duration"), end)
    except history.BadHistoryRequest as exc:
        return Reply([m.error(sv, req_id, VALIDATION_FAILED, f"Error validating request: {exc}")])
    bars = history.window(state.daily_bars.get(con_id, []), start, end)
    if not bars:
        inst = state.instruments[con_id]
        text = (f"Historical Market Data Service error message:HMDS query returned no data: "
                f"{inst.symbol}@{inst.exchange} {req.get('what_to_show')}")
        return Reply([m.error(sv, req_id, NO_HISTORICAL_DATA, text)])
    span = (f"{start:%Y%m%d}  00:00:00", f"{end:%Y%m%d}  23:59:59")
    return Reply(end=m.historical_data(req_id, *span, bars), req_id=req_id)


def _unknown_contract(ctx: Context, req_id: int) -> Reply:
    text = "No security definition has been found for the request"
    return Reply([m.error(ctx.server_version, req_id, NO_SECURITY_DEFINITION, text)])


def current_time(state: GatewayState, req: Request, ctx: Context) -> Reply:
    when = state.server_time or ctx.now
    return Reply(end=m.current_time(int(when.timestamp())))


def next_ids(state: GatewayState, req: Request, ctx: Context) -> Reply:
    return Reply(end=m.next_valid_id(state.next_order_id))


def managed_accounts(state: GatewayState, req: Request, ctx: Context) -> Reply:
    return Reply(end=m.managed_accounts(state.managed_accounts))


def place_order(state: GatewayState, req: Request, ctx: Context) -> Reply:
    """Book (or modify) the order and acknowledge it as Submitted: OPEN_ORDER + ORDER_STATUS."""
    order_id = req.as_int("order_id")
    existing = next(
        (
            (a, o)
            for a, o in state.open_orders()
            if (o.client_id, o.order_id) == (ctx.client_id, order_id)
        ),
        None,
    )
    terms = {
        "action": req.get("action"),
        "total_quantity": Decimal(req.get("total_quantity") or 0),
        "order_type": req.get("order_type"),
        "lmt_price": _decimal_or_none(req.get("lmt_price")),
        "aux_price": _decimal_or_none(req.get("aux_price")),
        "tif": req.get("tif"),
        "order_ref": req.get("order_ref"),
    }
    if existing:
        account_id, order = existing
        for name, value in terms.items():
            setattr(order, name, value)
    else:
        account_id = req.get("account") or state.managed_accounts[0]
        order = OpenOrder(
            order_id=order_id,
            perm_id=state.new_perm_id(),
            client_id=ctx.client_id,
            instrument=_instrument(state, req),
            parent_id=req.as_int("parent_id"),
            **terms,
        )
        state.add_open_order(account_id, order)
    sv = ctx.server_version
    return Reply([m.open_order(sv, account_id, order), m.order_status(order)], req_id=order_id)


def cancel_order(state: GatewayState, req: Request, ctx: Context) -> Reply:
    order_id = req.as_int("order_id")
    cancelled = state.cancel_open_order(ctx.client_id, order_id, ctx.now)
    if cancelled is None:
        text = f"OrderId {order_id} that needs to be cancelled is not found."
        return Reply([m.error(ctx.server_version, order_id, ORDER_NOT_FOUND, text)])
    return Reply([m.order_status(cancelled[1])], req_id=order_id)


def _instrument(state: GatewayState, req: Request) -> Instrument:
    """The registered contract for the order's conid, or one built from the sent fields."""
    known = state.instruments.get(req.as_int("con_id"))
    if known:
        return known
    return Instrument(
        conid=req.as_int("con_id"),
        symbol=req.get("symbol"),
        sec_type=req.get("sec_type") or "STK",
        expiry=req.get("last_trade_date_or_contract_month"),
        strike=_decimal_or_none(req.get("strike")),
        right=req.get("right"),
        multiplier=req.get("multiplier"),
        exchange=req.get("exchange") or "SMART",
        currency=req.get("currency") or "USD",
    )


def _decimal_or_none(text: str) -> Decimal | None:
    return Decimal(text) if text else None


def nothing(state: GatewayState, req: Request, ctx: Context) -> Reply:
    """Requests TWS acknowledges by silence (cancels, auto-bind)."""
    return Reply()


HANDLERS: dict[In, Handler] = {
    In.REQ_POSITIONS: positions,
    In.REQ_ACCT_DATA: account_data,
    In.REQ_ACCOUNT_UPDATES_MULTI: account_updates_multi,
    In.REQ_ACCOUNT_SUMMARY: account_summary,
    In.REQ_OPEN_ORDERS: open_orders,
    In.REQ_ALL_OPEN_ORDERS: all_open_orders,
    In.REQ_COMPLETED_ORDERS: completed_orders,
    In.REQ_EXECUTIONS: executions,
    In.REQ_CONTRACT_DATA: contract_data,
    In.REQ_CURRENT_TIME: current_time,
    In.REQ_IDS: next_ids,
    In.REQ_MANAGED_ACCTS: managed_accounts,
    In.PLACE_ORDER: place_order,
    In.CANCEL_ORDER: cancel_order,
    In.REQ_MKT_DATA: market_data,
    In.REQ_HISTORICAL_DATA: historical_data,
    In.REQ_AUTO_OPEN_ORDERS: nothing,
    In.CANCEL_MKT_DATA: nothing,
    In.CANCEL_HISTORICAL_DATA: nothing,
    In.CANCEL_POSITIONS: nothing,
    In.CANCEL_ACCOUNT_SUMMARY: nothing,
    In.CANCEL_ACCOUNT_UPDATES_MULTI: nothing,
}
"""One-shot and streamed-then-ended requests; PnL subscriptions live in the session."""
