"""Concentration of a portfolio: weights, top-N share, Herfindahl index and limit breaches.

Weights are market value over NAV (signed: a short has a negative weight), the figure a
limit such as "no single name above 10% of NAV" is written against. Measures of how
concentrated the book is look at size, not direction, so they use the gross weights
|w| / sum|w|: the top-N share is the part of the gross exposure in the N largest
positions, the Herfindahl index sum((|w| / sum|w|)^2), between 1/n (n equal positions)
and 1 (one position); 1 / HHI reads as the effective number of positions.
Limits compare |weight| (single name) and the gross weight of a group (sector: the sum
of its positions' |weight|), so a long and a short in one sector do not hide each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

SINGLE_NAME, SECTOR = "single_name", "sector"
UNMAPPED = "UNMAPPED"  # group of a position the mapping does not name


@dataclass(frozen=True)
class Breach:
    """A limit exceeded: which kind, by whom, by how much."""

    kind: str  # SINGLE_NAME or SECTOR
    name: str  # position or group
    weight: float  # |weight| (single name) or gross weight (group), fraction of NAV
    limit: float


def weights(market_values: pd.Series, nav: float | None = None) -> pd.Series:
    """Market value / NAV per position (signed); NAV defaults to the sum of the values."""
    denominator = float(market_values.sum()) if nav is None else float(nav)
    return market_values.astype("float64") / denominator


def gross_shares(position_weights: pd.Series) -> pd.Series:
    """|w| / sum|w|, largest first: each position's part of the gross exposure."""
    gross = position_weights.abs()
    return (gross / gross.sum()).sort_values(ascending=False)


def top_n_share(position_weights: pd.Series, n: int) -> float:
    """Part of the gross exposure held in the `n` largest positions."""
    return float(gross_shares(position_weights).iloc[:n].sum())


def herfindahl(position_weights: pd.Series) -> float:
    """Herfindahl-Hirschman index of the gross shares (1/n equal-weighted, 1 single)."""
    return float((gross_shares(position_weights) ** 2).sum())


def group_gross_weights(position_weights: pd.Series, groups: Mapping[str, str]) -> pd.Series:
    """Sum of |weight| per group (e.g. sector); positions not in `groups` go to UNMAPPED."""
    labels = [groups.get(name, UNMAPPED) for name in position_weights.index]
    return position_weights.abs().groupby(labels).sum()


def limit_breaches(position_weights: pd.Series, single_name_limit: float | None = None,
                   groups: Mapping[str, str] | None = None,
                   group_limit: float | None = None) -> list[Breach]:
    """Every position whose |weight| exceeds `single_name_limit`, and every group whose
    gross weight exceeds `group_limit`, largest first within each kind."""
    found = []
    if single_name_limit is not None:
        found += _over(position_weights.abs(), SINGLE_NAME, single_name_limit)
    if group_limit is not None:
        found += _over(group_gross_weights(position_weights, groups or {}), SECTOR, group_limit)
    return found


def _over(values: pd.Series, kind: str, limit: float) -> list[Breach]:
    over = values[values > limit].sort_values(ascending=False)
    return [Breach(kind, str(name), float(w), limit) for name, w in over.items()]
