"""Writing sample Flex files: windows outside, accounts inside, days innermost.

Each account's simulator lives across windows, so window N+1 starts from window N's end
state (lots, cash, accruals, NAV), like consecutive Flex Web Service requests of a backfill.
Within a file the statements are sequential: an account is simulated over the window while
its statement streams out, then the next account.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TextIO

from qm_pipeline.lib.flex.sample import dates
from qm_pipeline.lib.flex.sample.market import Market
from qm_pipeline.lib.flex.sample.money import decimal_context
from qm_pipeline.lib.flex.sample.simulator import AccountSimulator
from qm_pipeline.lib.flex.sample.spec import SampleSpec, profiles
from qm_pipeline.lib.flex.sample.summary import PeriodSummary
from qm_pipeline.lib.flex.sample.writer import open_statement
from qm_pipeline.lib.flex.sample.xmlrows import stamp

QUERY_NAME = "qm-pipeline sample"
# Statements are generated the morning after their last day: fixed, so output is reproducible.
_GENERATED_AT = time(6, 0)


def write_reports(spec: SampleSpec, out_dir: Path, *, window_days: int = 365) -> list[Path]:
    """One file per window of at most `window_days` calendar days (like a Flex Web Service
    backfill), each holding one FlexStatement per account."""
    out_dir = Path(out_dir)
    targets = [
        (start, end, out_dir / f"flex_sample_{stamp(start)}_{stamp(end)}.xml")
        for start, end in dates.windows(spec.start, spec.end, window_days)
    ]
    return _write(spec, targets)


def write_report(spec: SampleSpec, path: Path) -> Path:
    """One file covering the whole spec (benchmarks)."""
    return _write(spec, [(spec.start, spec.end, Path(path))])[0]


def _write(spec: SampleSpec, targets: list[tuple[date, date, Path]]) -> list[Path]:
    with decimal_context():
        market = Market(spec.seed, spec.start, spec.end, spec.base_currency)
        simulators = [AccountSimulator(spec, market, profile) for profile in profiles(spec)]
        for start, end, path in targets:
            path.parent.mkdir(parents=True, exist_ok=True)
            generated = datetime.combine(end + timedelta(days=1), _GENERATED_AT)
            with path.open("w", encoding="utf-8", newline="\n") as out:
                out.write(f'<FlexQueryResponse queryName="{QUERY_NAME}" type="AF">\n')
                out.write(f'<FlexStatements count="{len(simulators)}">\n')
                for simulator in simulators:
                    _statement(out, simulator, start, end, generated)
                out.write("</FlexStatements>\n</FlexQueryResponse>\n")
    return [path for _, _, path in targets]


def _statement(
    out: TextIO, simulator: AccountSimulator, start: date, end: date, generated: datetime
) -> None:
    summary = PeriodSummary(simulator.valuation, simulator.accrued_interest())
    with open_statement(out, simulator.profile, start, end, generated) as writer:
        writer.opening(simulator.valuation, simulator.instruments())
        for day in dates.business_days(start, end):
            result = simulator.run_day(day)
            writer.add_day(result)
            summary.add(result)
        writer.finish(
            summary, simulator.open_positions(), simulator.unsettled(),
            simulator.accrued_interest(),
        )
