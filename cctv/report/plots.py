"""The report's plots, drawn by matplotlib (Agg, no pyplot state) and returned as inline SVG text."""
import io
import re
from datetime import timedelta

import matplotlib

matplotlib.use("Agg")  # noqa: E402 - before anything imports pyplot; the report never needs a screen
import matplotlib.dates as mdates  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter  # noqa: E402

GREEN, RED, GREY, INK = "#2e7d32", "#c62828", "#9e9e9e", "#263238"
MARGINS = dict(left=0.08, right=0.985, top=0.95)  # the same in every plot: their time axes line up
MAX_POINTS = 1500  # a week of timeline lines is averaged down to this many points per plot
STYLE = {"svg.fonttype": "none", "font.family": "sans-serif", "font.size": 9, "axes.edgecolor": "#b0bec5",
         "axes.labelcolor": INK, "xtick.color": INK, "ytick.color": INK, "axes.spines.top": False,
         "axes.spines.right": False, "svg.hashsalt": "cctv-report"}


def ratio_plot(series, alerts, threshold, wall_axis, xlim=None):
    """Protected share of the faces in view over time.

    series: [(x, faces, protected)] per timeline line (x: seconds of video, or datetimes with `wall_axis`);
    alerts: [(x, ratio, number)]; threshold: the alert line."""
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(9.2, 3.0), dpi=100)
        fig.subplots_adjust(**{**MARGINS, "top": 0.9}, bottom=0.2)
        ax = fig.add_subplot()
        xs, ratios = _ratio_points(series)
        if xs and xlim and xlim[1] > xs[-1]:  # the last interval lasts until the end of the span
            xs, ratios = xs + [xlim[1]], ratios + ratios[-1:]
        ax.fill_between(xs, ratios, 0, step="post", color=GREEN, alpha=0.12, linewidth=0)
        ax.plot(xs, ratios, drawstyle="steps-post", color=GREEN, linewidth=1.8,
                label="protected share of faces in view")
        ax.axhline(threshold, color=RED, linestyle=(0, (4, 3)), linewidth=1.1,
                   label=f"alert below {threshold:.0%}")
        for x, ratio, number in alerts:
            ax.axvline(x, color=RED, alpha=0.25, linewidth=1)
            ax.plot([x], [ratio], marker="v", color=RED, markersize=8, linestyle="none", clip_on=False)
            # labels of alerts close together step up, so that they don't print over each other
            ax.annotate(f"#{number}", (x, ratio), textcoords="offset points", xytext=(0, 8 + 10 * (number % 3)),
                        ha="center", color=RED, fontsize=8, fontweight="bold")
        ax.set_ylim(0, 1.08)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_ylabel("protected")
        ax.grid(axis="y", color="#eceff1")
        _time_axis(ax, wall_axis, xlim)
        ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=2, frameon=False, fontsize=8,
                  borderaxespad=0.2)  # above the plot: never over a line or an alert
        return _svg(fig, "ratio-plot", "Share of faces with a mask over time")


def _ratio_points(series):
    """(xs, ratios) with gaps (None) where no face was in view; long series averaged into bins."""
    step = max(1, -(-len(series) // MAX_POINTS))
    xs, ratios = [], []
    for i in range(0, len(series), step):
        chunk = series[i:i + step]
        faces = sum(f for _, f, _ in chunk)
        xs.append(chunk[0][0])
        ratios.append(sum(p for _, _, p in chunk) / faces if faces else float("nan"))
    return xs, ratios


def count_plot(bins, label, ylabel, wall_axis, width, xlim=None):
    """Bars per time bin: bins [(x, count)], `width` a bin's width (seconds, or a timedelta)."""
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(9.2, 2.4), dpi=100)
        fig.subplots_adjust(**MARGINS, bottom=0.25)
        ax = fig.add_subplot()
        xs = [x for x, _ in bins]
        ax.bar(xs, [c for _, c in bins], width=width * 0.85, align="edge", color="#546e7a")
        ax.set_ylabel(ylabel)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(axis="y", color="#eceff1")
        _time_axis(ax, wall_axis, xlim)
        return _svg(fig, "people-plot", label)


def _time_axis(ax, wall_axis, xlim=None):
    """Both plots of a section share the same time span, so that they read one above the other."""
    if xlim and xlim[0] != xlim[1]:
        ax.set_xlim(*xlim)
    if wall_axis:
        locator = mdates.AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    else:
        ax.xaxis.set_major_locator(MaxNLocator(nbins=10, steps=[1, 2, 3, 5, 6, 10], integer=True))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda s, _: clock(s)))
        ax.set_xlabel("time in the recording")


def clock(seconds, tenths=False):
    """Video time as m:ss (h:mm:ss past an hour); m:ss.s with `tenths`."""
    seconds = max(0.0, round(float(seconds), 1) if tenths else float(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    sec = f"{s:04.1f}" if tenths else f"{int(s):02d}"
    return f"{int(h)}:{int(m):02d}:{sec}" if h else f"{int(m)}:{sec}"


BIN_WIDTHS = ((3600, "hour"), (600, "10 minutes"), (60, "minute"), (10, "10 seconds"), (1, "second"))


def bin_width(span: timedelta | float, min_bins=6):
    """The widest of hour / 10 min / minute / 10 s / second that still gives `min_bins` bars over the span."""
    seconds = span.total_seconds() if isinstance(span, timedelta) else span
    for width, unit in BIN_WIDTHS:
        if seconds / width >= min_bins:
            return width, unit
    return BIN_WIDTHS[-1]


def _svg(fig, element_id, title):
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    text = buffer.getvalue()
    text = text[text.index("<svg"):]  # no XML prolog or doctype inside HTML
    text = re.sub(r"<svg ", f'<svg id="{element_id}" role="img" aria-label="{title}" ', text, count=1)
    return re.sub(r'(<svg[^>]*?) width="[^"]*" height="[^"]*"', r"\1", text, count=1)  # scales with the page
