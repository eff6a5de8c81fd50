"""The code location loads, and its graph is pinned so changes show in review."""

import dagster as dg

from qm_pipeline.definitions import defs

ANALYTICS = [f"analytics/{t}" for t in (
    "attribution", "attribution_daily", "concentration", "exposure", "greeks", "margin",
    "performance", "portfolio_daily", "position_daily", "position_weights", "risk",
    "tearsheets", "twr_checks")]
ASSETS = [
    *ANALYTICS, "core/accounts", "core/cash_balances", "core/cash_transactions",
    "core/change_in_nav",
    "core/closed_lots", "core/corporate_actions", "core/fx_rates", "core/instruments",
    "core/interest_accruals", "core/nav_daily", "core/open_positions", "core/option_events",
    "core/prices", "core/securities_info", "core/trades", "core/transfers", "ledger/audit_log",
    "ledger/balance_history", "ledger/check_failures", "ledger/flags", "ledger/lots",
    "ledger/position_history", "ledger/positions", "ledger/realized", "live/daily_bars",
    "live/snapshots", "published/warehouse", "raw/flex_archive", "raw/flex_ingest_log",
    "raw/flex_rows", "recon/actions", "recon/discrepancies", "recon/proposals", "recon/runs",
]
REPLAYED = {dg.AssetKey(["core", t]) for t in (
    "trades", "closed_lots", "transfers", "corporate_actions", "option_events", "open_positions")}


def test_asset_graph_is_pinned():
    graph = defs.get_repository_def().asset_graph
    assert sorted(k.to_user_string() for k in graph.get_all_asset_keys()) == ASSETS
    assert graph.get(dg.AssetKey(["core", "trades"])).parent_keys == {
        dg.AssetKey(["raw", "flex_rows"])
    }
    assert graph.get(dg.AssetKey(["raw", "flex_rows"])).parent_keys == {
        dg.AssetKey(["raw", "flex_archive"])
    }
    assert graph.get(dg.AssetKey(["ledger", "positions"])).parent_keys == REPLAYED
    assert graph.get(dg.AssetKey(["ledger", "position_history"])).parent_keys == {
        *REPLAYED, dg.AssetKey(["live", "snapshots"])}
    assert graph.get(dg.AssetKey(["ledger", "balance_history"])).parent_keys == {
        dg.AssetKey(["core", t]) for t in ("cash_balances", "nav_daily", "fx_rates", "accounts")}
    assert {graph.get(k).group_name for k in graph.get_all_asset_keys()
            if k.path[0] == "ledger"} == {"ledger"}
    assert graph.get(dg.AssetKey(["recon", "discrepancies"])).parent_keys == {
        dg.AssetKey(["ledger", "positions"]), dg.AssetKey(["ledger", "balance_history"]),
        dg.AssetKey(["live", "snapshots"]), dg.AssetKey(["core", "open_positions"]),
        dg.AssetKey(["core", "cash_balances"])}
    # analytics never run on a state reconciliation halted: they sit below its blocking check
    daily = graph.get(dg.AssetKey(["analytics", "portfolio_daily"]))
    assert {dg.AssetKey(["recon", "discrepancies"]), dg.AssetKey(["ledger", "positions"]),
            dg.AssetKey(["core", "nav_daily"])} <= daily.parent_keys
    assert graph.get(dg.AssetKey(["analytics", "tearsheets"])).parent_keys >= {
        dg.AssetKey(["recon", "runs"]), dg.AssetKey(["analytics", "risk"])}
    assert {graph.get(dg.AssetKey(k.split("/"))).group_name for k in ANALYTICS} == {"analytics"}


def test_jobs_schedules_and_checks():
    repo = defs.get_repository_def()
    assert sorted(j for j in repo.job_names if not j.startswith("__")) == [
        "analytics", "analytics_report", "daily_bars", "flex_ingest", "flex_ingest_ledger",
        "ledger_rebuild", "ledger_reconcile", "live_reconcile", "live_snapshot", "reconcile"]
    assert repo.get_schedule_def("flex_nightly").default_status.value == "RUNNING"
    intraday = repo.get_schedule_def("live_reconcile_intraday")
    assert intraday.cron_schedule == "*/5 9-16 * * 1-5"
    assert intraday.execution_timezone == "America/New_York"
    assert intraday.default_status.value == "STOPPED"  # until QM_LIVE_SCHEDULES=on
    assert intraday.job_name == "live_reconcile"
    assert repo.get_schedule_def("live_reconcile_startup").cron_schedule == "0 8 * * 1-5"
    assert sorted(s.name for s in repo.sensor_defs) == [
        "analytics_after_reconcile", "reconcile_after_flex_ingest",
        "reconcile_on_large_executions"]
    after_recon = repo.get_sensor_def("analytics_after_reconcile")
    assert after_recon.default_status.value == "RUNNING"
    assert after_recon.job_name == "analytics_report"
    after_ingest = repo.get_sensor_def("reconcile_after_flex_ingest")
    assert after_ingest.default_status.value == "RUNNING"
    assert after_ingest.job_name == "ledger_reconcile"
    checks = sorted(k.name for k in repo.asset_graph.asset_check_keys)
    assert "flex_ingest_log_row_fidelity" in checks
    assert "flex_ingest_log_schema_drift" in checks
    assert "trades_key_unique" in checks and "instruments_key_unique" in checks
    assert {"realized_fifo_pnl_matches_ib", "realized_closed_lots_match_ib",
            "position_history_open_positions_match_ib", "flags_no_errors"} <= set(checks)
    assert "recon_discrepancies_no_halting_breaks" in checks
    assert {"twr_matches_ib", "contributions_sum_to_returns",
            "concentration_within_limits"} <= set(checks)
    assert len(checks) == 25  # fidelity, drift, 15 key, 4 ledger, 1 recon, 3 analytics
