"""Row builders for ledger tests: warehouse rows as IB would report them.

Amounts follow DOMAIN.md §1: quantity signed (sells negative), proceeds =
-quantity x price x multiplier, ib_commission negative.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from itertools import count
from types import SimpleNamespace
from typing import Any

from qm_pipeline.lib.ledger import LedgerInputs, replay

_ids = count(900_000)  # ids of rows a test does not name

ACCOUNT = "U1"


def D(value: Any) -> Decimal:
    return Decimal(str(value))


def at(day: str, time: str = "10:00") -> dt.datetime:
    return dt.datetime.fromisoformat(f"{day} {time}")


def trade(day: str, qty: Any, price: Any, *, conid: str = "AAA", commission: Any = 0,
          account: str = ACCOUNT, time: str = "10:00", tid: str | None = None,
          multiplier: Any = 1, fx: Any = 1, currency: str = "USD", category: str = "STK",
          **extra: Any) -> dict:
    q, p, m = D(qty), D(price), D(multiplier)
    row = {
        "account_id": account,
        "conid": conid,
        "symbol": conid,
        "asset_category": category,
        "currency": currency,
        "fx_rate_to_base": D(fx),
        "multiplier": m,
        "trade_date": dt.date.fromisoformat(day),
        "date_time": at(day, time),
        "quantity": q,
        "trade_price": p,
        "proceeds": -q * p * m,
        "ib_commission": -abs(D(commission)),
        "transaction_type": "ExchTrade",
        "buy_sell": "BUY" if q > 0 else "SELL",
        "transaction_id": tid or str(next(_ids)),
    }
    row.update(extra)
    return row


def option(day: str, qty: Any, price: Any, *, conid: str = "AAA_P50", underlying: str = "AAA",
           put_call: str = "P", strike: Any = 50, **kw: Any) -> dict:
    return trade(day, qty, price, conid=conid, category="OPT", multiplier=100,
                 put_call=put_call, strike=D(strike), underlying_conid=underlying, **kw)


def book_trade(row: dict, notes: str) -> dict:
    """The BookTrade IB writes for an expiry/exercise/assignment leg."""
    return {**row, "transaction_type": "BookTrade", "notes": notes}


def by(rows: list[dict], **where: Any) -> list[dict]:
    return [r for r in rows if all(r[k] == v for k, v in where.items())]


def one(rows: list[dict], **where: Any) -> dict:
    found = by(rows, **where)
    assert len(found) == 1, found
    return found[0]


def corporate_action(day: str, conid: str, qty: Any, description: str, *, type: str | None,
                     account: str = ACCOUNT, time: str = "20:25", **extra: Any) -> dict:
    return {"account_id": account, "conid": conid, "symbol": conid, "asset_category": "STK",
            "currency": "USD", "type": type, "quantity": D(qty), "description": description,
            "date_time": at(day, time), "report_date": dt.date.fromisoformat(day),
            "transaction_id": str(next(_ids)), **extra}


def transfer(day: str, conid: str, qty: Any, direction: str, *, account: str = ACCOUNT,
             **extra: Any) -> dict:
    return {"account_id": account, "conid": conid, "symbol": conid, "asset_category": "STK",
            "currency": "USD", "fx_rate_to_base": D(1), "type": "INTERNAL",
            "direction": direction, "quantity": D(qty), "date": dt.date.fromisoformat(day),
            "date_time": at(day, "12:00"), "transaction_id": str(next(_ids)), **extra}


def eae(day: str, conid: str, qty: Any, kind: str, *, price: Any = 0, multiplier: Any = 100,
        account: str = ACCOUNT, category: str = "OPT", **extra: Any) -> dict:
    """An OptionEAE row (quantities signed like Trades)."""
    q, p, m = D(qty), D(price), D(multiplier)
    return {"account_id": account, "conid": conid, "symbol": conid, "asset_category": category,
            "currency": "USD", "transaction_type": kind, "date": dt.date.fromisoformat(day),
            "quantity": q, "trade_price": p, "proceeds": -q * p * m, "multiplier": m,
            "trade_id": str(next(_ids)), **extra}


def position(report: str, conid: str, qty: Any, cost: Any, *, level: str = "SUMMARY",
             account: str = ACCOUNT, opened: str | None = None, **extra: Any) -> dict:
    """An OpenPosition row (SUMMARY, or LOT with its open time)."""
    return {"account_id": account, "report_date": dt.date.fromisoformat(report),
            "conid": conid, "symbol": conid, "asset_category": "STK", "currency": "USD",
            "fx_rate_to_base": D(1), "level_of_detail": level, "position": D(qty),
            "cost_basis_money": None if cost is None else D(cost), "multiplier": D(1),
            "open_date_time": at(opened) if opened else None, **extra}


def ledger(config: Any = None, **inputs: Any) -> SimpleNamespace:
    """Replays `inputs` and returns each output table as a list of row dicts."""
    result = replay(LedgerInputs(**inputs), config)
    return SimpleNamespace(result=result, **{
        name: getattr(result, name).to_pylist()
        for name in ("lots", "realized", "positions", "position_history", "flags")})
