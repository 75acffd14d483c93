"""`vigil demo`: the whole pipeline on the bundled sample channel, alerts printed.

Embedded Redis in a temporary data dir, three sample analysts with a few watches, the bundled
Telegram Desktop export ingested through the same path as live posts, the triage worker run
until the posts stream is empty, and each alert printed as the bot would render it.
"""

from __future__ import annotations

import html
import re
import shutil
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.alerts import AlertJob
from bot.config import Settings

# (analyst id, who, query, priority): each shows one feature of the query language.
SAMPLE_WATCHES: tuple[tuple[int, str, str, str], ...] = (
    (1001, "Alice (migration desk)", "мигрант (выслать OR мобилизовать OR депортировать)", "high"),
    (1001, "Alice (migration desk)", '"трудовых мигрантов"', "normal"),
    (1002, "Bohdan (Ukrainian desk)", "біженець lang:uk", "normal"),
    (1002, "Bohdan (Ukrainian desk)", "refugee* NEAR/6 border", "normal"),
    (1003, "Aysel (Caucasus desk)", "Zəngəzur* OR /zangez[uy]r/", "urgent"),
)
SHOWS = (
    "inflection (мигрантов, мигрантам…), OR, and a Latin 'a' hidden in мигрaнтов",
    "an inflected phrase, across a homoglyph (Трудoвых)",
    "Ukrainian inflection (біженців) through pymorphy3, only posts detected as Ukrainian",
    "prefix and proximity: refugees within 6 words of border",
    "Azerbaijani suffixes by prefix, plus a regular expression",
)

_TAG = re.compile(r"<(/?)(b|strong|i|em|code|a|u|s|pre|blockquote)(?:\s[^>]*)?>")


def html_to_terminal(text: str, *, ansi: bool) -> str:
    """Telegram HTML → terminal text: bold stays bold, links keep their text."""
    if ansi:
        styled = {
            "b": "\033[1m",
            "strong": "\033[1m",
            "i": "\033[3m",
            "em": "\033[3m",
            "code": "\033[36m",
            "a": "\033[4m",
        }

        def repl(m: re.Match[str]) -> str:
            return "\033[0m" if m.group(1) else styled.get(m.group(2), "")
    else:

        def repl(m: re.Match[str]) -> str:
            return "*" if m.group(2) in ("b", "strong") else ""

    return html.unescape(_TAG.sub(repl, text))


def _sample_path() -> Path:
    return Path(str(resources.files("bot.samples").joinpath("demo_channel.json")))


async def run_demo(settings: Settings, *, keep: bool = False) -> int:
    from bot.app import build_repositories, build_triage_worker
    from bot.delivery.render import render_alert
    from bot.ingest import ingest_file
    from bot.storage.connection import open_redis

    out = sys.stdout
    ansi = out.isatty()
    started = time.perf_counter()
    data_dir = Path(tempfile.mkdtemp(prefix="vigil-demo-")) if not keep else Path("demo-data")
    demo_settings = settings.model_copy(update={"data_dir": data_dir, "redis_url": None})
    sample = _sample_path()
    print(f"Vigil demo — embedded Redis in {data_dir}", file=out)
    print(f"Sample channel export: {sample.name} (a fictional channel)\n", file=out)
    async with open_redis(demo_settings) as redis:
        repos = build_repositories(demo_settings, redis)
        await repos.wipe()  # a kept demo-data dir starts afresh too
        watches = repos.watches
        print("Watches:", file=out)
        for (analyst, who, query, priority), shows in zip(SAMPLE_WATCHES, SHOWS, strict=True):
            watch = await watches.add(analyst, query, priority)
            print(f"  #{watch.id} {who}: {watch.canonical}  [{priority}]", file=out)
            print(f"      shows {shows}", file=out)
        queue = repos.posts
        report = await ingest_file(sample, queue, channel="@severny_vestnik_demo", alert_old=True)
        print(
            f"\nIngest: read {report.read}, enqueued {report.enqueued}, "
            f"skipped {sum(report.skipped.values())} (service messages and such)",
            file=out,
        )
        again = await ingest_file(sample, queue, channel="@severny_vestnik_demo")
        print(f"Ingest again: enqueued {again.enqueued}, duplicate {again.duplicates}", file=out)
        worker, _run = await build_triage_worker(demo_settings, repos, consumer="demo")
        await worker.drain()
        stats = worker.stats
        # Read as the delivery worker reads them: the alerts stream's consumer group.
        alerts = repos.alerts_consumer("demo")
        await alerts.ensure_group()
        entries = []
        while batch := await alerts.read(count=1000, block_ms=None):
            entries += batch
        names = {a: w for a, w, _q, _p in SAMPLE_WATCHES}
        print(f"\n{'=' * 72}", file=out)
        for entry in entries:
            job = AlertJob.from_fields(entry.fields)
            text, _keyboard = render_alert(job, ZoneInfo("Europe/Kyiv"))
            print(f"→ to {names.get(job.analyst_id, job.analyst_id)}", file=out)
            print(html_to_terminal(_shorten(text), ansi=ansi), file=out)
            print("   [👍 Relevant] [👎 Noise] [🔕 Mute channel] [Open]", file=out)
            print("=" * 72, file=out)
        langs = ", ".join(
            f"{k} {v}" for k, v in sorted(stats.by_language.items(), key=lambda kv: -kv[1])
        )
        print(
            f"\n{stats.posts} posts triaged ({langs}); {stats.alerts} alerts; "
            f"{stats.duplicates} copies folded into an earlier alert; "
            f"{time.perf_counter() - started:.1f}s in all.",
            file=out,
        )
        print(
            "Next: `vigil backtest QUERY FILE` tries a query on any export; README 'Going live' "
            "connects a real bot and account.",
            file=out,
        )
    if not keep:
        shutil.rmtree(data_dir, ignore_errors=True)
    return 0


def _shorten(text: str, limit: int = 1200) -> str:
    """Very long alerts are printed in part; the bot itself cuts at Telegram's 4096."""
    if len(text) <= limit:
        return text
    cut = text.rfind("\n\n", 0, limit)
    head = text[: cut if cut > 0 else limit]
    tail_at = text.rfind("\n\n🔗")
    tail = text[tail_at:] if tail_at > 0 else ""
    # never leave a tag open: drop anything after the last '>' boundary problem by unescaping
    head = re.sub(r"<[^>]*$", "", head)
    open_bold = head.count("<b>") - head.count("</b>")
    return (
        head
        + ("</b>" * max(open_bold, 0))
        + f"\n[… {len(text) - len(head)} more characters]"
        + tail
    )
