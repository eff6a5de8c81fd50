"""Black-Scholes-Merton against Hull's worked examples, put-call parity and finite
differences; implied volatility round trips and its no-arbitrage bounds."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math

import pytest

from qm_pipeline.lib.analytics.greeks import (
    Contract,
    Right,
    black_scholes,
    delta_adjusted_exposure,
    implied_vol,
    price_bounds,
    years_to_expiry,
)


def test_hull_example_prices() -> None:
    # Hull, Options, Futures and Other Derivatives: S 42, K 40, r 10%, vol 20%, 6 months:
    # d1 = 0.7693, d2 = 0.6278, call 4.76, put 0.81.
    call = black_scholes(Contract("C", 42.0, 40.0, 0.5, rate=0.10), 0.20)
    put = black_scholes(Contract("P", 42.0, 40.0, 0.5, rate=0.10), 0.20)
    assert round(call.price, 2) == 4.76
    assert round(put.price, 2) == 0.81
    assert call.price - put.price == pytest.approx(42.0 - 40.0 * math.exp(-0.05), abs=1e-12)


def test_hull_example_greeks() -> None:
    # Hull's Greeks example: S 49, K 50, r 5%, vol 20%, 20 weeks (0.3846 years): call
    # delta 0.522, gamma 0.066, vega 12.1 per 1.00 of vol (0.121 per point), theta -4.31
    # a year (-4.31 / 365 = -0.0118 a calendar day).
    g = black_scholes(Contract("C", 49.0, 50.0, 0.3846, rate=0.05), 0.20)
    assert round(g.delta, 3) == 0.522
    assert round(g.gamma, 3) == 0.066
    assert round(g.vega * 100, 1) == 12.1
    assert round(g.theta * 365, 2) == -4.31


@pytest.mark.parametrize("right", ["C", "P"])
def test_greeks_are_the_price_derivatives(right: Right) -> None:
    contract = Contract(right, 100.0, 95.0, 0.75, rate=0.03, dividend=0.02)
    vol, h = 0.3, 1e-4
    g = black_scholes(contract, vol)

    def price(at_vol: float = vol, **change: float) -> float:
        return black_scholes(dataclasses.replace(contract, **change), at_vol).price

    up, down = price(spot=100.0 + h), price(spot=100.0 - h)
    assert g.delta == pytest.approx((up - down) / (2 * h), abs=1e-7)
    assert g.gamma == pytest.approx((up - 2 * g.price + down) / h**2, abs=1e-5)
    assert g.vega == pytest.approx((price(vol + h) - price(vol - h)) / (2 * h) / 100,
                                   abs=1e-7)
    one_day = 1 / 365  # theta: value change as one calendar day passes
    assert g.theta == pytest.approx(price(years=0.75 - one_day) - g.price, abs=2e-4)


def test_put_call_parity_with_dividends() -> None:
    c = Contract("C", 100.0, 110.0, 2.0, rate=0.04, dividend=0.03)
    call, put = black_scholes(c, 0.25), black_scholes(dataclasses.replace(c, right="P"), 0.25)
    assert call.price - put.price == pytest.approx(
        100.0 * math.exp(-0.06) - 110.0 * math.exp(-0.08), abs=1e-12)
    assert call.delta - put.delta == pytest.approx(math.exp(-0.06), abs=1e-12)


@pytest.mark.parametrize("right", ["C", "P"])
@pytest.mark.parametrize("vol", [0.05, 0.2, 1.5])
def test_implied_vol_round_trip(right: Right, vol: float) -> None:
    contract = Contract(right, 50.0, 55.0, 0.25, rate=0.02)
    mark = black_scholes(contract, vol).price
    assert implied_vol(contract, mark) == pytest.approx(vol, abs=1e-8)


def test_no_implied_vol_outside_the_bounds() -> None:
    call = Contract("C", 100.0, 90.0, 0.5, rate=0.05)
    low, high = price_bounds(call)
    assert (low, high) == (pytest.approx(100.0 - 90.0 * math.exp(-0.025)), 100.0)
    assert implied_vol(call, low - 0.01) is None  # below intrinsic: a stale mark
    assert implied_vol(call, high) is None  # worth the stock itself
    assert implied_vol(call, low + 0.5) is not None
    put = Contract("P", 100.0, 90.0, 0.5, rate=0.05)
    assert price_bounds(put) == (0.0, pytest.approx(90.0 * math.exp(-0.025)))
    assert implied_vol(put, 0.0) is None
    assert implied_vol(dataclasses.replace(call, years=0.0), 12.0) is None  # expired


def test_invalid_inputs_raise() -> None:
    with pytest.raises(ValueError, match="volatility"):
        black_scholes(Contract("C", 100.0, 100.0, 0.0), 0.2)


def test_delta_adjusted_exposure_and_time() -> None:
    # 2 short calls, delta 0.5, underlying 100, multiplier 100: -10,000 of the underlying.
    assert delta_adjusted_exposure(0.5, 100.0, 100.0, -2.0) == -10_000.0
    assert years_to_expiry(dt.date(2024, 1, 1), dt.date(2024, 7, 1)) == 182 / 365
