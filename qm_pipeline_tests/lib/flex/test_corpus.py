"""Acceptance: the 20 real Flex exports of shared/flex_corpus, loaded into DuckDB and PostgreSQL.

What the warehouse holds is checked against the XML as read here, independently of the
library: rows are counted and compared attribute by attribute with xml.etree, dates and
numbers are parsed with the standard library.
"""

from __future__ import annotations

import csv
import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from qm_pipeline.lib.flex.archive import Archive
from qm_pipeline.lib.flex.core_tables import CORE_TABLES, INSTRUMENT_SOURCES
from qm_pipeline.lib.flex.ingest import ingest_pending
from qm_pipeline.lib.flex.load import LoadResult
from qm_pipeline.lib.flex.schema import Kind
from qm_pipeline.lib.naming import snake_case
from qm_pipeline.lib.settings import Settings
from qm_pipeline.lib.warehouse.engine import Warehouse, q, qualified
from qm_pipeline.lib.warehouse.migrations import migrate
from qm_pipeline_tests.helpers import ingest_files, rows, scalar, sha256_of, snapshot

CORPUS_FILES = (
    "001_pp01_2013_fx_opt_ca.xml", "002_pp02_2017_opt_div.xml",
    "003_pp06_2018_div_acctinfo.xml", "004_pp08_2020_div_wht_fees.xml",
    "005_pp10_2022_fx_trade_empty_ca.xml", "006_pp12_acctinfo_at_root.xml", "007_pp13_cfd.xml",
    "008_pp14_2023_conversionrates_720.xml", "009_pp15_2023_fund.xml",
    "010_pp17_2023_many_sections.xml", "011_pp18_2022_large_9390_fx_rates.xml",
    "012_pp19_2023_large_warrants.xml", "013_pp20_2023_asset_symbol_order_summary.xml",
    "014_pp21_2023_iopt.xml", "015_pp23_2020_corpaction_tc.xml",
    "016_pp24_2025_advisor_fees.xml", "017_pp25_2025_conversionrates_578.xml",
    "018_pp26_2025_two_accounts.xml", "019_pp28_2025_forex_twd.xml",
    "020_pp29_2025_count_mismatch_gbx.xml",
)
BOOKKEEPING = {"flex_files", "flex_statements", "flex_ingest_log"}
NULL_TOKENS = {"", "-", "--", "N/A"}


# --- the XML, read independently ----------------------------------------------------------------


@dataclass(frozen=True)
class XmlRow:
    statement: int | None
    account: str  # the statement's accountId, "" outside statements
    section: str
    parent: str
    tag: str
    ordinal: int  # position among rows of the same statement, section, parent and tag
    attrs: dict[str, str] = field(hash=False, compare=False)


@cache
def xml_rows(path: Path) -> tuple[XmlRow, ...]:
    """Every row of a Flex file: an element with attributes inside a section. A section is a
    child of FlexStatement (or of the root / FlexStatements outside any statement); a data
    element standing there directly is its own section."""
    found: list[XmlRow] = []
    ordinals: Counter[tuple] = Counter()

    def add(statement: int | None, account: str, section: str, parent: str,
            element: ET.Element) -> None:
        place = (statement, section, parent, element.tag)
        found.append(XmlRow(statement, account, section, parent, element.tag, ordinals[place],
                            dict(element.attrib)))
        ordinals[place] += 1

    def inside(statement: int | None, account: str, section: str, parent: str,
               element: ET.Element) -> None:
        for child in element:
            if child.attrib:
                add(statement, account, section, parent, child)
            path = f"{parent}/{child.tag}" if parent else child.tag
            inside(statement, account, section, path, child)

    def top(statement: int | None, account: str, element: ET.Element) -> None:
        if element.attrib:
            add(statement, account, element.tag, "", element)
            inside(statement, account, element.tag, element.tag, element)
        else:
            inside(statement, account, element.tag, "", element)

    root = ET.parse(path).getroot()
    assert root.tag == "FlexQueryResponse"
    index = 0
    for child in root:
        if child.tag != "FlexStatements":
            top(None, "", child)
            continue
        for statement in child:
            if statement.tag != "FlexStatement":
                top(None, "", statement)
                continue
            for element in statement:
                top(index, statement.get("accountId", ""), element)
            index += 1
    return tuple(found)


@cache
def xml_statements(path: Path) -> tuple[dict[str, str], ...]:
    return tuple(dict(s.attrib) for s in ET.parse(path).getroot().iter("FlexStatement"))


def counts_by_place(path: Path) -> Counter[tuple[int | None, str, str]]:
    return Counter((r.statement, r.section, r.tag) for r in xml_rows(path))


def expected_date(text: str) -> date:
    for pattern in ("%Y%m%d", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    raise AssertionError(f"the corpus has a date format this test does not know: {text!r}")


def expected_datetime(text: str) -> datetime:
    found = re.fullmatch(r"(\d{8}|\d{4}-\d{2}-\d{2})(?:(?:;|, | )(\d{2}):?(\d{2}):?(\d{2}))?",
                         text)
    assert found, f"the corpus has a date-time format this test does not know: {text!r}"
    day = expected_date(found.group(1))
    clock = time(*(int(found.group(i)) for i in (2, 3, 4))) if found.group(2) else time()
    return datetime.combine(day, clock)


def expected_time(text: str) -> time:
    found = re.fullmatch(r"(\d{2}):?(\d{2}):?(\d{2})", text)
    assert found, f"the corpus has a time format this test does not know: {text!r}"
    return time(*(int(g) for g in found.groups()))


def expected_value(kind: Kind, text: str | None) -> Any:
    """What core should hold for a Flex attribute, computed without the library."""
    if text is None or text in NULL_TOKENS:
        return None
    if kind is Kind.DECIMAL:
        return Decimal(text.replace(",", ""))
    if kind is Kind.DATE:
        return None if text == "MULTI" else expected_date(text)
    if kind is Kind.DATETIME:
        return None if text == "MULTI" else expected_datetime(text)
    if kind is Kind.TIME:
        return expected_time(text)
    if kind is Kind.BOOL:
        return {"Y": True, "N": False}[text]
    return text


# --- the loaded corpus, once per warehouse --------------------------------------------------------


@dataclass(repr=False)
class Corpus:
    backend: str
    warehouse: Warehouse
    settings: Settings
    results: dict[str, LoadResult]
    sha: dict[str, str]  # file name -> sha256
    folder: Path
    _raw_counts: dict[str, Counter] | None = None

    def __repr__(self) -> str:
        return f"Corpus({self.backend})"

    def path(self, name: str) -> Path:
        return self.folder / name

    def raw_counts(self) -> dict[str, Counter]:
        if self._raw_counts is None:
            self._raw_counts = raw_counts(self)
        return self._raw_counts

    def raw_tables(self) -> list[str]:
        with self.warehouse.transaction() as tx:
            return [t for t in tx.tables("raw") if t not in BOOKKEEPING]


def _load_corpus(backend: str, url: str, root: Path, corpus_dir: Path) -> Corpus:
    settings = Settings(data_dir=root / "qm_data", database_url=url)
    warehouse = Warehouse(url)
    migrate(warehouse)
    archive = Archive(settings.archive_dir)
    sha = {}
    for name in CORPUS_FILES:
        sha[name] = archive.add_file(corpus_dir / name, "cli").sha256
    results = {r.name: r for r in ingest_pending(warehouse, settings, "corpus-run-1")}
    return Corpus(backend, warehouse, settings, results, sha, corpus_dir)


@pytest.fixture(scope="module")
def corpus_duckdb(tmp_path_factory: pytest.TempPathFactory, corpus_dir: Path
                  ) -> Iterator[Corpus]:
    root = tmp_path_factory.mktemp("corpus_duckdb")
    corpus = _load_corpus("duckdb", f"duckdb:///{root / 'warehouse.duckdb'}", root, corpus_dir)
    yield corpus
    corpus.warehouse.dispose()


@pytest.fixture(scope="module")
def corpus_postgres(tmp_path_factory: pytest.TempPathFactory, corpus_dir: Path,
                    postgres_server) -> Iterator[Corpus]:
    root = tmp_path_factory.mktemp("corpus_postgres")
    url = postgres_server.create_database("corpus")
    corpus = _load_corpus("postgres", url, root, corpus_dir)
    yield corpus
    corpus.warehouse.dispose()
    postgres_server.drop_database(url.rsplit("/", 1)[1])


@pytest.fixture(params=[
    pytest.param("duckdb", id="duckdb"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
])
def corpus(request: pytest.FixtureRequest) -> Corpus:
    return request.getfixturevalue(f"corpus_{request.param}")


def raw_counts(corpus: Corpus) -> dict[str, Counter[tuple[int | None, str, str]]]:
    """Rows in raw per file and (statement, section, row tag), checking the table name."""
    found: dict[str, Counter] = {}
    by_sha = {sha: name for name, sha in corpus.sha.items()}
    tables = corpus.raw_tables()  # (one DuckDB connection at a time)
    with corpus.warehouse.transaction() as tx:
        for table in tables:
            for sha, statement, section, tag, count in tx.execute(
                "SELECT file_sha256, statement_index, section, row_tag, count(*) "
                f"FROM {qualified('raw', table)} GROUP BY 1, 2, 3, 4"
            ):
                assert table == snake_case(tag), f"<{tag}> rows in raw.{table}"
                found.setdefault(by_sha[sha], Counter())[(statement, section, tag)] += count
    return found


# --- tests ---------------------------------------------------------------------------------------


def test_the_corpus_is_the_twenty_files_of_the_manifest(corpus_dir: Path) -> None:
    with (corpus_dir / "MANIFEST.tsv").open(newline="") as stream:
        listed = [line["file"] for line in csv.DictReader(stream, delimiter="\t")]
    assert tuple(listed) == CORPUS_FILES
    assert tuple(sorted(p.name for p in corpus_dir.glob("*.xml"))) == CORPUS_FILES


def test_xml_row_counts_agree_with_the_manifest(corpus_dir: Path) -> None:
    """The manifest's own row counts (rows inside statements) confirm this test's counting."""
    with (corpus_dir / "MANIFEST.tsv").open(newline="") as stream:
        manifest = {line["file"]: line for line in csv.DictReader(stream, delimiter="\t")}
    for name in CORPUS_FILES:
        found = xml_rows(corpus_dir / name)
        in_statements = [r for r in found if r.statement is not None]
        assert len(in_statements) == int(manifest[name]["rows"]), name
        assert len({r.statement for r in in_statements}) <= int(manifest[name]["n_statements"])
        outside = [r.tag for r in found if r.statement is None]
        assert outside == (["AccountInformation"] if name.startswith("006_") else []), name


def test_every_file_loads(corpus: Corpus) -> None:
    assert sorted(corpus.results) == list(CORPUS_FILES)
    failed = {n: r.error for n, r in corpus.results.items() if r.status != "loaded"}
    assert failed == {}
    assert not list((corpus.settings.archive_dir / "pending").glob("*.json"))
    assert not (corpus.settings.archive_dir / "failed").exists()
    for name, result in corpus.results.items():
        total = len(xml_rows(corpus.path(name)))
        assert (result.rows_seen, result.rows_loaded) == (total, total), name
        assert result.sha256 == corpus.sha[name] == sha256_of(corpus.path(name))
        assert result.statements == len(xml_statements(corpus.path(name)))


@pytest.mark.parametrize("name", CORPUS_FILES)
def test_raw_rows_match_the_xml_count(corpus: Corpus, name: str) -> None:
    expected = counts_by_place(corpus.path(name))
    assert expected, "every corpus file has rows"
    assert corpus.raw_counts().get(name, Counter()) == expected


@pytest.mark.parametrize("name", CORPUS_FILES)
def test_ingest_log_counts_match_the_xml(corpus: Corpus, name: str) -> None:
    expected = Counter((r.account, r.section, r.tag) for r in xml_rows(corpus.path(name)))
    logged = rows(corpus.warehouse, "SELECT account_id, section, row_tag, rows_seen, rows_loaded,"
                  " raw_table FROM raw.flex_ingest_log WHERE file_sha256 = :s",
                  s=corpus.sha[name])
    assert {(a, s, t): (seen, loaded) for a, s, t, seen, loaded, _ in logged} == {
        k: (n, n) for k, n in expected.items()
    }
    assert all(table == snake_case(tag) for _, _, tag, _, _, table in logged)
    declared = ET.parse(corpus.path(name)).getroot().find("FlexStatements")
    assert declared is not None
    files = rows(corpus.warehouse, "SELECT original_name, rows_seen, rows_loaded, "
                 "statements_declared, statements_found, size_bytes FROM raw.flex_files "
                 "WHERE file_sha256 = :s", s=corpus.sha[name])
    total = sum(expected.values())
    assert files == [(name, total, total, declared.get("count"),
                      len(xml_statements(corpus.path(name))),
                      corpus.path(name).stat().st_size)]


def test_raw_keeps_every_attribute_as_text_with_lineage(corpus: Corpus) -> None:
    """Each XML row is in raw with all its attributes, verbatim, and nothing else."""
    by_sha = {sha: name for name, sha in corpus.sha.items()}
    expected: dict[tuple, XmlRow] = {}
    for name in CORPUS_FILES:
        for r in xml_rows(corpus.path(name)):
            expected[(corpus.sha[name], r.statement, r.section, r.parent, r.tag, r.ordinal)] = r
    lines = {name: corpus.path(name).read_text(encoding="utf-8").splitlines()
             for name in CORPUS_FILES}
    seen = 0
    tables = corpus.raw_tables()
    with corpus.warehouse.transaction() as tx:
        for table in tables:
            names = list(tx.columns("raw", table))
            for values in tx.execute(f"SELECT * FROM {qualified('raw', table)}"):
                got = dict(zip(names, values, strict=True))
                place = (got["file_sha256"], got["statement_index"], got["section"],
                         got["parent"], got["row_tag"], got["ordinal"])
                want = expected.pop(place, None)
                assert want is not None, f"raw.{table} has a row the XML lacks: {place}"
                name = by_sha[got["file_sha256"]]
                statement = (xml_statements(corpus.path(name))[want.statement]
                             if want.statement is not None else None)
                assert got["statement_account_id"] == (
                    statement.get("accountId") if statement is not None else None)
                assert got["when_generated"] == (
                    statement.get("whenGenerated") if statement is not None else None)
                attributes = {snake_case(a): v for a, v in want.attrs.items()}
                lineage = {"file_sha256", "statement_index", "statement_account_id",
                           "when_generated", "section", "row_tag", "parent", "ordinal",
                           "source_line"}
                stored = {k: v for k, v in got.items() if k not in lineage and v is not None}
                assert stored == attributes, place
                assert f"<{want.tag} " in lines[name][got["source_line"] - 1]
                seen += 1
    assert expected == {}, f"XML rows missing from raw: {list(expected)[:5]}"
    assert seen == sum(len(xml_rows(corpus.path(n))) for n in CORPUS_FILES)


def test_core_values_are_typed_exactly_from_raw(corpus: Corpus) -> None:
    """Every typed value of every core row equals the raw text parsed here (decimals exact,
    never through a float; dates in both corpus formats)."""
    checked: Counter[str] = Counter()
    raw_tables = set(corpus.raw_tables())
    with corpus.warehouse.transaction() as tx:
        for spec in CORE_TABLES:
            fields = list(spec.schema.fields.values())
            columns = ["file_sha256", "statement_index", "source_line"] + [f.column for f in fields]
            core = tx.execute(f"SELECT {', '.join(q(c) for c in columns)} "
                              f"FROM {qualified('core', spec.name)} WHERE source_line IS NOT NULL")
            raw: dict[tuple, dict] = {}
            for tag in spec.row_tags:
                if snake_case(tag) not in raw_tables:
                    continue
                names = list(tx.columns("raw", snake_case(tag)))
                for values in tx.execute(f"SELECT * FROM {qualified('raw', snake_case(tag))}"):
                    got = dict(zip(names, values, strict=True))
                    key = (got["file_sha256"], got["statement_index"], got["source_line"])
                    assert key not in raw, f"two rows on one line: {key}"
                    raw[key] = got
            for values in core:
                typed = dict(zip(columns, values, strict=True))
                text = raw[(typed["file_sha256"], typed["statement_index"], typed["source_line"])]
                for f in fields:
                    want = expected_value(f.kind, text.get(f.column))
                    if f.column == "account_id" and want is None:
                        want = text["statement_account_id"]  # rows inherit their statement's
                    assert typed[f.column] == want, (spec.name, f.attr, text.get(f.column))
                    if f.kind is Kind.DECIMAL and want is not None:
                        assert isinstance(typed[f.column], Decimal)
                checked[spec.name] += 1
    assert checked["fx_rates"] > 13000
    assert checked["trades"] > 50 and checked["cash_balances"] > 10


def test_decimal_columns_are_decimal_38_12_on_the_database(corpus: Corpus) -> None:
    decimal_columns = {(spec.name, f.column) for spec in CORE_TABLES
                       for f in spec.schema.fields.values() if f.kind is Kind.DECIMAL}
    found = rows(corpus.warehouse, "SELECT table_name, column_name, data_type, "
                 "numeric_precision, numeric_scale FROM information_schema.columns "
                 "WHERE table_schema = 'core'")
    types = {(t, c): (kind.upper(), p, s) for t, c, kind, p, s in found}
    wanted = ("DECIMAL(38,12)" if corpus.backend == "duckdb" else "NUMERIC", 38, 12)
    assert {k: types[k] for k in decimal_columns} == dict.fromkeys(decimal_columns, wanted)
    assert types[("cash_balances", "starting_cash")] == wanted
    assert types[("trades", "trade_date")][0] == "DATE"
    assert types[("trades", "date_time")][0].startswith("TIMESTAMP")


def test_many_decimal_places_survive_exactly(corpus: Corpus) -> None:
    name = "010_pp17_2023_many_sections.xml"
    row = next(r for r in xml_rows(corpus.path(name)) if r.tag == "CashReportCurrency")
    assert row.attrs["startingCash"] == "62.905297533"
    got = rows(corpus.warehouse, "SELECT starting_cash, starting_cash_sec, CAST(starting_cash AS "
               "VARCHAR) FROM core.cash_balances WHERE file_sha256 = :s", s=corpus.sha[name])
    assert len(got) == 1
    cash, sec, text = got[0]
    assert cash == sec == Decimal("62.905297533")
    assert str(cash) == "62.905297533000"
    assert text.rstrip("0") == "62.905297533"
    # a binary float would not give this back
    assert Decimal(float("62.905297533")) != Decimal("62.905297533")


def test_2013_trade_is_typed_from_the_xml(corpus: Corpus) -> None:
    name = "001_pp01_2013_fx_opt_ca.xml"
    xml = next(r for r in xml_rows(corpus.path(name))
               if r.tag == "Trade" and r.attrs["transactionID"] == "3452745495").attrs
    assert (xml["quantity"], xml["tradePrice"], xml["ibCommission"]) == ("5000", "0.27", "-6.75")
    assert (xml["tradeDate"], xml["tradeTime"], xml["orderTime"]) == (
        "20130401", "093406", "20130401;070007")
    assert "dateTime" not in xml  # 2013 exports give tradeDate + tradeTime instead
    got = rows(corpus.warehouse, "SELECT quantity, trade_price, ib_commission, trade_date, "
               "trade_time, order_time, date_time, settle_date_target, notes, exch_order_id, "
               "buy_sell, account_id, natural_key, file_sha256 FROM core.trades "
               "WHERE transaction_id = '3452745495'")
    assert got == [(Decimal("5000"), Decimal("0.27"), Decimal("-6.75"), date(2013, 4, 1),
                    time(9, 34, 6), datetime(2013, 4, 1, 7, 0, 7), None, date(2013, 4, 4),
                    "P;", None, "BUY", "U123456", "3452745495", corpus.sha[name])]


def test_2013_mixed_date_formats(corpus: Corpus) -> None:
    sha = corpus.sha["001_pp01_2013_fx_opt_ca.xml"]
    actions = rows(corpus.warehouse, "SELECT symbol, report_date, date_time, quantity FROM "
                   "core.corporate_actions WHERE file_sha256 = :s", s=sha)
    assert sorted(actions, key=repr) == sorted([
        ("UUU", date(2013, 3, 5), datetime(2013, 3, 5, 19, 45), Decimal("-12000")),
        ("UUU.TEN2", date(2013, 3, 5), datetime(2013, 3, 5, 19, 45), Decimal("12000")),
        ("GCM", date(2013, 6, 18), datetime(2013, 6, 17, 20, 25), Decimal("480")),
        ("GCM.OLD", date(2013, 6, 18), datetime(2013, 6, 17, 20, 25), Decimal("-12000")),
        ("UUU.TEN2", date(2013, 10, 25), datetime(2013, 10, 23, 20, 25), Decimal("-12000")),
    ], key=repr)
    fees = rows(corpus.warehouse, "SELECT date_time, amount FROM core.cash_transactions "
                "WHERE file_sha256 = :s AND currency = 'CHF'", s=sha)
    assert sorted(fees) == [(datetime(2013, 1, 3), Decimal("-10")),
                            (datetime(2013, 4, 3), Decimal("-9.49"))]
    statement = rows(corpus.warehouse, "SELECT when_generated, when_generated_at FROM "
                     "raw.flex_statements WHERE file_sha256 = :s", s=sha)
    assert statement == [("20130102 01:25:14", datetime(2013, 1, 2, 1, 25, 14))]
    # no slashed dates, no zone suffixes: nothing to note
    assert rows(corpus.warehouse, "SELECT DISTINCT date_order, date_order_source, notes FROM "
                "raw.flex_ingest_log WHERE file_sha256 = :s", s=sha) == [
        ("MDY", "not needed", None)]


def test_no_corpus_file_is_noted_for_a_zone_suffix(corpus: Corpus) -> None:
    notes = rows(corpus.warehouse, "SELECT DISTINCT notes FROM raw.flex_ingest_log "
                 "WHERE notes IS NOT NULL")
    assert [n for (n,) in notes if "zone" in n] == []


def test_order_and_summary_rows_stay_out_of_trades(corpus: Corpus) -> None:
    name = "013_pp20_2023_asset_symbol_order_summary.xml"
    sha = corpus.sha[name]
    xml = Counter(r.tag for r in xml_rows(corpus.path(name)) if r.section == "Trades")
    assert xml == {"AssetSummary": 1, "SymbolSummary": 1, "Order": 1, "Trade": 1}
    for tag in ("Order", "SymbolSummary", "AssetSummary"):
        assert scalar(corpus.warehouse, f"SELECT count(*) FROM {qualified('raw', snake_case(tag))}"
                      " WHERE file_sha256 = :s AND section = 'Trades'", s=sha) == 1
    trades = rows(corpus.warehouse, "SELECT transaction_id, level_of_detail FROM core.trades "
                  "WHERE file_sha256 = :s", s=sha)
    execution = next(r for r in xml_rows(corpus.path(name)) if r.tag == "Trade").attrs
    assert trades == [(execution["transactionID"], "EXECUTION")]
    assert scalar(corpus.warehouse, "SELECT count(*) FROM core.trades WHERE level_of_detail "
                  "IN ('ORDER', 'SYMBOL_SUMMARY', 'ASSET_SUMMARY')") == 0


def test_count_mismatch_is_reported(corpus: Corpus) -> None:
    name = "020_pp29_2025_count_mismatch_gbx.xml"
    assert corpus.results[name].notes == [
        "FlexStatements count=2 but 3 statements found (all loaded)"]
    assert rows(corpus.warehouse, "SELECT statements_declared, statements_found FROM "
                "raw.flex_files WHERE file_sha256 = :s", s=corpus.sha[name]) == [("2", 3)]
    assert rows(corpus.warehouse, "SELECT statement_index, when_generated FROM raw.flex_statements"
                " WHERE file_sha256 = :s ORDER BY 1", s=corpus.sha[name]) == [
        (0, "20250310;120000"), (1, "20250326;120000"), (2, "20250327;120000")]


def test_account_information_at_the_root(corpus: Corpus) -> None:
    name = "006_pp12_acctinfo_at_root.xml"
    sha = corpus.sha[name]
    got = rows(corpus.warehouse, "SELECT statement_index, statement_account_id, when_generated, "
               "section, parent, account_id, currency FROM raw.account_information "
               "WHERE file_sha256 = :s", s=sha)
    assert got == [(None, None, None, "AccountInformation", "", "XXXXXXXX", "EUR")]
    assert rows(corpus.warehouse, "SELECT rows_seen, rows_loaded FROM raw.flex_ingest_log WHERE "
                "file_sha256 = :s AND account_id = '' AND row_tag = 'AccountInformation'",
                s=sha) == [(1, 1)]


def test_every_section_of_the_many_sections_file_lands(corpus: Corpus) -> None:
    name = "010_pp17_2023_many_sections.xml"
    sha = corpus.sha[name]
    (statement,) = ET.parse(corpus.path(name)).getroot().iter("FlexStatement")
    listed = rows(corpus.warehouse, "SELECT sections FROM raw.flex_statements "
                  "WHERE file_sha256 = :s", s=sha)
    assert listed == [(",".join(child.tag for child in statement),)]
    assert len(list(statement)) == 44
    with_rows = {r.section for r in xml_rows(corpus.path(name))}
    assert with_rows == {
        "AccountInformation", "EquitySummaryInBase", "ChangeInNAV", "FIFOPerformanceSummaryInBase",
        "MTMPerformanceSummaryInBase", "CashReport", "StmtFunds", "ChangeInPositionValues",
        "OpenPositions", "PriorPeriodPositions", "CashTransactions", "SalesTaxes",
        "ChangeInDividendAccruals", "OpenDividendAccruals", "SecuritiesInfo"}
    logged = rows(corpus.warehouse, "SELECT DISTINCT section FROM raw.flex_ingest_log "
                  "WHERE file_sha256 = :s", s=sha)
    assert {s for (s,) in logged} == with_rows
    core = corpus.results[name].core_rows
    assert core == {"accounts": 1, "cash_transactions": 3, "open_positions": 13,
                    "cash_balances": 1, "nav_daily": 2, "change_in_nav": 1,
                    "securities_info": 13}


def test_unknown_attributes_are_kept_and_reported(corpus: Corpus) -> None:
    for name, tag, attr, section in [
        ("001_pp01_2013_fx_opt_ca.xml", "Trade", "orderPlacementTime", "Trades"),
        ("013_pp20_2023_asset_symbol_order_summary.xml", "SymbolSummary", "fxPnl", "Trades"),
    ]:
        sha = corpus.sha[name]
        xml = [r.attrs.get(attr) for r in xml_rows(corpus.path(name)) if r.tag == tag]
        assert any(v is not None for v in xml)
        got = rows(corpus.warehouse, f"SELECT {q(snake_case(attr))} FROM "
                   f"{qualified('raw', snake_case(tag))} WHERE file_sha256 = :s ORDER BY ordinal",
                   s=sha)
        assert [v for (v,) in got] == xml
        logged = rows(corpus.warehouse, "SELECT unknown_attributes FROM raw.flex_ingest_log "
                      "WHERE file_sha256 = :s AND row_tag = :t AND section = :sec",
                      s=sha, t=tag, sec=section)
        assert logged == [(attr,)]
        assert f"{tag}.{attr}" in corpus.results[name].drift


def test_instruments_one_row_per_conid_with_options_linked(corpus: Corpus) -> None:
    instruments = rows(corpus.warehouse, "SELECT conid, asset_category, put_call, strike, "
                       "expiry, underlying_conid, underlying_symbol, multiplier "
                       "FROM core.instruments")
    conids = [r[0] for r in instruments]
    assert len(conids) == len(set(conids))
    sources = set()
    for name in INSTRUMENT_SOURCES:
        sources |= {c for (c,) in rows(corpus.warehouse, "SELECT DISTINCT conid FROM "
                                       f"{qualified('core', name)} WHERE conid IS NOT NULL")}
    assert set(conids) == sources
    by_conid = {r[0]: r[1:] for r in instruments}
    # every row of an instrument source that names an option; they agree on its terms
    terms: dict[str, dict[str, set[str]]] = {}
    attrs = ("putCall", "strike", "expiry", "underlyingConid", "underlyingSymbol", "multiplier")
    for name in CORPUS_FILES:
        for r in xml_rows(corpus.path(name)):
            if r.tag in ("Trade", "OpenPosition", "SecurityInfo") and \
                    r.attrs.get("assetCategory") == "OPT":
                found = terms.setdefault(r.attrs["conid"], {a: set() for a in attrs})
                for a in attrs:
                    found[a] |= {r.attrs[a]} - NULL_TOKENS if a in r.attrs else set()
    options = {}
    for conid, found in terms.items():
        assert all(len(v) == 1 for v in found.values()), (conid, found)
        one = {a: next(iter(v)) for a, v in found.items()}
        options[conid] = ("OPT", one["putCall"], Decimal(one["strike"]),
                          expected_date(one["expiry"]), one["underlyingConid"],
                          one["underlyingSymbol"], Decimal(one["multiplier"]))
    assert len(options) == 6
    assert {c: by_conid[c] for c in options} == options
    linked = {c: by_conid[o[4]] for c, o in options.items() if o[4] in by_conid}
    assert linked, "some option's underlying is itself an instrument"
    assert all(u[0] == "STK" for u in linked.values())
    assert by_conid["268828466"][4] == "272800"  # ORCL put -> ORCL
    assert by_conid["272800"][:2] == ("STK", None)


def test_same_core_rows_on_duckdb_and_postgres(corpus_duckdb: Corpus,
                                                corpus_postgres: Corpus) -> None:
    for spec in CORE_TABLES:
        order = "natural_key"
        sql = f"SELECT * FROM core.{spec.name} ORDER BY {order}"
        duck = sorted(rows(corpus_duckdb.warehouse, sql), key=repr)  # no collation differences
        assert duck == sorted(rows(corpus_postgres.warehouse, sql), key=repr), spec.name
    for name in ("trades", "cash_transactions", "fx_rates", "accounts"):
        assert scalar(corpus_duckdb.warehouse, f"SELECT count(*) FROM core.{name}") > 0
    duck = sorted(rows(corpus_duckdb.warehouse, "SELECT * FROM core.instruments"), key=repr)
    pg = sorted(rows(corpus_postgres.warehouse, "SELECT * FROM core.instruments"), key=repr)
    assert duck == pg and len(duck) == 44
    for table in corpus_duckdb.raw_tables():
        sql = f"SELECT * FROM {qualified('raw', table)}"
        duck = sorted(rows(corpus_duckdb.warehouse, sql), key=repr)
        assert duck == sorted(rows(corpus_postgres.warehouse, sql), key=repr), table
    assert corpus_duckdb.raw_tables() == corpus_postgres.raw_tables()


def test_overlapping_statements_dedupe_cash_transactions(
        warehouse: Warehouse, settings: Settings, corpus_dir: Path) -> None:
    """020 alone: three statements of one account, rows without transactionID (content keys)."""
    path = corpus_dir / "020_pp29_2025_count_mismatch_gbx.xml"
    xml = [r for r in xml_rows(path) if r.tag == "CashTransaction"]
    distinct = {tuple(sorted(r.attrs.items())) for r in xml}
    assert (len(xml), len(distinct)) == (5, 5)
    (result,) = ingest_files(warehouse, settings, path)
    assert result.core_rows["cash_transactions"] == 5
    assert scalar(warehouse, "SELECT count(*) FROM raw.cash_transaction") == 5
    got = rows(warehouse, "SELECT symbol, amount, report_date, statement_index "
               "FROM core.cash_transactions")
    assert sorted(got, key=repr) == sorted([
        ("HIDR", Decimal("18.15"), date(2025, 3, 4), 0),
        ("EQQQ", Decimal("1.36"), date(2025, 3, 21), 0),
        ("EQQQ", Decimal("1.27"), date(2025, 3, 25), 1),
        ("GBDV", Decimal("138.00"), date(2025, 3, 26), 1),
        ("KRDIV", Decimal("3100"), date(2025, 3, 27), 2),
    ], key=repr)
    assert all(k.startswith("content:") for (k,) in rows(
        warehouse, "SELECT natural_key FROM core.cash_transactions"))
    # the three statements again, as a second export generated later: nothing new in core
    restated = path.read_text(encoding="utf-8").replace(";120000", ";130000")
    again = settings.data_dir.parent / "020_regenerated.xml"
    again.write_text(restated, encoding="utf-8")
    (second,) = ingest_files(warehouse, settings, again)
    assert second.status == "loaded"
    assert scalar(warehouse, "SELECT count(*) FROM raw.cash_transaction") == 10
    assert scalar(warehouse, "SELECT count(*) FROM core.cash_transactions") == 5
    assert {s for (s,) in rows(warehouse, "SELECT DISTINCT file_sha256 FROM "
                               "core.cash_transactions")} == {second.sha256}


def test_root_account_information_in_core(
        warehouse: Warehouse, settings: Settings, corpus_dir: Path) -> None:
    """006 alone: the root-level account, and the statement's own account (no
    AccountInformation in the statement), both in core.accounts."""
    (result,) = ingest_files(warehouse, settings, corpus_dir / "006_pp12_acctinfo_at_root.xml")
    assert result.status == "loaded" and result.accounts == ["XXXXXUSD"]
    accounts = rows(warehouse, "SELECT account_id, currency, statement_index, when_generated "
                    "FROM core.accounts")
    assert sorted(accounts, key=repr) == [("XXXXXUSD", None, 0, datetime(2020, 2, 17, 5, 49, 32)),
                                          ("XXXXXXXX", "EUR", None, None)]


def test_overlapping_statements_keep_the_newest_account_row(
        warehouse: Warehouse, settings: Settings, corpus_dir: Path) -> None:
    path = corpus_dir / "020_pp29_2025_count_mismatch_gbx.xml"
    info = [r.attrs for r in xml_rows(path) if r.tag == "AccountInformation"]
    assert [a["acctAlias"] for a in info] == ["A", "B", "C"]
    ingest_files(warehouse, settings, path)
    assert scalar(warehouse, "SELECT count(*) FROM raw.account_information") == 3
    got = rows(warehouse, "SELECT account_id, acct_alias, currency, statement_index, "
               "when_generated FROM core.accounts")
    assert got == [("U1234567", "C", "EUR", 2, datetime(2025, 3, 27, 12))]


def test_reingesting_everything_changes_nothing(corpus: Corpus) -> None:
    """Runs last in this module: archive all 20 again and load: all duplicates, no change."""
    before = snapshot(corpus.warehouse)
    archive = Archive(corpus.settings.archive_dir)
    for name in CORPUS_FILES:
        again = archive.add_file(corpus.path(name), "cli")
        assert again.already_archived and again.sha256 == corpus.sha[name]
    results = ingest_pending(corpus.warehouse, corpus.settings, "corpus-run-2")
    assert sorted(r.name for r in results) == list(CORPUS_FILES)
    assert {r.status for r in results} == {"duplicate"}
    assert snapshot(corpus.warehouse) == before
    raw_rows = sum(len(r) for t, (_, r) in before.items()
                   if t.startswith("raw.") and t[4:] not in BOOKKEEPING)
    assert raw_rows == sum(len(xml_rows(corpus.path(n))) for n in CORPUS_FILES) == 20_366
    assert len(before["core.fx_rates"][1]) == 13_750
    assert not list((corpus.settings.archive_dir / "pending").glob("*.json"))
