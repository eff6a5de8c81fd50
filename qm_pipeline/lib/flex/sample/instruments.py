"""The sample's instruments: ten US stocks, two euro stocks and the options written on them.

Companies are fictional (so nobody mistakes simulated prices for real ones) but their
identifiers have IB's shapes: integer conids, CUSIPs and ISINs with valid check digits, OCC
option symbols. Conids are unique per instrument: stocks use fixed values below 300,000,000,
options a mixed-radix number above 600,000,000 built from underlying, expiry, strike and right.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import cache

_OPTION_CONID_BASE = 600_000_000
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


def month_abbr(day: date) -> str:
    """IB's upper-case English month, independent of the process locale."""
    return _MONTHS[day.month - 1]


@dataclass(frozen=True)
class Instrument:
    """What IB prints about a security on every row that refers to it."""

    conid: str
    symbol: str
    description: str
    currency: str
    category: str  # IB assetCategory: "STK" or "OPT"
    listing_exchange: str
    country: str  # issuerCountryCode
    isin: str = ""
    cusip: str = ""
    multiplier: int = 1
    underlying: Instrument | None = None
    strike: Decimal | None = None
    expiry: date | None = None
    put_call: str = ""

    @property
    def is_option(self) -> bool:
        return self.category == "OPT"


@dataclass(frozen=True)
class Stock:
    """A stock and the traits the simulation gives it."""

    instrument: Instrument
    start_price: Decimal
    annual_volatility: Decimal
    dividend: Decimal  # per share per payment, in the stock's currency; 0 pays none
    payments_per_year: int
    shortable: bool

    @property
    def index(self) -> int:
        return STOCKS.index(self)


def _alnum_value(char: str) -> int:
    return int(char) if char.isdigit() else ord(char) - ord("A") + 10


def cusip_check_digit(base: str) -> str:
    """Check digit of an 8-character CUSIP base (ANSI X9.6)."""
    total = 0
    for position, char in enumerate(base):
        value = _alnum_value(char) * (2 if position % 2 else 1)
        total += value // 10 + value % 10
    return str((10 - total % 10) % 10)


def isin_check_digit(body: str) -> str:
    """Check digit of an 11-character ISIN body (ISO 6166: Luhn over the expanded digits)."""
    digits = "".join(str(_alnum_value(char)) for char in body)
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 == 0 else 1)
        total += value // 10 + value % 10
    return str((10 - total % 10) % 10)


def _us_stock(conid: int, symbol: str, name: str, exchange: str, issuer: str) -> Instrument:
    cusip = f"{issuer}10" + cusip_check_digit(f"{issuer}10")
    body = f"US{cusip}"
    return Instrument(
        conid=str(conid),
        symbol=symbol,
        description=name,
        currency="USD",
        category="STK",
        listing_exchange=exchange,
        country="US",
        isin=body + isin_check_digit(body),
        cusip=cusip,
    )


def _eu_stock(conid: int, symbol: str, name: str, exchange: str, body: str) -> Instrument:
    return Instrument(
        conid=str(conid),
        symbol=symbol,
        description=name,
        currency="EUR",
        category="STK",
        listing_exchange=exchange,
        country=body[:2],
        isin=body + isin_check_digit(body),
    )


def _stock(instrument: Instrument, price: str, vol: str, dividend: str, payments: int,
           shortable: bool = False) -> Stock:
    return Stock(instrument, Decimal(price), Decimal(vol), Decimal(dividend), payments, shortable)


STOCKS: tuple[Stock, ...] = (
    _stock(_us_stock(41208651, "NVLT", "NOVALITH SEMICONDUCTOR CORP", "NASDAQ", "66987T"),
           "480.00", "0.45", "0", 0),
    _stock(_us_stock(265117634, "ORBX", "ORBEX SYSTEMS INC", "NASDAQ", "68557K"),
           "96.40", "0.30", "0.24", 4),
    _stock(_us_stock(38709522, "KSTL", "KESTREL AEROSPACE INC", "NYSE", "49271M"),
           "57.80", "0.32", "0.18", 4),
    _stock(_us_stock(9318854, "HRBR", "HARBOR & PINE BANCORP", "NYSE", "41157P"),
           "41.25", "0.22", "0.31", 4),
    _stock(_us_stock(13277406, "MDWL", "MEADOWLARK HEALTH CORP", "NYSE", "58302H"),
           "152.60", "0.20", "0.85", 4),
    _stock(_us_stock(76584213, "FJRD", "FJORD ENERGY PARTNERS INC", "NYSE", "33812W"),
           "33.10", "0.28", "0.42", 4),
    _stock(_us_stock(4761359, "SLTE", "SALTIRE CONSUMER BRANDS INC", "NYSE", "79546C"),
           "68.90", "0.18", "0.55", 4),
    _stock(_us_stock(52341778, "BRSK", "BRISK MOBILITY INC", "NASDAQ", "10972E"),
           "24.75", "0.55", "0", 0, shortable=True),
    _stock(_us_stock(48792311, "QNTA", "QUANTALEAF THERAPEUTICS INC", "NASDAQ", "74765Q"),
           "12.30", "0.65", "0", 0, shortable=True),
    _stock(_us_stock(30126547, "CRVX", "CORVEX RETAIL GROUP INC", "NYSE", "22088R"),
           "45.60", "0.40", "0", 0, shortable=True),
    _stock(_eu_stock(14121044, "ELBW", "ELBWERK INDUSTRIE AG", "IBIS", "DE000ELB100"),
           "74.20", "0.25", "2.10", 1),
    _stock(_eu_stock(29612193, "LUMF", "LUMIERE FOODS SA", "SBF", "FR000012961"),
           "38.45", "0.22", "1.05", 1),
)


def stock(symbol: str) -> Stock:
    return next(s for s in STOCKS if s.instrument.symbol == symbol)


# The roles the simulation casts: each is never shorted, so its story stays simple.
SPLIT_STOCK = stock("NVLT")  # 4-for-1 forward split while held
PUT_UNDERLYING = stock("ORBX")  # short puts: expiries and assignments
CALL_UNDERLYING = stock("KSTL")  # long calls: expiries and exercises
TRANSFER_STOCK = stock("ELBW")  # arrives by ACATS with its old lots and basis


def _option_conid(underlying: Stock, expiry: date, strike: Decimal, put_call: str) -> str:
    month = (expiry.year - 2000) * 12 + expiry.month - 1
    if strike != strike.to_integral_value() or not 0 < strike < 10_000 or not 0 <= month < 1200:
        raise ValueError(f"option outside the conid scheme: {expiry} {strike}")
    serial = ((underlying.index * 1200 + month) * 10_000 + int(strike)) * 2
    return str(_OPTION_CONID_BASE + serial + (put_call == "C"))


@cache
def option(underlying: Stock, expiry: date, strike: Decimal, put_call: str) -> Instrument:
    """The listed equity option (multiplier 100) with IB's OCC symbol and description."""
    base = underlying.instrument
    label = f"{base.symbol} {expiry.day:02d}{month_abbr(expiry)}{expiry:%y}"
    return Instrument(
        conid=_option_conid(underlying, expiry, strike, put_call),
        symbol=f"{base.symbol:<6}{expiry:%y%m%d}{put_call}{int(strike * 1000):08d}",
        description=f"{label} {strike.normalize():f} {put_call}",
        currency=base.currency,
        category="OPT",
        listing_exchange="CBOE",
        country=base.country,
        multiplier=100,
        underlying=base,
        strike=strike,
        expiry=expiry,
        put_call=put_call,
    )
