"""`vigil backtest QUERY PATH`: which posts of an export a watch query would have alerted on.

Pure reading: the export is streamed, the query runs in a one-watch engine, nothing is written
to Redis. Matches print with the matched words highlighted, then the count and a breakdown by
language.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from bot.config import Settings
from bot.triage.engine import TriageEngine, WatchSpec
from bot.triage.language import make_detector
from bot.triage.query import QueryError, parse_query

CONTEXT = 90  # characters of context printed around the matched spans


def highlight(text: str, spans: Sequence[tuple[int, int]], *, ansi: bool) -> str:
    """The part of `text` around the spans, with the spans marked (ANSI bold or [[...]])."""
    if not spans:
        return text[: 2 * CONTEXT]
    on, off = ("\033[1;33m", "\033[0m") if ansi else ("[[", "]]")
    start = max(0, spans[0][0] - CONTEXT)
    end = min(len(text), spans[-1][1] + CONTEXT)
    out: list[str] = ["…" if start > 0 else ""]
    pos = start
    for s, e in spans:
        if s < pos:
            continue
        gap = text[pos:s]
        if len(gap) > 2 * CONTEXT:
            gap = gap[:CONTEXT] + " … " + gap[-CONTEXT:]
        out.append(gap)
        out.append(on + text[s:e] + off)
        pos = e
    out.append(text[pos:end])
    if end < len(text):
        out.append("…")
    return "".join(out).replace("\n", " ⏎ ")


def run_backtest(
    query: str,
    path: Path,
    settings: Settings,
    *,
    channel: str | None = None,
    limit: int = 20,
    out: TextIO | None = None,
) -> int:
    from watchers.export import ExportError, ExportStats, iter_export

    out = out or sys.stdout
    err = sys.stderr
    try:
        canonical = str(parse_query(query))
    except QueryError as exc:
        print(f"vigil backtest: query refused: {exc}", file=err)
        print(f"  {query}\n  {' ' * exc.position}^", file=err)
        return 2
    if not path.exists():
        print(f"vigil backtest: {path}: no such file", file=err)
        return 2
    engine = TriageEngine(make_detector(settings.language_detector))
    engine.add_watch(WatchSpec(1, 0, query))
    ansi = out.isatty()
    stats = ExportStats()
    matched = 0
    by_lang: Counter[str] = Counter()
    matched_by_lang: Counter[str] = Counter()
    print(f"query: {canonical}", file=out)
    try:
        for post in iter_export(path, channel=channel, stats=stats):
            result = engine.triage(post)
            by_lang[result.language.code] += 1
            if not result.matches:
                continue
            matched += 1
            matched_by_lang[result.language.code] += 1
            if matched <= limit:
                spans = result.matches[0].spans
                when = post.date.strftime("%Y-%m-%d %H:%M")
                print(f"\n{post.link}  {when} UTC  [{result.language.code}]", file=out)
                print("  " + highlight(post.text, spans, ansi=ansi), file=out)
    except ExportError as exc:
        print(f"vigil backtest: refused: {exc}", file=err)
        return 2
    total = sum(by_lang.values())
    if matched > limit:
        print(f"\n… and {matched - limit} more (use --limit)", file=out)
    print(f"\n{matched} of {total} posts matched.", file=out)
    if total:
        print("by language (matched / posts):", file=out)
        for lang, n in by_lang.most_common():
            print(f"  {lang:<4} {matched_by_lang[lang]:>6} / {n}", file=out)
    return 0
