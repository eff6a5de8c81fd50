"""The sample Flex generator: its files must be real-looking and reconcile to the cent.

The XML is read back with `xml.etree` only (never with the generator's own code), so every
assertion re-derives IB's numbers from the rows: trade arithmetic, FIFO lots, cash per
currency, NAV, ChangeInNAV and the linked TWR of DOMAIN.md section 5.
"""

from __future__ import annotations

import warnings
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from itertools import pairwise
from pathlib import Path

import pytest
from ibflex import parser as ibflex_parser

from qm_pipeline.lib.flex.sample import SampleSpec, write_report, write_reports
from qm_pipeline.lib.flex.sample.instruments import cusip_check_digit, isin_check_digit

D = Decimal
ZERO = D(0)
CASH_LINES = (
    "commissions", "deposits", "withdrawals", "dividends", "withholdingTax", "brokerInterest",
    "otherFees", "netTradesSales", "netTradesPurchases",
)
NAV_COMPONENTS = (
    "mtm", "depositsWithdrawals", "assetTransfers", "dividends", "withholdingTax", "interest",
    "otherFees", "commissions", "fxTranslation", "other",
)
CASH_LINE_OF_TYPE = {
    "Dividends": "dividends",
    "Withholding Tax": "withholdingTax",
    "Broker Interest Received": "brokerInterest",
    "Broker Interest Paid": "brokerInterest",
    "Other Fees": "otherFees",
}

Row = dict[str, str]


@dataclass
class Statement:
    attrs: Row
    rows: dict[str, list[Row]]

    def one(self, tag: str) -> Row:
        (row,) = self.rows[tag]
        return row

    @property
    def trades(self) -> list[Row]:
        return self.rows["Trade"]

    @property
    def nav_series(self) -> list[Row]:
        return self.rows["EquitySummaryByReportDateInBase"]


def load(path: Path) -> list[Statement]:
    statements = []
    for element in ET.parse(path).getroot().iter("FlexStatement"):
        rows: dict[str, list[Row]] = defaultdict(list)
        for child in element.iter():
            if child is not element and child.attrib:  # containers carry no attributes
                rows[child.tag].append(dict(child.attrib))
        statements.append(Statement(dict(element.attrib), rows))
    return statements


def day(text: str) -> date:
    return datetime.strptime(text[:8], "%Y%m%d").date()


def when(text: str) -> datetime:
    return datetime.strptime(text, "%Y%m%d;%H%M%S")


def money(row: Row, name: str) -> Decimal:
    return D(row[name]) if row.get(name) else ZERO


# --- generated samples (module scope: each spec is written once) ------------------------------

SMALL = SampleSpec(accounts=("U3000001",), start=date(2024, 3, 1), end=date(2024, 4, 29))
EUR_BASE = SampleSpec(
    accounts=("U4000001",), start=date(2023, 1, 2), end=date(2023, 4, 28), base_currency="EUR",
    trades_per_day=6, seed=11,
)
CHAINED = SampleSpec(
    accounts=("U5000001", "U5000002"), start=date(2024, 1, 2), end=date(2024, 6, 28),
    trades_per_day=3, seed=3,
)


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("flex_sample")


@pytest.fixture(scope="module")
def default_file(out: Path) -> Path:
    (path,) = write_reports(SampleSpec(), out / "default")
    return path


@pytest.fixture(scope="module")
def chained_files(out: Path) -> list[Path]:
    return write_reports(CHAINED, out / "chained", window_days=91)


@pytest.fixture(scope="module")
def samples(default_file: Path, chained_files: list[Path], out: Path) -> dict[str, Path]:
    return {
        "default": default_file,
        "chained-1": chained_files[0],
        "chained-2": chained_files[1],
        "small": write_report(SMALL, out / "small.xml"),
        "eur-base": write_report(EUR_BASE, out / "eur.xml"),
    }


@pytest.fixture(scope="module")
def statements(samples: dict[str, Path]) -> dict[str, list[Statement]]:
    return {name: load(path) for name, path in samples.items()}


def every_statement(statements: dict[str, list[Statement]]) -> list[Statement]:
    return [s for group in statements.values() for s in group]


# --- format -----------------------------------------------------------------------------------


def test_ibflex_accepts_every_row_and_attribute(samples: dict[str, Path]) -> None:
    """ibflex is strict about types and enums; turning its unknown-attribute warnings into
    errors also proves every tag and attribute name is a real Flex one."""
    for path in samples.values():
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            response = ibflex_parser.parse(str(path))
        xml = load(path)
        assert len(response.FlexStatements) == len(xml)
        for parsed, raw in zip(response.FlexStatements, xml, strict=True):
            assert len(parsed.Trades) == len(raw.trades) + len(raw.rows["Lot"])
            assert parsed.ChangeInNAV is not None and parsed.AccountInformation is not None


def test_file_shape_is_ibs(default_file: Path) -> None:
    root = ET.parse(default_file).getroot()
    assert root.tag == "FlexQueryResponse"
    (container,) = root
    assert container.tag == "FlexStatements" and container.get("count") == "2"
    first = container[0]
    assert [child.tag for child in first] == [
        "AccountInformation", "EquitySummaryInBase", "ChangeInNAV", "CashReport",
        "OpenPositions", "Trades", "OptionEAE", "CorporateActions", "CashTransactions",
        "InterestAccruals", "Transfers", "SecuritiesInfo", "ConversionRates",
    ]
    assert first.attrib == {
        "accountId": "U1000001", "fromDate": "20240102", "toDate": "20241231", "period": "",
        "whenGenerated": "20250101;060000",
    }
    text = default_file.read_text()
    assert "HARBOR &amp; PINE BANCORP" in text and "Bram O&#x27;Connor" in text


def test_check_digits_match_real_identifiers() -> None:
    """The sample's CUSIPs and ISINs are computed like real ones (Apple, SAP, Air Liquide)."""
    assert cusip_check_digit("03783310") == "0"
    assert isin_check_digit("US037833100") == "5"
    assert isin_check_digit("DE000716460") == "0"
    assert isin_check_digit("FR000012007") == "3"


def test_same_spec_gives_identical_bytes(default_file: Path, tmp_path: Path) -> None:
    (again,) = write_reports(SampleSpec(), tmp_path)
    assert again.read_bytes() == default_file.read_bytes()


def test_identifiers_are_unique_and_instruments_keyed_by_conid(
    statements: dict[str, list[Statement]],
) -> None:
    for group in statements.values():
        ids = Counter(
            row["transactionID"]
            for s in group
            for tag in ("Trade", "CashTransaction", "CorporateAction", "Transfer")
            for row in s.rows[tag]
        )
        assert ids and max(ids.values()) == 1
        executions = Counter(
            t["ibExecID"] for s in group for t in s.trades if t["transactionType"] == "ExchTrade"
        )
        assert max(executions.values()) == 1
        symbol_of = {}
        for s in group:
            for info in s.rows["SecurityInfo"]:
                assert symbol_of.setdefault(info["conid"], info["symbol"]) == info["symbol"]
            conids_seen = {t["conid"] for t in s.trades} | {
                p["conid"] for p in s.rows["OpenPosition"]
            }
            assert conids_seen <= {info["conid"] for info in s.rows["SecurityInfo"]}
        assert len(set(symbol_of.values())) == len(symbol_of)


# --- trades and lots --------------------------------------------------------------------------


def test_trade_arithmetic(statements: dict[str, list[Statement]]) -> None:
    for s in every_statement(statements):
        for t in s.trades:
            quantity, price, multiplier = D(t["quantity"]), D(t["tradePrice"]), D(t["multiplier"])
            assert t["levelOfDetail"] == "EXECUTION"
            assert money(t, "proceeds") == -quantity * price * multiplier
            assert money(t, "tradeMoney") == quantity * price * multiplier
            assert money(t, "netCash") == money(t, "proceeds") + money(t, "ibCommission")
            assert money(t, "ibCommission") <= 0
            assert t["buySell"] == ("BUY" if quantity > 0 else "SELL")
            # Assignment and exercise move the option's basis into the delivered stock's lot:
            # both BookTrades are checked in test_option_events_appear_once_in_each_section.
            if t["notes"] not in ("A", "Ex"):
                assert money(t, "fifoPnlRealized") == money(t, "netCash") + money(t, "cost")
            if t["transactionType"] == "ExchTrade":
                assert t["ibExecID"] and t["ibOrderID"]
                assert money(t, "ibCommission") < 0


def test_closed_lots_sum_to_their_closing_trade(statements: dict[str, list[Statement]]) -> None:
    for s in every_statement(statements):
        lots_of: dict[str, list[Row]] = defaultdict(list)
        for lot in s.rows["Lot"]:
            assert lot["levelOfDetail"] == "CLOSED_LOT"
            lots_of[lot["transactionID"]].append(lot)
        trades = {t["transactionID"]: t for t in s.trades}
        assert set(lots_of) <= set(trades)
        for tid, t in trades.items():
            lots, indicator = lots_of.get(tid, []), t["openCloseIndicator"]
            assert (indicator == "O") == (not lots)
            if not lots:
                continue
            assert sum(money(lot, "fifoPnlRealized") for lot in lots) == money(t, "fifoPnlRealized")
            closed = sum(D(lot["quantity"]) for lot in lots)
            quantity = D(t["quantity"])
            if indicator == "C":
                assert closed == -quantity
                assert sum(money(lot, "cost") for lot in lots) == -money(t, "cost")
            else:
                assert indicator == "C;O" and 0 < abs(closed) < abs(quantity)
                assert (closed > 0) == (quantity < 0)
            opened = [when(lot["openDateTime"]) for lot in lots]
            assert opened == sorted(opened) and opened[-1] <= when(t["dateTime"])  # FIFO
            for lot in lots:
                assert lot["buySell"] == t["buySell"] and lot["dateTime"] == t["dateTime"]
                assert (D(lot["quantity"]) > 0) == (money(lot, "cost") > 0)


def test_open_lots_are_the_fifo_lots_left(statements: dict[str, list[Statement]]) -> None:
    for s in every_statement(statements):
        summary = {p["conid"]: p for p in s.rows["OpenPosition"] if p["levelOfDetail"] == "SUMMARY"}
        lots = defaultdict(list)
        for p in s.rows["OpenPosition"]:
            if p["levelOfDetail"] == "LOT":
                lots[p["conid"]].append(p)
        assert set(lots) == set(summary)
        for conid, total in summary.items():
            assert total["reportDate"] == s.nav_series[-1]["reportDate"]
            assert sum(D(p["position"]) for p in lots[conid]) == D(total["position"])
            assert sum(money(p, "costBasisMoney") for p in lots[conid]) == money(
                total, "costBasisMoney"
            )
            for p in [total, *lots[conid]]:
                value = D(p["position"]) * D(p["markPrice"]) * D(p["multiplier"])
                assert money(p, "positionValue") == value
                assert money(p, "fifoPnlUnrealized") == value - money(p, "costBasisMoney")
                assert p["side"] == ("Long" if D(p["position"]) > 0 else "Short")
            for p in lots[conid]:
                assert p["openDateTime"] and p["originatingTransactionID"]


def test_replayed_positions_match_open_positions(
    statements: dict[str, list[Statement]],
) -> None:
    """Trades, the split and the transfer, replayed from the rows, give the open positions."""
    for name in ("default", "small", "eur-base"):
        for s in statements[name]:
            position: dict[str, Decimal] = defaultdict(Decimal)
            for t in s.trades:
                position[t["conid"]] += D(t["quantity"])
            for action in s.rows["CorporateAction"]:
                position[action["conid"]] += D(action["quantity"])
            for moved in s.rows["Transfer"]:
                position[moved["conid"]] += D(moved["quantity"])
            held = {conid: q for conid, q in position.items() if q}
            summary = {
                p["conid"]: D(p["position"])
                for p in s.rows["OpenPosition"]
                if p["levelOfDetail"] == "SUMMARY"
            }
            assert held == summary


# --- cash, NAV, ChangeInNAV, TWR --------------------------------------------------------------


def test_cash_by_currency_moves_exactly_with_the_rows(
    statements: dict[str, list[Statement]],
) -> None:
    for s in every_statement(statements):
        expected: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
        for t in s.trades:
            lines = expected[t["currency"]]
            lines["commissions"] += money(t, "ibCommission")
            proceeds = money(t, "proceeds")
            lines["netTradesSales" if proceeds > 0 else "netTradesPurchases"] += proceeds
        for c in s.rows["CashTransaction"]:
            assert c["levelOfDetail"] == "DETAIL"
            amount, lines = money(c, "amount"), expected[c["currency"]]
            if c["type"] == "Deposits/Withdrawals":
                lines["deposits" if amount > 0 else "withdrawals"] += amount
            else:
                lines[CASH_LINE_OF_TYPE[c["type"]]] += amount
        for row in s.rows["CashReportCurrency"]:
            lines = {line: money(row, line) for line in CASH_LINES}
            total = money(row, "startingCash") + sum(lines.values())
            assert money(row, "depositWithdrawals") == lines["deposits"] + lines["withdrawals"]
            if row["currency"] == "BASE_SUMMARY":
                assert row["levelOfDetail"] == "BaseCurrency"
                assert total + money(row, "fxTranslationGainLoss") == money(row, "endingCash")
                assert money(row, "endingCash") == money(s.nav_series[-1], "cash")
                assert money(row, "startingCash") == money(s.nav_series[0], "cash")
                continue
            assert total == money(row, "endingCash")
            for line in CASH_LINES:
                assert lines[line] == expected[row["currency"]][line], (row["currency"], line)


def rates_by_day(s: Statement) -> dict[tuple[str, str], Decimal]:
    return {(r["reportDate"], r["fromCurrency"]): D(r["rate"]) for r in s.rows["ConversionRate"]}


def test_conversion_rates_cover_every_business_day(
    statements: dict[str, list[Statement]],
) -> None:
    for s in every_statement(statements):
        base = s.one("AccountInformation")["currency"]
        days = {row["reportDate"] for row in s.nav_series[1:]}
        rates = rates_by_day(s)
        assert {d for d, _ in rates} == days
        assert {ccy for _, ccy in rates} == {"USD", "EUR"} - {base}
        for row in s.trades + s.rows["CashTransaction"]:
            rate = D(row["fxRateToBase"])
            key = (row["reportDate"], row["currency"])
            assert rate == (D(1) if row["currency"] == base else rates[key])


def test_nav_is_cash_plus_positions_at_the_close(statements: dict[str, list[Statement]]) -> None:
    for s in every_statement(statements):
        for row in s.nav_series:
            parts = [money(row, name) for name in ("cash", "stock", "options")]
            assert sum(parts) == money(row, "total")
            assert money(row, "totalLong") + money(row, "totalShort") == money(row, "total")
            assert money(row, "cashLong") + money(row, "cashShort") == money(row, "cash")
        last, base = s.nav_series[-1], s.one("AccountInformation")["currency"]
        rates = rates_by_day(s)
        cash = sum(
            money(r, "endingCash") * (D(1) if r["currency"] == base else
                                      rates[(last["reportDate"], r["currency"])])
            for r in s.rows["CashReportCurrency"] if r["levelOfDetail"] == "Currency"
        )
        marked = defaultdict(Decimal)
        for p in s.rows["OpenPosition"]:
            if p["levelOfDetail"] == "SUMMARY":
                marked[p["assetCategory"]] += money(p, "positionValue") * D(p["fxRateToBase"])
        assert abs(cash - money(last, "cash")) < D("1e-6")
        assert abs(marked["STK"] - money(last, "stock")) < D("1e-6")
        assert abs(marked["OPT"] - money(last, "options")) < D("1e-6")
        assert money(last, "total") > 0


def external_flows(s: Statement) -> dict[str, Decimal]:
    """F_t by reportDate: deposits and withdrawals, transfers in at positionAmountInBase."""
    flows: dict[str, Decimal] = defaultdict(Decimal)
    for c in s.rows["CashTransaction"]:
        if c["type"] == "Deposits/Withdrawals":
            flows[c["reportDate"]] += money(c, "amount") * D(c["fxRateToBase"])
    for moved in s.rows["Transfer"]:
        sign = 1 if moved["direction"] == "IN" else -1
        flows[moved["reportDate"]] += sign * money(moved, "positionAmountInBase")
    return flows


def test_change_in_nav_components_sum_to_ending_value(
    statements: dict[str, list[Statement]],
) -> None:
    for s in every_statement(statements):
        nav = s.one("ChangeInNAV")
        components = sum(money(nav, name) for name in NAV_COMPONENTS)
        assert money(nav, "startingValue") + components == money(nav, "endingValue")
        assert money(nav, "startingValue") == money(s.nav_series[0], "total")
        assert money(nav, "endingValue") == money(s.nav_series[-1], "total")
        assert money(nav, "realized") + money(nav, "changeInUnrealized") == money(
            nav, "mtm"
        ) + money(nav, "commissions")
        flows = money(nav, "depositsWithdrawals") + money(nav, "assetTransfers")
        assert abs(flows - sum(external_flows(s).values())) < D("1e-6")
        income = {"dividends": "Dividends", "withholdingTax": "Withholding Tax"}
        for field, kind in income.items():
            rows = [c for c in s.rows["CashTransaction"] if c["type"] == kind]
            expected = sum(money(c, "amount") * D(c["fxRateToBase"]) for c in rows)
            assert abs(money(nav, field) - expected) < D("1e-6")


def test_twr_is_the_linked_daily_return(statements: dict[str, list[Statement]]) -> None:
    for s in every_statement(statements):
        flows = external_flows(s)
        growth = D(1)
        series = s.nav_series
        for previous, current in pairwise(series):
            flow = flows.get(current["reportDate"], ZERO)
            start = money(previous, "total") + flow
            change = money(current, "total") - money(previous, "total") - flow
            growth *= 1 + (change / start if start else ZERO)
        twr = (growth - 1) * 100
        assert abs(twr - money(s.one("ChangeInNAV"), "twr")) <= D("1e-8")
        assert set(flows) <= {row["reportDate"] for row in series[1:]}


def test_interest_accruals_roll_forward(statements: dict[str, list[Statement]]) -> None:
    for s in every_statement(statements):
        rows = s.rows["InterestAccrualsCurrency"]
        assert [r["currency"] for r in rows] == ["BASE_SUMMARY", "EUR", "USD"]
        for r in rows:
            moved = sum(
                money(r, f)
                for f in ("startingAccrualBalance", "interestAccrued", "accrualReversal",
                          "fxTranslation")
            )
            assert moved == money(r, "endingAccrualBalance")
            if r["currency"] != "BASE_SUMMARY":
                assert money(r, "fxTranslation") == 0
                posted = sum(
                    money(c, "amount") for c in s.rows["CashTransaction"]
                    if c["type"].startswith("Broker Interest") and c["currency"] == r["currency"]
                )
                assert money(r, "accrualReversal") == -posted


# --- windows ----------------------------------------------------------------------------------


def test_windows_chain(
    chained_files: list[Path], statements: dict[str, list[Statement]], out: Path
) -> None:
    first, second = (load(path) for path in chained_files)
    assert [p.name for p in chained_files] == [
        "flex_sample_20240102_20240401.xml", "flex_sample_20240402_20240628.xml",
    ]
    for before, after in zip(first, second, strict=True):
        assert before.attrs["accountId"] == after.attrs["accountId"]
        assert after.nav_series[0] == before.nav_series[-1]
        assert money(after.one("ChangeInNAV"), "startingValue") == money(
            before.one("ChangeInNAV"), "endingValue"
        )
        ending = {r["currency"]: r["endingCash"] for r in before.rows["CashReportCurrency"]}
        for r in after.rows["CashReportCurrency"]:
            assert r["startingCash"] == ending[r["currency"]]
        position = defaultdict(Decimal)
        for p in before.rows["OpenPosition"]:
            if p["levelOfDetail"] == "SUMMARY":
                position[p["conid"]] += D(p["position"])
        for t in after.trades:
            position[t["conid"]] += D(t["quantity"])
        for row in after.rows["CorporateAction"] + after.rows["Transfer"]:
            position[row["conid"]] += D(row["quantity"])
        assert {c: q for c, q in position.items() if q} == {
            p["conid"]: D(p["position"])
            for p in after.rows["OpenPosition"]
            if p["levelOfDetail"] == "SUMMARY"
        }
    whole = load(write_report(CHAINED, out / "chained-whole.xml"))
    for single, parts in zip(whole, zip(first, second, strict=True), strict=True):
        ids = [t["transactionID"] for part in parts for t in part.trades]
        assert ids == [t["transactionID"] for t in single.trades]
        assert single.nav_series[-1] == parts[1].nav_series[-1]


# --- content ----------------------------------------------------------------------------------


def test_sample_has_every_kind_of_event(statements: dict[str, list[Statement]]) -> None:
    for s in statements["default"]:
        trades = s.trades
        cash_types = Counter(c["type"] for c in s.rows["CashTransaction"])
        assert {"Dividends", "Withholding Tax", "Broker Interest Received",
                "Broker Interest Paid", "Other Fees", "Deposits/Withdrawals"} <= set(cash_types)
        deposits = [money(c, "amount") for c in s.rows["CashTransaction"]
                    if c["type"] == "Deposits/Withdrawals"]
        assert any(a > 0 for a in deposits) and any(a < 0 for a in deposits)
        assert {t["currency"] for t in trades} == {"USD", "EUR"}
        assert {t["assetCategory"] for t in trades} == {"STK", "OPT"}
        indicators = Counter(t["openCloseIndicator"] for t in trades)
        assert indicators["O"] and indicators["C"] and indicators["C;O"]
        assert any(t["buySell"] == "SELL" and t["openCloseIndicator"] == "O"
                   and t["assetCategory"] == "STK" for t in trades)  # short sales
        short_lots = [lot for lot in s.rows["Lot"] if D(lot["quantity"]) < 0]
        assert short_lots and all(lot["buySell"] == "BUY" for lot in short_lots)  # covers
        pieces = Counter((lot["conid"], lot["openDateTime"]) for lot in s.rows["Lot"])
        assert max(pieces.values()) > 1  # a lot closed in parts: partial closes
        split_orders = Counter(t["tradeID"] for t in trades if t["notes"] == "P")
        assert split_orders and set(split_orders.values()) == {2}
        assert wash_sale_candidates(s)
        (split,) = s.rows["CorporateAction"]
        assert split["type"] == "FS" and "SPLIT 4 FOR 1" in split["description"]
        (moved,) = s.rows["Transfer"]
        assert (moved["type"], moved["direction"]) == ("ACATS", "IN")
        assert moved["currency"] == "EUR" and money(moved, "positionAmountInBase") > 0
        assert {r["currency"] for r in s.rows["CashReportCurrency"]} == {
            "BASE_SUMMARY", "USD", "EUR"}


def wash_sale_candidates(s: Statement) -> list[str]:
    """Stocks sold at a loss and bought again within 30 days (IRC 1091 candidates)."""
    loss_sales = [
        t for t in s.trades
        if t["buySell"] == "SELL" and t["assetCategory"] == "STK"
        and money(t, "fifoPnlRealized") < 0
    ]
    buys = defaultdict(list)
    for t in s.trades:
        if t["buySell"] == "BUY":
            buys[t["conid"]].append(day(t["tradeDate"]))
    return [
        t["symbol"] for t in loss_sales
        if any(0 < (b - day(t["tradeDate"])).days <= 30 for b in buys[t["conid"]])
    ]


def test_split_adds_shares_to_the_held_position(statements: dict[str, list[Statement]]) -> None:
    for s in statements["default"]:
        (split,) = s.rows["CorporateAction"]
        effective = day(split["reportDate"])
        held = sum(
            D(t["quantity"]) for t in s.trades
            if t["conid"] == split["conid"] and day(t["tradeDate"]) < effective
        )
        assert held > 0 and D(split["quantity"]) == 3 * held
        before = [D(t["tradePrice"]) for t in s.trades
                  if t["conid"] == split["conid"] and day(t["tradeDate"]) < effective]
        after = [D(t["tradePrice"]) for t in s.trades
                 if t["conid"] == split["conid"] and day(t["tradeDate"]) >= effective]
        assert after and max(after) < min(before) / 2  # prices restated by the split


def test_option_events_appear_once_in_each_section(
    statements: dict[str, list[Statement]],
) -> None:
    for s in statements["default"]:
        events = s.rows["OptionEAE"]
        kinds = Counter(e["transactionType"] for e in events)
        assert kinds["Expiration"] and kinds["Assignment"] and kinds["Exercise"]
        booked = {t["tradeID"]: t for t in s.trades if t["transactionType"] == "BookTrade"}
        assert len(booked) == len(events)
        by_trade = {e["tradeID"]: e for e in events}
        assert set(by_trade) == set(booked)
        for trade_id, event in by_trade.items():
            trade = booked[trade_id]
            assert event["conid"] == trade["conid"] and event["quantity"] == trade["quantity"]
            assert money(event, "realizedPnl") == money(trade, "fifoPnlRealized")
            assert event["date"] == trade["tradeDate"]
        for event in events:
            if event["transactionType"] in ("Assignment", "Exercise"):
                assert money(event, "realizedPnl") == 0
                delivery = next(
                    e for e in events
                    if e["transactionType"] in ("Buy", "Sell") and e["date"] == event["date"]
                    and e["conid"] == event["underlyingConid"]
                )
                stock = booked[delivery["tradeID"]]
                option = booked[event["tradeID"]]
                assert D(stock["tradePrice"]) == D(event["strike"])
                assert D(stock["quantity"]) == 100 * abs(D(event["quantity"]))
                # The stock lot's basis is the strike plus the option's rolled basis.
                assert money(stock, "cost") == -money(stock, "netCash") - money(option, "cost")
            elif event["transactionType"] == "Expiration":
                trade = booked[event["tradeID"]]
                assert trade["notes"] == "Ep" and money(trade, "netCash") == 0


def test_scale_one_account_sixty_days(tmp_path: Path, samples: dict[str, Path]) -> None:
    """Quick to write (not timed here: `make bench` measures the large file)."""
    path = write_report(SMALL, tmp_path / "elsewhere" / "small.xml")
    assert path.read_bytes() == samples["small"].read_bytes()
    (statement,) = load(path)
    business_days = len(statement.nav_series) - 1
    assert business_days == 42 and len(statement.trades) >= 4 * business_days
    assert statement.attrs["fromDate"] == "20240301" and statement.attrs["toDate"] == "20240429"
