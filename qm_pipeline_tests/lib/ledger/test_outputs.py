"""Output chunks: however the replay cuts its rows into chunks, the ledger is the same."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from qm_pipeline.lib.ledger import LedgerConfig, LedgerInputs, WashMode, outputs, replay, trades
from qm_pipeline.lib.ledger.bench import synthesize
from qm_pipeline.lib.ledger.timeline import day_number, first_long_term_days, to_date

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
        ours, theirs = getattr(chunked, name), getattr(whole, name)
        if name == "realized":  # each chunk has its base-currency rows first
            ours, theirs = ours.sort_by("seq"), theirs.sort_by("seq")
        assert ours.equals(theirs), name
    assert sum(chunked.realized.column("wash_sale_disallowed").to_pylist()) > 0


def test_chunks_put_base_currency_rows_first_and_share_their_columns() -> None:
    """In each chunk the rows of base-currency instruments come first, as batches whose base
    columns are the local columns' own arrays; the other rows follow in their own batches."""
    history = synthesize(3_000, 40, seed=4)  # EUR instruments one in five
    realized = replay(LedgerInputs(trades=history), LedgerConfig()).realized
    kinds = []
    for batch in realized.to_batches():
        currencies = set(batch.column("currency").to_pylist())
        shared = [batch.column(f"{name}_base").buffers()[1].address
                  == batch.column(name).buffers()[1].address
                  for name in ("cost", "proceeds", "realized_pnl", "adjusted_basis",
                               "wash_sale_disallowed", "taxable_pnl")]
        kinds.append((currencies, all(shared), any(shared)))
    assert ({"USD"}, True, True) in kinds
    assert any("EUR" in currencies and not any_shared for currencies, _, any_shared in kinds)
    assert all(all_shared == (currencies == {"USD"}) for currencies, all_shared, _ in kinds)
    seq = realized.column("seq").to_pylist()
    assert sorted(seq) == list(range(1, len(seq) + 1))


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


def test_book_columns_are_dictionaries_over_the_final_books(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches made while books were still being added end up with one dictionary, the
    final books, and every row decodes to its own book's account and currency."""
    history = synthesize(3_000, 40, seed=3)
    monkeypatch.setattr(outputs, "CHUNK", 50)
    monkeypatch.setattr(trades, "BATCH", 20)
    result = replay(LedgerInputs(trades=history), LedgerConfig())
    books = len({(r["account_id"], r["conid"]) for r in result.positions.to_pylist()})
    for table in (result.realized, result.position_history):
        for name in ("account_id", "conid", "currency"):
            chunks = table.column(name).chunks
            assert len(chunks) > 10
            assert all(c.dictionary.equals(chunks[0].dictionary) for c in chunks)
            assert len(chunks[0].dictionary) == books
        for r in table.select(["account_id", "conid", "currency"]).to_pylist():
            number = int(r["conid"][3:])  # synthesize: STK<n> / OPT<n>, account U1 or U2
            assert r["account_id"] == ("U1", "U2")[number % 2]
            assert r["currency"] == ("EUR" if number % 5 == 1 else "USD")
    codes = result.realized.select(["term", "close_reason"]).to_pylist()
    assert {r["close_reason"] for r in codes} == {"TRADE"}
    assert {r["term"] for r in codes} == {"SHORT", "LONG"}


def test_first_long_term_days_follow_the_anniversary_rule_on_every_day() -> None:
    """Every start day of 2019-2025 (two 29 Februaries): the first long-term day is the day
    after the same date a year later, 28 February for a 29 February start (IRC 1222)."""
    days = np.arange(day_number(dt.date(2019, 1, 1)), day_number(dt.date(2026, 1, 1)))
    expected = []
    for day in days.tolist():
        start = to_date(day)
        leap_day = (start.month, start.day) == (2, 29)
        anniversary = dt.date(start.year + 1, 2, 28) if leap_day \
            else start.replace(year=start.year + 1)
        expected.append(day_number(anniversary) + 1)
    assert first_long_term_days(days).tolist() == expected
    assert to_date(int(first_long_term_days(np.array([day_number(dt.date(2024, 2, 29))]))[0])) \
        == dt.date(2025, 3, 1)
