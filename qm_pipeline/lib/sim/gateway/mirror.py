"""A simulated gateway that shows the warehouse's own accounts, as IB would after the last
Flex report: the ledger's open positions, marked at IB's last price, and CashReport cash.

The demo uses it to stage what reconciliation exists for: `closed` removes positions from
the broker's side, as a close typed into TWS (or a margin call) would, without telling the
pipeline.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from qm_pipeline.lib.sim.gateway.builders import account_values
from qm_pipeline.lib.sim.gateway.state import AccountState, GatewayState, Instrument, Position
from qm_pipeline.lib.warehouse.engine import Tx

_POSITIONS = """
SELECT p.account_id, p.conid, p.symbol, p.asset_category, p.currency, p.quantity,
       p.average_cost, p.multiplier, i.expiry, i.strike, i.put_call,
       (SELECT o.mark_price FROM core.open_positions o WHERE o.account_id = p.account_id
        AND o.conid = p.conid AND o.mark_price IS NOT NULL
        ORDER BY o.report_date DESC LIMIT 1) AS mark
FROM ledger.positions p LEFT JOIN core.instruments i ON i.conid = p.conid
WHERE p.status = 'OPEN' ORDER BY p.account_id, p.conid
"""


def _instrument(row: dict) -> Instrument:
    option = row["asset_category"] == "OPT"
    multiplier = row["multiplier"] or Decimal(1)
    return Instrument(
        conid=int(row["conid"]), symbol=row["symbol"] or row["conid"],
        sec_type=row["asset_category"] or "STK", currency=row["currency"] or "USD",
        expiry=str(row["expiry"] or "").replace("-", "") if option else "",
        strike=row["strike"] if option else None, right=(row["put_call"] or "") if option else "",
        multiplier=f"{multiplier.normalize():f}" if option else "")


def _position(row: dict) -> Position:
    cost = row["average_cost"] or Decimal(0)
    instrument = _instrument(row)
    return Position(instrument, row["quantity"], cost * instrument.factor,
                    row["mark"] if row["mark"] is not None else cost)


def _cash(tx: Tx) -> dict[str, dict[str, Decimal]]:
    found: dict[str, dict[str, Decimal]] = {}
    for account, currency, ending in tx.execute(
            "SELECT account_id, currency, ending_cash FROM (SELECT account_id, currency, "
            "ending_cash, row_number() OVER (PARTITION BY account_id, currency ORDER BY "
            "to_date DESC) AS recency FROM core.cash_balances WHERE currency <> "
            "'BASE_SUMMARY' AND ending_cash IS NOT NULL) c WHERE recency = 1"):
        found.setdefault(account, {})[currency] = ending
    return found


def _fx(tx: Tx, base: str) -> dict[str, Decimal]:
    rates = {base: Decimal(1)}
    for currency, rate in tx.execute(
            "SELECT from_currency, rate FROM core.fx_rates WHERE to_currency = :b AND rate "
            "IS NOT NULL ORDER BY report_date", {"b": base}):
        rates[currency] = rate
    return rates


def mirror_state(tx: Tx, closed: Iterable[tuple[str, str]] = (),
                 base: str = "USD") -> GatewayState:
    """The warehouse's accounts as a gateway state, minus the `closed` (account, conid)s."""
    gone = set(closed)
    columns = ["account_id", "conid", "symbol", "asset_category", "currency", "quantity",
               "average_cost", "multiplier", "expiry", "strike", "put_call", "mark"]
    held: dict[str, list[Position]] = {}
    for values in tx.execute(_POSITIONS):
        row = dict(zip(columns, values, strict=True))
        if (row["account_id"], row["conid"]) not in gone:
            held.setdefault(row["account_id"], []).append(_position(row))
    cash, fx = _cash(tx), _fx(tx, base)
    accounts = []
    for account in sorted(held.keys() | cash.keys()):
        positions = held.get(account, [])
        money = cash.get(account, {})
        rates = {c: fx.get(c, Decimal(1)) for c in {*money, *(p.instrument.currency
                                                              for p in positions)}}
        values, summary = account_values(positions, money, rates, base=base)
        accounts.append(AccountState(account, base, values, summary, positions))
    return GatewayState(accounts)
