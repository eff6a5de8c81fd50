"""What a snapshot must contain, derived from the simulator's state independently of the
collector, and one assertion comparing every table, row and column."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from qm_pipeline.lib.ib.rows import TABLES
from qm_pipeline.lib.ib.snapshot import Snapshot
from qm_pipeline.lib.sim.gateway import GatewayState, Instrument

Row = dict[str, Any]

STOCKS = {265598, 272093, 756733, 14204}
"""AAPL, MSFT, SPY, SAP: the demo state's stocks, passed as known conids so that only its
two AAPL options need contract details."""


def _contract(inst: Instrument) -> Row:
    return {
        "conid": inst.conid,
        "symbol": inst.symbol,
        "sec_type": inst.sec_type,
        "expiry": inst.expiry or None,
        "strike": inst.strike,
        "right": inst.right or None,
        "multiplier": Decimal(inst.multiplier) if inst.multiplier else None,
        "currency": inst.currency,
        "local_symbol": inst.local_symbol or None,
        "trading_class": inst.trading_class or None,
    }


def _numeric(text: str) -> Decimal | None:
    try:
        return Decimal(text)
    except ArithmeticError:
        return None


def expected_tables(
    state: GatewayState, accounts: Iterable[str], known_conids: set[int] | None
) -> dict[str, list[Row]]:
    """Every table but `snapshots`, for the selected accounts, as the collector must build it."""
    selected = [a for a in state.accounts if a.account_id in set(accounts)]
    tz = ZoneInfo(state.tws_timezone)
    out: dict[str, list[Row]] = {name: [] for name in TABLES if name != "snapshots"}
    for a in selected:
        acct = a.account_id
        by_tag = {v.tag: v for v in a.values}
        out["accounts"].append(
            {
                "account_id": acct,
                "is_paper": acct.startswith("DU"),
                "account_type": by_tag["AccountType"].value,
                "base_currency": a.base_currency,
            }
        )
        for table, values in (("account_values", a.values), ("account_summary", a.summary)):
            out[table] += [
                {
                    "account_id": acct,
                    "tag": v.tag,
                    "currency": v.currency,
                    "value": v.value,
                    "value_decimal": _numeric(v.value),
                }
                for v in values
            ]
        for p in a.positions:
            inst = p.instrument
            out["positions"].append(
                {
                    "account_id": acct,
                    **_contract(inst),
                    "exchange": inst.exchange,
                    "position": p.quantity,
                    "avg_cost": p.avg_cost,
                }
            )
            out["portfolio_items"].append(
                {
                    "account_id": acct,
                    **_contract(inst),
                    "primary_exchange": inst.primary_exchange or None,
                    "position": p.quantity,
                    "market_price": p.market_price,
                    "market_value": p.market_value,
                    "average_cost": p.avg_cost,
                    "unrealized_pnl": p.unrealized_pnl,
                    "realized_pnl": p.realized_pnl,
                }
            )
            out["pnl"].append(
                {
                    "account_id": acct,
                    "conid": inst.conid,
                    "daily_pnl": p.daily_pnl,
                    "unrealized_pnl": p.unrealized_pnl,
                    "realized_pnl": p.realized_pnl,
                    "position": p.quantity,
                    "value": p.market_value,
                }
            )
        daily, unrealized, realized = a.pnl()
        out["pnl"].append(
            {
                "account_id": acct,
                "conid": None,
                "daily_pnl": daily,
                "unrealized_pnl": unrealized,
                "realized_pnl": realized,
                "position": None,
                "value": None,
            }
        )
        for o in a.open_orders:
            out["open_orders"].append(
                {
                    "account_id": acct,
                    "order_id": o.order_id,
                    "perm_id": o.perm_id,
                    "client_id": o.client_id,
                    "parent_id": o.parent_id or None,
                    "conid": o.instrument.conid,
                    "symbol": o.instrument.symbol,
                    "sec_type": o.instrument.sec_type,
                    "action": o.action,
                    "total_quantity": o.total_quantity,
                    "order_type": o.order_type,
                    "lmt_price": o.lmt_price,
                    "aux_price": o.aux_price,
                    "tif": o.tif,
                    "outside_rth": o.outside_rth,
                    "status": o.status,
                    "filled": o.filled,
                    "remaining": o.remaining,
                    "avg_fill_price": o.avg_fill_price,
                    "order_ref": o.order_ref or None,
                }
            )
        for c in a.completed_orders:
            out["completed_orders"].append(
                {
                    "perm_id": c.perm_id,
                    "account_id": acct,
                    "conid": c.instrument.conid,
                    "symbol": c.instrument.symbol,
                    "sec_type": c.instrument.sec_type,
                    "action": c.action,
                    "total_quantity": c.total_quantity,
                    "order_type": c.order_type,
                    "lmt_price": c.lmt_price,
                    "aux_price": c.aux_price,
                    "tif": c.tif,
                    "status": c.status,
                    "filled_quantity": c.filled_quantity,
                    "completed_time": c.completed_time,
                    "completed_time_text": (
                        f"{c.completed_time.astimezone(tz):%Y%m%d %H:%M:%S} {state.tws_timezone}"
                    ),
                    "completed_status": c.completed_status or None,
                    "order_ref": c.order_ref or None,
                    "parent_perm_id": c.parent_perm_id or None,
                }
            )
        for e in a.executions:
            out["executions"].append(
                {
                    "ib_exec_id": e.exec_id,
                    "account_id": acct,
                    "conid": e.instrument.conid,
                    "symbol": e.instrument.symbol,
                    "sec_type": e.instrument.sec_type,
                    "time": e.time,
                    "side": e.side,
                    "shares": e.shares,
                    "price": e.price,
                    "exchange": e.exchange,
                    "perm_id": e.perm_id,
                    "order_id": e.order_id,
                    "client_id": e.client_id,
                    "cum_qty": e.cum_qty if e.cum_qty is not None else e.shares,
                    "avg_price": e.avg_price if e.avg_price is not None else e.price,
                    "order_ref": e.order_ref or None,
                    "liquidation": e.liquidation,
                    "last_liquidity": e.last_liquidity,
                    "commission": e.commission,
                    "commission_currency": e.commission_currency,
                    # Both client libraries turn an unset realized PnL (an opening fill) into 0.
                    "realized_pnl": e.realized_pnl if e.realized_pnl is not None else Decimal(0),
                }
            )
    held = {r["conid"] for t in ("positions", "open_orders", "completed_orders", "executions")
            for r in out[t]}  # fmt: skip
    for conid in sorted(held - (known_conids or set())):
        inst = state.instruments[conid]
        out["contract_details"].append(
            {
                **_contract(inst),
                "exchange": inst.exchange,
                "primary_exchange": inst.primary_exchange or None,
                "long_name": inst.long_name,
                "industry": inst.industry,
                "category": inst.category,
                "subcategory": inst.subcategory,
                "min_tick": inst.min_tick,
                "time_zone_id": inst.time_zone_id,
                "stock_type": inst.stock_type or None,
                "under_conid": inst.under_conid or None,
                "under_symbol": inst.under_symbol or None,
                "contract_month": inst.contract_month or None,
            }
        )
    options = {p.instrument.conid: p.instrument for a in selected for p in a.positions
               if p.instrument.sec_type in ("OPT", "FOP")}
    out["option_greeks"] = [_greeks(inst, state) for inst in options.values()]
    return out


def _greeks(inst: Instrument, state: GatewayState) -> Row:
    """IB's model values as the simulator states them; a note where it has none."""
    model = state.option_models.get(inst.conid)
    greeks = ("implied_vol", "delta", "gamma", "vega", "theta")
    prices = ("option_price", "underlying_price", "pv_dividend")
    if model is None:
        return {**_contract(inst), "market_data_type": None, **dict.fromkeys(greeks),
                **dict.fromkeys(prices), "note": "the snapshot carried no model values"}
    return {**_contract(inst), "market_data_type": 1,
            **{g: float(getattr(model, g)) for g in greeks},
            **{c: getattr(model, c) for c in prices}, "note": None}


def _key(row: Row) -> tuple[str, ...]:
    """The natural key of a row in any of the tables (conid, never symbol)."""
    names = ("account_id", "conid", "tag", "currency", "perm_id", "ib_exec_id")
    return tuple(str(row.get(name)) for name in names)


def assert_snapshot_matches(
    snapshot: Snapshot,
    state: GatewayState,
    accounts: Iterable[str] | None = None,
    known_conids: set[int] | None = None,
) -> None:
    """Every table has exactly the expected rows, every row exactly the declared columns."""
    accounts = list(accounts) if accounts is not None else state.managed_accounts
    tables = snapshot.tables()
    assert list(tables) == list(TABLES)
    for name, rows in tables.items():
        for row in rows:
            assert list(row) == list(TABLES[name]), name
    for name, want in expected_tables(state, accounts, known_conids).items():
        got = tables[name]
        assert len(got) == len(want), name
        assert sorted(got, key=_key) == sorted(want, key=_key), name
