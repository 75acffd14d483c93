"""Every chart Vigil sends, drawn out of process.

matplotlib costs about 54 MB resident once imported (issue #15), and a bot or triage process
runs for months. So charts are drawn by a short-lived child, `python -m bot.charts_render`:
this module builds a chart's spec (plain JSON: the numbers and labels to draw), pipes it to
the child and reads the PNG back, within `timeout_s`; the child's memory goes when it exits.
A child that fails, or takes too long (it is killed), raises `ChartError` with the reason:
callers send their text without the picture.

The spec builders are pure and import nothing heavy; `bot.charts_render` is the only module
that imports matplotlib (a test checks that a process drawing every kind never does).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import weakref
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from bot.triage.spread import ForwardEdge, StorySpread, rank_pairs
from bot.triage.surge import SurgeAlert

log = logging.getLogger(__name__)

__all__ = [
    "CHART_TIMEOUT_S",
    "PNG_MAGIC",
    "ChartError",
    "amplification_spec",
    "render",
    "spread_spec",
    "surge_spec",
]

CHART_TIMEOUT_S = 30.0  # a child imports matplotlib (about a second) and draws one figure
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MAX_SPEC_BYTES = 1_000_000  # a spec is numbers and labels: anything bigger is a bug
MAX_PNG_BYTES = 10_000_000  # Telegram takes photos up to 10 MB
MAX_CHILDREN = 2  # charts drawn at once per process; the others wait their turn
_LIMITS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


class ChartError(RuntimeError):
    """The chart could not be drawn (the child failed, timed out or wrote no PNG)."""


def _children() -> asyncio.Semaphore:
    """The running loop's bound on concurrent chart children (one per loop: a semaphore
    belongs to the loop it first waits in)."""
    loop = asyncio.get_running_loop()
    limit = _LIMITS.get(loop)
    if limit is None:
        limit = _LIMITS[loop] = asyncio.Semaphore(MAX_CHILDREN)
    return limit


async def render(spec: Mapping[str, Any], *, timeout_s: float = CHART_TIMEOUT_S) -> bytes:
    """The PNG of `spec`, drawn by a child process; ChartError if it cannot be had. At most
    `MAX_CHILDREN` children draw at once (each peaks near 90 MB); `timeout_s` counts the wait
    for a turn too."""
    payload = json.dumps(spec, ensure_ascii=False, separators=(",", ":")).encode()
    if len(payload) > MAX_SPEC_BYTES:
        raise ChartError(f"chart spec too large ({len(payload)} bytes)")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    limit = _children()
    try:
        await asyncio.wait_for(limit.acquire(), timeout_s)
    except TimeoutError:
        raise ChartError(f"no chart renderer free within {timeout_s:g} s") from None
    try:
        return await _draw(payload, max(0.001, deadline - loop.time()), timeout_s)
    finally:
        limit.release()


async def _draw(payload: bytes, timeout_s: float, budget_s: float) -> bytes:
    env = dict(os.environ, MPLBACKEND="Agg")
    try:
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.charts_render",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
    except OSError as exc:
        raise ChartError(f"cannot start the chart renderer: {exc}") from exc
    try:
        out, err = await asyncio.wait_for(child.communicate(payload), timeout_s)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            child.kill()
        await child.wait()
        raise ChartError(f"the chart renderer took more than {budget_s:g} s") from None
    except asyncio.CancelledError:
        with contextlib.suppress(ProcessLookupError):
            child.kill()
        await child.wait()
        raise
    if child.returncode != 0:
        reason = err.decode(errors="replace").strip().splitlines()
        raise ChartError(
            f"the chart renderer failed (exit {child.returncode}): "
            + (reason[-1][:300] if reason else "no message")
        )
    if not out.startswith(PNG_MAGIC) or len(out) > MAX_PNG_BYTES:
        raise ChartError("the chart renderer wrote no PNG")
    return out


async def render_or_none(
    spec: Mapping[str, Any], *, timeout_s: float = CHART_TIMEOUT_S
) -> bytes | None:
    """`render`, or None (logged) when the chart cannot be drawn: for replies that still make
    sense as text."""
    try:
        return await render(spec, timeout_s=timeout_s)
    except ChartError as exc:
        log.warning("charts: %s chart not drawn: %s", spec.get("kind"), exc)
        return None


# --- specs (pure) ----------------------------------------------------------------------------


def surge_spec(alert: SurgeAlert, title: str = "") -> dict[str, Any]:
    """A surge's hourly posts (the window in red) with the usual level."""
    return {
        "kind": "surge",
        "hourly": list(alert.hourly or (alert.posts,)),
        "usual_hourly": [round(u, 3) for u in alert.usual_hourly],
        "window_hours": alert.window_hours,
        "end_hour": alert.end_hour,
        "title": title
        or f"{alert.posts} posts in {alert.channels} channels, {alert.ratio:.1f}× usual",
    }


def spread_spec(
    spread: StorySpread, labels: Mapping[int, str], *, annotate: int = 8
) -> dict[str, Any]:
    """A story's channels over time, each point named by the channel that reached it."""
    named = [spread.first, *spread.amplifiers]
    points = []
    for (at, reached), record in zip(spread.timeline, named, strict=False):
        name = labels.get(record.channel_id) or (
            f"@{record.username}" if record.username else str(record.channel_id)
        )
        points.append([round(at / 60, 2), reached, name])
    return {
        "kind": "spread",
        "points": points,
        "annotate": annotate,
        "title": f"{spread.channels} channels in {spread.span_s / 60:.0f} min",
    }


def amplification_spec(
    edges: Sequence[ForwardEdge],
    labels: Mapping[int, str],
    monitored: Collection[int],
    *,
    limit: int = 40,
) -> dict[str, Any]:
    """The `limit` strongest forward pairs as a graph."""
    pairs = rank_pairs(edges, limit)
    nodes = {e.source for e in pairs} | {e.target for e in pairs}
    return {
        "kind": "amplification",
        "pairs": [[e.source, e.target, e.forwards] for e in pairs],
        "labels": {str(n): labels[n] for n in sorted(nodes) if n in labels},
        "monitored": sorted(n for n in nodes if n in monitored),
    }
