"""Charts are drawn out of process: `bot.charts.render` pipes a spec to
`python -m bot.charts_render` and reads the PNG back; matplotlib never enters the service."""

from __future__ import annotations

import ast
import asyncio
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.charts import ChartError, amplification_spec, render, spread_spec, surge_spec
from bot.charts_render import SpecError, draw
from bot.reports import AlertRow, stats_spec
from bot.triage.spread import ForwardEdge, SpreadRecord, analyse_spread
from bot.triage.surge import SurgeAlert

ROOT = Path(__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n"
T0 = 1_760_000_000.0
HOSTILE = "<b>&amp; \u202eRTL\u200b 🇺🇦 " + "x" * 10_000


def size(png: bytes) -> tuple[int, int]:
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def alert() -> SurgeAlert:
    return SurgeAlert(
        7, 37, 14, 3, 6.2, ((1, 20),), ("коридор",), 6.0, 490_000, (1,) * 69 + (9, 12, 16),
        (1.0,) * 72,
    )  # fmt: skip


def row(at: float, priority: str = "normal") -> AlertRow:
    return AlertRow(at, 1, 1, "@c", "https://t.me/c/1", 3, "q", priority, "new", "", "uk", "")


def specs() -> list[dict[str, object]]:
    spread = analyse_spread([SpreadRecord(i, 1, T0 + 60 * i, username=f"c{i}") for i in range(5)])
    assert spread is not None
    now = datetime(2026, 3, 14, 12, tzinfo=UTC)
    rows = [
        row((now - timedelta(hours=7 * i)).timestamp(), p)
        for i, p in enumerate(["urgent", "low"] * 9)
    ]
    edges = [ForwardEdge(1, 2, 5), ForwardEdge(9, 2, 3)]
    return [
        surge_spec(alert()),
        spread_spec(spread, {0: HOSTILE}),
        amplification_spec(edges, {9: HOSTILE}, monitored={1, 2}),
        amplification_spec([], {}, ()),
        stats_spec(rows, ZoneInfo("Europe/Kyiv"), now=now),
        stats_spec(rows, ZoneInfo("Europe/Kyiv"), now=now, trends=[(HOSTILE, [1] * 14)]),
    ]  # fmt: skip


def test_every_spec_draws_a_png_of_its_size() -> None:
    pngs = [draw(spec) for spec in specs()]
    assert all(p.startswith(PNG) and 3_000 < len(p) < 1_000_000 for p in pngs)
    assert [size(p) for p in pngs] == [
        (700, 260),
        (700, 320),
        (800, 600),
        (800, 600),
        (900, 450),
        (900, 700),  # the trends panel below the alerts
    ]


@pytest.mark.parametrize(
    "spec",
    [
        [],
        {"kind": "pie"},
        {"kind": "surge", "hourly": "12"},
        {"kind": "spread", "points": [["x"]]},
        {"kind": "stats", "dates": ["a"], "counts": {"low": [1, 2]}},
        {"kind": "amplification", "pairs": [[1, 2]]},
    ],
)
def test_specs_that_cannot_be_drawn_are_refused_with_the_reason(spec: object) -> None:
    with pytest.raises(SpecError):
        draw(spec)  # type: ignore[arg-type]


async def test_render_draws_in_a_child_and_reports_its_failures() -> None:
    png = await render(surge_spec(alert()))
    assert png.startswith(PNG) and size(png) == (700, 260)
    with pytest.raises(ChartError, match="unknown chart kind 'pie'"):
        await render({"kind": "pie"})
    with pytest.raises(ChartError, match="took more than"):
        await render(surge_spec(alert()), timeout_s=0.01)  # killed, not left running
    with pytest.raises(ChartError, match="too large"):
        await render({"kind": "surge", "hourly": [1] * 600_000})


async def test_charts_asked_at_once_take_turns_and_all_arrive(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started: list[float] = []
    real = asyncio.create_subprocess_exec

    async def spy(*args: Any, **kwargs: Any) -> Any:  # watches the children start
        started.append(time.monotonic())
        return await real(*args, **kwargs)

    monkeypatch.setattr(asyncio, "create_subprocess_exec", spy)
    pngs = await asyncio.gather(*(render(surge_spec(alert())) for _ in range(4)))
    assert all(p.startswith(PNG) for p in pngs)
    # Two start at once; the other two only once one of those has finished.
    assert len(started) == 4 and started[2] - started[0] > 0.2


def test_the_service_never_imports_matplotlib_even_after_drawing_every_chart() -> None:
    """A fresh interpreter loads the bot (every handler) and the triage worker, draws every
    kind through `render`, and still has neither matplotlib nor networkx loaded."""
    script = """
import asyncio, sys
import bot.app, handlers, bot.triage_worker
from bot.charts import render
from tests.test_charts import specs
async def main():
    for spec in specs():
        png = await render(spec)
        assert png.startswith(b"\\x89PNG"), spec["kind"]
asyncio.run(main())
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("matplotlib", "networkx"))
print("LOADED", loaded)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "LOADED []" in done.stdout


def test_only_the_renderer_imports_matplotlib_or_networkx() -> None:
    found = []
    for path in sorted([*ROOT.glob("bot/**/*.py"), *ROOT.glob("handlers/**/*.py")]):
        source = path.read_text()
        names = {
            alias.name
            for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Import)
            for alias in node.names
        } | {
            node.module or ""
            for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.ImportFrom)
        }
        heavy = {n for n in names if n.split(".")[0] in ("matplotlib", "networkx")}
        if heavy or 'import_module("networkx")' in source or "import_module('matplotlib" in source:
            found.append(path.relative_to(ROOT).as_posix())
    assert set(found) <= {"bot/charts_render.py", "bot/triage/spread.py"}
    assert "bot/charts_render.py" in found
