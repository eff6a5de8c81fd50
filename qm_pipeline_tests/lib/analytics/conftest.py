"""Small hand-made series shared by the analytics tests.

`one_account`: an account whose every daily return is a round number under IB's linking
(flows at the start of the day), with a deposit, a withdrawal on a day without a NAV, and
that missing day itself:

    date        NAV    flow    r = (NAV_t - NAV_{t-1} - F_t) / (NAV_{t-1} + F_t)
    2024-01-02  100            inception: no return, TWR index 1.0
    2024-01-03  132    +20     (132 - 100 - 20) / (100 + 20)    = 12 / 120    = +0.10
    2024-01-04  118.8          (118.8 - 132) / 132              = -13.2 / 132 = -0.10
    2024-01-05  (no NAV) -18.8 the withdrawal joins the next return
    2024-01-08  110            (110 - 118.8 + 18.8) / (118.8 - 18.8) = 10 / 100 = +0.10
    TWR index 1.0, 1.1, 0.99, 1.089; drawdown 0, 0, -0.10, -0.01; linked TWR +8.9%.
"""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import pytest

from qm_pipeline.lib.analytics.boundary import daily_sums, to_series


@pytest.fixture
def nav() -> pd.Series:
    return to_series({
        "2024-01-02": Decimal("100"),
        "2024-01-03": Decimal("132"),
        "2024-01-04": Decimal("118.8"),
        "2024-01-05": None,
        "2024-01-08": Decimal("110"),
    })


@pytest.fixture
def flows() -> pd.Series:
    return daily_sums([
        ("2024-01-01", Decimal("100")),  # before inception: already in the first NAV
        ("2024-01-03", Decimal("15")),
        ("2024-01-03", Decimal("5")),
        ("2024-01-05", Decimal("-18.8")),
        ("2024-01-09", Decimal("50")),  # after the last NAV: no return has seen it
    ])
