"""Pictures for campaigns: a surge's sparkline, a story's spread, who amplifies whom.

Pure functions, data in, PNG bytes out. matplotlib (and networkx for the graph's layout) are
imported inside each function: only these views need them, and the service must stay small.
The Figure API with the Agg canvas touches no global pyplot state, so threads are safe; each
call is CPU-bound (a tenth of a second or so), so call it in a thread from a coroutine.
"""

from __future__ import annotations

import importlib
import io
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from bot.triage.spread import ForwardEdge, StorySpread, rank_pairs
from bot.triage.surge import HOUR_S, SurgeAlert

__all__ = ["amplification_chart", "spread_chart", "surge_chart"]

_SURGE = "#d62728"
_USUAL = "#7f7f7f"
_BARS = "#1f77b4"
_MONITORED = "#1f77b4"
_UNMONITORED = "#ff7f0e"


def _figure(width: float, height: float) -> tuple[Any, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure, figure.subplots()


def _png(figure: Any) -> bytes:
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()


def surge_chart(alert: SurgeAlert, title: str = "") -> bytes:
    """Posts per hour over the alert's chart hours, the window in red, the usual level as a
    line."""
    hourly: Sequence[int] = alert.hourly or (alert.posts,)
    n = len(hourly)
    first_hour = alert.end_hour - n + 1
    figure, axes = _figure(7, 2.6)
    colours = [_SURGE if i >= n - alert.window_hours else _BARS for i in range(n)]
    axes.bar(range(n), hourly, color=colours, width=0.85)
    if alert.usual_hourly:
        axes.plot(range(n), alert.usual_hourly, color=_USUAL, linewidth=1.2, label="usual")
        axes.legend(loc="upper left", frameon=False, fontsize=8)
    ticks = [i for i in range(n) if (first_hour + i) % 24 == 0]
    labels = [
        datetime.fromtimestamp((first_hour + i) * HOUR_S, UTC).strftime("%d %b") for i in ticks
    ]
    axes.set_xticks(ticks, labels, fontsize=8)
    axes.set_xlim(-0.5, n - 0.5)
    axes.set_ylabel("posts / hour", fontsize=8)
    axes.set_title(
        title or f"{alert.posts} posts in {alert.channels} channels, {alert.ratio:g}× usual",
        fontsize=9,
    )
    axes.spines[["top", "right"]].set_visible(False)
    return _png(figure)


def spread_chart(
    spread: StorySpread, labels: Mapping[int, str] | None = None, *, annotate: int = 8
) -> bytes:
    """Channels reached over time (minutes after the first post), the first few named."""
    labels = labels or {}
    figure, axes = _figure(7, 3.2)
    xs = [t / 60 for t, _n in spread.timeline]
    ys = [n for _t, n in spread.timeline]
    axes.step(xs, ys, where="post", color=_BARS, linewidth=1.5)
    axes.scatter(xs, ys, color=_BARS, s=14, zorder=3)
    named = [spread.first, *spread.amplifiers][:annotate]
    for (x, y), record in zip(zip(xs, ys, strict=True), named, strict=False):
        name = labels.get(record.channel_id) or (
            f"@{record.username}" if record.username else str(record.channel_id)
        )
        axes.annotate(name, (x, y), textcoords="offset points", xytext=(4, 2), fontsize=7)
    axes.set_xlabel("minutes after the first post", fontsize=8)
    axes.set_ylabel("channels", fontsize=8)
    axes.set_ylim(0, max(ys) + 1)
    axes.set_title(f"{spread.channels} channels in {spread.span_s / 60:.0f} min", fontsize=9)
    axes.spines[["top", "right"]].set_visible(False)
    return _png(figure)


def amplification_chart(
    edges: Sequence[ForwardEdge],
    labels: Mapping[int, str] | None = None,
    monitored: Collection[int] = (),
    *,
    limit: int = 40,
) -> bytes:
    """The strongest forward pairs as a directed graph: source → the channel forwarding it,
    arrows as wide as the forwards, unmonitored channels in orange."""
    labels = labels or {}
    pairs = rank_pairs(edges, limit)
    figure, axes = _figure(8, 6)
    axes.set_axis_off()
    if not pairs:
        axes.text(0.5, 0.5, "no forwards yet", ha="center", va="center")
        return _png(figure)
    nx = importlib.import_module("networkx")  # only for the layout: see bot.triage.spread
    graph = nx.DiGraph()
    for edge in pairs:
        graph.add_edge(edge.source, edge.target, weight=edge.forwards)
    positions = nx.spring_layout(graph, seed=7, weight="weight")
    top = max(e.forwards for e in pairs)
    for edge in pairs:
        axes.annotate(
            "",
            xy=positions[edge.target],
            xytext=positions[edge.source],
            arrowprops={
                "arrowstyle": "-|>",
                "color": _USUAL,
                "lw": 0.6 + 3.0 * edge.forwards / top,
                "shrinkA": 8,
                "shrinkB": 8,
                "alpha": 0.8,
            },
        )
    nodes = sorted(graph.nodes)
    axes.scatter(
        [positions[n][0] for n in nodes],
        [positions[n][1] for n in nodes],
        c=[_MONITORED if n in monitored else _UNMONITORED for n in nodes],
        s=90,
        zorder=3,
    )
    for node in nodes:
        x, y = positions[node]
        axes.annotate(
            labels.get(node, str(node)),
            (x, y),
            textcoords="offset points",
            xytext=(5, 5),
            fontsize=7,
        )
    axes.set_title("Who amplifies whom (arrow: forwarded by)", fontsize=10)
    return _png(figure)
