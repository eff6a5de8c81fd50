"""Black-Scholes-Merton prices and Greeks, volatility implied by a mark, and delta-adjusted
exposure, for the option positions IB's live snapshot has no model values for.

European exercise, continuous risk-free rate `rate` and dividend yield `dividend` (both
annual, continuously compounded), time `years` to expiry (Actual/365, `years_to_expiry`).
Units follow what IB shows beside its own model Greeks, so the two can sit in one column:
delta per 1 unit of the underlying, gamma per 1 unit squared, vega per 1 volatility point
(0.01), theta per calendar day (per year / 365). Prices are per share; a position's value
scales by multiplier and quantity. American options are priced as European: the standard
approximation for the Greeks of listed equity options, and what the mark calibrates.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Literal

from scipy.optimize import brentq
from scipy.stats import norm

Right = Literal["C", "P"]  # IB's putCall
DAYS_PER_YEAR = 365.0
LOWEST_VOL, HIGHEST_VOL = 1e-6, 20.0  # 0.0001% to 2000%: the implied-vol search range


@dataclass(frozen=True)
class Greeks:
    """Model price and sensitivities of one option (per share; units: module docstring)."""

    price: float
    delta: float
    gamma: float
    vega: float  # per volatility point
    theta: float  # per calendar day


@dataclass(frozen=True)
class Contract:
    """What the model needs to know of an option and its underlying."""

    right: Right
    spot: float
    strike: float
    years: float
    rate: float = 0.0
    dividend: float = 0.0


def years_to_expiry(as_of: dt.date, expiry: dt.date) -> float:
    """Actual/365 time from `as_of` to `expiry`."""
    return (expiry - as_of).days / DAYS_PER_YEAR


def black_scholes(contract: Contract, vol: float) -> Greeks:
    """Price, delta, gamma, vega and theta at volatility `vol` (annual, e.g. 0.25)."""
    c = contract
    if c.years <= 0.0 or vol <= 0.0:
        raise ValueError("Black-Scholes needs time to expiry and volatility above zero")
    root_t = math.sqrt(c.years)
    d1 = (math.log(c.spot / c.strike) + (c.rate - c.dividend + vol * vol / 2.0) * c.years) / (
        vol * root_t
    )
    d2 = d1 - vol * root_t
    spot_pv = c.spot * math.exp(-c.dividend * c.years)
    strike_pv = c.strike * math.exp(-c.rate * c.years)
    sign = 1.0 if c.right == "C" else -1.0  # a put is the call formula mirrored
    n1, n2 = norm.cdf(sign * d1), norm.cdf(sign * d2)
    decay = -spot_pv * norm.pdf(d1) * vol / (2.0 * root_t)
    theta_year = decay + sign * (c.dividend * spot_pv * n1 - c.rate * strike_pv * n2)
    return Greeks(
        price=sign * (spot_pv * n1 - strike_pv * n2),
        delta=sign * math.exp(-c.dividend * c.years) * n1,
        gamma=spot_pv * norm.pdf(d1) / (c.spot * c.spot * vol * root_t),
        vega=spot_pv * norm.pdf(d1) * root_t / 100.0,
        theta=theta_year / DAYS_PER_YEAR,
    )


def price_bounds(contract: Contract) -> tuple[float, float]:
    """No-arbitrage bounds of the option's price: (intrinsic value of the forward, cap)."""
    c = contract
    spot_pv = c.spot * math.exp(-c.dividend * c.years)
    strike_pv = c.strike * math.exp(-c.rate * c.years)
    if c.right == "C":
        return max(spot_pv - strike_pv, 0.0), spot_pv
    return max(strike_pv - spot_pv, 0.0), strike_pv


def implied_vol(contract: Contract, mark: float) -> float | None:
    """The volatility at which the model price equals `mark`; None when there is none.

    A mark at or outside the no-arbitrage bounds has no implied volatility (a stale or
    crossed mark, an option at intrinsic value). Brent's method on [LOWEST_VOL,
    HIGHEST_VOL]: the price rises monotonically with volatility, so a bracket whose ends
    straddle the mark holds exactly one root and the search cannot fail to converge.
    The bounds are European: a deep in-the-money American put marked above K e^(-rT) gets
    None, and its Greeks must come from IB's model values.
    """
    low, high = price_bounds(contract)
    if contract.years <= 0.0 or not low < mark < high:
        return None

    def gap(vol: float) -> float:
        return black_scholes(contract, vol).price - mark

    if gap(LOWEST_VOL) > 0.0 or gap(HIGHEST_VOL) < 0.0:
        return None  # inside the bounds but beyond what the search range can reach
    return float(brentq(gap, LOWEST_VOL, HIGHEST_VOL, xtol=1e-12))


def delta_adjusted_exposure(delta: float, underlying_price: float, multiplier: float,
                            quantity: float) -> float:
    """Underlying-equivalent market value: delta x underlying price x multiplier x quantity.

    Signed: long calls and short puts are long exposure.
    """
    return delta * underlying_price * multiplier * quantity
