"""Loading reports: all or nothing per report, failures isolated and explained, idempotent,
newest-wins restatements, and a byte-for-byte archive kept before anything is parsed."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

import qm_pipeline.lib.flex.load as load_module
from qm_pipeline.lib.flex.archive import Archive
from qm_pipeline.lib.flex.errors import FlexInputError
from qm_pipeline.lib.flex.ingest import ingest_pending, ingest_report
from qm_pipeline.lib.settings import Settings, load_settings
from qm_pipeline.lib.warehouse.engine import Tx, Warehouse
from qm_pipeline_tests.helpers import (
    ingest_files,
    line_of,
    report,
    row,
    rows,
    scalar,
    section,
    sha256_of,
    snapshot,
    statement,
    trade,
    write,
)

GOOD = "001_pp01_2013_fx_opt_ca.xml"


def one_trade_report(transaction_id: str = "T1", when: str = "20240201;120000",
                     **overrides: str) -> str:
    return report(statement(
        section("Trades", row("Trade", trade(transaction_id, **overrides))),
        when_generated=when))


def marker(settings: Settings, state: str, sha: str) -> Path:
    return settings.archive_dir / state / f"{sha}.json"


def test_archive_is_byte_for_byte_and_read_only(tmp_path: Path, corpus_dir: Path) -> None:
    settings = load_settings(tmp_path / "qm_data", "duckdb:///unused.duckdb")
    assert settings.archive_dir == tmp_path / "qm_data" / "raw"
    archive = Archive(settings.archive_dir)
    source = corpus_dir / GOOD
    kept = archive.add_file(source, "cli")
    assert kept.sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
    assert kept.path == settings.archive_dir / kept.sha256[:2] / f"{kept.sha256}.xml"
    assert kept.path.read_bytes() == source.read_bytes()
    assert sha256_of(kept.path) == kept.sha256
    assert kept.path.stat().st_mode & 0o777 == 0o444
    assert (kept.original_name, kept.source, kept.already_archived) == (GOOD, "cli", False)
    pending = json.loads(marker(settings, "pending", kept.sha256).read_text())
    assert pending["original_name"] == GOOD and pending["path"] == str(kept.path)
    # bytes from the web service: same content, same address, nothing copied twice
    again = archive.add_bytes(source.read_bytes(), "from-service.xml", "web-service")
    assert (again.sha256, again.path, again.already_archived) == (kept.sha256, kept.path, True)
    assert [p.name for p in settings.archive_dir.rglob("*.xml")] == [f"{kept.sha256}.xml"]
    assert not list(settings.archive_dir.glob(".incoming-*"))


def test_truncated_file_fails_named_and_changes_nothing(
        warehouse: Warehouse, settings: Settings, tmp_path: Path, corpus_dir: Path) -> None:
    ingest_files(warehouse, settings, corpus_dir / "004_pp08_2020_div_wht_fees.xml")
    before = snapshot(warehouse)
    whole = (corpus_dir / GOOD).read_bytes()
    half = whole[:len(whole) // 2]
    truncated = tmp_path / "truncated.xml"
    truncated.write_bytes(half)
    text = half.decode()
    unclosed_line = text[:text.rfind("<")].count("\n") + 1
    assert unclosed_line == 16
    good = corpus_dir / "007_pp13_cfd.xml"
    results = {r.name: r for r in ingest_files(warehouse, settings, truncated, good)}

    failed = results["truncated.xml"]
    assert failed.status == "failed"
    sha = hashlib.sha256(half).hexdigest()
    archived = settings.archive_dir / sha[:2] / f"{sha}.xml"
    assert failed.error == (f"{archived}, line {unclosed_line}: malformed or truncated XML "
                            "(unclosed token, column 1)")
    kept = json.loads(marker(settings, "failed", sha).read_text())
    assert kept["error"] == failed.error and kept["original_name"] == "truncated.xml"
    assert not marker(settings, "pending", sha).exists()
    assert archived.read_bytes() == half  # archived before parsing, byte for byte

    assert results["007_pp13_cfd.xml"].status == "loaded"
    assert scalar(warehouse, "SELECT count(*) FROM raw.trade WHERE file_sha256 = :s",
                  s=results["007_pp13_cfd.xml"].sha256) == 1
    assert_only_added(before, snapshot(warehouse), results["007_pp13_cfd.xml"].sha256)
    assert scalar(warehouse, "SELECT count(*) FROM raw.flex_files WHERE file_sha256 = :s",
                  s=sha) == 0


def assert_only_added(before: dict, after: dict, sha: str) -> None:
    """`after` is `before` plus rows of file `sha` (and raw tables only that file made)."""
    assert set(before) <= set(after)
    for table, (columns, table_rows) in after.items():
        names = [c for c, _ in columns]
        if "file_sha256" in names:
            at = names.index("file_sha256")
            table_rows = [r for r in table_rows if r[at] != sha]
        if table not in before:
            assert table.startswith("raw.") and table_rows == [], table
            continue
        assert (columns, table_rows) == before[table], table


def test_malformed_xml_fails_at_its_line(warehouse: Warehouse, settings: Settings,
                                         tmp_path: Path) -> None:
    text = one_trade_report().replace('<Trade ', '<Trade broken="1" <oops ', 1)
    bad = write(tmp_path / "bad.xml", text)
    before = snapshot(warehouse)
    (result,) = ingest_files(warehouse, settings, bad)
    assert result.status == "failed"
    assert f", line {line_of(text, '<oops')}: malformed or truncated XML (not well-formed " \
           "(invalid token), column" in result.error
    assert result.error.startswith(str(settings.archive_dir))
    assert marker(settings, "failed", sha256_of(bad)).exists()
    assert snapshot(warehouse) == before


def test_value_error_names_file_line_and_field(warehouse: Warehouse, settings: Settings,
                                               tmp_path: Path) -> None:
    text = report(statement(
        section("Trades",
                row("Trade", trade("T1")),
                row("Trade", trade("T2", quantity="abc")),
                row("Trade", trade("T3"))),
        section("CashTransactions", row("CashTransaction", {
            "accountId": "U1234567", "currency": "USD", "amount": "5", "type": "Dividends",
            "transactionID": "C1", "dateTime": "20240110"}))))
    bad = write(tmp_path / "bad_value.xml", text)
    ingest_files(warehouse, settings, write(tmp_path / "first.xml", one_trade_report("T0")))
    before = snapshot(warehouse)
    (result,) = ingest_files(warehouse, settings, bad)
    line = line_of(text, 'transactionID="T2"')
    assert result.status == "failed"
    assert result.error == (f"bad_value.xml, line {line}, <Trade>, field 'quantity', "
                            "value 'abc': not a number")
    assert json.loads(marker(settings, "failed", result.sha256).read_text())["error"] == \
        result.error
    assert snapshot(warehouse) == before
    with pytest.raises(FlexInputError) as caught:
        ingest_report(warehouse, settings, Archive(settings.archive_dir).add_file(bad, "cli"),
                      "again")
    assert (caught.value.path, caught.value.line, caught.value.row_tag, caught.value.field,
            caught.value.value) == ("bad_value.xml", line, "Trade", "quantity", "abc")
    assert snapshot(warehouse) == before


def test_failed_report_is_requeued_when_archived_again(warehouse: Warehouse, settings: Settings,
                                                       tmp_path: Path) -> None:
    bad = write(tmp_path / "bad.xml", one_trade_report(quantity="abc"))
    (first,) = ingest_files(warehouse, settings, bad)
    assert first.status == "failed" and marker(settings, "failed", first.sha256).exists()
    assert ingest_pending(warehouse, settings, "nightly") == []  # not retried forever
    Archive(settings.archive_dir).add_file(bad, "cli")
    assert not marker(settings, "failed", first.sha256).exists()
    (second,) = ingest_pending(warehouse, settings, "manual")
    assert second.status == "failed" and second.error == first.error


def test_crash_mid_load_rolls_everything_back(warehouse: Warehouse, settings: Settings,
                                              tmp_path: Path, corpus_dir: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    ingest_files(warehouse, settings, write(tmp_path / "first.xml", one_trade_report("T0")))
    before = snapshot(warehouse)
    source = corpus_dir / GOOD
    sha = sha256_of(source)
    seen_inside: list[int] = []

    def crash(tx, schema, table, data, *args, **kwargs):
        seen_inside.append(tx.scalar("SELECT count(*) FROM raw.trade WHERE file_sha256 = :s",
                                     {"s": sha}))
        raise RuntimeError("disk full")

    monkeypatch.setattr(load_module, "upsert_newest", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        ingest_files(warehouse, settings, source)
    assert seen_inside == [14]  # the raw rows were in, inside the transaction
    assert snapshot(warehouse) == before
    assert marker(settings, "pending", sha).exists()  # still to do, not failed
    assert not marker(settings, "failed", sha).exists()

    monkeypatch.undo()
    (result,) = ingest_pending(warehouse, settings, "retry")
    assert result.status == "loaded" and result.rows_loaded == 41
    assert scalar(warehouse, "SELECT count(*) FROM raw.trade WHERE file_sha256 = :s",
                  s=sha) == 14


def test_failed_raw_write_rolls_everything_back(warehouse: Warehouse, settings: Settings,
                                                tmp_path: Path, corpus_dir: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Raw chunks are written while the next one parses: a write that fails there is not
    lost, and the rows written before it go too."""
    ingest_files(warehouse, settings, write(tmp_path / "first.xml", one_trade_report("T0")))
    before = snapshot(warehouse)
    source = corpus_dir / GOOD
    written: list[str] = []
    insert = Tx.insert

    def failing_insert(self, schema, table, data):
        if schema == "raw" and table == "cash_transaction":
            raise RuntimeError("raw write failed")
        if schema == "raw":
            written.append(table)
        return insert(self, schema, table, data)

    monkeypatch.setattr(Tx, "insert", failing_insert)
    with pytest.raises(RuntimeError, match="raw write failed"):
        ingest_files(warehouse, settings, source)
    assert "trade" in written  # rows were written before the failing chunk
    monkeypatch.undo()
    assert snapshot(warehouse) == before
    assert marker(settings, "pending", sha256_of(source)).exists()


def test_same_bytes_twice_is_a_no_op_that_says_so(warehouse: Warehouse, settings: Settings,
                                                  tmp_path: Path, corpus_dir: Path) -> None:
    source = corpus_dir / "018_pp26_2025_two_accounts.xml"
    (first,) = ingest_files(warehouse, settings, source)
    assert first.status == "loaded" and first.accounts == ["U1234567", "U1234568"]
    before = snapshot(warehouse)
    copy = write(tmp_path / "renamed copy.xml", source.read_text(encoding="utf-8"))
    (second,) = ingest_files(warehouse, settings, copy)
    assert (second.status, second.sha256, second.name) == ("duplicate", first.sha256,
                                                          "renamed copy.xml")
    assert second.notes == ["the same bytes were loaded before: nothing to do"]
    assert (second.rows_loaded, second.core_rows) == (0, {})
    assert snapshot(warehouse) == before
    assert not marker(settings, "pending", first.sha256).exists()


@pytest.mark.parametrize("order", ["older_first", "newer_first"])
def test_restatement_newest_report_wins(warehouse: Warehouse, settings: Settings,
                                        tmp_path: Path, order: str) -> None:
    older = write(tmp_path / "older.xml", one_trade_report(
        "T1", when="20240201;120000", quantity="10", tradePrice="12.5"))
    newer = write(tmp_path / "newer.xml", one_trade_report(
        "T1", when="20240301;090000", quantity="15", tradePrice="12.25", ibCommission="-1.5"))
    sequence = [older, newer] if order == "older_first" else [newer, older]
    results = [ingest_files(warehouse, settings, path)[0] for path in sequence]
    assert [r.status for r in results] == ["loaded", "loaded"]
    written = {r.name: r.core_rows["trades"] for r in results}
    assert written == ({"older.xml": 1, "newer.xml": 1} if order == "older_first"
                       else {"newer.xml": 1, "older.xml": 0})
    core = rows(warehouse, "SELECT transaction_id, quantity, trade_price, ib_commission, "
                "when_generated, file_sha256 FROM core.trades")
    assert core == [("T1", Decimal("15"), Decimal("12.25"), Decimal("-1.5"),
                     datetime(2024, 3, 1, 9), sha256_of(newer))]
    raw = rows(warehouse, "SELECT when_generated, quantity, trade_price FROM raw.trade")
    assert sorted(raw) == [("20240201;120000", "10", "12.5"), ("20240301;090000", "15", "12.25")]


def test_report_without_when_generated_loads(warehouse: Warehouse, settings: Settings,
                                             tmp_path: Path) -> None:
    text = one_trade_report("T9").replace(' whenGenerated="20240201;120000"', "")
    assert "whenGenerated" not in text
    (result,) = ingest_files(warehouse, settings, write(tmp_path / "undated.xml", text))
    assert result.status == "loaded", result.error
    assert rows(warehouse, "SELECT transaction_id, when_generated FROM core.trades") == [
        ("T9", None)]
    assert rows(warehouse, "SELECT conid, symbol, first_seen, last_seen FROM core.instruments"
                ) == [("1001", "ACME", None, None)]
    # a dated report of the same trade later is newer than an undated one
    dated = write(tmp_path / "dated.xml", one_trade_report("T9", quantity="11"))
    ingest_files(warehouse, settings, dated)
    assert rows(warehouse, "SELECT quantity, when_generated FROM core.trades") == [
        (Decimal("11"), datetime(2024, 2, 1, 12))]
    assert rows(warehouse, "SELECT first_seen, last_seen FROM core.instruments") == [
        (datetime(2024, 2, 1, 12), datetime(2024, 2, 1, 12))]


def test_one_load_per_report_with_bookkeeping(warehouse: Warehouse, settings: Settings,
                                              tmp_path: Path) -> None:
    text = report(
        statement(section("Trades", row("Trade", without_account(trade("A1"))),
                          row("Trade", without_account(trade("A2")))),
                  account_id="U1", when_generated="20240201;120000"),
        statement(section("Trades", row("Trade", trade("B1", accountId="U2"))),
                  account_id="U2", when_generated="20240202;120000"),
        query_name="Nightly")
    path = write(tmp_path / "two.xml", text)
    (result,) = ingest_files(warehouse, settings, path, run_id="run-42")
    assert (result.status, result.accounts, result.statements) == ("loaded", ["U1", "U2"], 2)
    assert (result.rows_seen, result.rows_loaded) == (3, 3)
    assert result.core_rows == {"accounts": 2, "trades": 3}
    files = rows(warehouse, "SELECT original_name, source, query_name, query_type, "
                 "statements_declared, statements_found, accounts, rows_seen, rows_loaded, "
                 "run_id, size_bytes FROM raw.flex_files")
    assert files == [("two.xml", "cli", "Nightly", "AF", "2", 2, "U1,U2", 3, 3, "run-42",
                      path.stat().st_size)]
    log = rows(warehouse, "SELECT account_id, section, row_tag, raw_table, rows_seen, "
               "rows_loaded, core_tables, core_rows FROM raw.flex_ingest_log ORDER BY 1")
    assert log == [("U1", "Trades", "Trade", "trade", 2, 2, "trades", 2),
                   ("U2", "Trades", "Trade", "trade", 1, 1, "trades", 1)]
    statements = rows(warehouse, "SELECT statement_index, account_id, when_generated_at, "
                      "sections FROM raw.flex_statements ORDER BY 1")
    assert statements == [(0, "U1", datetime(2024, 2, 1, 12), "Trades"),
                          (1, "U2", datetime(2024, 2, 2, 12), "Trades")]
    accounts = rows(warehouse, "SELECT account_id, statement_index FROM core.accounts "
                    "ORDER BY 1")
    assert accounts == [("U1", 0), ("U2", 1)]
    # rows without accountId inherit their statement's
    assert rows(warehouse, "SELECT transaction_id, account_id FROM core.trades "
                "ORDER BY 1") == [("A1", "U1"), ("A2", "U1"), ("B1", "U2")]
    raw = rows(warehouse, "SELECT DISTINCT account_id FROM raw.trade")
    assert set(raw) == {(None,), ("U2",)}  # raw keeps what the XML said


def without_account(attrs: dict) -> dict:
    return {k: v for k, v in attrs.items() if k != "accountId"}


def test_rows_without_conid_beside_instruments(warehouse: Warehouse, settings: Settings,
                                               tmp_path: Path) -> None:
    """A cash transfer (no conid) in the same report as a trade: instruments from the trade
    only (this crashed the whole batch: an empty candidate chunk had other columns)."""
    text = report(statement(
        section("Trades", row("Trade", trade("T1", conid="5", symbol="AAA"))),
        section("Transfers", row("Transfer", {
            "currency": "USD", "assetCategory": "CASH", "symbol": "--", "conid": "",
            "type": "INTERNAL", "direction": "IN", "quantity": "0", "cashTransfer": "100",
            "transactionID": "X1", "date": "20240105"}))))
    (result,) = ingest_files(warehouse, settings, write(tmp_path / "transfer.xml", text))
    assert result.status == "loaded", result.error
    assert result.core_rows == {"accounts": 1, "trades": 1, "transfers": 1}
    assert rows(warehouse, "SELECT conid, symbol, last_seen FROM core.instruments") == [
        ("5", "AAA", datetime(2024, 2, 1, 12))]
    assert rows(warehouse, "SELECT transaction_id, conid, cash_transfer FROM core.transfers"
                ) == [("X1", None, Decimal("100"))]
