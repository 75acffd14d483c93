from __future__ import annotations

import time
from datetime import UTC, datetime

from bot import texts
from bot.models import Post
from bot.storage import keys
from bot.storage.mutes import watch_target
from tests.bot.harness import BotApp
from tests.support.botapi import MAX_TEXT
from tests.support.html_check import utf16_len

ANN = 700


async def test_watch_commands_with_bad_and_good_input(app: BotApp) -> None:
    await app.make_analyst(ANN)
    assert (await app.say(ANN, "/watch")).text.startswith("Usage: /watch QUERY")
    bad = await app.say(ANN, '/watch мигрант* AND ("open <b>&')
    assert "⚠️ at " in bad.text and "^" in bad.text and "<b>&" in bad.text
    assert "Usage: /watch QUERY" in bad.text
    only_negative = await app.say(ANN, "/watch -spam")
    assert only_negative.text.startswith("⚠️")
    long_query = await app.say(ANN, "/watch " + "слово " * 200)
    assert long_query.text.startswith("⚠️")
    added = await app.say(ANN, "/watch мигрант* NEAR/5 депорт*")
    assert added.text.startswith("✅ Watch #1 added")
    await app.say(ANN, '/watch "Milli Məclis" lang:az')

    listing = await app.say(ANN, "/watches")
    assert "Your watches (2)" in listing.text and "#1" in listing.text
    _answer, after = await app.press(ANN, listing, "⏸ #1")
    assert after is not None and "paused" in after.text
    assert (await app.watches.get(1)).paused  # type: ignore[union-attr]
    _answer, after = await app.press(ANN, listing, "Priority #2")
    assert after is not None and after.text == "Priority of watch #2:"
    _answer, after = await app.press(ANN, after, "urgent")
    assert (await app.watches.get(2)).priority == "urgent"  # type: ignore[union-attr]
    _answer, after = await app.press(ANN, listing, "🗑 #2")
    assert await app.watches.get(2) is None

    assert (await app.say(ANN, "/unwatch")).text.startswith("Usage: /unwatch ID")
    assert "is not a watch number" in (await app.say(ANN, "/unwatch abc<&>")).text
    assert (await app.say(ANN, "/unwatch 999")).text == "⚠️ You have no watch #999."
    assert (await app.say(ANN, "/unwatch #1")).text == "🗑 Watch #1 deleted."
    actions = [e.action for e in await app.audit.recent()]
    assert actions == [
        "watch.remove",
        "watch.remove",
        "watch.priority",
        "watch.pause",
        "watch.add",
        "watch.add",
    ]


async def test_other_owners_watch_cannot_be_touched(app: BotApp) -> None:
    await app.make_analyst(ANN)
    await app.make_analyst(ANN + 1)
    theirs = await app.watches.add(ANN + 1, "секрет")
    assert (await app.say(ANN, f"/unwatch {theirs.id}")).text.startswith("⚠️ You have no watch")
    assert "no such watch" in (await app.say(ANN, f"/mute w{theirs.id}")).text
    assert await app.watches.get(theirs.id) is not None


async def test_settings_mute_quiet_digest(app: BotApp) -> None:
    await app.make_analyst(ANN)
    await app.watches.add(ANN, "слово")
    assert (await app.say(ANN, "/mute")).text.startswith("Usage: /mute")
    assert (await app.say(ANN, "/mute w1 2 years")).text.startswith("Usage: /mute")
    assert "not a duration" in (await app.say(ANN, "/mute w1 2x")).text
    assert "no such watch" in (await app.say(ANN, "/mute @nonexistent_chan")).text
    muted = await app.say(ANN, "/mute w1 2h")
    assert muted.text.startswith("🔕 watch #1 muted until")
    assert watch_target(1) in await app.mutes.active(ANN)
    assert (await app.say(ANN, "/unmute w1")).text == "🔔 watch #1 unmuted."
    assert (await app.say(ANN, "/unmute w1")).text == "watch #1 was not muted."

    assert "not a time of day" in (await app.say(ANN, "/quiet 25:00-07:00")).text
    assert (await app.say(ANN, "/quiet")).text.startswith("Usage: /quiet")
    assert (await app.say(ANN, "/quiet 22:00-07:00")).text.startswith("🌙 Quiet hours 22:00–07:00")
    assert (await app.say(ANN, "/quiet off")).text == texts.QUIET_OFF

    assert "not one of off, hourly, daily" in (await app.say(ANN, "/digest weekly")).text
    assert "every day at 08:00" in (await app.say(ANN, "/digest daily")).text

    assert "not a time zone" in (await app.say(ANN, "/settings tz Mars/Olympus")).text
    assert "not a time zone" in (await app.say(ANN, "/settings tz ../../etc/passwd")).text
    assert "Europe/Kyiv" in (await app.say(ANN, "/settings tz Europe/Kyiv")).text
    assert "not one of" in (await app.say(ANN, "/settings threshold extreme")).text
    assert "high" in (await app.say(ANN, "/settings threshold high")).text
    assert (await app.say(ANN, "/settings colour blue")).text.startswith("Usage:")
    view = await app.say(ANN, "/settings")
    assert "Europe/Kyiv" in view.text and "high" in view.text and "daily" in view.text

    person = await app.users.get(ANN)
    assert person is not None and (person.tz, person.threshold, person.digest, person.quiet) == (
        "Europe/Kyiv",
        "high",
        "daily",
        None,
    )
    assert (await app.say(ANN, "hello there")).text == texts.UNKNOWN_COMMAND
    assert (await app.say(ANN, "/nonsense")).text == texts.UNKNOWN_COMMAND
    huge = await app.say(ANN, "/watch " + "я" * 4000)
    assert huge.text.startswith("⚠️")


async def test_channels_and_test_against_the_archive(app: BotApp) -> None:
    await app.make_analyst(ANN)
    assert (await app.say(ANN, "/channels")).text == texts.NO_CHANNELS
    await app.channels.add("@rus_news", 1)
    assert "@rus_news" in (await app.say(ANN, "/channels")).text
    now = time.time()
    texts_ = [
        "Власти требуют выслать мигрантов из города <немедленно> & без суда",
        "Погода сегодня хорошая",
        "Мигранты & депортация: новый закон",
    ]
    for i, text in enumerate(texts_, start=1):
        post = Post(
            channel_id=77,
            message_id=i,
            date=datetime.fromtimestamp(now - 3600, UTC),
            text=text,
            username="rus_news",
            title="Rus <News>",
        )
        await app.redis.set(keys.archive_post(77, i), post.to_json())
        await app.redis.zadd(keys.archive_index(77), {str(i): now - 3600})
    await app.redis.sadd(keys.ARCHIVE_CHANNELS, "77")
    assert (await app.say(ANN, "/test")).text.startswith("Usage: /test")
    assert "⚠️" in (await app.say(ANN, "/test (мигрант")).text
    result = await app.say(ANN, "/test мигрант*", timeout=30)
    assert "2 of 3 archived posts match" in result.text
    assert "Rus <News>" in result.text and "<немедленно> & без суда" in result.text
    assert any(s.lower().startswith("мигрант") for s in result.spans("bold"))


async def test_settings_urgent_suggest_and_learning_state(app: BotApp) -> None:
    await app.make_analyst(ANN)
    view = await app.say(ANN, "/settings")
    assert "Urgent alerts in quiet hours: arrive at once (urgent on)" in view.text
    assert "Learning from your 👍 / 👎: on" in view.text and "Suggestions: off" in view.text
    assert "/settings urgent on|off" in view.text
    assert (await app.say(ANN, "/settings urgent off")).text.startswith("Urgent alerts wait")
    assert (await app.say(ANN, "/settings suggest on")).text.startswith("🧭 Suggestions on")
    assert (await app.say(ANN, "/settings urgent maybe")).text.startswith("Usage:")
    person = await app.users.get(ANN)
    assert person is not None and (person.urgent_quiet, person.suggest) == (False, True)
    view = await app.say(ANN, "/settings")
    assert "wait like the others (urgent off)" in view.text and "Suggestions: on" in view.text
    assert (await app.say(ANN, "/settings urgent on")).text.startswith("🔴 Urgent alerts arrive")
    person = await app.users.get(ANN)
    assert person is not None and person.urgent_quiet


async def test_channels_list_pages(app: BotApp) -> None:
    await app.make_analyst(ANN)
    for i in range(45):
        await app.channels.add(f"@chan_{i:02d}_" + "x" * 20, 1)
    first = await app.say(ANN, "/channels")
    assert "Monitored channels (45) — page 1/3" in first.text
    _a, page = await app.press(ANN, first, "Next")
    _a, page = await app.press(ANN, page, "Next")  # type: ignore[arg-type]
    assert page is not None and "page 3/3" in page.text and page.text.count("\n• ") == 5
    assert [t for t, _d in page.buttons()] == ["◀ Prev"]
    assert app.server.unanswered_callbacks() == []


async def test_every_watches_page_fits_with_long_hostile_queries(app: BotApp) -> None:
    await app.make_analyst(ANN)
    word = "мигрант😀"
    for i in range(20):
        query = " OR ".join(f"/<b>&{word}{i}x{j}/" for j in range(40))[:490]
        query = query[: query.rfind(" OR ")]
        await app.watches.add(ANN, query)
    page = await app.say(ANN, "/watches")
    for number in range(1, 5):
        assert f"Your watches (20) — page {number}/4" in page.text
        assert utf16_len(page.text) <= MAX_TEXT and len(page.buttons()) <= 100
        if number < 4:
            _a, after = await app.press(ANN, page, "Next")
            assert after is not None
            page = after
    assert app.server.unanswered_callbacks() == []
