"""The trade stream's book keys: a small integer per (account, conid), in sorted order."""

from __future__ import annotations

import numpy as np
import pytest

from qm_pipeline.lib.ledger.trades import _distinct


@pytest.mark.parametrize("bound", [1, 7, 5_000, 10**6])  # table and, beyond 4x, sort
def test_distinct_values_and_their_positions_match_numpy_unique(bound: int) -> None:
    values = np.random.default_rng(bound).integers(0, bound, 5_000)
    pairs, keys = _distinct(values, bound)
    expected_pairs, expected_keys = np.unique(values, return_inverse=True)
    assert pairs.tolist() == expected_pairs.tolist()
    assert keys.tolist() == expected_keys.tolist()
    assert (pairs[keys] == values).all()
