"""Today's holdings valued in base, and what the exposure, concentration and Greeks tables
make of them.

Holdings are the reconciled local state (the ledger's OPEN positions), valued at each
instrument's newest price in `core.prices` and IB's newest rate into the account's base:
quantity x price x multiplier x rate, exact (Decimal), with the price's date and source
kept. Sector: the user's mapping file (by conid, then symbol) over the industry of the live
contract details; an option takes its underlying's. Country: the issuer's country code.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd

from qm_pipeline.lib.analytics.accounts import ALL
from qm_pipeline.lib.analytics.concentration import UNMAPPED
from qm_pipeline.lib.analytics.greeks import (
    Contract,
    black_scholes,
    delta_adjusted_exposure,
    implied_vol,
    years_to_expiry,
)

DIMENSIONS = {"asset_class": "asset_category", "sector": "sector", "currency": "currency",
              "underlying": "underlying", "country": "country"}
EXPOSURE_COLUMNS = ["account_id", "as_of", "dimension", "group", "long", "short", "gross",
                    "net", "gross_weight", "net_weight", "positions"]
GREEK_SOURCE = "black_scholes: volatility implied by the mark"


def value_holdings(positions: pd.DataFrame, instruments: pd.DataFrame, prices: pd.DataFrame,
                   rates: dict[tuple[str, str], Decimal], bases: dict[str, str],
                   sectors: dict[str, str], industries: dict[str, str]) -> pd.DataFrame:
    """One row per (account, conid) held: quantity, price (with date and source),
    market value in base, and the grouping attributes."""
    latest = prices.sort_values("date").drop_duplicates("conid", keep="last").set_index("conid")
    info = {row["conid"]: {k: None if pd.isna(v) else v for k, v in row.items()}
            for row in instruments.drop_duplicates("conid").to_dict("records")}
    rows = [_valued(p, info, latest, rates, bases, sectors, industries)
            for p in positions.itertuples(index=False)]
    return pd.DataFrame(rows)


def _valued(p, info: dict[str, dict], latest: pd.DataFrame,
            rates: dict[tuple[str, str], Decimal], bases: dict[str, str],
            sectors: dict[str, str], industries: dict[str, str]) -> dict:
    meta = info.get(p.conid, {})  # missing attributes are None, never NaN (NaN is truthy)
    currency = meta.get("currency") or bases.get(p.account_id)
    multiplier = Decimal(meta.get("multiplier") or 1)
    price = latest.loc[p.conid] if p.conid in latest.index else None
    rate = Decimal(1) if currency == bases.get(p.account_id) else rates.get(
        (currency, bases.get(p.account_id)))
    value = (None if price is None or rate is None
             else p.quantity * price["price"] * multiplier * rate)
    underlying = meta.get("underlying_symbol") or p.symbol
    under_conid = meta.get("underlying_conid") or p.conid
    sector = (sectors.get(str(p.conid)) or sectors.get(str(p.symbol))
              or sectors.get(str(under_conid)) or sectors.get(str(underlying))
              or industries.get(str(p.conid)) or industries.get(str(under_conid)) or UNMAPPED)
    return {"account_id": p.account_id, "conid": p.conid, "symbol": p.symbol,
            "quantity": p.quantity, "multiplier": multiplier,
            "price": None if price is None else price["price"],
            "price_date": None if price is None else price["date"],
            "price_source": None if price is None else price["source"],
            "currency": currency, "market_value": value,
            "asset_category": meta.get("asset_category") or "UNKNOWN", "sector": sector,
            "underlying": underlying, "underlying_conid": under_conid,
            "country": meta.get("country") or "UNKNOWN",
            "strike": meta.get("strike"), "expiry": meta.get("expiry"),
            "put_call": meta.get("put_call")}


def with_all(holdings: pd.DataFrame) -> pd.DataFrame:
    """The holdings of every account, and again under `ALL`."""
    return pd.concat([holdings, holdings.assign(account_id=ALL)], ignore_index=True)


def exposure(holdings: pd.DataFrame, navs: dict[str, Decimal], as_of: dt.date) -> pd.DataFrame:
    """Long, short, gross and net market value per group of each dimension, and the gross
    and net as a fraction of the account's NAV. Positions without a price are left out
    (they are listed by the build's metadata, not valued at zero)."""
    valued = holdings[holdings["market_value"].notna()]
    frames = [_exposure_by(valued, name, column) for name, column in DIMENSIONS.items()]
    found = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if found.empty:
        return pd.DataFrame(columns=EXPOSURE_COLUMNS)
    nav = found["account_id"].map(lambda a: float(navs.get(a) or "nan"))
    return found.assign(as_of=as_of, gross_weight=found["gross"].astype(float) / nav,
                        net_weight=found["net"].astype(float) / nav)[EXPOSURE_COLUMNS]


def _exposure_by(valued: pd.DataFrame, dimension: str, column: str) -> pd.DataFrame:
    rows = []
    for (account, group), g in valued.groupby(["account_id", column], sort=True):
        values = list(g["market_value"])
        long = sum((v for v in values if v > 0), Decimal(0))
        short = sum((v for v in values if v < 0), Decimal(0))
        rows.append({"account_id": account, "dimension": dimension, "group": str(group),
                     "long": long, "short": short, "gross": long - short, "net": long + short,
                     "positions": len(g)})
    return pd.DataFrame(rows)


def option_greeks(holdings: pd.DataFrame, spots: dict[str, float], as_of: dt.date,
                  rate: float = 0.0) -> pd.DataFrame:
    """Black-Scholes Greeks per option position, with the volatility its mark implies, and
    the delta-adjusted exposure (in the option's currency). No price, no underlying price
    or a mark outside the no-arbitrage bounds: the row says so and has no Greeks."""
    options = holdings[holdings["asset_category"].isin(["OPT", "FOP"])]
    return pd.DataFrame([_greeks_row(o, spots, as_of, rate)
                         for o in options.itertuples(index=False)])


def _greeks_row(o, spots: dict[str, float], as_of: dt.date, rate: float) -> dict:
    row = {"account_id": o.account_id, "conid": o.conid, "symbol": o.symbol,
           "underlying": o.underlying, "quantity": o.quantity, "multiplier": o.multiplier,
           "mark": o.price, "as_of": as_of, "source": GREEK_SOURCE}
    spot = spots.get(str(o.underlying_conid))
    expiry = pd.to_datetime(o.expiry, errors="coerce")
    if o.price is None or spot is None or pd.isna(expiry) or o.strike is None:
        return row | {"note": "no mark, underlying price or expiry"}
    contract = Contract(str(o.put_call)[:1].upper(), spot, float(o.strike),
                        years_to_expiry(as_of, expiry.date()), rate)
    vol = implied_vol(contract, float(o.price))
    if vol is None:
        return row | {"underlying_price": spot, "note": "mark outside the model's bounds"}
    g = black_scholes(contract, vol)
    exposure_value = delta_adjusted_exposure(g.delta, spot, float(o.multiplier),
                                             float(o.quantity))
    return row | {"underlying_price": spot, "implied_vol": vol, "delta": g.delta,
                  "gamma": g.gamma, "vega": g.vega, "theta": g.theta,
                  "delta_adjusted_exposure": exposure_value, "note": None}
