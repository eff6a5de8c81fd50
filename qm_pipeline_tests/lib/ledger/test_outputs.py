"""Output chunks: however the replay cuts its rows into chunks, the ledger is the same."""

from __future__ import annotations

import pytest

from qm_pipeline.lib.ledger import LedgerConfig, LedgerInputs, WashMode, outputs, replay, trades
from qm_pipeline.lib.ledger.bench import synthesize

TABLES = ("lots", "realized", "positions", "position_history", "flags")


@pytest.mark.parametrize("mode", [WashMode.BROKER, WashMode.TAXPAYER])
def test_small_chunks_give_the_same_ledger(monkeypatch: pytest.MonkeyPatch,
                                           mode: WashMode) -> None:
    history = synthesize(3_000, 40, seed=3)
    config = LedgerConfig(wash_sales=mode, owners={"U1": "ann", "U2": "ann"})
    whole = replay(LedgerInputs(trades=history), config)
    # losses wait for replacements across many chunks and blocks of written rows
    monkeypatch.setattr(outputs, "CHUNK", 50)
    monkeypatch.setattr(trades, "BATCH", 20)
    chunked = replay(LedgerInputs(trades=history), config)
    assert chunked.realized.num_rows > 20 * outputs.CHUNK  # many chunks
    for name in TABLES:
        assert getattr(chunked, name).equals(getattr(whole, name)), name
    assert sum(chunked.realized.column("wash_sale_disallowed").to_pylist()) > 0


def test_summed_columns_add_up_row_by_row() -> None:
    """The columns summed per chunk of rows (P&L, taxable P&L), in local and base currency,
    against the same sums of each row's own amounts."""
    history = synthesize(3_000, 40, seed=4)  # EUR instruments: base amounts differ
    realized = replay(LedgerInputs(trades=history), LedgerConfig()).realized.to_pylist()
    assert any(r["cost_base"] != r["cost"] for r in realized)
    assert any(r["adjusted_basis_base"] != r["cost_base"] for r in realized)
    for r in realized:
        for base in ("", "_base"):
            proceeds = r[f"proceeds{base}"]
            assert r[f"realized_pnl{base}"] == proceeds - r[f"cost{base}"]
            assert r[f"taxable_pnl{base}"] == (proceeds - r[f"adjusted_basis{base}"]
                                               + r[f"wash_sale_disallowed{base}"])
