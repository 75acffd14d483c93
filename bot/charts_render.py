"""Draw one chart: `python -m bot.charts_render` reads a chart spec (JSON) on stdin and writes
the PNG to stdout.

This is the only module that imports matplotlib (and networkx, for the amplification graph's
layout). It runs in a short-lived child process started by `bot.charts.render`, so the
long-running service never holds matplotlib's ~54 MB (issue #15). The specs are plain JSON
built by `bot.charts` (kinds: stats, surge, spread, amplification); `draw` is also callable in
process, for tests of the pictures themselves.

Exit status: 0 with the PNG on stdout; 2 for a spec that is not valid (the reason on stderr).
"""

from __future__ import annotations

import importlib
import io
import json
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

__all__ = ["SpecError", "draw", "main"]

HOUR_S = 3600
_SURGE = "#d62728"
_USUAL = "#7f7f7f"
_BARS = "#1f77b4"
_MONITORED = "#1f77b4"
_UNMONITORED = "#ff7f0e"
_PRIORITY_COLOURS = {"urgent": "#d62728", "high": "#ff7f0e", "normal": "#2ca02c", "low": "#9e9e9e"}
_TREND_COLOURS = ("#1f77b4", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")


class SpecError(ValueError):
    """A chart spec that cannot be drawn (unknown kind, missing or mistyped field)."""


def _figure(width: float, height: float, rows: int = 1) -> tuple[Any, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure, figure.subplots(rows, 1) if rows > 1 else figure.subplots()


def _png(figure: Any) -> bytes:
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()


def _ints(raw: Any, name: str) -> list[int]:
    if not isinstance(raw, list) or not all(isinstance(v, int) for v in raw):
        raise SpecError(f"{name} must be a list of integers")
    return raw


def _numbers(raw: Any, name: str) -> list[float]:
    if not isinstance(raw, list) or not all(isinstance(v, int | float) for v in raw):
        raise SpecError(f"{name} must be a list of numbers")
    return [float(v) for v in raw]


def _text(raw: Any, limit: int = 120) -> str:
    return str(raw)[:limit] if raw is not None else ""


def draw_stats(spec: Mapping[str, Any]) -> bytes:
    """Alerts per local day stacked by priority; with `trends`, a second panel of matching
    posts per day for each of the analyst's watches."""
    from matplotlib.ticker import MaxNLocator

    dates = [_text(d, 16) for d in spec.get("dates") or []]
    counts = spec.get("counts") or {}
    if not dates or not isinstance(counts, dict):
        raise SpecError("stats needs dates and counts")
    trends = spec.get("trends") or []
    days = len(dates)
    figure, axes = _figure(9, 7 if trends else 4.5, 2 if trends else 1)
    top = axes[0] if trends else axes
    positions = list(range(days))
    bottom = [0] * days
    for priority in ("low", "normal", "high", "urgent"):  # low at the bottom, urgent on top
        values = _ints(counts.get(priority, [0] * days), f"counts.{priority}")
        if len(values) != days:
            raise SpecError(f"counts.{priority} must have one value a day")
        top.bar(
            positions,
            values,
            bottom=bottom,
            color=_PRIORITY_COLOURS[priority],
            label=priority,
            width=0.8,
        )
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    top.set_xticks(positions, dates, rotation=45, ha="right")
    top.yaxis.set_major_locator(MaxNLocator(integer=True))
    top.set_ylim(0, max(1, *bottom) * 1.1)
    top.set_ylabel("alerts")
    top.set_title(_text(spec.get("title")) or f"Alerts per day, last {days} days")
    handles, labels = top.get_legend_handles_labels()
    top.legend(
        handles[::-1], labels[::-1], loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False
    )
    top.spines[["top", "right"]].set_visible(False)
    if trends:
        low = axes[1]
        for i, trend in enumerate(trends):
            values = _ints(trend.get("daily"), "trends.daily")
            if len(values) != days:
                raise SpecError("trends.daily must have one value a day")
            low.plot(
                positions,
                values,
                marker="o",
                markersize=3,
                color=_TREND_COLOURS[i % len(_TREND_COLOURS)],
                label=_text(trend.get("label"), 40),
            )
        low.set_xticks(positions, dates, rotation=45, ha="right")
        low.yaxis.set_major_locator(MaxNLocator(integer=True))
        low.set_ylim(bottom=0)
        low.set_ylabel("matching posts")
        low.set_title("Posts per day by watch", fontsize=10)
        low.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=8)
        low.spines[["top", "right"]].set_visible(False)
    return _png(figure)


def draw_surge(spec: Mapping[str, Any]) -> bytes:
    """Posts per hour over the alert's chart hours, the window in red, the usual as a line."""
    hourly = _ints(spec.get("hourly"), "hourly") or [0]
    usual = _numbers(spec.get("usual_hourly") or [], "usual_hourly")
    window = int(spec.get("window_hours") or 0)
    end_hour = int(spec.get("end_hour") or 0)
    n = len(hourly)
    first_hour = end_hour - n + 1
    figure, axes = _figure(7, 2.6)
    colours = [_SURGE if i >= n - window else _BARS for i in range(n)]
    axes.bar(range(n), hourly, color=colours, width=0.85)
    if usual and len(usual) == n:
        axes.plot(range(n), usual, color=_USUAL, linewidth=1.2, label="usual")
        axes.legend(loc="upper left", frameon=False, fontsize=8)
    ticks = [i for i in range(n) if (first_hour + i) % 24 == 0]
    labels = [
        datetime.fromtimestamp((first_hour + i) * HOUR_S, UTC).strftime("%d %b") for i in ticks
    ]
    axes.set_xticks(ticks, labels, fontsize=8)
    axes.set_xlim(-0.5, n - 0.5)
    axes.set_ylabel("posts / hour", fontsize=8)
    axes.set_title(_text(spec.get("title")), fontsize=9)
    axes.spines[["top", "right"]].set_visible(False)
    return _png(figure)


def draw_spread(spec: Mapping[str, Any]) -> bytes:
    """Channels reached over time (minutes after the first post), the first few named."""
    points = spec.get("points")
    if not isinstance(points, list) or not points:
        raise SpecError("spread needs points")
    try:
        xs = [float(p[0]) for p in points]
        ys = [int(p[1]) for p in points]
        names = [_text(p[2], 40) for p in points]
    except (TypeError, ValueError, IndexError) as exc:
        raise SpecError(f"spread points must be [minutes, channels, name]: {exc}") from exc
    figure, axes = _figure(7, 3.2)
    axes.step(xs, ys, where="post", color=_BARS, linewidth=1.5)
    axes.scatter(xs, ys, color=_BARS, s=14, zorder=3)
    for x, y, name in list(zip(xs, ys, names, strict=True))[: int(spec.get("annotate", 8))]:
        axes.annotate(name, (x, y), textcoords="offset points", xytext=(4, 2), fontsize=7)
    axes.set_xlabel("minutes after the first post", fontsize=8)
    axes.set_ylabel("channels", fontsize=8)
    axes.set_ylim(0, max(ys) + 1)
    axes.set_title(_text(spec.get("title")), fontsize=9)
    axes.spines[["top", "right"]].set_visible(False)
    return _png(figure)


def draw_amplification(spec: Mapping[str, Any]) -> bytes:
    """Forward pairs as a directed graph: source → the channel forwarding it, arrows as wide
    as the forwards, unmonitored channels in orange."""
    raw_pairs = spec.get("pairs") or []
    labels = {str(k): _text(v, 40) for k, v in (spec.get("labels") or {}).items()}
    monitored = {str(c) for c in spec.get("monitored") or []}
    try:
        pairs = [(str(s), str(t), int(n)) for s, t, n in raw_pairs]
    except (TypeError, ValueError) as exc:
        raise SpecError(f"amplification pairs must be [source, target, forwards]: {exc}") from exc
    figure, axes = _figure(8, 6)
    axes.set_axis_off()
    if not pairs:
        axes.text(0.5, 0.5, "no forwards yet", ha="center", va="center")
        return _png(figure)
    nx = importlib.import_module("networkx")  # only for the layout; it ships no types
    graph = nx.DiGraph()
    for source, target, forwards in pairs:
        graph.add_edge(source, target, weight=forwards)
    positions = nx.spring_layout(graph, seed=7, weight="weight")
    top = max(n for _s, _t, n in pairs) or 1
    for source, target, forwards in pairs:
        axes.annotate(
            "",
            xy=positions[target],
            xytext=positions[source],
            arrowprops={
                "arrowstyle": "-|>",
                "color": _USUAL,
                "lw": 0.6 + 3.0 * forwards / top,
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
            labels.get(node, node), (x, y), textcoords="offset points", xytext=(5, 5), fontsize=7
        )
    axes.set_title("Who amplifies whom (arrow: forwarded by)", fontsize=10)
    return _png(figure)


_KINDS: dict[str, Callable[[Mapping[str, Any]], bytes]] = {
    "stats": draw_stats,
    "surge": draw_surge,
    "spread": draw_spread,
    "amplification": draw_amplification,
}


def draw(spec: Mapping[str, Any]) -> bytes:
    """The PNG of one spec; SpecError when it cannot be drawn."""
    if not isinstance(spec, Mapping):
        raise SpecError("a chart spec is a JSON object")
    drawer = _KINDS.get(str(spec.get("kind")))
    if drawer is None:
        raise SpecError(f"unknown chart kind {str(spec.get('kind'))[:32]!r}")
    try:
        with warnings.catch_warnings():
            # A label with emoji or a script DejaVu lacks draws boxes: no reason to fail.
            warnings.filterwarnings("ignore", message="Glyph .* missing from font")
            return drawer(spec)
    except (KeyError, TypeError, AttributeError) as exc:
        raise SpecError(f"{spec.get('kind')} spec: {exc}") from exc


def main(argv: Sequence[str] | None = None) -> int:
    del argv
    try:
        spec = json.loads(sys.stdin.buffer.read())
        png = draw(spec)
    except (ValueError, SpecError) as exc:  # JSONDecodeError is a ValueError
        sys.stderr.write(f"chart: {exc}\n")
        return 2
    sys.stdout.buffer.write(png)
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
