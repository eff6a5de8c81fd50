"""The `qm` command as a user runs it: a subprocess of the installed script, a fresh data folder
and Dagster home, real corpus files, the simulated IB Gateway on a local port.

`test_demo` is the slow one (it generates, serves, fetches, loads and snapshots, ~10 s):
select it with `-k demo`, leave it out with `-k "not demo"`.
"""

from __future__ import annotations

import csv
import os
import re
import socket
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import duckdb

from qm_pipeline.lib.flex.summary import run_summary
from qm_pipeline.lib.sim.gateway import GatewayThread, default_state
from qm_pipeline.lib.warehouse.engine import Warehouse

QM = Path(sys.executable).with_name("qm")
RUN = re.compile(r"^run ([0-9a-f-]{36}): (success|failed)$", re.MULTILINE)


def environment(tmp_path: Path, name: str) -> dict[str, str]:
    """The caller's environment without any pipeline settings, with its own folders."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("QM_") and k != "DAGSTER_HOME"}
    env.update(QM_DATA_DIR=str(tmp_path / name / "data"),
               DAGSTER_HOME=str(tmp_path / name / "dagster_home"))
    (tmp_path / name).mkdir(exist_ok=True)  # the working directory
    return env


def qm(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([str(QM), *args], env=env, cwd=Path(env["QM_DATA_DIR"]).parent,
                          capture_output=True, text=True, timeout=timeout, check=False)


def start(*args: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([str(QM), *args], env=env, cwd=Path(env["QM_DATA_DIR"]).parent,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def table(out: str, first: str) -> dict[str, list[str]]:
    """Rows of the rich table whose first cell matches `first`, by that cell."""
    found = {}
    for line in out.splitlines():
        if line.startswith("│"):
            cells = [c.strip() for c in line.strip().strip("│").split("│")]
            if re.fullmatch(first, cells[0]):
                found[cells[0]] = cells
    return found


def run_of(out: str) -> tuple[str, str]:
    (found,) = RUN.findall(out)
    return found


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_ingest_prints_what_each_report_loaded(tmp_path: Path, corpus_dir: Path) -> None:
    names = ["001_pp01_2013_fx_opt_ca.xml", "018_pp26_2025_two_accounts.xml"]
    env = environment(tmp_path, "ingest")

    done = qm("ingest", *[str(corpus_dir / n) for n in names], env=env)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "Flex reports loaded in this run" in done.stdout
    run_id, status = run_of(done.stdout)
    assert status == "success" and done.stderr == ""
    with (corpus_dir / "MANIFEST.tsv").open(newline="") as stream:
        manifest = {r["file"]: r for r in csv.DictReader(stream, delimiter="\t")}
    printed = table(done.stdout, r".+\.xml")
    assert sorted(printed) == names
    for name in names:
        _, _, statements, seen, loaded, _, _, _ = printed[name]
        assert (statements, seen, loaded) == (
            manifest[name]["n_statements"], manifest[name]["rows"], manifest[name]["rows"])
    assert printed["001_pp01_2013_fx_opt_ca.xml"][7] == "Trade.orderPlacementTime"  # drift
    assert printed["018_pp26_2025_two_accounts.xml"][7] == "-"

    # the table is what the warehouse under QM_DATA_DIR holds for this run
    data = Path(env["QM_DATA_DIR"])
    warehouse = Warehouse(f"duckdb:///{data / 'warehouse.duckdb'}")
    try:
        stored = run_summary(warehouse, run_id)
    finally:
        warehouse.dispose()
    assert [[str(v) if v is not None else "-" for v in r[:6]] for r in stored] == [
        printed[n][:6] for n in names]
    assert (data / "published" / "warehouse.duckdb").is_file()
    assert (Path(env["DAGSTER_HOME"]) / "dagster.yaml").read_text().startswith(
        "telemetry:\n  enabled: false")


def test_ingest_of_a_missing_file_is_a_usage_error(tmp_path: Path, corpus_dir: Path) -> None:
    env = environment(tmp_path, "missing")

    done = qm("ingest", str(corpus_dir / "007_pp13_cfd.xml"), "missing.xml", env=env)

    assert done.returncode == 2
    assert "no such file or folder: missing.xml" in done.stdout
    assert RUN.search(done.stdout) is None  # refused before any run
    assert not (Path(env["QM_DATA_DIR"]) / "raw").exists()  # nothing archived either


def test_snapshot_prints_the_accounts_or_the_failure(tmp_path: Path) -> None:
    refused_port = unused_port()
    refused_env = environment(tmp_path, "refused")
    # nothing listens there: refused, retried with back-off (~3 s), so started first
    refused = start("snapshot", "--host", "127.0.0.1", "--port", str(refused_port),
                    env=refused_env)
    try:
        env = environment(tmp_path, "snapshot")
        with GatewayThread(default_state()) as gw:
            done = qm("snapshot", "--host", "127.0.0.1", "--port", str(gw.port), env=env)
            sessions = gw.server.requests_named("START_API")
        out, err = refused.communicate(timeout=120)
    finally:
        refused.kill()

    assert done.returncode == 0, done.stdout + done.stderr
    assert "Accounts, latest complete snapshot" in done.stdout
    assert run_of(done.stdout)[1] == "success"
    assert [s.client_id for s in sessions] == [17]
    accounts = table(done.stdout, r"DU\d+")
    assert sorted(accounts) == ["DU1234567", "DU7654321"]
    _, paper, _, net_liq, cash, buying_power, positions, orders = accounts["DU1234567"]
    assert (paper, positions, orders) == ("True", "4", "3")
    assert [Decimal(v.replace(",", "")) for v in (net_liq, cash, buying_power)] == [
        Decimal("74966.68"), Decimal("28255.00"), Decimal("253155.04")]
    assert accounts["DU7654321"][3:] == ["16,571.50", "12,000.00", "60,854.50", "2", "2"]
    assert done.stderr == ""  # not one warning: every message decoded, every request ended

    assert refused.returncode == 1, out + err
    assert "Accounts, latest complete snapshot" not in out
    assert run_of(out)[1] == "failed"
    message = " ".join(out.split())  # rich wraps long lines
    assert "error: " in message
    assert "Live snapshot failed, nothing stored (the accounts are unknown, not flat): " \
           f"connect: connection to 127.0.0.1:{refused_port} failed: ConnectionRefusedError" \
           in message
    warehouse = Path(refused_env["QM_DATA_DIR"]) / "warehouse.duckdb"
    with duckdb.connect(str(warehouse), read_only=True) as db:
        assert db.execute("SELECT status, port FROM live.snapshots").fetchall() == [
            ("failed", refused_port)]
        assert db.execute("SELECT count(*) FROM live.accounts").fetchone() == (0,)


def test_demo(tmp_path: Path) -> None:
    """Generate, serve, fetch with the real client, load, rebuild the ledger, snapshot a
    gateway where one stock was sold behind the pipeline's back, reconcile: exit 0, the
    close is found and marked CLOSED_EXTERNALLY; then `qm reconcile` halts (exit 1) on an
    imported order the broker never saw."""
    env = environment(tmp_path, "demo")

    done = qm("demo", env=env, timeout=300)

    assert done.returncode == 0, done.stdout + done.stderr
    statuses = RUN.findall(done.stdout)
    # ingest, ledger, snapshot, reconciliation, analytics and tearsheets
    assert [s for _, s in statuses] == ["success"] * 5
    reports = table(done.stdout, r"flex_\S+\.xml")
    assert sorted(reports) == ["flex_424242_20240102_20241231.xml",  # 365-day windows
                               "flex_424242_20250101_20250630.xml"]
    for _, accounts, statements, seen, loaded, *_ in reports.values():
        assert (accounts, statements) == ("U1000001,U1000002", "2")
        assert int(seen) == int(loaded) > 0
    data = Path(env["QM_DATA_DIR"])
    published = data / "published" / "warehouse.duckdb"
    assert f"Analysts' copy: {published}" in done.stdout
    with duckdb.connect(str(published), read_only=True) as copy:
        assert copy.execute("SELECT count(*), string_agg(DISTINCT source, ',') "
                            "FROM raw.flex_files").fetchone() == (2, "web-service")
        assert copy.execute("SELECT count(*) FROM core.accounts").fetchone() == (2,)
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as db:
        assert db.execute("SELECT status, accounts FROM live.snapshots").fetchall() == [
            ("complete", "U1000001,U1000002")]
        ((symbol, quantity, reason, source),) = db.execute(
            "SELECT p.symbol, CAST(a.before_values::JSON->>'quantity' AS DECIMAL(38,6)), "
            "p.exit_reason, p.status_source FROM ledger.positions p JOIN ledger.audit_log a "
            "ON a.episode_id = p.episode_id AND a.cause = 'reconciliation' "
            "WHERE p.status = 'CLOSED_EXTERNALLY'").fetchall()
        assert (reason, source) == ("External close detected during reconciliation",
                                    "reconciliation")
        (report_text,) = db.execute("SELECT report_text FROM recon.runs").fetchone()
    assert f"Closed externally: 1 ({symbol} U1000001 local {quantity.normalize():f} / " \
           "broker 0, entry " in done.stdout
    written = Path(report_text).read_text().splitlines()
    assert written[0].endswith(": WARNINGS") and written[0] in done.stdout
    # analytics: every statement period's TWR matches IB's; one tearsheet per account and ALL
    assert "TWR against IB's ChangeInNAV: 4 of 4 statement periods within 1 bp" in done.stdout
    sheets = sorted(p.name for p in (data / "reports").glob("tearsheet_*.html"))
    assert sheets == [f"tearsheet_{a}_20250630.html" for a in ("ALL", "U1000001", "U1000002")]
    page = (data / "reports" / sheets[1]).read_text()
    assert "U1000001" in page and "SMPL" in page and page.count("<svg") >= 6

    orders = tmp_path / "orders.csv"
    orders.write_text("order_key,account_id,conid,symbol,action,quantity,status,perm_id\n"
                      "bot-7,U1000001,265598,AAPL,BUY,10,Submitted,4242\n")
    imported = qm("orders", "import", str(orders), env=env)
    assert imported.returncode == 0, imported.stdout + imported.stderr
    assert "1 order(s) imported" in imported.stdout
    halted = qm("reconcile", env=env, timeout=180)
    assert halted.returncode == 1, halted.stdout + halted.stderr
    assert ": HALTED" in halted.stdout and "ORPHAN_LOCAL_ORDER" in halted.stdout
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as db:
        assert db.execute("SELECT status, halted FROM recon.runs ORDER BY started_at").fetchall(
        ) == [("warnings", False), ("halted", True)]
        assert db.execute("SELECT status FROM ledger.orders").fetchall() == [("Submitted",)]


def test_orders_import_names_the_bad_row_and_field(tmp_path: Path) -> None:
    env = environment(tmp_path, "orders")
    bad = tmp_path / "orders.json"
    bad.write_text('[{"order_key": "a", "account_id": "U1", "conid": "1", "action": "BUY", '
                   '"quantity": "1", "status": "Submitted"}, {"order_key": "b", '
                   '"account_id": "U1", "conid": "2", "action": "BUY", "quantity": "x", '
                   '"status": "Submitted"}]')

    done = qm("orders", "import", str(bad), env=env)

    assert done.returncode == 2
    assert f"{bad}: row 2, field 'quantity': 'x' is not valid" in " ".join(done.stdout.split())


def test_fetch_pulls_a_range_from_the_web_service_in_windows(tmp_path: Path) -> None:
    from datetime import date

    from qm_pipeline.lib.flex.sample import SampleSpec, write_reports
    from qm_pipeline.lib.sim.flex_service import FakeFlexService

    spec = SampleSpec(accounts=("U3000001",), start=date(2024, 1, 2), end=date(2024, 2, 29),
                      trades_per_day=2, seed=3)
    (report,) = write_reports(spec, tmp_path / "served")
    env = environment(tmp_path, "fetch")

    refused = qm("fetch", "--query-id", "99", "--from", "2024-01-02", "--to", "2024-02-29",
                 env=env)
    assert refused.returncode == 2 and "QM_FLEX_TOKEN is not set" in refused.stdout

    with FakeFlexService({"99": report.read_bytes()}, tokens="s3cret-token") as service:
        env.update(QM_FLEX_TOKEN="s3cret-token", QM_FLEX_BASE_URL=service.base_url)
        done = qm("fetch", "--query-id", "99", "--from", "2024-01-02", "--to", "2024-02-29",
                  env=env)
        sent = [(r.params.get("fd"), r.params.get("td")) for r in service.requests
                if r.endpoint == "SendRequest"]

    assert done.returncode == 0, done.stdout + done.stderr
    assert sent == [("20240102", "20240229")]
    name = "flex_99_20240102_20240229.xml"
    assert name in table(done.stdout, r"flex_99_.*")
    assert "s3cret-token" not in done.stdout + done.stderr


def test_bars_fetches_the_benchmark_into_the_warehouse(tmp_path: Path) -> None:
    env = environment(tmp_path, "bars") | {"QM_BENCHMARK": "SPY"}
    state = default_state()
    with GatewayThread(state) as gw:
        done = qm("bars", "--duration", "6 M", "--port", str(gw.port), env=env)
        missing = qm("bars", "NOPE", "--port", str(gw.port), env=env)

    assert done.returncode == 0, done.stdout + done.stderr
    assert run_of(done.stdout)[1] == "success"
    (spy,) = table(done.stdout, "SPY").values()
    window = [b for b in state.daily_bars[756733] if b.day.isoformat() >= spy[3]]
    assert spy[1:5] == ["ADJUSTED_LAST", str(len(window)), str(window[0].day),
                        str(window[-1].day)]
    assert 120 <= len(window) <= 132  # six months of weekdays
    assert missing.returncode == 1 and run_of(missing.stdout)[1] == "failed"
    assert "Daily bars of NOPE not fetched, nothing stored: reqContractDetails: error 200" in \
        " ".join(missing.stdout.split())


def _main_with(app_body: str) -> subprocess.CompletedProcess:
    """`cli.main` in a fresh interpreter whose `app` is `app_body`, with an atexit handler of
    its own: main ends the process itself (os._exit), after that handler."""
    script = ("import atexit, sys\n"
              "from qm_pipeline import cli\n"
              "atexit.register(lambda: print('atexit ran', flush=True))\n"
              f"cli.app = lambda: {app_body}\n"
              "cli.main()\n"
              "print('not reached')\n")
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, check=False)


def test_main_ends_with_the_commands_code_after_the_exit_handlers():
    done = _main_with("print('output') or sys.exit(3)")
    assert done.returncode == 3
    assert done.stdout.splitlines() == ["output", "atexit ran"]


def test_main_prints_a_message_exit_as_python_does():
    done = _main_with("sys.exit('no warehouse here')")
    assert done.returncode == 1
    assert done.stderr.strip() == "no warehouse here"
    assert done.stdout.splitlines() == ["atexit ran"]


def test_main_lets_an_exception_end_the_process_the_usual_way():
    done = _main_with("1 / 0")
    assert done.returncode == 1 and "ZeroDivisionError" in done.stderr
    assert "not reached" not in done.stdout
