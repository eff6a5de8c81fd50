"""Which Flex rows make each `core` table, and the natural key that dedupes them.

Keys follow DOMAIN.md section 1 ("Natural keys, checked for uniqueness on real exports"):
never `tradeID` alone, never symbol. Rows whose key attributes are missing (old exports, hand
edits) fall back to a key made of all their typed values, so overlapping statements still dedupe.
Columns come from ibflex's registry (`schema.py`); nothing here lists columns by hand except
the instrument attributes that `core.instruments` collects.
"""

from __future__ import annotations

from dataclasses import dataclass

from qm_pipeline.lib.flex.schema import RowSchema, row_schema


@dataclass(frozen=True)
class CoreTable:
    name: str
    schema_tag: str  # ibflex class whose fields are the columns
    row_tags: tuple[str, ...]
    key: tuple[str, ...]  # Flex attributes; all present -> natural key
    optional_key: tuple[str, ...] = ()  # joined into the key when present
    levels: tuple[str | None, ...] | None = None  # accepted levelOfDetail values (None: absent)
    description: str = ""

    @property
    def schema(self) -> RowSchema:
        found = row_schema(self.schema_tag)
        assert found is not None, self.schema_tag
        return found

    def accepts(self, tag: str) -> bool:
        return tag in self.row_tags


_DETAIL = ("DETAIL", None)

CORE_TABLES: tuple[CoreTable, ...] = (
    CoreTable("accounts", "AccountInformation", ("AccountInformation",), ("accountId",),
              description="One row per account: alias, base currency, type, dates."),
    CoreTable("trades", "Trade", ("Trade",), ("transactionID",), levels=("EXECUTION", None),
              description="Executions only (not Order, SymbolSummary, AssetSummary or lots)."),
    CoreTable("closed_lots", "Lot", ("Lot", "Trade"), ("transactionID", "openDateTime",
              "quantity"), levels=("CLOSED_LOT",),
              description="The opening lots each closing trade consumed, as IB matched them."),
    CoreTable("cash_transactions", "CashTransaction", ("CashTransaction",), ("transactionID",),
              levels=_DETAIL, description="Dividends, withholding, interest, fees, deposits."),
    # IB writes levelOfDetail="TRANSFER" on Transfer rows (the sample generator does too).
    CoreTable("transfers", "Transfer", ("Transfer",), ("transactionID",),
              levels=(*_DETAIL, "TRANSFER"), description="Position and cash transfers in and out."),
    CoreTable("corporate_actions", "CorporateAction", ("CorporateAction",), ("transactionID",),
              levels=_DETAIL, description="Splits, mergers, spin-offs, tenders..."),
    CoreTable("option_events", "OptionEAE", ("OptionEAE",),
              ("accountId", "conid", "date", "transactionType"), ("tradeID",),
              description="Option exercises, assignments and expirations (OptionEAE)."),
    CoreTable("open_positions", "OpenPosition", ("OpenPosition",),
              ("accountId", "reportDate", "conid"),
              ("levelOfDetail", "originatingTransactionID", "openDateTime"),
              description="Positions at each report date; SUMMARY and LOT levels."),
    CoreTable("cash_balances", "CashReportCurrency", ("CashReportCurrency",),
              ("accountId", "currency", "fromDate", "toDate"), ("levelOfDetail",),
              description="CashReport: cash by currency over each statement period."),
    CoreTable("nav_daily", "EquitySummaryByReportDateInBase",
              ("EquitySummaryByReportDateInBase",), ("accountId", "reportDate"),
              description="Net asset value by report date, in base currency."),
    CoreTable("change_in_nav", "ChangeInNAV", ("ChangeInNAV",),
              ("accountId", "fromDate", "toDate"),
              description="NAV change over each statement period, with IB's TWR (percent)."),
    CoreTable("interest_accruals", "InterestAccrualsCurrency", ("InterestAccrualsCurrency",),
              ("accountId", "currency", "fromDate", "toDate"),
              description="Interest accruals by currency over each statement period."),
    CoreTable("fx_rates", "ConversionRate", ("ConversionRate",),
              ("reportDate", "fromCurrency", "toCurrency"),
              description="IB's daily conversion rates."),
    CoreTable("securities_info", "SecurityInfo", ("SecurityInfo",), ("conid",),
              description="Reference data of the instruments in a statement."),
)

CORE_BY_NAME = {table.name: table for table in CORE_TABLES}

# Instrument attributes core.instruments collects from any row that names a conid.
INSTRUMENT_ATTRIBUTES: tuple[str, ...] = (
    "symbol", "description", "assetCategory", "subCategory", "currency", "multiplier",
    "strike", "expiry", "putCall", "underlyingConid", "underlyingSymbol",
    "underlyingSecurityID", "underlyingListingExchange", "securityID", "securityIDType",
    "cusip", "isin", "figi", "listingExchange", "issuer", "issuerCountryCode",
    "principalAdjustFactor",
)
# Sources in order of authority: reference data before positions before activity. Cash
# transactions and corporate actions are left out: their `description` describes the event.
INSTRUMENT_SOURCES: tuple[str, ...] = (
    "securities_info", "open_positions", "trades", "option_events", "transfers", "closed_lots",
)


def core_table_for(tag: str, level: str | None) -> CoreTable | None:
    for table in CORE_TABLES:
        if table.accepts(tag) and (table.levels is None or level in table.levels):
            return table
    return None
