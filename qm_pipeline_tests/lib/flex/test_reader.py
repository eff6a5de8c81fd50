"""The streaming reader: where each row sits, its text exactly as the XML said, in file order."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

import qm_pipeline.lib.flex.reader as reader_module
from qm_pipeline.lib.flex.errors import FlexInputError
from qm_pipeline.lib.flex.reader import (
    LINE_COLUMN,
    OFFSET_COLUMN,
    ORDINAL_COLUMN,
    GroupKey,
    read_report,
    stream_report,
)
from qm_pipeline.lib.settings import Settings
from qm_pipeline.lib.warehouse.engine import Warehouse
from qm_pipeline_tests.helpers import (
    ingest_files,
    line_of,
    report,
    row,
    rows,
    section,
    statement,
    trade,
    write,
)

BOOKKEEPING = (LINE_COLUMN, OFFSET_COLUMN, ORDINAL_COLUMN)


def data(table: pa.Table) -> list[dict]:
    """Rows without the reader's bookkeeping columns."""
    return table.drop_columns([c for c in BOOKKEEPING if c in table.column_names]).to_pylist()


def test_sections_rows_and_header(tmp_path: Path) -> None:
    text = report(
        statement(section("Trades", row("Trade", trade("T1")), row("Trade", trade("T2"))),
                  section("CashTransactions"),
                  row("AccountInformation", {"accountId": "U1", "currency": "EUR"}),
                  account_id="U1", when_generated="20240201;120000"),
        statement(section("Trades", row("Trade", trade("T3"))), account_id="U2"),
        count=3, query_name="Daily")
    parsed = read_report(write(tmp_path / "r.xml", text))
    assert (parsed.root_tag, parsed.root) == ("FlexQueryResponse",
                                              {"queryName": "Daily", "type": "AF"})
    assert parsed.declared_statements == "3"
    assert [(s.index, s.attrs["accountId"], s.sections) for s in parsed.statements] == [
        (0, "U1", ["Trades", "CashTransactions", "AccountInformation"]),
        (1, "U2", ["Trades"])]
    assert parsed.statements[0].attrs["whenGenerated"] == "20240201;120000"
    assert list(parsed.tables) == [
        GroupKey(0, "AccountInformation", "", "AccountInformation"),
        GroupKey(0, "Trades", "", "Trade"),
        GroupKey(1, "Trades", "", "Trade")]
    trades = parsed.tables[GroupKey(0, "Trades", "", "Trade")]
    assert [r["transactionID"] for r in data(trades)] == ["T1", "T2"]
    assert data(trades)[0] == {k: str(v) for k, v in trade("T1").items()}
    assert all(trades.schema.field(n).type == pa.string() for n in trades.column_names
               if n not in BOOKKEEPING)
    assert trades.column(LINE_COLUMN).to_pylist() == [line_of(text, '"T1"'),
                                                       line_of(text, '"T2"')]
    assert trades.column(ORDINAL_COLUMN).to_pylist() == [0, 1]


def test_fx_lots_nest_under_their_parents(tmp_path: Path) -> None:
    text = "\n".join([
        '<FlexQueryResponse queryName="q" type="AF">',
        '<FlexStatements count="1">',
        '<FlexStatement accountId="U1" whenGenerated="20240201;120000">',
        "<FxPositions>",
        "<FxLots>",
        '<FxLot fxCurrency="EUR" quantity="2" /><FxLot fxCurrency="EUR" quantity="3" />',
        "</FxLots>",
        '<FxPosition fxCurrency="CHF" quantity="5">',
        '<FxLots><FxLot fxCurrency="CHF" quantity="5" /></FxLots>',
        "</FxPosition>",
        "</FxPositions>",
        "</FlexStatement>", "</FlexStatements>", "</FlexQueryResponse>", ""])
    parsed = read_report(write(tmp_path / "fx.xml", text))
    assert {k: data(t) for k, t in parsed.tables.items()} == {
        GroupKey(0, "FxPositions", "FxLots", "FxLot"): [
            {"fxCurrency": "EUR", "quantity": "2"}, {"fxCurrency": "EUR", "quantity": "3"}],
        GroupKey(0, "FxPositions", "", "FxPosition"): [{"fxCurrency": "CHF", "quantity": "5"}],
        GroupKey(0, "FxPositions", "FxPosition/FxLots", "FxLot"): [
            {"fxCurrency": "CHF", "quantity": "5"}],
    }
    lots = parsed.tables[GroupKey(0, "FxPositions", "FxLots", "FxLot")]
    assert lots.column(LINE_COLUMN).to_pylist() == [6, 6]  # two rows on one line
    offsets = lots.column(OFFSET_COLUMN).to_pylist()
    assert [text.encode()[o:o + 7] for o in offsets] == [b"<FxLot "] * 2
    assert parsed.statements[0].sections == ["FxPositions"]


def test_rows_outside_statements(tmp_path: Path) -> None:
    text = report(statement(section("Trades", row("Trade", trade("T1")))),
                  before="\n".join([
                      row("AccountInformation", {"accountId": "R1", "currency": "EUR"}),
                      section("ConversionRates", row("ConversionRate", {
                          "reportDate": "20240105", "fromCurrency": "EUR",
                          "toCurrency": "USD", "rate": "1.09"}))]))
    parsed = read_report(write(tmp_path / "root.xml", text))
    assert {k: data(t) for k, t in parsed.tables.items()
            if k.statement is None} == {
        GroupKey(None, "AccountInformation", "", "AccountInformation"): [
            {"accountId": "R1", "currency": "EUR"}],
        GroupKey(None, "ConversionRates", "", "ConversionRate"): [
            {"reportDate": "20240105", "fromCurrency": "EUR", "toCurrency": "USD",
             "rate": "1.09"}],
    }
    assert parsed.tables[GroupKey(None, "AccountInformation", "", "AccountInformation")
                         ].column(LINE_COLUMN).to_pylist() == [2]
    assert [s.sections for s in parsed.statements] == [["Trades"]]


def test_entities_newlines_and_odd_characters_survive(tmp_path: Path) -> None:
    values = ["line one\nline two", "carriage\rreturn", 'quote " and apostrophe \'',
              "a & b < c > d", "tab\there", "comma, semicolon; back\\slash", "Société Générale",
              "  padded  ", ""]
    text = report(statement(section("Trades", *[
        row("Trade", trade(f"T{i}", description=v)) for i, v in enumerate(values)])))
    assert "&#10;" in text and "&#13;" in text and "&quot;" in text and "&amp;" in text
    parsed = read_report(write(tmp_path / "odd.xml", text))
    trades = parsed.tables[GroupKey(0, "Trades", "", "Trade")]
    assert trades.column("description").to_pylist() == values
    assert trades.column(LINE_COLUMN).to_pylist() == [line_of(text, f'"T{i}"')
                                                       for i in range(len(values))]


def test_literal_entities_written_by_hand(tmp_path: Path) -> None:
    text = ('<FlexQueryResponse><FlexStatements count="1"><FlexStatement accountId="U1">'
            '<Notes><Note text="x&#10;y" other="&lt;&amp;&gt;&quot;&apos;" /></Notes>'
            "</FlexStatement></FlexStatements></FlexQueryResponse>")
    parsed = read_report(write(tmp_path / "hand.xml", text))
    assert data(parsed.tables[GroupKey(0, "Notes", "", "Note")]) == [
        {"text": "x\ny", "other": "<&>\"'"}]


def test_differing_attribute_sets_union_in_file_order(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reader_module, "CHUNK_ROWS", 2)  # several chunks per group too
    shapes = [{"a": "1", "b": "x"}, {"a": "2", "c": "y"}, {"a": "3", "b": "z"},
              {"c": "w"}, {"a": "5", "b": "v"}, {"a": "6", "b": "u"}, {"b": "t", "a": "7"}]
    text = report(statement(section("Things", *[row("Thing", s) for s in shapes])))
    parsed = read_report(write(tmp_path / "shapes.xml", text))
    (table,) = parsed.tables.values()
    assert sorted(c for c in table.column_names if c not in BOOKKEEPING) == ["a", "b", "c"]
    assert table.column(ORDINAL_COLUMN).to_pylist() == list(range(7))
    assert [{k: v for k, v in r.items() if v is not None} for r in data(table)] == shapes
    assert table.column(LINE_COLUMN).to_pylist() == list(range(5, 12))


def test_chunks_stream_to_the_handler_in_file_order(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reader_module, "CHUNK_ROWS", 3)
    text = report(statement(section("Trades", *[row("Trade", trade(f"T{i}"))
                                                for i in range(8)])))
    seen: list[tuple[GroupKey, list[str], list[int]]] = []
    header = stream_report(write(tmp_path / "many.xml", text), lambda key, chunk: seen.append(
        (key, chunk.column("transactionID").to_pylist(),
         chunk.column(ORDINAL_COLUMN).to_pylist())))
    assert [(ids, ordinals) for _, ids, ordinals in seen] == [
        (["T0", "T1", "T2"], [0, 1, 2]), (["T3", "T4", "T5"], [3, 4, 5]),
        (["T6", "T7"], [6, 7])]
    assert {key for key, _, _ in seen} == {GroupKey(0, "Trades", "", "Trade")}
    assert [s.attrs["accountId"] for s in header.statements] == ["U1234567"]


def test_interleaved_tags_keep_their_own_order(tmp_path: Path) -> None:
    lot = {"transactionID": "L", "quantity": "1", "levelOfDetail": "CLOSED_LOT"}
    text = report(statement(section(
        "Trades", row("Trade", trade("T1")), row("Lot", {**lot, "openDateTime": "1"}),
        row("Lot", {**lot, "openDateTime": "2"}), row("Trade", trade("T2")),
        row("Lot", {**lot, "openDateTime": "3"}))))
    parsed = read_report(write(tmp_path / "lots.xml", text))
    lots = parsed.tables[GroupKey(0, "Trades", "", "Lot")]
    trades = parsed.tables[GroupKey(0, "Trades", "", "Trade")]
    assert lots.column("openDateTime").to_pylist() == ["1", "2", "3"]
    assert lots.column(ORDINAL_COLUMN).to_pylist() == [0, 1, 2]
    assert trades.column("transactionID").to_pylist() == ["T1", "T2"]
    assert trades.column(LINE_COLUMN).to_pylist() == [line_of(text, '"T1"'),
                                                       line_of(text, '"T2"')]


def test_crlf_and_bom(tmp_path: Path) -> None:
    text = report(statement(section("Trades", row("Trade", trade("T1")),
                                    row("Trade", trade("T2")))))
    path = tmp_path / "crlf.xml"
    path.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode())
    trades = read_report(path).tables[GroupKey(0, "Trades", "", "Trade")]
    assert trades.column(LINE_COLUMN).to_pylist() == [line_of(text, '"T1"'),
                                                       line_of(text, '"T2"')]
    assert trades.column("transactionID").to_pylist() == ["T1", "T2"]


def test_an_empty_report(tmp_path: Path) -> None:
    parsed = read_report(write(tmp_path / "empty.xml", report(count=0)))
    assert (parsed.declared_statements, parsed.statements, parsed.tables) == ("0", [], {})


@pytest.mark.parametrize(("text", "message"), [
    ("<html><body/></html>", "not a Flex report: the root element is <html>, expected "
                             "<FlexQueryResponse>"),
    ("", "malformed or truncated XML (no element found, column 1)"),
    ('<FlexQueryResponse>\n<FlexStatements count="1">\n<FlexStatement>\n'
     '<Trades><Trade a="1"></Trades>', "malformed or truncated XML (mismatched tag, column"),
])
def test_not_flex_or_not_xml(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "bad.xml", text)
    with pytest.raises(FlexInputError) as caught:
        read_report(path)
    assert str(caught.value).startswith(str(path))
    assert message in str(caught.value)
    if "mismatched" in message:
        assert caught.value.line == 4


# --- the same, through ingestion into raw ---------------------------------------------------------


def test_raw_keeps_nesting_text_and_order(warehouse: Warehouse, settings: Settings,
                                          tmp_path: Path) -> None:
    odd = ["x\ny", 'q"&<>\'', "back\\slash, comma", "", "Zürich"]
    text = report(statement(
        section("Trades", *[row("Trade", trade(f"T{i}", description=v))
                            for i, v in enumerate(odd)],
                row("Trade", {"transactionID": "T9", "symbol": "ONLY"})),
        section("FxPositions", "<FxLots>",
                row("FxLot", {"fxCurrency": "EUR", "quantity": "2", "section": "mine",
                              "ordinal": "7"}),
                row("FxLot", {"fxCurrency": "USD", "quantity": "3"}), "</FxLots>")))
    (result,) = ingest_files(warehouse, settings, write(tmp_path / "raw.xml", text))
    assert result.status == "loaded" and result.rows_loaded == 8
    trades = rows(warehouse, "SELECT ordinal, source_line, transaction_id, description, symbol "
                  "FROM raw.trade ORDER BY ordinal")
    assert trades == [
        *[(i, line_of(text, f'"T{i}"'), f"T{i}", v, "ACME") for i, v in enumerate(odd)],
        (5, line_of(text, '"T9"'), "T9", None, "ONLY")]
    lots = rows(warehouse, "SELECT section, parent, row_tag, ordinal, fx_currency, quantity, "
                "section_attr, ordinal_attr FROM raw.fx_lot ORDER BY ordinal")
    assert lots == [("FxPositions", "FxLots", "FxLot", 0, "EUR", "2", "mine", "7"),
                    ("FxPositions", "FxLots", "FxLot", 1, "USD", "3", None, None)]
    assert rows(warehouse, "SELECT section, row_tag, rows_seen, rows_loaded, core_tables "
                "FROM raw.flex_ingest_log ORDER BY 1") == [
        ("FxPositions", "FxLot", 2, 2, None), ("Trades", "Trade", 6, 6, "trades")]


def test_unknown_sections_and_tags_are_kept_and_reported(warehouse: Warehouse,
                                                         settings: Settings,
                                                         tmp_path: Path) -> None:
    text = report(statement(
        section("Trades", row("Trade", trade("T1")), row("TradeV2", {"transactionID": "N1"})),
        section("CryptoStakingRewards", row("StakingReward", {"asset": "ETH",
                                                              "amount": "0.0123"})),
        row("BrandNewInfo", {"x": "1"})))
    (result,) = ingest_files(warehouse, settings, write(tmp_path / "new.xml", text))
    assert result.status == "loaded" and result.rows_loaded == 4
    log = rows(warehouse, "SELECT section, row_tag, raw_table, rows_seen, rows_loaded, notes "
               "FROM raw.flex_ingest_log ORDER BY 1, 2")
    assert log == [
        ("BrandNewInfo", "BrandNewInfo", "brand_new_info", 1, 1,
         "unknown row tag BrandNewInfo; unknown section BrandNewInfo"),
        ("CryptoStakingRewards", "StakingReward", "staking_reward", 1, 1,
         "unknown row tag StakingReward; unknown section CryptoStakingRewards"),
        ("Trades", "Trade", "trade", 1, 1, None),
        ("Trades", "TradeV2", "trade_v2", 1, 1, "unknown row tag TradeV2"),
    ]
    assert rows(warehouse, "SELECT asset, amount FROM raw.staking_reward") == [("ETH", "0.0123")]
    assert rows(warehouse, "SELECT transaction_id FROM raw.trade_v2") == [("N1",)]
    assert rows(warehouse, "SELECT transaction_id FROM core.trades") == [("T1",)]
    assert sorted(result.drift) == [
        "BrandNewInfo: unknown row tag BrandNewInfo", "BrandNewInfo: unknown section BrandNewInfo",
        "StakingReward: unknown row tag StakingReward",
        "StakingReward: unknown section CryptoStakingRewards", "TradeV2: unknown row tag TradeV2"]
