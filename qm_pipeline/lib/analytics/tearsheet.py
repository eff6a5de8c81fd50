"""One account's (or ALL accounts') tearsheet as a single self-contained HTML file.

The file must open anywhere, offline and years later, so everything is inside it: CSS in a
style element, charts as inline SVG (`charts`), no script, font, image or stylesheet
fetched from anywhere. The inputs are the analytics tables already computed upstream; this
module only lays them out, so it needs no database and no Dagster. Every value that came
from outside (account ids, symbols, group names, the reconciliation text) is escaped by
the template's autoescape. The same input gives the same bytes, so a rerun does not look
like a change to anything that watches the report folder.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd
from markupsafe import Markup

from qm_pipeline.lib.analytics import charts

DIMENSIONS = ("asset_class", "sector", "currency", "underlying", "country")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
MISSING = "–"
BADGES = {"ok": "ok", "warnings": "warn", "halted": "halt"}  # anything else: grey

# (column, heading, format) of the performance table; optional columns show when present.
_PERFORMANCE = (
    ("twr", "TWR", "pct"), ("cagr", "CAGR", "pct"), ("volatility", "Vol", "pct"),
    ("sharpe", "Sharpe", "ratio"), ("sortino", "Sortino", "ratio"),
    ("max_drawdown", "Max DD", "pct"), ("calmar", "Calmar", "ratio"),
    ("best_day", "Best day", "pct"), ("worst_day", "Worst day", "pct"),
    ("hit_rate", "Hit rate", "pct"), ("mwr", "MWR", "pct"),
    ("beta", "Beta", "ratio"), ("alpha", "Alpha", "pct"),
    ("correlation", "Corr.", "ratio"), ("tracking_error", "Tracking err.", "pct"),
    ("information_ratio", "Info ratio", "ratio"),
)
_OPTIONAL = frozenset({"beta", "alpha", "correlation", "tracking_error", "information_ratio"})
_METHODS = {"historical": "Historical", "parametric": "Parametric",
            "monte_carlo": "Monte Carlo"}


@dataclass(frozen=True)
class TearsheetData:
    """Everything one tearsheet shows, computed upstream (column meanings: see the fields)."""

    account_id: str  # an IB account id, or "ALL" for all accounts together
    base_currency: str
    as_of: dt.date
    daily: pd.DataFrame  # by date: twr_index (1.0 at inception), drawdown (<= 0), daily_return
    benchmark: pd.Series | None  # growth index by date, 1.0 at the first portfolio date
    benchmark_name: str | None
    performance: pd.DataFrame  # one row per window: window, start, end, twr, cagr, ...
    risk: pd.DataFrame  # method, confidence, var, cvar (returns: negative is a loss)
    exposure: pd.DataFrame  # dimension, group, long, short (<= 0), gross, net (base currency)
    weights: pd.DataFrame  # symbol, weight (signed fraction of NAV), current positions
    concentration: dict  # top_<n>_share, herfindahl, breaches (list of str)
    reconciliation: dict  # run_id, finished_at, status, open_breaks, halting_breaks, text


def monthly_returns(daily_returns: pd.Series) -> pd.DataFrame:
    """Compounded return of each calendar month (columns 1..12) and year ("Year"), by year.

    A day without a return is left out, not counted as 0%: a month with no returns at all
    stays NaN so the table shows "no data" rather than a flat month.
    """
    columns: list[Any] = [*range(1, 13), "Year"]
    returns = daily_returns.dropna().astype("float64")
    if returns.empty:
        return pd.DataFrame(columns=columns, dtype="float64").rename_axis("year")
    dates = pd.DatetimeIndex(returns.index)
    growth = 1.0 + returns.set_axis(dates)
    months = growth.groupby([dates.year, dates.month]).prod().unstack() - 1.0
    table = months.reindex(columns=range(1, 13))
    table["Year"] = growth.groupby(dates.year).prod() - 1.0
    return table.rename_axis(index="year", columns=None).astype("float64")


def render(data: TearsheetData) -> str:
    """The tearsheet as one HTML document (see the module docstring)."""
    return _template().render(**_context(data))


def write_tearsheet(data: TearsheetData, folder: Path) -> Path:
    """Write `tearsheet_<account>_<YYYYMMDD>.html` in `folder` by rename, so a reader never
    sees half a file; characters unsafe in a file name become "_"."""
    folder.mkdir(parents=True, exist_ok=True)
    account = re.sub(r"[^A-Za-z0-9_.-]", "_", data.account_id)
    path = folder / f"tearsheet_{account}_{data.as_of:%Y%m%d}.html"
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as out:
            out.write(render(data))
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o644)  # mkstemp's 0600 would hide the report from its readers
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def _template() -> jinja2.Template:
    source = (resources.files(__package__) / "templates" / "tearsheet.html.j2").read_text(
        encoding="utf-8")
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined,
                                     trim_blocks=True, lstrip_blocks=True)
    return environment.from_string(source)


def _context(data: TearsheetData) -> dict[str, Any]:
    return {
        "account": "All accounts" if data.account_id == "ALL" else data.account_id,
        "currency": data.base_currency,
        "as_of": data.as_of.isoformat(),
        "recon": _reconciliation(data.reconciliation),
        "growth": _growth(data),
        "has_benchmark": data.benchmark is not None and not data.benchmark.dropna().empty,
        "drawdown": _drawdown(data.daily),
        "monthly": _monthly(data.daily),
        "performance": _performance(data.performance),
        "risk": _risk(data.risk),
        "exposure": _exposure(data.exposure, data.base_currency),
        "weights": _weights(data.weights),
        "concentration": _concentration(data.concentration),
    }


def _reconciliation(recon: dict) -> dict[str, Any]:
    status = str(recon.get("status") or "never run")
    finished = recon.get("finished_at")
    return {
        "status": status,
        "badge": BADGES.get(status, "none"),
        "run_id": "" if recon.get("run_id") is None else str(recon["run_id"]),
        "finished_at": (finished.isoformat(sep=" ", timespec="seconds")
                        if isinstance(finished, dt.datetime) else str(finished or "")),
        "ran": status != "never run",
        "open_breaks": recon.get("open_breaks"),
        "halting_breaks": recon.get("halting_breaks"),
        "text": str(recon.get("text") or ""),
    }


def _history(daily: pd.DataFrame, column: str) -> pd.Series:
    """A daily column with at least two dates (one date draws no line), else empty."""
    if column not in daily.columns:
        return pd.Series(dtype="float64")
    series = daily[column].dropna().astype("float64")
    series.index = pd.DatetimeIndex(series.index)
    return series if len(series) >= 2 else series.iloc[:0]


def _growth(data: TearsheetData) -> Markup | None:
    index = _history(data.daily, "twr_index")
    if index.empty:
        return None
    benchmark = data.benchmark
    if benchmark is not None:
        benchmark = benchmark.dropna().astype("float64")
        benchmark.index = pd.DatetimeIndex(benchmark.index)
    name = "Portfolio (all accounts)" if data.account_id == "ALL" else data.account_id
    return Markup(charts.growth_chart(index, benchmark, name, data.benchmark_name))


def _drawdown(daily: pd.DataFrame) -> Markup | None:
    drawdown = _history(daily, "drawdown")
    return None if drawdown.empty else Markup(charts.drawdown_chart(drawdown))


def _monthly(daily: pd.DataFrame) -> dict[str, Any]:
    returns = daily.get("daily_return", pd.Series(dtype="float64"))
    table = monthly_returns(returns)
    rows = [{"year": int(year), "cells": [_cell(row[c]) for c in table.columns]}
            for year, row in table.iterrows()]
    return {"headings": [*MONTHS, "Annual"], "rows": rows}


def _cell(value: float) -> dict[str, str]:
    """A monthly return with a green or red background that deepens with its size."""
    if _missing(value):
        return {"text": MISSING, "style": ""}
    alpha = 0.12 + 0.6 * min(abs(value) / 0.10, 1.0)
    colour = "46,125,50" if value >= 0 else "198,40,40"
    return {"text": _pct(value), "style": f"background: rgba({colour},{alpha:.2f})"}


def _performance(table: pd.DataFrame) -> dict[str, Any]:
    columns = [(c, h, f) for c, h, f in _PERFORMANCE
               if c in table.columns or c not in _OPTIONAL]
    rows = [[str(row.get("window", "")), _date(row.get("start")), _date(row.get("end")),
             *(_format(row.get(c), f) for c, _, f in columns)]
            for _, row in table.iterrows()]
    return {"headings": ["Window", "From", "To", *(h for _, h, _ in columns)], "rows": rows}


def _risk(table: pd.DataFrame) -> list[list[str]]:
    return [[_METHODS.get(str(row["method"]), str(row["method"])),
             _confidence(row["confidence"]), _pct(row["var"]), _pct(row["cvar"])]
            for _, row in table.iterrows()]


def _exposure(table: pd.DataFrame, currency: str) -> list[dict[str, Any]]:
    """One block per dimension present, in a fixed order (known ones first)."""
    found = table["dimension"].astype(str).unique().tolist() if len(table) else []
    order = [d for d in DIMENSIONS if d in found] + sorted(set(found) - set(DIMENSIONS))
    blocks = []
    for dimension in order:
        groups = table[table["dimension"].astype(str) == dimension]
        groups = groups.sort_values(["gross", "group"], ascending=[False, True])
        blocks.append({
            "title": dimension.replace("_", " ").capitalize(),
            "chart": Markup(charts.exposure_chart(groups, dimension, currency)),
            "more": max(len(groups) - charts.MAX_BARS, 0),
            "rows": [[str(r["group"]), *(_money(r[c]) for c in ("long", "short", "gross",
                                                                 "net"))]
                     for _, r in groups.iterrows()],
        })
    return blocks


def _weights(table: pd.DataFrame) -> dict[str, Any]:
    held = table[table["weight"].notna() & (table["weight"] != 0)] if len(table) else table
    if not len(held):
        return {"chart": None, "count": 0, "more": 0}
    return {"chart": Markup(charts.weights_chart(held)), "count": len(held),
            "more": max(len(held) - charts.MAX_BARS, 0)}


def _concentration(values: dict) -> dict[str, Any]:
    """Known measures formatted, anything else shown as given (nothing silently dropped)."""
    rows = []
    for key, value in values.items():
        top = re.fullmatch(r"top_(\d+)_share", key)
        if key == "breaches":
            continue
        if top:
            rows.append((f"Top {top.group(1)} share of gross", _pct(value)))
        elif key == "herfindahl":
            rows.append(("Herfindahl index", _format(value, "ratio", 3)))
            if not _missing(value) and value > 0:
                rows.append(("Effective number of positions", f"{1.0 / value:.1f}"))
        else:
            rows.append((key.replace("_", " ").capitalize(), str(value)))
    return {"rows": rows, "breaches": [str(b) for b in values.get("breaches") or []]}


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def _format(value: Any, kind: str, decimals: int = 2) -> str:
    if _missing(value):
        return MISSING
    return _pct(value) if kind == "pct" else f"{float(value):.{decimals}f}"


def _pct(value: Any, decimals: int = 2) -> str:
    return MISSING if _missing(value) else f"{float(value) * 100:.{decimals}f}%"


def _confidence(value: Any) -> str:
    return MISSING if _missing(value) else f"{float(value) * 100:g}%"


def _money(value: Any) -> str:
    return MISSING if _missing(value) else f"{float(value):,.0f}"


def _date(value: Any) -> str:
    if _missing(value) or value is pd.NaT:
        return MISSING
    return value.strftime("%Y-%m-%d") if hasattr(value, "strftime") else str(value)
