"""Two-core parsing: the handler gets exactly what a sequential parse gives it, or the file is
parsed sequentially; errors in the worker's part name the file, line and field all the same."""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

import pyarrow as pa
import pytest

import qm_pipeline.lib.flex.reader as reader_module
from qm_pipeline.lib.flex import parallel
from qm_pipeline.lib.flex.errors import FlexInputError
from qm_pipeline.lib.flex.reader import GroupKey, ReportHeader, stream_report
from qm_pipeline.lib.flex.sample import SampleSpec, write_report
from qm_pipeline.lib.settings import Settings
from qm_pipeline.lib.warehouse.engine import Warehouse
from qm_pipeline_tests.helpers import (
    ingest_files,
    line_of,
    report,
    row,
    section,
    snapshot,
    statement,
    trade,
    write,
)
from qm_pipeline_tests.lib.flex.test_corpus import CORPUS_FILES

Chunks = list[tuple[GroupKey, pa.Table]]


def parse(stream, path: Path, **options) -> tuple[Chunks, ReportHeader]:
    chunks: Chunks = []
    header = stream(path, lambda key, table: chunks.append((key, table)), **options)
    return chunks, header


def assert_same_as_sequential(path: Path) -> None:
    expected, expected_header = parse(stream_report, path)
    done: list[int] = []
    chunks, header = parse(parallel.stream_report, path, min_bytes=0, progress=done.append)
    assert [key for key, _ in chunks] == [key for key, _ in expected]
    for (key, table), (_, wanted) in zip(chunks, expected, strict=True):
        assert table.equals(wanted, check_metadata=True), key
    assert header == expected_header
    assert sum(done) == path.stat().st_size


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Several chunks per group (the worker is told the size)."""
    monkeypatch.setattr(reader_module, "CHUNK_ROWS", 7)


def sample(path: Path, accounts: int = 3) -> Path:
    spec = SampleSpec(accounts=tuple(f"U300000{i}" for i in range(accounts)),
                      start=date(2024, 1, 2), end=date(2024, 2, 29), trades_per_day=2, seed=5)
    write_report(spec, path)
    return path


def four_statements() -> list[str]:
    """Statements U0..U3, one trade each (T0..T3), each row on a line of its own."""
    return [statement(section("Trades", row("Trade", trade(f"T{i}"))), account_id=f"U{i}")
            for i in range(4)]


@pytest.mark.parametrize("name", CORPUS_FILES)
def test_corpus_files_parse_the_same(corpus_dir: Path, name: str) -> None:
    assert_same_as_sequential(corpus_dir / name)


def test_a_generated_multi_statement_report_splits_and_parses_the_same(
        tmp_path: Path, small_chunks: None, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, parallel.__name__)
    path = sample(tmp_path / "sample.xml")
    split = parallel.plan_split(path, min_bytes=0)
    assert split is not None and split.statements in (1, 2)
    assert_same_as_sequential(path)
    assert not caplog.records  # the worker's part was used, not parsed again here


@pytest.mark.parametrize("newline", ["\r\n", "\r"])
def test_line_breaks_count_as_expat_counts_them(tmp_path: Path, newline: str) -> None:
    text = report(*four_statements())
    path = tmp_path / "crlf.xml"
    path.write_bytes(text.replace("\n", newline).encode())
    assert parallel.plan_split(path, min_bytes=0) is not None
    assert_same_as_sequential(path)


@pytest.mark.parametrize("extra", [
    "<!-- <FlexStatement accountId=\"U9\"> -->",
    "<![CDATA[ <FlexStatement> ]]>",
    "<?qm note?>",
])
def test_comments_cdata_and_instructions_are_not_split(tmp_path: Path, extra: str) -> None:
    text = report(*four_statements())
    text = text.replace("</FlexStatement>", f"</FlexStatement>{extra}", 1)
    path = write(tmp_path / "r.xml", text)
    assert parallel.plan_split(path, min_bytes=0) is None
    assert_same_as_sequential(path)


def test_small_files_and_single_statements_are_not_split(tmp_path: Path) -> None:
    two = write(tmp_path / "two.xml", report(statement(account_id="U1"),
                                             statement(account_id="U2")))
    one = write(tmp_path / "one.xml", report(statement(account_id="U1")))
    assert parallel.plan_split(two) is None  # under PARALLEL_MIN_BYTES
    assert parallel.plan_split(one, min_bytes=0) is None


@pytest.mark.parametrize("where", ["before", "after"])
def test_rows_outside_statements_come_out_as_sequential(tmp_path: Path, where: str) -> None:
    statements = four_statements()
    loose = row("AccountInformation", {"accountId": "U0", "currency": "USD"})
    if where == "before":
        text = report(*statements, before=loose)
    else:
        text = report(*statements).replace("</FlexQueryResponse>",
                                           f"{loose}\n</FlexQueryResponse>")
    assert_same_as_sequential(write(tmp_path / "r.xml", text))


def test_malformed_xml_in_the_worker_part_names_the_real_line(tmp_path: Path) -> None:
    text = report(*four_statements())
    broken = text.replace('transactionID="T3"', 'transactionID="T3" <oops', 1)
    path = write(tmp_path / "bad.xml", broken)
    assert parallel.plan_split(path, min_bytes=0).offset < broken.index("<oops")
    with pytest.raises(FlexInputError) as sequential:
        parse(stream_report, path)
    with pytest.raises(FlexInputError) as split:
        parse(parallel.stream_report, path, min_bytes=0)
    assert split.value.line == line_of(broken, "<oops") == sequential.value.line
    assert str(split.value) == str(sequential.value)


def test_a_truncated_report_fails_in_the_worker(tmp_path: Path) -> None:
    path = sample(tmp_path / "sample.xml")
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(FlexInputError) as sequential:
        parse(stream_report, path)
    with pytest.raises(FlexInputError) as split:
        parse(parallel.stream_report, path, min_bytes=0)
    assert str(split.value) == str(sequential.value)
    assert "truncated" in str(split.value)


def test_a_failing_worker_leaves_the_parse_to_this_process(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = sample(tmp_path / "sample.xml")
    monkeypatch.setattr(parallel.sys, "executable", "/bin/false")
    assert_same_as_sequential(path)
    assert "parsing on one core" in caplog.text


@pytest.fixture
def parallel_ingest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel, "PARALLEL_MIN_BYTES", 0)


def test_ingest_loads_the_same_warehouse_on_two_cores(
        tmp_path: Path, settings: Settings, warehouse: Warehouse,
        monkeypatch: pytest.MonkeyPatch) -> None:
    path = sample(tmp_path / "sample.xml")
    ingest_files(warehouse, settings, path)
    sequential = snapshot(warehouse)
    with warehouse.transaction() as tx:  # start over, then load the same file split
        for schema in ("raw", "core"):
            for table in tx.tables(schema):
                tx.execute(f'DELETE FROM "{schema}"."{table}"')
    monkeypatch.setattr(parallel, "PARALLEL_MIN_BYTES", 0)
    [result] = ingest_files(warehouse, settings, path)
    assert result.status == "loaded"
    split = snapshot(warehouse)
    ignored = {"ingested_at", "run_id"}
    assert _without(split, ignored) == _without(sequential, ignored)


def _without(found: dict, ignored: set[str]) -> dict:
    result = {}
    for table, (columns, rows) in found.items():
        keep = [i for i, (name, _) in enumerate(columns) if name not in ignored]
        result[table] = ([columns[i] for i in keep], sorted((tuple(r[i] for i in keep)
                                                            for r in rows), key=repr))
    return result


def test_an_untypeable_value_in_the_worker_part_names_file_line_and_field(
        tmp_path: Path, settings: Settings, warehouse: Warehouse, parallel_ingest: None) -> None:
    text = report(*four_statements())
    bad = text.replace('transactionID="T3" tradeID="9T3" tradeDate="20240115"',
                       'transactionID="T3" tradeID="9T3" tradeDate="2024-13-45"', 1)
    assert bad != text
    path = write(tmp_path / "bad.xml", bad)
    [result] = ingest_files(warehouse, settings, path)
    assert result.status == "failed"
    assert f"line {line_of(bad, '2024-13-45')}" in result.error
    assert "field 'tradeDate'" in result.error and "bad.xml" in result.error
