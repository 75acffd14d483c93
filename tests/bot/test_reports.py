from __future__ import annotations

import csv
import io
import json
import re
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import redis.asyncio as aioredis

from bot import texts
from bot.charts_render import draw
from bot.models import Post
from bot.reports import (
    CSV_COLUMNS,
    AlertRow,
    ReportRangeError,
    alerts_csv,
    build_export,
    daily_counts,
    parse_days,
    read_alerts,
    stats_spec,
    summarise,
)
from bot.storage import keys
from bot.storage.archive import ArchiveRepository
from bot.storage.channels import ChannelRepository
from bot.storage.feedback import FeedbackRepository
from bot.storage.ledger import DeliveryLedger
from bot.storage.watches import WatchRepository
from handlers.commands_scope import set_commands_for
from tests.bot.harness import ADMIN, BotApp, running
from tests.delivery.util import enqueue, job, settled
from tests.support.html_check import parse_html

ANN, BOB = 1100, 1101
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
LONG = "Длинный пост про мигрантов. " * 358  # 10,024 characters
HOSTILE = 'Власти <b>требуют</b> & "выслать"\nмигрантов 😀\r\nسلام \u202eRTL\u200b zero\u200dwidth'
FORMULAS = ['=HYPERLINK("http://evil","x")', "+7 999", "-2+3", "@SUM(A1)", "\t=1", "=1+1"]


def parse_csv(data: bytes) -> list[dict[str, str]]:
    assert data.startswith(b"\xef\xbb\xbf"), "UTF-8 BOM missing"
    reader = csv.reader(io.StringIO(data[3:].decode("utf-8"), newline=""))
    header, *rows = list(reader)
    assert tuple(header) == CSV_COLUMNS
    return [dict(zip(header, r, strict=True)) for r in rows]


def row(
    at: float,
    text: str = "текст",
    *,
    message_id: int = 1,
    channel_id: int = 500,
    watch_id: int = 1,
    query: str = "мигрант*",
    priority: str = "normal",
    feedback: str = "",
    channel: str = "@source_chan",
) -> AlertRow:
    return AlertRow(
        at=at,
        channel_id=channel_id,
        message_id=message_id,
        channel=channel,
        link=f"https://t.me/source_chan/{message_id}",
        watch_id=watch_id,
        watch_query=query,
        priority=priority,
        kind="new",
        feedback=feedback,
        language="ru",
        text=text,
    )


# --- pure functions ---------------------------------------------------------------------


def test_csv_round_trips_hostile_texts_and_defuses_formulas() -> None:
    at = datetime(2026, 3, 1, 21, 30, tzinfo=UTC).timestamp()
    bodies = [HOSTILE, LONG, "", "text with NUL \x00 inside", *FORMULAS]
    rows = [row(at + i, body, message_id=i + 1) for i, body in enumerate(bodies)]
    rows.append(row(at + 100, "-100", message_id=99, query="=cmd|' /C calc'!A0", channel="-100"))
    parsed = parse_csv(alerts_csv(list(reversed(rows)), ZoneInfo("Europe/Kyiv")))

    assert len(parsed) == len(rows)
    assert [p["text"] for p in parsed[:4]] == bodies[:4]  # oldest first, byte for byte
    assert len(parsed[1]["text"]) == len(LONG) > 10_000
    assert [p["text"] for p in parsed[4:10]] == ["'" + f for f in FORMULAS]
    last = parsed[-1]
    assert last["text"] == "-100" and last["channel"] == "-100"  # a plain number is no formula
    assert last["watch_query"] == "'=cmd|' /C calc'!A0"
    first = parsed[0]
    assert first["time"] == "2026-03-01T23:30:00+02:00"  # the analyst's zone
    assert (first["channel"], first["watch_id"], first["priority"]) == (
        "'@source_chan",  # '@' starts a formula in Excel too: even a @username is quoted
        "1",
        "normal",
    )
    assert first["link"] == "https://t.me/source_chan/1"
    for cell in (c for p in parsed for c in p.values()):
        assert not cell.startswith(("=", "+", "@", "\t")) or cell.startswith("'")


def test_csv_of_lone_surrogate_is_still_utf8() -> None:
    data = alerts_csv([row(0.0, "bad \ud800 half")])
    assert parse_csv(data)[0]["text"] == "bad \ufffd half"


def test_export_cut_to_a_size_keeps_the_newest_alerts() -> None:
    rows = [row(1000.0 + i, "x" * 1000, message_id=i) for i in range(50)]
    whole = build_export(rows)
    assert whole.rows == 50
    cut = build_export(rows, max_bytes=len(whole.data) // 2)
    assert 0 < cut.rows < 50 and len(cut.data) <= len(whole.data) // 2
    kept = parse_csv(cut.data)
    assert len(kept) == cut.rows
    assert [int(r["link"].rsplit("/", 1)[1]) for r in kept] == list(range(50 - cut.rows, 50))


@pytest.mark.parametrize(
    ("args", "days"), [(None, 30), ("", 30), ("7d", 7), (" 30D ", 30), ("14", 14)]
)
def test_parse_days_accepts_day_counts(args: str | None, days: int) -> None:
    assert parse_days(args) == days


@pytest.mark.parametrize("args", ["banana", "0d", "366d", "7 d", "-7d", "7h", "1e3", "٣d", "<b>&"])
def test_parse_days_refuses_the_rest(args: str) -> None:
    with pytest.raises(ReportRangeError):
        parse_days(args)


def test_daily_counts_use_the_analysts_local_days() -> None:
    zone = ZoneInfo("Asia/Baku")  # UTC+4
    now = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)
    rows = [
        row(datetime(2026, 3, 13, 21, 0, tzinfo=UTC).timestamp(), priority="urgent"),  # 14th local
        row(datetime(2026, 3, 13, 19, 0, tzinfo=UTC).timestamp(), priority="high"),  # 13th
        row(datetime(2026, 2, 28, 19, 0, tzinfo=UTC).timestamp()),  # 28 Feb 23:00: before window
        row(datetime(2026, 3, 1, 0, 0, tzinfo=UTC).timestamp(), priority="bogus"),  # 1 Mar
    ]
    dates, counts = daily_counts(rows, zone, now, 14)
    assert dates[0].isoformat() == "2026-03-01" and dates[-1].isoformat() == "2026-03-14"
    assert counts["urgent"][13] == 1 and counts["high"][12] == 1
    assert counts["normal"][0] == 1  # the unknown priority is counted as normal
    assert sum(sum(v) for v in counts.values()) == 3


def test_stats_chart_is_a_png_of_sane_size() -> None:
    now = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)
    rows = [
        row((now - timedelta(hours=7 * i)).timestamp(), priority=p)
        for i, p in enumerate(["urgent", "high", "normal", "low"] * 10)
    ]
    png = draw(stats_spec(rows, ZoneInfo("Europe/Kyiv"), now=now))
    assert png.startswith(PNG_MAGIC)
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (900, 450)
    assert 5_000 < len(png) < 500_000


def test_summary_counts_priorities_watches_and_feedback() -> None:
    rows = [
        row(1.0, watch_id=2, query="погода", priority="urgent", feedback="relevant"),
        row(2.0, watch_id=2, query="погода", message_id=2, feedback="noise"),
        row(3.0, watch_id=2, query="погода", message_id=3),
        row(4.0, watch_id=7, query="", message_id=4, feedback="noise"),
        row(5.0, watch_id=7, query="", message_id=4, feedback="noise"),  # same post, edited
    ]
    summary = summarise(rows)
    assert summary.total == 5
    assert dict(summary.by_priority) == {"urgent": 1, "high": 0, "normal": 4, "low": 0}
    assert summary.top_watches == ((2, "погода", 3), (7, "", 2))
    assert (summary.relevant, summary.noise) == (1, 2)


def test_report_texts_are_valid_html_and_escape_queries() -> None:
    hostile = "<b>&amp; </i> \u202e😀 & < >"
    caption = texts.stats_caption(
        14, 3, [("urgent", 1)], [(1, hostile, 2), (2, "x" * 500, 1)], 1, 0
    )
    parsed = parse_html(caption).text
    assert hostile in parsed and "x" * 59 + "…" in parsed and "x" * 61 not in parsed
    assert len(parsed) < 1024
    for html in (texts.export_caption(5, 30, 9), texts.export_none(7), texts.USAGE_EXPORT):
        parse_html(html)


# --- the reader (real Redis) -----------------------------------------------------------


async def add_alert(
    redis: aioredis.Redis,
    analyst: int,
    at: float,
    channel_id: int,
    message_id: int,
    *,
    watch_id: int = 1,
    priority: str = "normal",
    kind: str = "new",
) -> None:
    """What the delivery worker appends after a send (entry id = send time)."""
    await redis.xadd(
        keys.user_alerts(analyst),
        {
            "channel": str(channel_id),
            "message": str(message_id),
            "watch": str(watch_id),
            "priority": priority,
            "kind": kind,
            "chat_message": "1",
            "at": f"{at:.3f}",
        },
        id=f"{int(at * 1000)}-0",
    )


async def archive(redis: aioredis.Redis, post: Post) -> None:
    await redis.set(keys.archive_post(post.channel_id, post.message_id), post.to_json())


def post(channel_id: int, message_id: int, text: str, username: str | None = "src") -> Post:
    return Post(channel_id, message_id, datetime(2026, 3, 1, tzinfo=UTC), text, username, "Src")


async def test_reader_joins_archive_meta_watches_channels_and_feedback(
    redis: aioredis.Redis,
) -> None:
    watches, feedback, channels = (
        WatchRepository(redis),
        FeedbackRepository(redis),
        ChannelRepository(redis),
    )
    w1 = await watches.add(ANN, "мигрант*")
    w2 = await watches.add(ANN, "погода")
    await channels.add("@named_chan", ADMIN)
    await channels.mark_resolved(
        "@named_chan", channel_id=777, access_hash=1, username="named_chan", title="Named"
    )
    base = time.time() - 3 * 86400
    await add_alert(redis, ANN, base - 40 * 86400, 500, 1)  # too old
    await add_alert(redis, ANN, base, 500, 2, watch_id=w1.id, priority="urgent")
    await add_alert(redis, ANN, base + 1, 777, 3, watch_id=w2.id)  # archive expired
    await add_alert(redis, ANN, base + 2, 888, 4, watch_id=99)  # unknown channel, deleted watch
    await redis.xadd(keys.user_alerts(ANN), {"channel": "x", "message": "1"})  # malformed
    await redis.xadd(keys.user_alerts(ANN), {"garbage": "1"})  # malformed
    await add_alert(redis, BOB, base, 500, 2)  # someone else's
    await archive(redis, post(500, 2, HOSTILE))
    await redis.hset(
        keys.alert_sent(ANN, 500, 2),
        "meta",
        json.dumps({"watch": str(w1.id), "query": "мигрант* NEAR/5 депорт*", "lang": "ru"}),
    )
    await redis.hset(keys.alert_sent(ANN, 888, 4), "meta", "{not json")
    await feedback.set(ANN, 500, 2, w1.id, "relevant")
    await feedback.set(ANN, 777, 3, w2.id, "noise")

    since = base - 86400
    rows = await read_alerts(
        DeliveryLedger(redis),
        ArchiveRepository(redis),
        ANN,
        since,
        watches=watches,
        feedback=feedback,
        channels=channels,
    )
    assert [(r.channel_id, r.message_id) for r in rows] == [(500, 2), (777, 3), (888, 4)]
    first, expired, unknown = rows
    assert first.text == HOSTILE and first.channel == "@src"
    assert first.watch_query == "мигрант* NEAR/5 депорт*"  # as it was when alerted
    assert (first.language, first.priority, first.feedback) == ("ru", "urgent", "relevant")
    assert first.link == "https://t.me/src/2"
    assert expired.text == "" and expired.channel == "@named_chan"
    assert expired.link == "https://t.me/named_chan/3"
    assert (expired.watch_query, expired.feedback, expired.language) == ("погода", "noise", "")
    assert unknown.channel == "888" and unknown.link == "https://t.me/c/888/4"
    assert unknown.watch_query == "" and unknown.text == ""

    light = await read_alerts(
        DeliveryLedger(redis),
        ArchiveRepository(redis),
        ANN,
        since,
        watches=watches,
        feedback=feedback,
        channels=channels,
        with_text=False,
    )
    assert [r.text for r in light] == ["", "", ""] and light[0].watch_query == first.watch_query
    assert (
        await read_alerts(
            DeliveryLedger(redis),
            ArchiveRepository(redis),
            4242,
            since,
            watches=watches,
            feedback=feedback,
            channels=channels,
        )
        == []
    )


# --- the bot ---------------------------------------------------------------------------


async def seed(app: BotApp, analyst: int, days_ago: list[float], **kw: object) -> None:
    now = time.time()
    for n, ago in enumerate(sorted(days_ago, reverse=True), start=1):
        await add_alert(app.redis, analyst, now - ago * 86400, 500, n, **kw)  # type: ignore[arg-type]
        await archive(app.redis, post(500, n, f"post {n}"))


async def test_export_sends_a_csv_of_the_range(app: BotApp) -> None:
    await app.make_analyst(ANN)
    await app.users.set_tz(ANN, "Asia/Baku")
    await app.watches.add(ANN, "мигрант*")
    await seed(app, ANN, [0.1, 2, 6, 10, 29, 45])
    reply = await app.say(ANN, "/export")
    assert reply.method == "sendDocument" and reply.file is not None
    assert re.fullmatch(r"vigil-alerts-\d{8}\.csv", reply.file.filename)
    today = datetime.now(ZoneInfo("Asia/Baku")).strftime("%Y%m%d")
    assert reply.file.filename == f"vigil-alerts-{today}.csv"
    assert reply.text == "📄 5 alerts of the last 30 days."
    rows = parse_csv(reply.file.data)
    assert [r["text"] for r in rows] == ["post 2", "post 3", "post 4", "post 5", "post 6"]
    assert all(r["time"].endswith("+04:00") for r in rows)
    assert {r["watch_query"] for r in rows} == {"мигрант*"}

    week = await app.say(ANN, "/export 7d")
    assert week.file is not None and week.text == "📄 3 alerts of the last 7 days."
    assert [r["text"] for r in parse_csv(week.file.data)] == ["post 4", "post 5", "post 6"]

    for bad in ("/export banana", "/export 0d", "/export 9999d", "/export <b>&amp;"):
        refused = await app.say(ANN, bad)
        assert refused.method == "sendMessage" and texts.USAGE_EXPORT[:20] in refused.html
        assert refused.text.startswith("⚠️")
    assert len(app.server.documents) == 2


async def test_export_and_stats_with_nothing_to_show(app: BotApp) -> None:
    await app.make_analyst(ANN)
    reply = await app.say(ANN, "/export")
    assert reply.method == "sendMessage" and reply.text == texts.export_none(30)
    await seed(app, ANN, [20])  # only older than /stats' 14 days and /export 7d
    assert (await app.say(ANN, "/export 7d")).text == texts.export_none(7)
    assert (await app.say(ANN, "/stats")).text == parse_html(texts.STATS_NONE).text
    assert app.server.documents == [] and app.server.photos == []


async def test_stats_sends_a_chart_with_a_caption(app: BotApp) -> None:
    await app.make_analyst(ANN)
    busy = await app.watches.add(ANN, 'мигрант* "<b>&"')
    quiet = await app.watches.add(ANN, "погода")
    now = time.time()
    for n in range(7, 0, -1):  # oldest first, as the worker appends
        watch = busy if n <= 5 else quiet
        priority = ("urgent", "high", "normal", "low", "normal", "high", "normal")[n - 1]
        await add_alert(
            app.redis, ANN, now - n * 3600 * 30, 500, n, watch_id=watch.id, priority=priority
        )
    await app.feedback.set(ANN, 500, 1, busy.id, "relevant")
    await app.feedback.set(ANN, 500, 2, busy.id, "relevant")
    await app.feedback.set(ANN, 500, 6, quiet.id, "noise")
    await app.feedback.set(ANN, 500, 99, quiet.id, "noise")  # not an alert of this window

    reply = await app.say(ANN, "/stats")
    assert reply.method == "sendPhoto" and reply.file is not None
    assert reply.file.data.startswith(PNG_MAGIC) and 5_000 < len(reply.file.data) < 500_000
    assert (reply.file.width, reply.file.height) == (900, 450)
    caption = reply.text
    assert caption.startswith("📊 Last 14 days: 7 alerts")
    assert "🔴 urgent 1 · 🟠 high 2 · 🟢 normal 3 · ⚪ low 1" in caption
    assert f'#{busy.id} мигрант* "<b>&" — 5' in caption
    assert f"#{quiet.id} погода — 2" in caption
    assert caption.endswith("👍 2 · 👎 1")


async def test_export_of_alerts_the_delivery_worker_sent(app: BotApp) -> None:
    await app.make_analyst(ANN)
    alerts = [
        job(ANN, 1, HOSTILE, channel_id=321, watch_id=4, priority="high"),
        job(ANN, 2, LONG, channel_id=321, watch_id=4),
        job(ANN, 3, FORMULAS[0], channel_id=321, watch_id=4),
    ]
    for alert in alerts:
        await archive(app.redis, alert.post)
    await enqueue(app.redis, *alerts)
    async with running(app.worker(chat_rate=100, global_rate=100)):
        await app.server.wait_until(lambda: len(app.server.messages_to(ANN)) == 3)
        await settled(app.redis)
    await app.feedback.set(ANN, 321, 2, 4, "noise")
    reply = await app.say(ANN, "/export")
    assert reply.file is not None
    rows = parse_csv(reply.file.data)
    assert [r["text"] for r in rows] == [HOSTILE, LONG, "'" + FORMULAS[0]]
    assert {(r["channel"], r["watch_id"], r["watch_query"], r["language"]) for r in rows} == {
        ("'@source_chan", "4", "мигрант*", "ru")
    }
    assert [r["priority"] for r in rows] == ["high", "normal", "normal"]
    assert [r["feedback"] for r in rows] == ["", "noise", ""]
    assert rows[0]["link"] == "https://t.me/source_chan/1"


async def test_strangers_get_no_reports_and_analysts_see_the_commands(app: BotApp) -> None:
    await seed(app, 555, [1, 2])  # alerts of a revoked analyst, say
    app.server.add_user(555, "Eve")
    reply = await app.say(555, "/export")
    assert reply.text == texts.REQUEST_SENT
    await app.say_nothing_back(555, "/stats")
    assert app.server.documents == [] and app.server.photos == []

    await app.make_analyst(ANN)
    assert "/export" in (await app.say(ANN, "/help")).text
    await set_commands_for(app.bot, ANN, "analyst")
    assert {"stats", "export"} <= set(app.server.commands_for("chat", ANN))
