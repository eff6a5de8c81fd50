"""IB's model values reach `analytics.greeks` ahead of Black-Scholes: from the newest
complete snapshot (taken through the real client from the simulated gateway and stored in
DuckDB or PostgreSQL), and only when it is not older than the valuation date."""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal

import pandas as pd
import pytest

from qm_pipeline.lib.analytics.model_greeks import prefer_ib_model, read_model_greeks
from qm_pipeline.lib.ib.snapshot import Snapshot, SnapshotSettings, take_snapshot
from qm_pipeline.lib.live.store import store_snapshot
from qm_pipeline.lib.sim.gateway import GatewayState, GatewayThread, default_state
from qm_pipeline.lib.sim.gateway.state import OptionModel
from qm_pipeline.lib.warehouse.engine import Warehouse

CALL, PUT = "723350001", "723350002"
BS = "black_scholes: volatility implied by the mark"
TODAY = dt.datetime.now(dt.UTC).date()  # snapshots are dated in UTC


def snapshot_of(state: GatewayState) -> Snapshot:
    with GatewayThread(state) as gw:
        return take_snapshot(SnapshotSettings(host=gw.host, port=gw.port, retries=0,
                                              request_timeout=5.0))


def stored(warehouse: Warehouse, snapshot: Snapshot) -> None:
    with warehouse.transaction() as tx:
        store_snapshot(tx, snapshot)


def bs_rows(as_of: dt.date) -> pd.DataFrame:
    """What `holdings.option_greeks` gives for the two AAPL options (values made up)."""
    base = {"as_of": as_of, "symbol": "AAPL", "underlying": "AAPL", "mark": Decimal("14.35"),
            "underlying_price": 190.0, "implied_vol": 0.3, "delta": 0.5, "gamma": 0.01,
            "vega": 0.5, "theta": -0.05, "delta_adjusted_exposure": 19_000.0, "source": BS,
            "note": None}
    return pd.DataFrame([
        base | {"account_id": "DU1234567", "conid": CALL, "quantity": Decimal(2),
                "multiplier": Decimal(100)},
        base | {"account_id": "DU7654321", "conid": PUT, "quantity": Decimal(-2),
                "multiplier": Decimal(100), "delta": -0.2},
        base | {"account_id": "DU1", "conid": "999", "quantity": Decimal(1),
                "multiplier": Decimal(100)},
    ])


def test_ibs_model_values_replace_black_scholes(warehouse: Warehouse) -> None:
    stored(warehouse, snapshot_of(default_state()))
    later = default_state()
    later.option_models[int(CALL)] = OptionModel(*(Decimal(x) for x in (
        "0.25", "0.55", "15.10", "0.96", "0.011", "0.62", "-0.06", "191.00")))
    time.sleep(1.02 - time.time() % 1)  # taken_at is stored to the second
    newest = snapshot_of(later)
    stored(warehouse, newest)

    with warehouse.transaction() as tx:
        model = read_model_greeks(tx)
    assert sorted(model["conid"]) == [CALL, PUT]
    call = model.set_index("conid").loc[CALL]
    assert (call["delta"], call["implied_vol"], call["snapshot_id"]) == (
        0.55, 0.25, newest.snapshot_id)

    greeks = prefer_ib_model(bs_rows(TODAY), model, TODAY)
    by = greeks.set_index("conid")
    assert by.loc[CALL, "source"] == f"ib_model: live snapshot {newest.snapshot_id}"
    assert (by.loc[CALL, "delta"], by.loc[CALL, "gamma"], by.loc[CALL, "vega"],
            by.loc[CALL, "theta"], by.loc[CALL, "underlying_price"]) == (
        0.55, 0.011, 0.62, -0.06, 191.0)
    assert by.loc[CALL, "delta_adjusted_exposure"] == pytest.approx(0.55 * 191.0 * 100 * 2)
    assert by.loc[PUT, "delta"] == -0.1523 and by.loc[PUT, "delta_adjusted_exposure"] == \
        pytest.approx(-0.1523 * 189.5 * 100 * -2)
    assert (by.loc["999", "source"], by.loc["999", "delta"]) == (BS, 0.5)  # no model: kept


def test_model_values_older_than_the_valuation_date_are_not_used(warehouse: Warehouse) -> None:
    stored(warehouse, snapshot_of(default_state()))
    with warehouse.transaction() as tx:
        model = read_model_greeks(tx)
    tomorrow = TODAY + dt.timedelta(days=1)

    greeks = prefer_ib_model(bs_rows(tomorrow), model, tomorrow)

    assert set(greeks["source"]) == {BS} and list(greeks["delta"]) == [0.5, -0.2, 0.5]


def test_a_snapshot_without_model_values_leaves_black_scholes(warehouse: Warehouse) -> None:
    state = default_state()
    state.option_models.clear()
    stored(warehouse, snapshot_of(state))
    with warehouse.transaction() as tx:
        model = read_model_greeks(tx)

    assert model.empty
    assert prefer_ib_model(bs_rows(TODAY), model, TODAY).equals(
        bs_rows(TODAY))
