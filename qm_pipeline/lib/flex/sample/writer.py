"""Streams one `FlexStatement` to an open file.

IB prints a statement's sections in a fixed order (AccountInformation, EquitySummaryInBase,
ChangeInNAV, CashReport, OpenPositions, Trades, ...), but the period totals printed first
are known only after the last day. So rows are streamed day by day into one temporary
spool file per row-heavy section, and `finish` writes the statement in IB's order, copying
the spools in. Memory holds one day's records and the period totals, never the rows.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import date, datetime
from decimal import Decimal
from typing import IO, TextIO

from qm_pipeline.lib.flex.sample import xmlrows
from qm_pipeline.lib.flex.sample.instruments import Instrument
from qm_pipeline.lib.flex.sample.market import CURRENCIES
from qm_pipeline.lib.flex.sample.records import DayResult, PositionLine, Valuation
from qm_pipeline.lib.flex.sample.spec import AccountProfile
from qm_pipeline.lib.flex.sample.summary import PeriodSummary

_SPOOLED = (
    "EquitySummaryInBase",
    "Trades",
    "OptionEAE",
    "CorporateActions",
    "CashTransactions",
    "Transfers",
    "ConversionRates",
)
_COPY_CHUNK = 1 << 20


class StatementWriter:
    def __init__(
        self,
        out: TextIO,
        profile: AccountProfile,
        start: date,
        end: date,
        generated: datetime,
        spools: dict[str, IO[str]],
    ) -> None:
        self._out = out
        self._profile = profile
        self._start, self._end = start, end
        self._generated = generated
        self._account = xmlrows.account(profile)
        self._securities: dict[str, Instrument] = {}
        self._spools = spools

    def _note(self, instruments: Iterable[Instrument]) -> None:
        for instrument in instruments:
            self._securities.setdefault(instrument.conid, instrument)

    def opening(self, valuation: Valuation, held: Iterable[Instrument]) -> None:
        """The previous business day's NAV row: where the period starts."""
        self._spools["EquitySummaryInBase"].write(xmlrows.equity_summary(self._profile, valuation))
        self._note(held)

    def add_day(self, day: DayResult) -> None:
        assert day.valuation is not None
        profile, spools = self._profile, self._spools
        trades = spools["Trades"]
        for record in day.trades:
            trades.write(xmlrows.trade(self._account, record))
            for closed in record.lots:
                trades.write(xmlrows.lot(self._account, record, closed))
        for event in day.option_events:
            spools["OptionEAE"].write(xmlrows.option_event(profile, event))
        for action in day.corporate_actions:
            spools["CorporateActions"].write(xmlrows.corporate_action(profile, action))
        for cash in day.cash:
            spools["CashTransactions"].write(xmlrows.cash_transaction(profile, cash))
        for moved in day.transfers:
            spools["Transfers"].write(xmlrows.transfer(profile, moved))
        spools["EquitySummaryInBase"].write(xmlrows.equity_summary(profile, day.valuation))
        for currency in CURRENCIES:
            if currency != profile.base_currency:
                spools["ConversionRates"].write(xmlrows.conversion_rate(
                    day.day, currency, profile.base_currency, day.rates[currency]))
        self._note(r.instrument for r in day.trades)
        self._note(r.instrument for r in day.option_events)
        self._note(r.instrument for r in day.corporate_actions)
        self._note(r.instrument for r in day.cash if r.instrument)
        self._note(r.instrument for r in day.transfers)

    def finish(
        self,
        summary: PeriodSummary,
        positions: list[PositionLine],
        unsettled: dict[str, Decimal],
        accrued: dict[str, Decimal],
    ) -> None:
        """Write the statement in IB's section order."""
        profile, out, start, end = self._profile, self._out, self._start, self._end
        self._note(line.instrument for line in positions)
        out.write(xmlrows.statement_open(profile, start, end, self._generated))
        out.write(xmlrows.account_information(profile))
        self._copy("EquitySummaryInBase")
        out.write(xmlrows.change_in_nav(profile, start, end, summary.change_in_nav()))
        self._section("CashReport", (
            xmlrows.cash_report(profile, start, end, currency, level, fields)
            for currency, level, fields in summary.cash_report(unsettled)
        ))
        self._section("OpenPositions", (xmlrows.open_position(profile, p) for p in positions))
        for name in ("Trades", "OptionEAE", "CorporateActions", "CashTransactions"):
            self._copy(name)
        self._section("InterestAccruals", (
            xmlrows.interest_accrual(profile, start, end, currency, fields)
            for currency, fields in summary.interest_accruals(accrued)
        ))
        self._copy("Transfers")
        securities = sorted(self._securities.values(), key=lambda i: (i.category, i.symbol))
        self._section("SecuritiesInfo", (xmlrows.security_info(i) for i in securities))
        self._copy("ConversionRates")
        out.write("</FlexStatement>\n")

    def _section(self, name: str, rows: Iterable[str]) -> None:
        self._out.write(f"<{name}>\n")
        self._out.writelines(rows)
        self._out.write(f"</{name}>\n")

    def _copy(self, name: str) -> None:
        spool = self._spools[name]
        spool.seek(0)
        self._out.write(f"<{name}>\n")
        shutil.copyfileobj(spool, self._out, _COPY_CHUNK)
        self._out.write(f"</{name}>\n")


@contextmanager
def open_statement(
    out: TextIO, profile: AccountProfile, start: date, end: date, generated: datetime
) -> Iterator[StatementWriter]:
    """A `StatementWriter` whose spool files are removed when the block ends."""
    with ExitStack() as stack:
        spools = {
            name: stack.enter_context(tempfile.TemporaryFile("w+", encoding="utf-8", newline="\n"))
            for name in _SPOOLED
        }
        yield StatementWriter(out, profile, start, end, generated, spools)
