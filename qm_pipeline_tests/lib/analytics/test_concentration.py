"""Weights, top-N share, Herfindahl and limit breaches on a four-position book.

Market values A 50, B 30, C -20 (short), D 40: NAV 100, weights .5 .3 -.2 .4, gross 1.4.
Top-2 share (0.5 + 0.4) / 1.4 = 0.642857; HHI (0.25 + 0.09 + 0.04 + 0.16) / 1.96 = 0.27551.
Sectors: A and C tech (gross 0.7), B energy (0.3), D unmapped (0.4).
"""

from __future__ import annotations

import pandas as pd
import pytest

from qm_pipeline.lib.analytics.concentration import (
    SECTOR,
    SINGLE_NAME,
    UNMAPPED,
    Breach,
    group_gross_weights,
    herfindahl,
    limit_breaches,
    top_n_share,
    weights,
)

BOOK = pd.Series({"A": 50.0, "B": 30.0, "C": -20.0, "D": 40.0})
SECTORS = {"A": "tech", "C": "tech", "B": "energy"}


def test_weights_are_signed_fractions_of_nav() -> None:
    assert weights(BOOK).to_dict() == pytest.approx({"A": 0.5, "B": 0.3, "C": -0.2, "D": 0.4})
    assert weights(BOOK, nav=200.0)["A"] == 0.25


def test_top_n_and_herfindahl_use_gross_shares() -> None:
    w = weights(BOOK)
    assert top_n_share(w, 2) == pytest.approx(0.9 / 1.4)
    assert top_n_share(w, 10) == pytest.approx(1.0)
    assert herfindahl(w) == pytest.approx(0.54 / 1.96)
    assert herfindahl(pd.Series([0.25] * 4)) == pytest.approx(0.25)  # 1/n when equal


def test_group_gross_weights() -> None:
    groups = group_gross_weights(weights(BOOK), SECTORS)
    assert groups.to_dict() == pytest.approx({"tech": 0.7, "energy": 0.3, UNMAPPED: 0.4})


def test_limit_breaches() -> None:
    found = limit_breaches(weights(BOOK), single_name_limit=0.35, groups=SECTORS,
                           group_limit=0.6)
    assert found == [
        Breach(SINGLE_NAME, "A", 0.5, 0.35),
        Breach(SINGLE_NAME, "D", pytest.approx(0.4), 0.35),
        Breach(SECTOR, "tech", pytest.approx(0.7), 0.6),
    ]
    assert limit_breaches(weights(BOOK)) == []  # no limits configured
