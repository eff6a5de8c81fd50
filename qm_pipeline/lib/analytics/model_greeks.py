"""IB's own option model values, where a live snapshot has them, ahead of Black-Scholes.

The issue's rule (DOMAIN.md §5): Greeks come "from IB's model values when a live snapshot
has them, otherwise Black-Scholes with the volatility implied by the mark". A snapshot's
values are used for an option when they are the newest IB computed for it and were taken
no earlier than the analytics' valuation date: older model values describe a market the
marks have since left, so the mark's implied volatility is the better estimate then.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from qm_pipeline.lib.analytics.greeks import delta_adjusted_exposure
from qm_pipeline.lib.warehouse.engine import Tx

IB_MODEL_SOURCE = "ib_model: live snapshot "
MODEL_COLUMNS = ["conid", "implied_vol", "delta", "gamma", "vega", "theta", "underlying_price",
                 "snapshot_id", "taken_at"]
_NEWEST = (
    "SELECT conid, implied_vol, delta, gamma, vega, theta, underlying_price, snapshot_id, "
    "taken_at FROM (SELECT g.*, s.taken_at, row_number() OVER (PARTITION BY g.conid "
    "ORDER BY s.taken_at DESC, s.snapshot_id DESC) AS recency FROM live.option_greeks g "
    "JOIN live.snapshots s ON s.snapshot_id = g.snapshot_id "
    "WHERE s.status = 'complete' AND g.delta IS NOT NULL) AS ranked WHERE recency = 1"
)


def read_model_greeks(tx: Tx) -> pd.DataFrame:
    """Per option conid, the newest model values of a complete snapshot (none: empty)."""
    if "option_greeks" not in tx.tables("live"):
        return pd.DataFrame(columns=MODEL_COLUMNS)
    found = pd.DataFrame(tx.execute(_NEWEST), columns=MODEL_COLUMNS)
    return found.assign(conid=found["conid"].astype(str))


def prefer_ib_model(greeks: pd.DataFrame, model: pd.DataFrame,
                    as_of: dt.date) -> pd.DataFrame:
    """`greeks` (Black-Scholes rows per option position) with IB's values where they apply;
    the row's `source` names the snapshot either way."""
    if greeks.empty or model.empty:
        return greeks
    current = model[pd.to_datetime(model["taken_at"]).dt.date >= as_of].set_index("conid")
    rows = [_with_model(r, current.loc[r["conid"]]) if r["conid"] in current.index else r
            for r in greeks.to_dict("records")]
    return pd.DataFrame(rows, columns=greeks.columns)


def _with_model(row: dict, ib: pd.Series) -> dict:
    """IB's values replace the model's; a value IB left unset stays unknown (None), and
    an unset underlying price falls back to the mark the row already used."""
    values = {name: _number(ib[name]) for name in ("implied_vol", "delta", "gamma", "vega",
                                                    "theta")}
    spot = _number(ib["underlying_price"])
    spot = spot if spot is not None else _number(row.get("underlying_price"))
    exposure = None if spot is None else delta_adjusted_exposure(
        values["delta"], spot, float(row["multiplier"]), float(row["quantity"]))
    return row | values | {"underlying_price": spot, "delta_adjusted_exposure": exposure,
                           "source": f"{IB_MODEL_SOURCE}{ib['snapshot_id']}", "note": None}


def _number(value: object) -> float | None:
    return None if value is None or pd.isna(value) else float(value)
