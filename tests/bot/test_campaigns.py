"""Campaigns end to end through the loopback Bot API server: a surge alert with its chart and
Examples, surge alerts on/off per watch, a story's Spread, and who amplifies whom for admins.

Posts go in as an operator puts them in (`vigil ingest` of a JSON Lines file with fresh dates,
or the posts stream), through the real triage worker with surge counting, the delivery worker
and the aiogram bot.
"""

from __future__ import annotations

import contextlib
from argparse import Namespace
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot import texts
from bot.campaign_views import AmplifyAction, AmplifyCB, SpreadCB, SurgeAction, SurgeCB
from bot.cli import cmd_ingest
from bot.config import Settings
from bot.ingest import ingest_file
from bot.models import Forward, Post
from bot.storage import keys
from bot.storage.campaigns import CampaignRepository, SurgeTracker
from bot.storage.posts import PostQueue
from bot.storage.repos import Repositories
from bot.triage.engine import TriageEngine
from bot.triage.language import make_detector
from bot.triage.surge import SurgeAlert, SurgeConfig
from bot.triage_worker import TriageWorker
from tests.bot.harness import ADMIN, BotApp, running
from tests.delivery.util import settled
from tests.support.botapi import SentMessage
from tests.support.html_check import utf16_len
from tests.support.mtproto import MTProtoServer
from tests.support.mtproto.fixtures import eventually
from tests.support.mtproto.world import Forward as WorldForward
from tests.watchers.test_loopback import FAST
from tests.watchers.test_loopback import _log_in as log_in
from tests.watchers.test_loopback import _settings as loopback_settings
from watchers.joiner import NOT_FOUND_BY_ID, JoinPolicy
from watchers.service import WatcherService

ANN, CAT, DAN = 940, 941, 942
PNG = b"\x89PNG\r\n\x1a\n"
STORY = "Беженцев из соседней области срочно эвакуировали, біженці прибули <&> 🇺🇦 \u202eRTL"


def campaign(now: datetime, n: int = 12, start: int = 100) -> list[Post]:
    return [
        Post(
            channel_id=600 + i % 4,
            message_id=start + i,
            date=now - timedelta(minutes=n - i),
            text=f"{STORY} {i}",
            username=f"chan{i % 4}",
        )
        for i in range(n)
    ]


def write_jsonl(path: Path, posts: list[Post]) -> Path:
    path.write_text("\n".join(p.to_json() for p in posts) + "\n", encoding="utf-8")
    return path


@contextlib.asynccontextmanager
async def triage(app: BotApp) -> AsyncIterator[TriageWorker]:
    """A triage worker with surge counting (no history needed: a fresh Redis has none)."""
    repos = Repositories.build(app.redis)
    tracker = SurgeTracker(
        CampaignRepository(
            app.redis, config=SurgeConfig(min_history_days=0), archive=repos.archive
        )
    )
    worker = TriageWorker.over(repos, TriageEngine(make_detector()), consumer="c1", surge=tracker)
    await worker.load_watches()
    yield worker


def surge_photos(app: BotApp, chat: int) -> list[SentMessage]:
    return [
        m
        for m in app.server.sent
        if m.chat_id == chat and m.method == "sendPhoto" and "Surge" in m.text
    ]


async def test_a_campaign_raises_one_surge_alert_with_its_chart_and_examples(
    app: BotApp, tmp_path: Path, redis_url: str, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for analyst in (ANN, CAT, DAN):
        await app.make_analyst(analyst)
    mine = await app.watches.add(ANN, "біженець")
    cats = await app.watches.add(CAT, "біженець")
    await app.watches.add(DAN, "погода")
    campaigns = app.repos.campaigns
    await campaigns.set_surges(cats.id, False)  # CAT turned surge alerts off for this watch
    now = datetime.now(UTC)
    queue = PostQueue(app.redis)
    # The watch's usual: a few matching posts a day over the last days (history, archived,
    # not alerted: older than the backfill cutoff), in other words than the campaign's.
    usual = [
        Post(
            channel_id=650 + d,
            message_id=d,
            date=now - timedelta(days=d, hours=1),
            text=f"Біженці отримали допомогу, волонтери роздали ковдри {d}",
            username=f"usual{d}",
        )
        for d in range(2, 8)
    ]
    assert (await ingest_file(write_jsonl(tmp_path / "usual.jsonl", usual), queue)).enqueued == 6
    # The campaign as an operator puts it in: `vigil ingest campaign.jsonl`.
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, REDIS_URL=redis_url, VIGIL_DATA_DIR=str(data_dir)
    )
    path = write_jsonl(tmp_path / "campaign.jsonl", campaign(now))
    assert await cmd_ingest(Namespace(path=str(path), channel=None, alert=False), settings) == 0
    assert "campaign.jsonl: read 12, enqueued 12" in capsys.readouterr().out
    async with triage(app) as worker, running(app.worker(chat_rate=100, global_rate=100)):
        await worker.drain()
        alert = await app.server.wait_for(
            lambda m: m.chat_id == ANN and m.method == "sendPhoto", timeout=60
        )
        # More of the campaign within the cooldown: still one alert.
        more = campaign(now, 8, start=500)
        await ingest_file(write_jsonl(tmp_path / "more.jsonl", more), queue)
        await worker.drain()
        await settled(app.redis, 30)
    assert worker.stats.surges == 1
    assert surge_photos(app, ANN) == [alert]
    assert surge_photos(app, CAT) == [] and surge_photos(app, DAN) == []
    assert [m for m in app.server.sent if m.chat_id == DAN] == []
    to_cat = [m for m in app.server.sent if m.chat_id == CAT]
    assert to_cat and not [m for m in to_cat if "Surge" in m.text]  # the posts, no surge
    # Why: the watch, counts, channels, ratio, top channels and new words; the chart attached.
    assert f"watch #{mine.id}" in alert.text and "біженець" in alert.text
    assert "12 posts in 4 channels in the last 3 h" in alert.text and "× usual" in alert.text
    assert "Top channels:" in alert.text and "New words:" in alert.text
    assert alert.file is not None and alert.file.data.startswith(PNG)
    assert (alert.file.width, alert.file.height) == (700, 260)
    assert len(alert.text) <= 1024
    labels = [t for t, _d in alert.buttons()]
    assert labels == [texts.BTN_SURGE_EXAMPLES, texts.BTN_SURGES_OFF]

    # Examples: the surge's posts, five a page, newest first, linked.
    answer, _ = await app.press(ANN, alert, texts.BTN_SURGE_EXAMPLES)
    assert answer is None
    page = await app.server.wait_for(lambda m: m.chat_id == ANN and "page 1/3" in m.text)
    assert page.text.count(STORY[:20]) == 5 and f"{STORY[:20]}" in page.text
    assert "https://t.me/chan3/111" in [e.url for e in page.entities if e.url]
    assert [t for t, _d in page.buttons()] == [texts.BTN_NEXT]
    _, turned = await app.press(ANN, page, texts.BTN_NEXT)
    assert turned is not None and "page 2/3" in turned.text

    # Someone else's surge: refused, whatever the data says.
    forged = SurgeCB(action=SurgeAction.EXAMPLES, watch=mine.id, hour=0).pack()
    assert await app.press_data(CAT, alert, forged) == texts.NOT_ALLOWED
    forged = SurgeCB(action=SurgeAction.ON, watch=cats.id, page=-1).pack()
    assert await app.press_data(ANN, alert, forged) == texts.BUTTON_EXPIRED
    assert await campaigns.surges_off([cats.id]) == {cats.id}

    # Off from the alert itself.
    answer, _ = await app.press(ANN, alert, texts.BTN_SURGES_OFF)
    assert answer == texts.surges_turned(mine.id, False)
    assert await campaigns.surges_off([mine.id]) == {mine.id}


async def test_surge_alerts_are_switched_per_watch_in_watches(app: BotApp) -> None:
    await app.make_analyst(ANN)
    first = await app.watches.add(ANN, "біженець")
    second = await app.watches.add(ANN, "погода дощ*")
    listing = await app.say(ANN, "/watches")
    assert texts.surge_button(first.id) in [t for t, _d in listing.buttons()]
    _, view = await app.press(ANN, listing, texts.surge_button(second.id))
    assert view is not None and "Surge alerts for watch" in view.text and ": on." in view.text
    assert "погода дощ*" in view.text
    answer, view = await app.press(ANN, view, texts.BTN_SURGES_OFF)
    assert answer == texts.surges_turned(second.id, False)
    assert view is not None and ": off." in view.text
    assert await app.repos.campaigns.surges_off([first.id, second.id]) == {second.id}
    # A deleted watch's setting goes with the next switch.
    gone = await app.watches.add(ANN, "тимчасово")
    await app.repos.campaigns.set_surges(gone.id, False)
    assert await app.watches.remove(gone.id, ANN)
    _, view = await app.press(ANN, view, texts.BTN_SURGES_ON)
    assert await app.repos.campaigns.surges_off([gone.id]) == set()
    assert view is not None and ": on." in view.text
    assert await app.repos.campaigns.surges_off([first.id, second.id]) == set()
    _, back = await app.press(ANN, view, texts.BTN_BACK)
    assert back is not None and texts.surge_button(first.id) in [t for t, _d in back.buttons()]


async def _monitor(app: BotApp, channel_id: int, username: str) -> None:
    entry = await app.channels.add(f"@{username}", ADMIN)
    await app.channels.mark_resolved(
        entry.key, channel_id=channel_id, access_hash=1, username=username, title=""
    )


async def test_the_spread_of_a_forwarded_story_lists_its_channels_in_order(app: BotApp) -> None:
    await app.make_analyst(ANN)
    await app.watches.add(ANN, "мигрант*")
    for channel_id, name in ((701, "first_news"), (702, "echo"), (703, "relay"), (704, "copycat")):
        await _monitor(app, channel_id, name)
    now = datetime.now(UTC) - timedelta(hours=1)
    text = "Власти выслали мигрантов из региона этой ночью, сообщают <источники> & очевидцы"
    first = Post(701, 1, now, text=text, username="first_news")
    posts = [
        first,
        replace(first, channel_id=702, message_id=9, date=now + timedelta(minutes=2),
                username="echo", forward=Forward(701, 1, "First News")),
        replace(first, channel_id=703, message_id=4, date=now + timedelta(minutes=7),
                username="relay", forward=Forward(701, 1, "First News")),
        replace(first, channel_id=704, message_id=5, date=now + timedelta(minutes=30),
                username="copycat", text=text + " 🇺🇦"),
        # A story forwarded from a channel nobody monitors.
        Post(702, 20, now, text="Мигрантов перевезли " * 3, username="echo",
             forward=Forward(999, 55, "Unwatched <Source>")),
        Post(703, 21, now + timedelta(minutes=1), text="Мигрантов перевезли " * 3,
             username="relay", forward=Forward(999, 55, "Unwatched <Source>")),
    ]  # fmt: skip
    queue = PostQueue(app.redis)
    async with triage(app) as worker, running(app.worker(chat_rate=100, global_rate=100)):
        for post in posts:
            await queue.enqueue(post)
            await worker.drain()
        alert = await app.server.wait_for(
            lambda m: m.chat_id == ANN and "also in 3 channels" in m.text, timeout=30, edits=True
        )
        # The forwarded story's own alert too: Ann's ledger then knows she received it.
        await app.server.wait_for(
            lambda m: m.chat_id == ANN and "Мигрантов перевезли" in m.text, timeout=30
        )
    assert texts.BTN_SPREAD in [t for t, _d in alert.buttons()]
    answer, _ = await app.press(ANN, alert, texts.BTN_SPREAD)
    assert answer is None
    listing = await app.server.wait_for(lambda m: m.chat_id == ANN and "Amplified by" in m.text)
    chart = [m for m in app.server.sent if m.chat_id == ANN and m.method == "sendPhoto"]
    assert chart and chart[-1].file is not None and chart[-1].file.data.startswith(PNG)
    lines = listing.text.splitlines()
    assert lines[0].startswith("🕸 Spread: 4 channels in 30 min")
    assert lines[1].startswith("First: @first_news")
    order = [line.split(" +")[0] for line in lines if line[:2] in ("1.", "2.", "3.")]
    assert order == ["1. @echo", "2. @relay", "3. @copycat"]
    assert "+2 min · forward of @first_news" in listing.text
    assert "+30 min · copy" in listing.text

    # The forwarded story's origin is not monitored: named as such.
    forged = SpreadCB(channel_id=999, message_id=55).pack()
    assert await app.press_data(ANN, alert, forged) is None
    other = await app.server.wait_for(
        lambda m: m.chat_id == ANN and "unmonitored" in m.text, timeout=30
    )
    assert "Unwatched <Source> (2)" in other.text
    assert "forward of Unwatched <Source>" in other.text
    # 👍 rebuilds the alert's buttons: the Spread button stays.
    _, ticked = await app.press(ANN, alert, texts.BTN_RELEVANT)
    assert ticked is not None
    assert next(t for t, _d in ticked.buttons()) == texts.CHOSEN + texts.BTN_RELEVANT
    assert texts.BTN_SPREAD in [t for t, _d in ticked.buttons()]
    # A story with no copies says so (to an admin: anyone else was not alerted on it).
    nothing = SpreadCB(channel_id=5, message_id=5).pack()
    admin_menu = await app.say(ADMIN, "/admin")
    assert await app.press_data(ADMIN, admin_menu, nothing) == texts.SPREAD_NONE
    assert await app.press_data(ANN, alert, nothing) == texts.NOT_ALLOWED

    # The story's Spread is its recipients' (and admins'): an analyst who was not alerted on
    # it, pressing its data on a message of their own, gets the refusal and nothing else.
    data = SpreadCB(channel_id=701, message_id=1).pack()
    await app.make_analyst(CAT, "Cat")
    own = await app.say(CAT, "/watches")
    app.server.add_user(DAN, "Dan")  # a stranger: no role at all
    theirs = await app.say(DAN, "/start")
    before = len(app.server.sent)
    assert await app.press_data(CAT, own, data) == texts.NOT_ALLOWED
    assert await app.press_data(CAT, own, forged) == texts.NOT_ALLOWED  # the unmonitored one
    assert await app.press_data(DAN, theirs, data) == texts.NOT_ALLOWED
    assert [m for m in app.server.sent[before:] if m.chat_id in (CAT, DAN)] == []
    # An admin sees any story's.
    assert await app.press_data(ADMIN, admin_menu, data) is None
    shown = await app.server.wait_for(
        lambda m: m.chat_id == ADMIN and "Amplified by" in m.text, timeout=30
    )
    assert shown.text == listing.text


async def test_a_desks_spread_button_opens_for_its_members_only(app: BotApp) -> None:
    """An alert sent to a desk (a group) was received by the group: a member analyst who
    presses its Spread there gets it (in private), a stranger in the group does not, and the
    same member forging the data outside the group gets the refusal."""
    desk, mallory = -1005550001, 943
    await app.make_analyst(ANN, "Ann")
    await app.make_analyst(CAT, "Cat")
    app.server.add_user(mallory, "Mallory")
    members = {ADMIN: "creator", ANN: "member", CAT: "member", mallory: "member"}
    app.server.add_group(desk, "Desk <&>", members=members)
    app.server.add_bot_to(desk, by=ADMIN)

    async def active() -> bool:
        found = await app.repos.desks.get(desk)
        return found is not None and found.active

    await eventually(active, what="the desk active")
    watch = await app.watches.add(ANN, "мигрант*")
    routed = await app.say(ANN, f"/route {watch.id} {desk}")
    assert "now goes to" in routed.text
    for channel_id, name in ((711, "first_desk_news"), (712, "echo_desk")):
        await _monitor(app, channel_id, name)
    now = datetime.now(UTC) - timedelta(hours=1)
    text = "Власти выслали мигрантов из региона этой ночью, сообщают очевидцы"
    first = Post(711, 1, now, text=text, username="first_desk_news")
    copy = replace(first, channel_id=712, message_id=3, date=now + timedelta(minutes=4),
                   username="echo_desk", forward=Forward(711, 1, "First"))  # fmt: skip
    queue = PostQueue(app.redis)
    async with triage(app) as worker, running(app.worker(chat_rate=100, global_rate=100)):
        for post in (first, copy):
            await queue.enqueue(post)
            await worker.drain()
        alert = await app.server.wait_for(
            lambda m: m.chat_id == desk and "also in 1 channel" in m.text, timeout=30, edits=True
        )
        data = SpreadCB(channel_id=711, message_id=1).pack()
        assert (data, texts.BTN_SPREAD) in [(d, t) for t, d in alert.buttons()]

        async def press_in_desk(user_id: int) -> str | None:
            query = await app.server.press(user_id, alert.message_id, data, chat_id=desk)
            return (await app.server.wait_callback_answer(query)).text

        before = len(app.server.sent)
        assert await press_in_desk(mallory) == texts.NOT_ALLOWED
        own = await app.say(CAT, "/watches")
        assert await app.press_data(CAT, own, data) == texts.NOT_ALLOWED  # not in the desk
        assert [m for m in app.server.sent[before:] if "Spread" in m.text] == []
        assert await press_in_desk(CAT) is None
        listing = await app.server.wait_for(
            lambda m: m.chat_id == CAT and "Amplified by" in m.text, timeout=30
        )
    assert "1. @echo_desk +4 min · forward of @first_desk_news" in listing.text
    assert [m for m in app.server.sent if m.chat_id == mallory and "Spread" in m.text] == []


async def test_hostile_channel_titles_fit_the_spread_and_amplification_views(
    app: BotApp,
) -> None:
    """Titles with markup, RTL marks and 10,000 characters, on 45 channels: every reply is
    within Telegram's limits (the loopback server refuses any that is not)."""
    await app.make_analyst(ANN)
    await app.watches.add(ANN, "мигрант*")
    hostile = "<b>&amp; \u202eRTL\u200b 🇺🇦 " + "ж" * 10_000
    for i in range(45):
        entry = await app.channels.add(f"@hostile{i:02d}", ADMIN)
        await app.channels.mark_resolved(
            entry.key, channel_id=1000 + i, access_hash=1, username=None, title=f"{i} {hostile}"
        )
    now = datetime.now(UTC) - timedelta(hours=2)
    text = "Власти выслали мигрантов из региона этой ночью, сообщают очевидцы"
    first = Post(1000, 1, now, text=text)
    posts = [first] + [
        replace(first, channel_id=1000 + i, message_id=i, date=now + timedelta(minutes=i),
                forward=Forward(1000, 1, hostile))
        for i in range(1, 45)
    ]  # fmt: skip
    queue = PostQueue(app.redis)
    async with triage(app) as worker, running(app.worker(chat_rate=100, global_rate=100)):
        for post in posts:
            await queue.enqueue(post)
        await worker.drain()
        alert = await app.server.wait_for(
            lambda m: m.chat_id == ANN and "also in 44 channels" in m.text, timeout=30, edits=True
        )
        before = len(app.server.sent)
        answer, _ = await app.press(ANN, alert, texts.BTN_SPREAD)
        assert answer is None
        listing = await app.server.wait_for(
            lambda m: m.chat_id == ANN and "Amplified by" in m.text, timeout=30
        )
    assert listing.text.startswith("🕸 Spread: 45 channels in 44 min")
    assert "<b>&amp; \u202eRTL" in listing.text  # shown as typed, not as markup
    assert utf16_len(listing.text) <= 4096
    photos = [m for m in app.server.sent[before:] if m.method == "sendPhoto"]
    photos = [m for m in photos if "Spread" in m.text]  # (45 posts also make a surge)
    assert len(photos) == 1 and utf16_len(photos[0].text) <= 1024
    assert photos[0].file is not None and photos[0].file.data.startswith(PNG)

    # Amplification: the hostile source (not monitored) is a candidate; view and buttons fit.
    edges = [
        Post(1000 + i, 500 + j, datetime.now(UTC), text="x", forward=Forward(7777, j, hostile))
        for i in range(3)
        for j in range(4)
    ]
    async with app.redis.pipeline(transaction=False) as pipe:
        app.repos.campaigns.forward_commands(pipe, edges)
        await pipe.execute()
    await app.say(ADMIN, "/amplification")
    view = await app.server.wait_for(
        lambda m: m.chat_id == ADMIN and "Pairs" in m.text, timeout=30
    )
    assert utf16_len(view.text) <= 4096 and "<b>&amp;" in view.text
    (button,) = [t for t, _d in view.buttons()]
    assert button.startswith(texts.BTN_ADD_CANDIDATE + "<b>&amp;") and len(button) <= 64


async def test_who_amplifies_whom_for_admins_only(app: BotApp) -> None:
    await app.make_analyst(ANN)
    await _monitor(app, 801, "hub_news")
    await _monitor(app, 802, "spoke_news")
    now = datetime.now(UTC)
    posts = [
        Post(801, 100 + i, now, text=f"post {i}", forward=Forward(990, i, "Feeder <&>"))
        for i in range(4)
    ] + [
        Post(802, 200 + i, now, text=f"post {i}", forward=Forward(801, 100 + i, "Hub"))
        for i in range(3)
    ]
    campaigns = app.repos.campaigns
    async with app.redis.pipeline(transaction=False) as pipe:
        campaigns.forward_commands(pipe, posts)
        await pipe.execute()

    # An analyst: the command is not theirs and its buttons do nothing.
    reply = await app.say(ANN, "/amplification")
    assert "Who amplifies whom" not in reply.text
    before = len(app.server.sent)
    for data in (
        AmplifyCB(action=AmplifyAction.VIEW).pack(),
        AmplifyCB(action=AmplifyAction.ADD, channel_id=990).pack(),
    ):
        assert await app.press_data(ANN, reply, data) == texts.NOT_ALLOWED
    assert await app.channels.by_id(990) is None
    assert [m for m in app.server.sent[before:] if m.chat_id == ANN] == []
    assert app.server.current(ANN, reply.message_id) == reply  # not edited either

    # Admins: from the admin menu's button, or the command.
    menu = await app.say(ADMIN, "/admin")
    answer, _ = await app.press(ADMIN, menu, texts.BTN_AMPLIFICATION)
    assert answer is None
    await app.server.wait_for(lambda m: m.chat_id == ADMIN and "Pairs" in m.text, timeout=30)
    view = await app.say(ADMIN, "/amplification")
    if view.method == "sendPhoto":
        assert view.file is not None and view.file.data.startswith(PNG)
        view = await app.server.wait_for(
            lambda m: m.chat_id == ADMIN and "Pairs" in m.text, timeout=30
        )
    assert "Feeder <&> → @hub_news: 4" in view.text
    assert "@hub_news → @spoke_news: 3" in view.text
    assert "Feeder <&>: 4 forwards by 1 channel" in view.text
    candidate = texts.BTN_ADD_CANDIDATE + "Feeder <&>"
    assert [t for t, _d in view.buttons()] == [candidate]
    answer, _ = await app.press(ADMIN, view, candidate)
    assert answer is None
    added = await app.server.wait_for(lambda m: m.chat_id == ADMIN and "id:990" in m.text)
    assert added is not None
    assert any(c.ref == "id:990" for c in await app.channels.list())


async def test_a_candidate_added_by_its_button_is_found_and_watched_by_the_watcher(
    app: BotApp, telegram: MTProtoServer, data_dir: Path
) -> None:
    """The ➕ adds a channel by id (forward headers give no username, and an id carries no
    access hash): the real watcher, on the loopback MTProto server, finds it through a
    monitored channel's post forwarded from it, joins it and watches its posts; a candidate
    whose forwarded post is gone fails with a reason that says what to do."""
    settings = loopback_settings(telegram, data_dir, "one")
    one = await log_in(telegram, settings, "one", "+447700900041")
    hub = telegram.add_channel("hub_news", title="Hub news")
    hostile = "Feeder <b>&amp; \u202eRTL " + "ж" * 10_000
    feeder = telegram.add_channel("feeder_src", title=hostile)
    gone = telegram.add_channel("gone_src", title="Gone <source>")
    await app.channels.add("@hub_news", ADMIN)
    service = WatcherService(
        settings,
        Repositories.build(app.redis),
        intervals=FAST,
        join_policy=JoinPolicy(spacing_s=0.0),
    )
    try:
        await service.start()

        async def joined(channel_id: int) -> bool:
            found = await app.channels.by_id(channel_id)
            return found is not None and found.state == "joined"

        await eventually(lambda: joined(hub.id), what="hub joined")
        originals = [await telegram.post(feeder, f"Оригинал {i}: беженцы") for i in range(3)]
        for original in originals:
            await telegram.post(hub, original.text, forward=WorldForward(feeder.id, original.id))
        lost_copies = []
        for i in range(3):
            lost = await telegram.post(gone, f"Пропавший источник {i}")
            copy = await telegram.post(hub, lost.text, forward=WorldForward(gone.id, lost.id))
            lost_copies.append(copy.id)

        async def forwarded() -> bool:
            entries = await app.redis.xrange(keys.POSTS_STREAM)
            return sum(1 for _id, f in entries if '"forward"' in f["post"]) == 6

        await eventually(forwarded, what="the forwards in the posts stream")
        async with triage(app) as worker:
            await worker.drain()
        assert [c[0] for c in await app.repos.campaigns.forwarded_via(feeder.id)] == [hub.id]

        # The admin's view: both unmonitored sources are candidates, each with its ➕.
        await app.say(ADMIN, "/amplification")
        view = await app.server.wait_for(
            lambda m: m.chat_id == ADMIN and "Pairs" in m.text, timeout=30
        )
        assert f"{feeder.id} → Hub news: 3" in view.text
        assert [t for t, _d in view.buttons()] == [
            texts.BTN_ADD_CANDIDATE + str(feeder.id),
            texts.BTN_ADD_CANDIDATE + str(gone.id),
        ]

        # The source whose forwarded posts were deleted since: added, but nothing shows it to
        # the account any more.
        await telegram.delete(hub, *lost_copies)
        answer, _ = await app.press(ADMIN, view, texts.BTN_ADD_CANDIDATE + str(gone.id))
        assert answer is None
        added = await app.server.wait_for(
            lambda m: m.chat_id == ADMIN and f"id:{gone.id}" in m.text, timeout=10
        )
        assert added.text == texts.candidate_added(f"id:{gone.id}", "pending")

        async def failed() -> bool:
            found = await app.channels.by_id(gone.id)
            return found is not None and found.state == "failed"

        await eventually(failed, what="the lost source failed")
        lost_entry = await app.channels.by_id(gone.id)
        assert lost_entry is not None and lost_entry.reason == NOT_FOUND_BY_ID
        assert one.user_id not in gone.participants

        # The feeder: found through the hub's post, joined, and its posts are watched.
        answer, _ = await app.press(ADMIN, view, texts.BTN_ADD_CANDIDATE + str(feeder.id))
        assert answer is None
        await eventually(lambda: joined(feeder.id), what="the feeder joined")
        entry = await app.channels.by_id(feeder.id)
        assert entry is not None and entry.username == "feeder_src" and entry.account == "one"
        assert entry.access_hash == feeder.access_hash and entry.title == hostile
        assert one.user_id in feeder.participants
        await telegram.post(feeder, "Свежий пост источника после добавления")

        async def watched() -> bool:
            entries = await app.redis.xrange(keys.POSTS_STREAM)
            return any(
                Post.from_json(f["post"]).channel_id == feeder.id
                and "Свежий пост" in Post.from_json(f["post"]).text
                for _id, f in entries
            )

        await eventually(watched, what="the feeder's new post in the posts stream")
        assert not telegram.unimplemented, telegram.unimplemented

        # The admin's channel list and card name it as Telegram does, within Telegram's limits.
        menu = await app.say(ADMIN, "/admin")
        _, listing = await app.press(ADMIN, menu, texts.BTN_CHANNELS)
        assert listing is not None
        _, card = await app.press(ADMIN, listing, "Feeder <b>&amp;")
        assert card is not None and f"ref: id:{feeder.id}" in card.text
        assert "state: joined" in card.text and "<b>&amp; \u202eRTL" in card.text
        for message in (view, added, listing, card):
            assert utf16_len(message.text) <= 4096
        # Known only by id and never forwarded here: refused, with what to do instead.
        unknown = AmplifyCB(action=AmplifyAction.ADD, channel_id=123_456).pack()
        assert await app.press_data(ADMIN, view, unknown) == texts.CANDIDATE_UNREACHABLE
        assert await app.channels.by_id(123_456) is None
    finally:
        await service.close()


@pytest.mark.parametrize("days", [14])
async def test_stats_shows_each_watchs_trend(app: BotApp, days: int) -> None:
    await app.make_analyst(ANN)
    watch = await app.watches.add(ANN, "біженець")
    await app.watches.add(ANN, "тиша")
    now = datetime.now(UTC)
    from bot.triage.surge import SurgeCounts

    counts = SurgeCounts()
    for d in range(days):
        for i in range(d + 1):  # one more post a day
            at = (now - timedelta(days=days - 1 - d)).timestamp()
            counts.add_post(at, 600, d * 100 + i, [watch.id])
    await app.repos.campaigns.count(counts, now=now.timestamp())
    reply = await app.say(ANN, "/stats")
    assert reply.method == "sendPhoto" and reply.file is not None
    assert (reply.file.width, reply.file.height) == (900, 700)  # alerts and the trends panel
    assert "Watch trends" in reply.text
    assert f"#{watch.id} біженець: 77 ↗ (was 28)" in reply.text
    assert "тиша" not in reply.text  # no matching posts: no trend line


async def test_a_shared_watchs_surge_shows_its_examples_to_its_subscribers_only(
    app: BotApp,
) -> None:
    await app.make_analyst(ANN)
    await app.make_analyst(CAT)
    shared = await app.shared.add("біженець", name="Refugees <&>", created_by=ADMIN)
    await app.shared.subscribe(shared.id, ANN)
    now = datetime.now(UTC)
    posts = campaign(now, 6)
    await app.repos.archive.put_many(posts)
    surge = SurgeAlert(-shared.id, 6, 4, 3, 6.0, ((600, 2),), (), 1.0, 490_001)
    refs = [(p.channel_id, p.message_id) for p in posts]
    await app.repos.campaigns.record_surges([surge], {-shared.id: refs})
    message = await app.say(ANN, "/watches")
    data = SurgeCB(action=SurgeAction.EXAMPLES, watch=-shared.id, hour=490_001, page=-1).pack()
    assert await app.press_data(ANN, message, data) is None
    page = await app.server.wait_for(lambda m: m.chat_id == ANN and "page 1/2" in m.text)
    assert f"watch S{shared.id}" in page.text
    assert app.server.current(ANN, message.message_id) == message  # the list stays
    other = await app.say(CAT, "/watches")
    assert await app.press_data(CAT, other, data) == texts.NOT_ALLOWED
