"""The benchmark runs end to end on a small synthetic history (the full run is `make bench`)."""

from __future__ import annotations

from qm_pipeline.lib.ledger.bench import bench_replay, synthesize


def test_bench_replay_small() -> None:
    result = bench_replay(n_executions=3_000, n_instruments=40, seed=3)
    assert result.n_executions == 3_000
    assert result.elapsed_seconds > 0 and result.peak_rss_mb > 0
    assert result.realized_rows > 0 and result.positions > 0


def test_synthetic_executions_are_well_formed() -> None:
    trades = synthesize(2_000, 30, seed=5)
    assert trades.num_rows == 2_000
    rows = trades.to_pylist()
    assert len({r["transaction_id"] for r in rows}) == 2_000
    for r in rows:  # DOMAIN.md §1: proceeds = -quantity x price x multiplier
        assert r["proceeds"] == -r["quantity"] * r["trade_price"] * r["multiplier"]
        assert r["ib_commission"] < 0
