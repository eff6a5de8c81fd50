"""Statement-period totals: `ChangeInNAV`, `CashReport`, `InterestAccruals` and the period TWR.

Everything is accumulated from the same daily records the writer prints, so the totals
reconcile with the rows by construction:

- CashReport, per currency: startingCash + the lines (commissions, deposits, withdrawals,
  dividends, withholdingTax, brokerInterest, otherFees, netTradesSales, netTradesPurchases)
  = endingCash, exactly. The BASE_SUMMARY row converts each movement at its day's rate;
  `fxTranslationGainLoss` is what today's rates do to balances held in other currencies.
- ChangeInNAV (base): startingValue + mtm + depositsWithdrawals + assetTransfers + dividends
  + withholdingTax + interest + otherFees + commissions + fxTranslation + other = endingValue,
  exactly. `fxTranslation` revalues yesterday's foreign cash and positions at today's rate;
  `mtm` is the rest of the day's NAV change (trading P&L before commissions). `realized`
  (FIFO, net of commissions, in base) and `changeInUnrealized` are not added in: they split
  the same trading result FIFO-wise, realized + changeInUnrealized = mtm + commissions.
- twr: DOMAIN.md section 5, flows at the start of the day,
  r_t = (NAV_t - NAV_t-1 - F_t) / (NAV_t-1 + F_t), linked by product, as a percentage;
  F_t = deposits, withdrawals and transfers in at `positionAmountInBase`, by reportDate.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from qm_pipeline.lib.flex.sample.market import CURRENCIES
from qm_pipeline.lib.flex.sample.money import HUNDRED, ONE, TWR_QUANTUM, ZERO, to_base
from qm_pipeline.lib.flex.sample.records import DayResult, Valuation

CASH_LINES = (
    "commissions",
    "deposits",
    "withdrawals",
    "dividends",
    "withholdingTax",
    "brokerInterest",
    "otherFees",
    "netTradesSales",
    "netTradesPurchases",
)
NAV_COMPONENTS = (
    "mtm",
    "depositsWithdrawals",
    "assetTransfers",
    "dividends",
    "withholdingTax",
    "interest",
    "otherFees",
    "commissions",
    "fxTranslation",
    "other",
)
_NAV_FIELD_OF_LINE = {
    "deposits": "depositsWithdrawals",
    "withdrawals": "depositsWithdrawals",
    "dividends": "dividends",
    "withholdingTax": "withholdingTax",
    "brokerInterest": "interest",
    "otherFees": "otherFees",
    "commissions": "commissions",
}
_FLOW_FIELDS = ("depositsWithdrawals", "assetTransfers")

Fields = dict[str, Decimal]


class PeriodSummary:
    def __init__(self, opening: Valuation, accrued: dict[str, Decimal]) -> None:
        self._opening = self._last = opening
        self._cash_local: dict[str, Fields] = {c: defaultdict(Decimal) for c in CURRENCIES}
        self._cash_base: Fields = defaultdict(Decimal)
        self._nav: Fields = dict.fromkeys(NAV_COMPONENTS, ZERO)
        self._realized = ZERO
        self._growth = ONE
        self._accrual_start = dict(accrued)
        self._accrued: Fields = defaultdict(Decimal)
        self._reversed: Fields = defaultdict(Decimal)
        self._accrued_base = ZERO
        self._reversed_base = ZERO

    @property
    def last(self) -> Valuation:
        return self._last

    def add(self, day: DayResult) -> None:
        assert day.valuation is not None
        previous, now, rates = self._last, day.valuation, day.rates
        parts: Fields = dict.fromkeys(NAV_COMPONENTS, ZERO)
        for movement in day.movements:
            in_base = to_base(movement.amount, rates[movement.currency])
            self._cash_local[movement.currency][movement.line] += movement.amount
            self._cash_base[movement.line] += in_base
            if movement.line in _NAV_FIELD_OF_LINE:
                parts[_NAV_FIELD_OF_LINE[movement.line]] += in_base
        parts["assetTransfers"] = sum((t.position_amount_base for t in day.transfers), ZERO)
        parts["fxTranslation"] = sum(
            (
                to_base(
                    previous.cash_by_currency.get(ccy, ZERO)
                    + previous.positions_by_currency.get(ccy, ZERO),
                    rates[ccy] - previous.rates[ccy],
                )
                for ccy in CURRENCIES
            ),
            ZERO,
        )
        change = now.total - previous.total
        parts["mtm"] = change - sum(parts.values(), ZERO)
        for name, value in parts.items():
            self._nav[name] += value
        self._realized += sum((to_base(t.realized, t.fx_rate) for t in day.trades), ZERO)
        flows = sum((parts[name] for name in _FLOW_FIELDS), ZERO)
        invested = previous.total + flows
        self._growth *= ONE + ((change - flows) / invested if invested else ZERO)
        for currency, amount in day.interest_accrued.items():
            self._accrued[currency] += amount
            self._accrued_base += to_base(amount, rates[currency])
        for currency, amount in day.interest_reversed.items():
            self._reversed[currency] += amount
            self._reversed_base += to_base(amount, rates[currency])
        self._last = now

    def twr(self) -> Decimal:
        """The period's time-weighted return, in percent."""
        return ((self._growth - ONE) * HUNDRED).quantize(TWR_QUANTUM)

    def change_in_nav(self) -> Fields:
        nav = self._nav
        return {
            "startingValue": self._opening.total,
            "mtm": nav["mtm"],
            "realized": self._realized,
            "changeInUnrealized": nav["mtm"] + nav["commissions"] - self._realized,
            **{name: nav[name] for name in NAV_COMPONENTS if name != "mtm"},
            "endingValue": self._last.total,
            "twr": self.twr(),
        }

    def cash_report(self, unsettled: dict[str, Decimal]) -> list[tuple[str, str, Fields]]:
        """(currency, levelOfDetail, fields): the BASE_SUMMARY row, then one per currency."""
        opening, last = self._opening, self._last
        settled_base = sum(
            (
                to_base(last.cash_by_currency.get(c, ZERO) - unsettled.get(c, ZERO), last.rates[c])
                for c in CURRENCIES
            ),
            ZERO,
        )
        rows = [("BASE_SUMMARY", "BaseCurrency",
                 self._cash_fields(opening.cash, self._cash_base, last.cash, settled_base))]
        for currency in CURRENCIES:
            ending = last.cash_by_currency.get(currency, ZERO)
            rows.append((currency, "Currency", self._cash_fields(
                opening.cash_by_currency.get(currency, ZERO), self._cash_local[currency],
                ending, ending - unsettled.get(currency, ZERO),
            )))
        return rows

    @staticmethod
    def _cash_fields(starting: Decimal, lines: Fields, ending: Decimal, settled: Decimal) -> Fields:
        fields = {"startingCash": starting, **{line: lines[line] for line in CASH_LINES}}
        fields["depositWithdrawals"] = fields["deposits"] + fields["withdrawals"]
        fields["fxTranslationGainLoss"] = ending - starting - sum(
            (lines[line] for line in CASH_LINES), ZERO
        )
        fields["endingCash"] = ending
        fields["endingSettledCash"] = settled
        return fields

    def interest_accruals(self, accrued: dict[str, Decimal]) -> list[tuple[str, Fields]]:
        """(currency, fields): BASE_SUMMARY, then one row per currency."""
        opening, last = self._opening, self._last
        start_base = sum(
            (to_base(v, opening.rates[c]) for c, v in self._accrual_start.items()), ZERO
        )
        end_base = sum((to_base(v, last.rates[c]) for c, v in accrued.items()), ZERO)
        rows = [("BASE_SUMMARY", self._accrual_fields(
            start_base, self._accrued_base, self._reversed_base, end_base))]
        for currency in CURRENCIES:
            rows.append((currency, self._accrual_fields(
                self._accrual_start.get(currency, ZERO), self._accrued[currency],
                self._reversed[currency], accrued.get(currency, ZERO),
            )))
        return rows

    @staticmethod
    def _accrual_fields(
        start: Decimal, accrued: Decimal, reversal: Decimal, end: Decimal
    ) -> Fields:
        return {
            "startingAccrualBalance": start,
            "interestAccrued": accrued,
            "accrualReversal": reversal,
            "fxTranslation": end - start - accrued - reversal,
            "endingAccrualBalance": end,
        }
