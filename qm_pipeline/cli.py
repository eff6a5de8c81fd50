"""`qm`: run the pipeline's assets from a terminal, in-process, the same code the UI runs."""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
import time
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from qm_pipeline.lib import progress
from qm_pipeline.lib.settings import load_settings
from qm_pipeline.runner import RunOutcome, prepare_dagster_home, run_job

app = typer.Typer(help="qm-pipeline: Interactive Brokers data, correct, complete, explained.",
                  no_args_is_help=True, add_completion=False)
# Piped output (CI logs, files) gets a wide fixed width instead of rich's 80 columns.
console = Console() if sys.stdout.isatty() else Console(width=140)


def _cell(value: object) -> str:
    """Money to cents with thousands separators, times to the minute, None as a dash."""
    if value is None:
        return "-"
    if isinstance(value, Decimal):
        return f"{value:,.2f}"
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M}"
    return str(value)

DataDir = Annotated[Path | None, typer.Option(envvar="QM_DATA_DIR", help="Data folder.")]


def _footer(outcome: RunOutcome) -> None:
    """The run's errors, then its id and result: the last lines of every command."""
    for error in outcome.errors:
        console.print(f"[red]error:[/red] {error}")
    console.print(f"run {outcome.run_id}: {'[green]success' if outcome.success else '[red]failed'}")


def _setup(data_dir: Path | None):
    if data_dir:
        os.environ["QM_DATA_DIR"] = str(data_dir)
    settings = load_settings()
    prepare_dagster_home(settings.data_dir)
    return settings


def _ingest_run(config: dict, partition_key: str) -> RunOutcome:
    bar = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                   TimeRemainingColumn(), console=console, transient=True)
    tasks: dict[str, int] = {}

    def report(name: str, done: int, total: int) -> None:
        if name not in tasks:
            tasks[name] = bar.add_task(name, total=total)
        bar.update(tasks[name], completed=done)

    token = progress.use(report)
    try:
        with bar:
            return run_job("flex_ingest", run_config=config, partition_key=partition_key)
    finally:
        progress.reset(token)


def _summary(outcome: RunOutcome) -> None:
    from qm_pipeline.lib.flex.summary import run_summary
    from qm_pipeline.lib.warehouse.engine import Warehouse

    warehouse = Warehouse(load_settings().database_url)
    rows = run_summary(warehouse, outcome.run_id)
    warehouse.dispose()
    table = Table(title="Flex reports loaded in this run")
    for column in ("report", "accounts", "stmts", "rows seen", "rows loaded", "core rows",
                   "d/M", "schema drift"):
        table.add_column(column, justify="right" if "rows" in column else "left",
                         overflow="fold")
    for name, accounts, statements, seen, loaded, core, order, drift in rows:
        table.add_row(name, accounts, str(statements), str(seen), str(loaded), str(core),
                      order, drift or "-")
    console.print(table if rows else "No new report was loaded (nothing pending or duplicates).")
    _footer(outcome)


def fetch_config(paths: list[str], web: bool, drop: bool, query_id: str | None = None,
                 window: tuple[str, str] | None = None) -> dict:
    config: dict = {"paths": paths, "use_web_service": web, "use_drop_folder": drop}
    if query_id:
        config["query_id"] = query_id
    if window:
        config["from_date"], config["to_date"] = window
    return {"ops": {"raw__flex_archive": {"config": config}}}


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Flex XML files or folders of them.")],
    data_dir: DataDir = None,
) -> None:
    """Archive and load Flex reports from files or folders."""
    _setup(data_dir)
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        console.print(f"[red]no such file or folder:[/red] {', '.join(missing)}")
        raise typer.Exit(2)
    outcome = _ingest_run(fetch_config([str(p.resolve()) for p in paths], False, False),
                          partition_key=date.today().isoformat())
    _summary(outcome)
    raise typer.Exit(0 if outcome.success else 1)


@app.command()
def fetch(
    query_id: Annotated[str, typer.Option("--query-id", help="Flex Query id.")],
    from_date: Annotated[str, typer.Option("--from", help="First report date, YYYY-MM-DD.")],
    to_date: Annotated[str, typer.Option("--to", help="Last report date, YYYY-MM-DD.")],
    data_dir: DataDir = None,
) -> None:
    """Pull a date range from the Flex Web Service (token in QM_FLEX_TOKEN) and load it."""
    _setup(data_dir)
    if not os.environ.get("QM_FLEX_TOKEN"):
        console.print("[red]QM_FLEX_TOKEN is not set[/red]: create a Flex Web Service token "
                      "in Client Portal (Settings > Reporting) and export it.")
        raise typer.Exit(2)
    outcome = _ingest_run(fetch_config([], True, False, query_id, (from_date, to_date)),
                          partition_key=date.today().isoformat())
    _summary(outcome)
    raise typer.Exit(0 if outcome.success else 1)


def _snapshot_run(host: str | None, port: int | None, client_id: int | None) -> RunOutcome:
    overrides = {k: v for k, v in (("host", host), ("port", port), ("client_id", client_id))
                 if v is not None}
    config = {"resources": {"ib_gateway": {"config": overrides}}} if overrides else {}
    with console.status("Taking a live snapshot..."):
        return run_job("live_snapshot", run_config=config)


def _snapshot_summary(outcome: RunOutcome) -> None:
    from qm_pipeline.lib.live.summary import latest_accounts
    from qm_pipeline.lib.warehouse.engine import Warehouse

    warehouse = Warehouse(load_settings().database_url)
    rows = latest_accounts(warehouse)
    warehouse.dispose()
    table = Table(title="Accounts, latest complete snapshot")
    for column in ("account", "paper", "taken at (UTC)", "net liquidation", "cash",
                   "buying power", "positions", "open orders"):
        table.add_column(column)
    for row in rows:
        table.add_row(*[_cell(v) for v in row])
    if outcome.success:
        console.print(table)
    _footer(outcome)


@app.command()
def snapshot(
    host: Annotated[str | None, typer.Option(help="TWS / IB Gateway host (QM_IB_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="API port (QM_IB_PORT).")] = None,
    client_id: Annotated[int | None, typer.Option(help="API client id (QM_IB_CLIENT_ID).")] = None,
    data_dir: DataDir = None,
) -> None:
    """Take one live snapshot of the accounts and store it (whole, or not at all)."""
    _setup(data_dir)
    outcome = _snapshot_run(host, port, client_id)
    _snapshot_summary(outcome)
    raise typer.Exit(0 if outcome.success else 1)


def _bars_summary(outcome: RunOutcome) -> None:
    from qm_pipeline.lib.live.summary import stored_bars
    from qm_pipeline.lib.warehouse.engine import Warehouse

    warehouse = Warehouse(load_settings().database_url)
    rows = stored_bars(warehouse)
    warehouse.dispose()
    if outcome.success:
        table = Table(title="Daily bars stored (live.daily_bars)")
        for column in ("symbol", "prices", "bars", "first", "last", "fetched at (UTC)"):
            table.add_column(column)
        for row in rows:
            table.add_row(*[_cell(v) for v in row])
        console.print(table)
    _footer(outcome)


@app.command()
def bars(
    symbol: Annotated[str | None, typer.Argument(help="Symbol (default: QM_BENCHMARK).")] = None,
    duration: Annotated[str, typer.Option(help="TWS duration, e.g. '10 Y', '6 M'.")] = "10 Y",
    what_to_show: Annotated[str, typer.Option(
        help="ADJUSTED_LAST (splits and dividends) or TRADES.")] = "ADJUSTED_LAST",
    currency: Annotated[str, typer.Option(help="The instrument's currency.")] = "USD",
    port: Annotated[int | None, typer.Option(help="API port (QM_IB_PORT).")] = None,
    data_dir: DataDir = None,
) -> None:
    """Fetch a benchmark's daily bars from TWS's historical data into live.daily_bars: the
    benchmark prices analytics use when no CSV is in QM_DATA_DIR/benchmarks/."""
    _setup(data_dir)
    config = {"duration": duration, "what_to_show": what_to_show, "currency": currency,
              **({"symbol": symbol} if symbol else {})}
    run_config: dict = {"ops": {"live__daily_bars": {"config": config}}}
    if port is not None:
        run_config["resources"] = {"ib_gateway": {"config": {"port": port}}}
    with console.status("Fetching daily bars..."):
        outcome = run_job("daily_bars", run_config=run_config)
    _bars_summary(outcome)
    raise typer.Exit(0 if outcome.success else 1)


def _ledger_overrides(method: str | None, methods: str | None, wash_sales: str | None,
                      accounts: list[str] | None) -> dict:
    """Resource config for the options given; fails fast (exit 2) on settings that do not
    parse, before any run starts."""
    from qm_pipeline.lib.ledger.settings import from_env, ledger_config

    overrides: dict = {k: v for k, v in (("method", method), ("methods", methods),
                                         ("wash_sales", wash_sales)) if v is not None}
    if accounts:
        overrides["accounts"] = list(accounts)
    text = {**from_env(), **{k: v for k, v in overrides.items() if k != "accounts"}}
    try:
        ledger_config(**text)
    except ValueError as exc:
        console.print(f"[red]ledger settings:[/red] {exc}")
        raise typer.Exit(2) from None
    return overrides


def _ledger_summary(outcome: RunOutcome) -> None:
    from qm_pipeline.lib.ledger.summary import ledger_summary
    from qm_pipeline.lib.warehouse.engine import Warehouse
    from qm_pipeline.lib.warehouse.migrations import migrate

    warehouse = Warehouse(load_settings().database_url)
    migrate(warehouse)  # a warehouse the run never reached still has empty ledger tables
    found = ledger_summary(warehouse)
    warehouse.dispose()
    if outcome.success and found.run:
        run = found.run
        console.print(f"Lot method {run['default_method']}"
                      + (f" (overrides {run['lot_methods']})" if run["lot_methods"] else "")
                      + f", wash sales {run['wash_sales']}")
        accounts = Table(title="Ledger accounts")
        for column in ("account", "method", "open positions", "episodes",
                       "realized P&L (base)", "flags"):
            accounts.add_column(column, justify="left" if column in ("account", "method")
                                else "right")
        for row in found.accounts:
            accounts.add_row(*[_cell(v) for v in row])
        console.print(accounts)
        realized = Table(title="Realized P&L by year and term (base currency)")
        for column in ("account", "year", "term", "lots closed", "realized P&L",
                       "wash sale disallowed"):
            realized.add_column(column, justify="left" if column in ("account", "term")
                                else "right")
        for row in found.realized:
            realized.add_row(*[_cell(v) for v in row])
        console.print(realized)
        if found.failures:
            failures = Table(title="Cross-checks with IB: mismatches (ledger.check_failures)")
            failures.add_column("check")
            failures.add_column("mismatches", justify="right")
            for name, n in found.failures:
                failures.add_row(name, f"[red]{n}[/red]")
            console.print(failures)
        else:
            console.print("[green]Cross-checks with IB: no mismatch[/green]")
    _footer(outcome)


@app.command()
def ledger(
    method: Annotated[str | None, typer.Option(
        help="Lot method of every account: FIFO, LIFO, HIFO, SPECIFIC (QM_LEDGER_METHOD).")]
    = None,
    methods: Annotated[str | None, typer.Option(
        help="Per-account methods, e.g. U1=LIFO,U2=HIFO (QM_LEDGER_METHODS).")] = None,
    wash_sales: Annotated[str | None, typer.Option(
        help="Wash sales: broker, taxpayer or none (QM_WASH_SALES).")] = None,
    account: Annotated[list[str] | None, typer.Option(
        help="Rebuild only this account (repeatable; default: all).")] = None,
    data_dir: DataDir = None,
) -> None:
    """Rebuild the ledger (lots, realized P&L, positions, history, balances) from the
    warehouse, check it against IB's numbers, and summarize it."""
    _setup(data_dir)
    overrides = _ledger_overrides(method, methods, wash_sales, account)
    config = {"resources": {"ledger": {"config": overrides}}} if overrides else {}
    with console.status("Replaying the ledger..."):
        outcome = run_job("ledger_rebuild", run_config=config)
    _ledger_summary(outcome)
    raise typer.Exit(0 if outcome.success else 1)


def _recon_run(strategy: str | None, strategies: str | None,
               allow_order_submission: bool) -> RunOutcome:
    overrides: dict = {k: v for k, v in (("strategy", strategy), ("strategies", strategies))
                       if v}
    if allow_order_submission:
        overrides["allow_order_submission"] = True
    config = {"resources": {"recon": {"config": overrides}}} if overrides else {}
    with console.status("Reconciling local state with the broker..."):
        return run_job("reconcile", run_config=config)


def _recon_summary(outcome: RunOutcome) -> None:
    from qm_pipeline.lib.recon.summary import latest_report

    text = latest_report(load_settings().database_url, outcome.run_id)
    if text:
        console.print(text, markup=False, highlight=False)
    _footer(outcome)


@app.command()
def reconcile(
    strategy: Annotated[str | None, typer.Option(
        help="One strategy for every break: WARN_ONLY, SYNC_TO_BROKER, HALT_AND_ALERT or "
             "SYNC_TO_LOCAL (dangerous: proposes orders).")] = None,
    strategies: Annotated[str | None, typer.Option(
        help="Per severity and account, e.g. MINOR=WARN_ONLY,CRITICAL=SYNC_TO_BROKER,"
             "U1:CRITICAL=HALT_AND_ALERT (QM_RECON_STRATEGIES).")] = None,
    allow_order_submission: Annotated[bool, typer.Option(
        help="SYNC_TO_LOCAL only: submit the proposed orders (needs a client that is not "
             "read-only). Dangerous.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Reconcile positions, cash and orders: local state against Flex and the latest live
    snapshot; act per strategy; write the report under QM_DATA_DIR/reports."""
    from qm_pipeline.lib.recon.config import config_from_env, parse_strategies
    from qm_pipeline.lib.recon.model import Strategy

    _setup(data_dir)
    try:
        config_from_env()
        parse_strategies(strategies or "")
        if strategy:
            Strategy(strategy.upper())
    except ValueError as exc:
        console.print(f"[red]reconciliation settings:[/red] {exc}")
        raise typer.Exit(2) from None
    outcome = _recon_run(strategy, strategies, allow_order_submission)
    _recon_summary(outcome)
    raise typer.Exit(0 if outcome.success else 1)


def _analytics_run(job: str, benchmark: str | None) -> RunOutcome:
    config = {"resources": {"analytics": {"config": {"benchmark": benchmark}}}} if benchmark \
        else {}
    with console.status("Building the analytics..."):
        return run_job(job, run_config=config)


def _pct(value: float | None) -> str:
    return "-" if value is None or value != value else f"{value:.2%}"


def _analytics_summary(outcome: RunOutcome) -> None:
    from qm_pipeline.lib.analytics.summary import AnalyticsSummary, analytics_summary
    from qm_pipeline.lib.warehouse.engine import Warehouse

    warehouse = Warehouse(load_settings().database_url)
    found = analytics_summary(warehouse)
    warehouse.dispose()
    if outcome.success and found.accounts:
        table = Table(title="Since inception (base currency)")
        for column in AnalyticsSummary.COLUMNS:
            table.add_column(column, justify="left" if column == "account" else "right")
        for account, start, end, twr, cagr, vol, sharpe, dd, mwr, var in found.accounts:
            table.add_row(account, str(start), str(end), _pct(twr), _pct(cagr), _pct(vol),
                          "-" if sharpe != sharpe else f"{sharpe:.2f}", _pct(dd), _pct(mwr),
                          _pct(var))
        console.print(table)
        bad = found.twr_mismatches
        console.print(f"TWR against IB's ChangeInNAV: {found.twr_periods - len(bad)} of "
                      f"{found.twr_periods} statement periods within 1 bp"
                      + "".join(f"\n  [red]{a} {f}..{t}: {gap:+.2f} bp[/red]"
                                for a, f, t, gap in bad))
        for breach in found.breaches:
            console.print(f"[yellow]limit:[/yellow] {breach}")
    _footer(outcome)


Benchmark = Annotated[str | None, typer.Option(
    help="Benchmark symbol: QM_DATA_DIR/benchmarks/<SYMBOL>.csv (date,close); QM_BENCHMARK.")]


@app.command()
def analytics(benchmark: Benchmark = None, data_dir: DataDir = None) -> None:
    """Build core.prices and the analytics tables (returns, performance, risk, exposure,
    concentration, attribution, Greeks) from the ledger and the reconciled state."""
    _setup(data_dir)
    outcome = _analytics_run("analytics", benchmark)
    _analytics_summary(outcome)
    raise typer.Exit(0 if outcome.success else 1)


@app.command()
def report(benchmark: Benchmark = None, data_dir: DataDir = None) -> None:
    """Refresh the analytics and write one HTML tearsheet per account and for ALL under
    QM_DATA_DIR/reports/."""
    settings = _setup(data_dir)
    started = time.time()
    outcome = _analytics_run("analytics_report", benchmark)
    _analytics_summary(outcome)
    for path in sorted(settings.reports_dir.glob("tearsheet_*.html")):
        if path.stat().st_mtime >= started - 1:
            console.print(f"tearsheet: {path}")
    raise typer.Exit(0 if outcome.success else 1)


orders_app = typer.Typer(help="The trading application's orders (ledger.orders).",
                         no_args_is_help=True)
app.add_typer(orders_app, name="orders")


@orders_app.command("import")
def orders_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False,
                                         help="CSV (header row) or JSON (list of objects).")],
    data_dir: DataDir = None,
) -> None:
    """Upsert orders into ledger.orders by order_key, in one transaction."""
    from qm_pipeline.lib.ledger.orders import OrderFileError, read_order_file, upsert_orders
    from qm_pipeline.lib.warehouse.engine import Warehouse
    from qm_pipeline.lib.warehouse.migrations import migrate

    settings = _setup(data_dir)
    try:
        rows = read_order_file(file)
    except OrderFileError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    warehouse = Warehouse(settings.database_url)
    migrate(warehouse)
    with warehouse.transaction() as tx:
        written = upsert_orders(tx, rows)
    warehouse.dispose()
    console.print(f"{written} order(s) imported from {file} into ledger.orders")


@app.command()
def demo(data_dir: DataDir = None) -> None:
    """Generate a sample multi-account history, serve it from a local fake Flex Web Service,
    fetch it with the real client, load it, rebuild the ledger, snapshot a simulated IB
    Gateway where one position was closed behind the pipeline's back, and reconcile
    (SYNC_TO_BROKER) so it shows as CLOSED_EXTERNALLY in the report; then build the
    analytics against the sample's benchmark and write the HTML tearsheets."""
    from qm_pipeline.lib.demo import run_demo

    settings = _setup(data_dir)
    outcomes = run_demo(
        settings.database_url,
        lambda window: _ingest_run(fetch_config([], True, True, window=window),
                                   date.today().isoformat()),
        lambda: run_job("ledger_rebuild"), _snapshot_run,
        lambda: _recon_run("SYNC_TO_BROKER", None, False),
        lambda: _analytics_run("analytics_report", None), settings.data_dir)
    summaries = [_summary, _ledger_summary, _snapshot_summary, _recon_summary,
                 _analytics_summary]
    for outcome, show in zip(outcomes, summaries, strict=False):
        show(outcome)
    console.print(f"Warehouse: {settings.database_url}\nAnalysts' copy: "
                  f"{settings.published_path}\nReports: {settings.reports_dir}")
    for path in sorted(settings.reports_dir.glob("tearsheet_*.html")):
        console.print(f"tearsheet: {path}")
    raise typer.Exit(0 if len(outcomes) == 5 and all(o.success for o in outcomes) else 1)


@app.command()
def ui(data_dir: DataDir = None, port: int = 3000) -> None:
    """Start the Dagster UI on this code location."""
    _setup(data_dir)
    workspace = Path(__file__).resolve().parent.parent / "workspace.yaml"
    sys.exit(subprocess.call([sys.executable, "-m", "dagster", "dev", "-w", str(workspace),
                              "-p", str(port)]))


def main() -> None:
    """`qm`. A finished command ends the process without the interpreter's teardown: by then
    its runs are committed, its connections closed and its output printed, and the teardown
    would spend 0.6-0.8 s in garbage-collection passes over Dagster's 270,000 objects (every
    command, measured on `qm ingest`). A command that raises leaves the usual way."""
    try:
        app()
        code: object = 0
    except SystemExit as exit_:
        code = exit_.code
    if code is not None and not isinstance(code, int):  # as Python ends sys.exit("message")
        print(code, file=sys.stderr)
        code = 1
    atexit._run_exitfuncs()  # (logging's shutdown and the like still run)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)
