"""The project's sample Flex Query reports: internally consistent, multi-account, reproducible.

`write_reports(SampleSpec(...), out_dir)` writes one file per window of at most a year (like
a Flex Web Service backfill), each with one FlexStatement per account; `write_report` writes
the whole range into one file. The same spec always gives byte-identical files.

What the numbers promise (tests and later features rely on it): cash per currency moves
exactly by trades' netCash and cash transactions; each closing Trade's fifoPnlRealized is
the sum of its Lot rows; open LOT rows are the FIFO lots left; NAV is cash plus positions at
the day's close; ChangeInNAV's components sum to endingValue and its twr is the linked daily
return of DOMAIN.md section 5; consecutive windows chain. Rounding rules: `money`.
"""

from qm_pipeline.lib.flex.sample.report import write_report, write_reports
from qm_pipeline.lib.flex.sample.spec import SampleSpec

__all__ = ["SampleSpec", "write_report", "write_reports"]
