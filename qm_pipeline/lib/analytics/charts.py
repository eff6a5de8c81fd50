"""The tearsheet's charts as inline SVG text, drawn with matplotlib's SVG backend.

Figures are built directly (`matplotlib.figure.Figure`), never through pyplot, so no global
figure state or GUI backend is involved and any thread or headless worker can draw them.
Each chart is saved under fixed settings (`_SETTINGS`): text stays text (small files,
crisp in the browser), the ids matplotlib derives from `svg.hashsalt` are fixed, and the
date metadata is dropped, so the same data gives the same bytes on every run.

Several charts share one HTML document, whose ids are global: every id and reference in a
chart is prefixed with the chart's name so one chart's clip paths cannot capture another's.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable

import matplotlib
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, PercentFormatter

PORTFOLIO, BENCHMARK = "#1f4e79", "#8c8c8c"
LOSS, LONG, SHORT = "#c0392b", "#2e7d32", "#c62828"
MAX_BARS = 15  # more bars than this would be unreadable at report width
WIDTH, NARROW = 10.0, 6.4  # inches, full width and beside a table; the page scales them

_SETTINGS = {
    "svg.fonttype": "none",
    "svg.hashsalt": "qm-tearsheet",
    "text.parse_math": False,  # a "$" in a symbol or group name is text, not mathtext
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.axisbelow": True,  # grid lines behind the bars, not across them
    "grid.color": "#e6e6e6",
    "grid.linewidth": 0.6,
    "legend.frameon": False,
}
_DROPPED = re.compile(r"<\?xml.*?\?>|<!DOCTYPE.*?>|<metadata>.*?</metadata>", re.DOTALL)
_SIZE = re.compile(r'\s(?:width|height)="[^"]*"')


def growth_chart(twr_index: pd.Series, benchmark: pd.Series | None, portfolio_name: str,
                 benchmark_name: str | None) -> str:
    """Growth of 1 under the TWR index, with the benchmark on the same base when given."""
    def draw(ax: Axes) -> None:
        ax.plot(twr_index.index, twr_index.to_numpy(), color=PORTFOLIO, linewidth=1.4,
                label=portfolio_name)
        if benchmark is not None and not benchmark.dropna().empty:
            bench = benchmark.dropna()
            ax.plot(bench.index, bench.to_numpy(), color=BENCHMARK, linewidth=1.1,
                    label=benchmark_name or "Benchmark")
        ax.axhline(1.0, color="#444444", linewidth=0.6)
        ax.set_ylabel("Growth of 1 (TWR)")
        ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncols=2)  # above: never on a line
        _date_axis(ax)

    return _svg("growth", (WIDTH, 3.4), draw)


def drawdown_chart(drawdown: pd.Series) -> str:
    """Depth below the running peak of the TWR index, as a filled area under zero."""
    def draw(ax: Axes) -> None:
        ax.fill_between(drawdown.index, drawdown.to_numpy(), 0.0, color=LOSS, alpha=0.3,
                        linewidth=0)
        ax.plot(drawdown.index, drawdown.to_numpy(), color=LOSS, linewidth=0.9)
        ax.set_ylim(min(float(drawdown.min()) * 1.05, -0.01), 0.0)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))  # decimals follow the depth
        ax.set_ylabel("Drawdown")
        _date_axis(ax)

    return _svg("drawdown", (WIDTH, 2.2), draw)


def exposure_chart(groups: pd.DataFrame, dimension: str, currency: str) -> str:
    """Long and short bars per group (net as a marker), largest gross first, so a hedge
    that nets to little still shows how much is on each side."""
    shown = groups.sort_values(["gross", "group"], ascending=[False, True]).head(MAX_BARS)
    labels = shown["group"].astype(str).tolist()

    def draw(ax: Axes) -> None:
        rows = range(len(shown))
        long = ax.barh(rows, shown["long"].to_numpy(), color=LONG, height=0.7, label="Long")
        short = ax.barh(rows, shown["short"].to_numpy(), color=SHORT, height=0.7,
                        label="Short")
        net = ax.scatter(shown["net"].to_numpy(), rows, color="black", marker="D", s=14,
                         zorder=3, label="Net")
        ax.set_yticks(list(rows), labels)
        ax.invert_yaxis()
        ax.axvline(0.0, color="#444444", linewidth=0.6)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: _money(v)))
        ax.set_xlabel(f"{currency}")
        ax.grid(axis="y", visible=False)
        ax.legend(handles=[long, short, net], loc="lower left", bbox_to_anchor=(0.0, 1.0),
                  ncols=3)

    return _svg(f"exposure-{dimension}", (NARROW, 1.1 + 0.3 * len(shown)), draw)


def weights_chart(weights: pd.DataFrame) -> str:
    """The largest positions by |weight| of NAV, signed, so shorts read as shorts."""
    shown = (weights.assign(size=weights["weight"].abs())
             .sort_values(["size", "symbol"], ascending=[False, True]).head(MAX_BARS))

    def draw(ax: Axes) -> None:
        rows = range(len(shown))
        values = shown["weight"].to_numpy()
        bars = ax.barh(rows, values, height=0.7,
                       color=[LONG if v >= 0 else SHORT for v in values])
        ax.bar_label(bars, labels=[f"{v:.1%}" for v in values], padding=3, fontsize=7)
        ax.set_yticks(list(rows), shown["symbol"].astype(str).tolist())
        ax.invert_yaxis()
        ax.axvline(0.0, color="#444444", linewidth=0.6)
        ax.margins(x=0.12)
        ax.xaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_xlabel("Weight (% of NAV)")
        ax.grid(axis="y", visible=False)

    return _svg("weights", (NARROW, 0.8 + 0.3 * len(shown)), draw)


def _date_axis(ax: Axes) -> None:
    locator = AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    ax.margins(x=0.01)


def _money(value: float) -> str:
    """Axis ticks in thousands or millions: full amounts crowd a bar chart's axis."""
    size = abs(value)
    if size >= 1e6:
        return f"{value / 1e6:,.1f}M"
    if size >= 1e3:
        return f"{value / 1e3:,.0f}k"
    return f"{value:,.0f}"


def _svg(name: str, size: tuple[float, float], draw: Callable[[Axes], None]) -> str:
    """Draw on a fresh figure under the fixed settings; the SVG element, ready to inline."""
    with matplotlib.rc_context(_SETTINGS):
        figure = Figure(figsize=size, layout="constrained")
        draw(figure.add_subplot())
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    return _inline(buffer.getvalue(), name)


def _inline(svg: str, name: str) -> str:
    """Drop the XML prolog, DTD and metadata (not valid or needed inside HTML), let the
    page size the chart from its viewBox, and give its ids a prefix unique in the page."""
    name = re.sub(r"[^A-Za-z0-9_-]", "_", name)
    svg = _DROPPED.sub("", svg).strip()
    head, rest = svg.split(">", 1)
    svg = _SIZE.sub("", head) + f' class="chart" role="img" aria-label="{name} chart">' + rest
    svg = re.sub(r'\bid="([^"]+)"', rf'id="{name}-\1"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", rf"url(#{name}-\1)", svg)
    return re.sub(r'href="#([^"]+)"', rf'href="#{name}-\1"', svg)
