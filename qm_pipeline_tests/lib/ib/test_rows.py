"""Number conversion at the client boundary: exact decimals, unknowns as None."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest

from qm_pipeline.lib.ib.client import LIBRARY, LIBRARY_VERSION, LOGGER_NAMES, connect_options
from qm_pipeline.lib.ib.rows import UNSET_DOUBLE, dec, ib_time, is_paper, text_decimal


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.1, Decimal("0.1")),  # the repr, not the binary expansion 0.1000000000000000055...
        (189.14, Decimal("189.14")),
        (-2.0, Decimal("-2.0")),
        (100, Decimal(100)),
        (Decimal("1.25"), Decimal("1.25")),
        (math.nan, None),
        (math.inf, None),
        (UNSET_DOUBLE, None),
        (None, None),
    ],
)
def test_client_floats_become_exact_decimals(value: float | None, expected: Decimal | None) -> None:
    assert dec(value) == expected
    assert dec(value) is None or str(dec(value)) == str(expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("25000.00", Decimal("25000.00")),
        ("INDIVIDUAL", None),
        ("", None),
        ("1.7976931348623157E308", None),
    ],
)
def test_account_value_text(text: str, expected: Decimal | None) -> None:
    assert text_decimal(text) == expected


def test_ib_times_need_a_zone() -> None:
    assert ib_time("20240115 15:31:02 US/Eastern").isoformat() == "2024-01-15T20:31:02+00:00"
    assert ib_time("20240115  15:31:02") is None  # naive: which zone would be a guess
    assert ib_time("") is None


def test_paper_accounts_by_prefix() -> None:
    assert is_paper("DU1234567") and is_paper("DF99999")
    assert not is_paper("U1234567") and not is_paper("F7654321")


def test_the_client_shim_names_its_library() -> None:
    assert LIBRARY in ("ib_async", "ib_insync") and LIBRARY_VERSION
    assert LOGGER_NAMES[0] == f"{LIBRARY}.Decoder"
    assert connect_options() == ({"raiseSyncErrors": True} if LIBRARY == "ib_async" else {})
