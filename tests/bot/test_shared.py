"""Shared watches as an admin and analysts use them: the real bot over HTTP, a real Redis, and
the real triage and delivery workers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from bot import texts
from bot.callback_data import (
    AdminPrompt,
    AdminPromptCB,
    AdminView,
    AdminViewCB,
    SharedAction,
    SharedAdminAction,
    SharedAdminCB,
    SharedCB,
    SharedPriorityCB,
    WatchAction,
    WatchCB,
)
from bot.models import Post
from bot.storage import watches as watches_module
from bot.storage.posts import PostQueue
from bot.storage.repos import Repositories
from bot.triage.engine import TriageEngine
from bot.triage.language import make_detector
from bot.triage.priority import Priority
from bot.triage_worker import TriageWorker
from handlers.commands_scope import ANALYST_COMMANDS
from tests.bot.harness import ADMIN, BotApp, running
from tests.support.botapi import SentMessage

ANN, BOB, MALLORY = 720, 721, 730
QUERY = '/zangez[uy]r/ OR "Syunik corridor" -/<b>&amp;/'
CANONICAL = '/zangez[uy]r/ OR "syunik corridor" -/<b>&amp;/'
NAME = 'Corridor <&> "names"'


def subscribe(shared_id: int, page: int = 0) -> str:
    return SharedCB(action=SharedAction.SUBSCRIBE, shared_id=shared_id, page=page).pack()


def one(action: SharedAdminAction, shared_id: int, page: int = 0) -> str:
    return SharedAdminCB(action=action, shared_id=shared_id, page=page).pack()


LIST = AdminViewCB(view=AdminView.SHARED).pack()


@contextlib.asynccontextmanager
async def triage_running(app: BotApp) -> AsyncIterator[None]:
    triage = TriageWorker.over(
        Repositories.build(app.redis), TriageEngine(make_detector()), consumer="t1"
    )
    stop = asyncio.Event()
    task = asyncio.create_task(triage.run(stop, block_ms=50))
    try:
        yield
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)


async def next_to(app: BotApp, user_id: int, after: int, contains: str = "") -> SentMessage:
    return await app.server.wait_for(
        lambda m: m.chat_id == user_id and contains in m.text, after=after
    )


async def test_admin_adds_one_analyst_subscribes_and_gets_its_alerts(app: BotApp) -> None:
    await app.make_analyst(ANN, "Ann")
    menu = await app.say(ADMIN, "/admin")
    _a, listing = await app.press(ADMIN, menu, "Shared watches")
    assert listing is not None and listing.text.startswith("Shared watches (0)")
    assert texts.NO_SHARED_ADMIN in listing.text
    after = len(app.server.sent)
    await app.press(ADMIN, listing, "Add shared watch")
    prompt = await next_to(app, ADMIN, after)
    assert prompt.text.startswith("Send the query of the shared watch")

    # A malformed query: the same clear error as /watch, nothing stored, still adding.
    bad = await app.say(ADMIN, 'мигрант* AND ("open <b>&')
    assert "⚠️ at " in bad.text and "^" in bad.text and '("open <b>&' in bad.text
    assert texts.USAGE_SHARED_ADD in bad.text
    assert await app.shared.all() == []
    # A name on the first line, the query (a regex: it starts with a slash) on the second.
    added = await app.say(ADMIN, f"{NAME}\n{QUERY}")
    assert added.text.startswith(f"🔗 Shared watch S1 {NAME} added: {CANONICAL} (priority")
    assert (await app.say(ADMIN, "мигрант")).text == texts.UNKNOWN_COMMAND  # no longer adding
    _a, listing = await app.press(ADMIN, added, "Back")
    assert listing is not None and "Shared watches (1)" in listing.text
    assert f"S1 {NAME} {CANONICAL} — 0 subscribers" in listing.text

    # The analyst finds it in /help, the command menu and /shared, and subscribes.
    assert "shared" in [c for c, _d in ANALYST_COMMANDS]
    assert "shared" in app.server.commands_for("chat", ADMIN)
    assert "/shared" in (await app.say(ANN, "/help")).text
    offer = await app.say(ANN, "/shared")
    assert f"S1 {NAME} {CANONICAL}" in offer.text
    after = len(app.server.sent)
    answer, offer_now = await app.press(ANN, offer, "Subscribe S1")
    assert answer == texts.SHARED_SUBSCRIBED
    told = await next_to(app, ANN, after, "Subscribed")
    assert told.text.startswith(f"✅ Subscribed to S1 {NAME}: its alerts come as your watch #1")
    assert offer_now is not None and "✅ subscribed (your watch #1)" in offer_now.text
    assert [b for b, _ in offer_now.buttons()] == ["✖️ Unsubscribe S1"]
    # Twice (a stale button, or a double tap): a no-op with a clear reply.
    after = len(app.server.sent)
    assert await app.press_data(ANN, offer, subscribe(1)) == texts.SHARED_ALREADY
    assert (await next_to(app, ANN, after)).text == texts.shared_already(1, 1)
    assert [w.id for w in await app.watches.list_for(ANN)] == [1]

    mine = await app.say(ANN, "/watches")
    assert f"#1 {CANONICAL} 🔗 shared S1 {NAME}" in mine.text
    assert [b for b, _ in mine.buttons()] == ["⏸ #1", "📈 #1", "🗑 #1"]  # no priority: admins

    # A post is triaged; the alert names the watch like any other.
    async with triage_running(app), running(app.worker(chat_rate=100, global_rate=100)):
        await PostQueue(app.redis).enqueue(
            Post(
                channel_id=4242,
                message_id=1,
                date=datetime(2026, 3, 1, tzinfo=UTC),
                text="Talks on the Zangezur corridor <resumed> & stalled again",
                username="caucasus_news",
                title="Caucasus <News>",
            )
        )
        alert = await app.server.wait_for(
            lambda m: m.chat_id == ANN and "Zangezur" in m.text, timeout=30
        )
    assert f"Watch #1: {QUERY}" in alert.text
    assert "<resumed> & stalled" in alert.text
    assert "Zangezur" in alert.spans("bold")

    # The admin changes the priority; the subscriber's watch follows.
    menu = await app.say(ADMIN, "/admin")
    _a, listing = await app.press(ADMIN, menu, "Shared watches")
    assert listing is not None and "1 subscriber" in listing.text
    _a, card = await app.press(ADMIN, listing, "S1")
    assert (
        card is not None and "subscribers: 1" in card.text and "priority: 🟢 normal" in card.text
    )
    answer, card = await app.press(ADMIN, card, "urgent")
    assert answer == "Priority urgent"
    assert card is not None and "priority: 🔴 urgent" in card.text
    assert (await app.watches.get(1)).priority == "urgent"  # type: ignore[union-attr]
    assert "🔴 #1" in (await app.say(ANN, "/watches")).text

    entries = [(e.actor, e.action, e.target) for e in await app.audit.recent()]
    assert entries == [
        (ADMIN, "shared.priority", "shared 1"),
        (ANN, "shared.subscribe", "shared 1"),
        (ADMIN, "shared.add", "shared 1"),
    ]
    assert app.server.unanswered_callbacks() == []


async def test_removal_tells_each_subscriber_once_and_their_watches_go(app: BotApp) -> None:
    await app.make_analyst(ANN, "Ann")
    await app.make_analyst(BOB, "Bob")
    await app.shared.add(QUERY, name=NAME)
    for uid in (ANN, BOB):
        offer = await app.say(uid, "/shared")
        assert (await app.press(uid, offer, "Subscribe S1"))[0] == texts.SHARED_SUBSCRIBED
    linked = {w.owner_id: w.id for w in await app.watches.all()}
    assert set(linked) == {ANN, BOB}

    menu = await app.say(ADMIN, "/admin")
    _a, listing = await app.press(ADMIN, menu, "Shared watches")
    assert listing is not None and "2 subscribers" in listing.text
    _a, card = await app.press(ADMIN, listing, "S1")
    assert card is not None
    _a, confirm = await app.press(ADMIN, card, "Remove")
    assert confirm is not None and confirm.text.startswith(f"Remove shared watch S1 {NAME}")
    assert "Its 2 subscribers will be told" in confirm.text
    assert await app.shared.get(1) is not None  # not before the confirmation
    answer, after = await app.press(ADMIN, confirm, "Yes, remove")
    assert answer == "S1 removed; 2 subscribers told."
    assert after is not None and after.text.startswith("Shared watches (0)")
    # A second tap on the same confirmation (as a slow client sends it): nothing more.
    assert await app.press_data(ADMIN, after, one(SharedAdminAction.REMOVE_OK, 1)) == (
        texts.SHARED_GONE
    )
    assert await app.shared.all() == [] and await app.watches.all() == []

    async with running(app.worker(chat_rate=100, global_rate=100)):
        for uid in (ANN, BOB):
            await app.server.wait_for(lambda m, uid=uid: m.chat_id == uid and "removed" in m.text)
        await asyncio.sleep(0.5)
    for uid in (ANN, BOB):
        notices = [m for m in app.server.messages_to(uid) if "removed the shared watch" in m.text]
        assert len(notices) == 1
        assert f"S1 {NAME} {CANONICAL}" in notices[0].text
        assert f"Your watch #{linked[uid]} that followed it is deleted" in notices[0].text
    assert (await app.say(ANN, "/watches")).text == texts.NO_WATCHES.replace("<code>", "").replace(
        "</code>", ""
    )
    assert (await app.say(ANN, "/shared")).text.startswith("There are no shared watches yet")
    removal = (await app.audit.recent())[0]
    assert (removal.actor, removal.action, removal.target) == (ADMIN, "shared.remove", "shared 1")
    assert "2 subscribers" in removal.detail
    assert app.server.unanswered_callbacks() == []


async def test_unsubscribe_by_button_by_unwatch_and_the_watch_limit(
    app: BotApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    await app.make_analyst(ANN, "Ann")
    await app.shared.add("коридор")
    await app.shared.add("граница", name="Border")
    offer = await app.say(ANN, "/shared")
    await app.press(ANN, offer, "Subscribe S1")
    answer, now = await app.press(ANN, offer, "Subscribe S2")
    assert answer == texts.SHARED_SUBSCRIBED
    assert now is not None and [b for b, _ in now.buttons()] == [
        "✖️ Unsubscribe S1",
        "✖️ Unsubscribe S2",
    ]

    # The linked watch's priority is the admins': the button is absent and forged data refused.
    mine = await app.say(ANN, "/watches")
    for action in (WatchAction.PRIORITY, WatchAction.SET_PRIORITY):
        forged = WatchCB(action=action, watch_id=1, priority="low").pack()
        assert await app.press_data(ANN, mine, forged) == texts.SHARED_PRIORITY_FIXED
    assert (await app.watches.get(1)).priority == "normal"  # type: ignore[union-attr]

    after = len(app.server.sent)
    answer, now = await app.press(ANN, offer, "Unsubscribe S2")
    assert answer == texts.SHARED_UNSUBSCRIBED
    assert (await next_to(app, ANN, after)).text == texts.shared_unsubscribed(2, 2)
    assert await app.watches.get(2) is None
    assert now is not None and "Subscribe S2" in [b for b, _ in now.buttons()][1]
    unsub = SharedCB(action=SharedAction.UNSUBSCRIBE, shared_id=2).pack()
    assert await app.press_data(ANN, offer, unsub) == texts.SHARED_NOT_SUBSCRIBED

    reply = await app.say(ANN, "/unwatch 1")
    assert reply.text == "🗑 Watch #1 deleted: you are unsubscribed from shared watch S1."
    assert await app.shared.subscriptions(ANN, [1, 2]) == {}
    # Subscribing again, then the 🗑 button in /watches: also an unsubscription.
    await app.press(ANN, await app.say(ANN, "/shared"), "Subscribe S1")
    mine = await app.say(ANN, "/watches")
    answer, _ = await app.press(ANN, mine, "🗑 #3")
    assert answer == "Unsubscribed"
    assert await app.shared.subscriptions(ANN, [1]) == {}
    assert (await app.shared.get(1)).subscribers == 0  # type: ignore[union-attr]

    # The per-analyst watch limit applies to subscriptions too.
    monkeypatch.setattr(watches_module, "MAX_WATCHES_PER_ANALYST", 1)
    await app.watches.add(ANN, "своё")
    answer = await app.press_data(ANN, offer, subscribe(1))
    assert answer == "You already have 1 watches; remove one first."
    assert await app.shared.subscriptions(ANN, [1]) == {}

    actions = [e.action for e in await app.audit.recent()]
    assert actions == [
        "shared.unsubscribe",
        "shared.subscribe",
        "shared.unsubscribe",
        "shared.unsubscribe",
        "shared.subscribe",
        "shared.subscribe",
    ]
    assert app.server.unanswered_callbacks() == []


async def test_forged_callbacks_on_shared_watches_do_nothing(app: BotApp) -> None:
    await app.shared.add("коридор")
    # A stranger, with a bot message in their chat, forges a subscription.
    app.server.add_user(MALLORY, "Mallory")
    reply = await app.say(MALLORY, "hi")
    assert await app.press_data(MALLORY, reply, subscribe(1)) == texts.NOT_ALLOWED
    assert await app.press_data(MALLORY, reply, LIST) == texts.NOT_ALLOWED
    assert await app.shared.subscriptions(MALLORY, [1]) == {}

    # An analyst forges every admin action on shared watches.
    await app.make_analyst(ANN)
    msg = await app.say(ANN, "/help")
    for forged in (
        LIST,
        AdminPromptCB(what=AdminPrompt.SHARED).pack(),
        one(SharedAdminAction.OPEN, 1),
        SharedPriorityCB(shared_id=1, priority=Priority.URGENT).pack(),
        one(SharedAdminAction.REMOVE, 1),
        one(SharedAdminAction.REMOVE_OK, 1),
    ):
        assert await app.press_data(ANN, msg, forged) == texts.NOT_ALLOWED
    found = await app.shared.get(1)
    assert found is not None and found.priority == "normal"
    assert (await app.say(ANN, "граница")).text == texts.UNKNOWN_COMMAND  # not a shared query
    assert [s.id for s in await app.shared.all()] == [1]
    assert await app.audit.recent() == []

    # Stale or malformed references from the admin are refused politely.
    menu = await app.say(ADMIN, "/admin")
    for ref in (99, -1, 10**19, 0):
        assert await app.press_data(ADMIN, menu, one(SharedAdminAction.OPEN, ref)) == (
            texts.SHARED_GONE
        )
    # Data that does not unpack (not a number, not a priority) reaches no handler at all.
    for garbage in ("asw:o:abc:0", "asw:o:1", "asp:1:extreme:0", "asp:1:URGENT:0", "asw:zz:1:0"):
        assert await app.press_data(ADMIN, menu, garbage) == texts.NOT_ALLOWED
    found = await app.shared.get(1)
    assert found is not None and found.priority == "normal"
    assert await app.press_data(ANN, msg, subscribe(99)) == texts.SHARED_GONE
    assert app.server.unanswered_callbacks() == []


async def test_long_lists_page(app: BotApp) -> None:
    await app.make_analyst(ANN)
    for i in range(10):
        await app.shared.add(f"слово{i}", name=f"Word {i}")
    menu = await app.say(ADMIN, "/admin")
    _a, listing = await app.press(ADMIN, menu, "Shared watches")
    assert listing is not None and listing.text.startswith("Shared watches (10) — page 1/2")
    assert sum(" S" in b for b, _ in listing.buttons()) == 8
    _a, listing = await app.press(ADMIN, listing, "Next")
    assert listing is not None and "page 2/2" in listing.text
    assert [b for b, _ in listing.buttons()][:2] == ["🟢 S9 Word 8", "🟢 S10 Word 9"]
    _a, card = await app.press(ADMIN, listing, "S10")
    _a, listing = await app.press(ADMIN, card, "Back")  # back to the same page
    assert listing is not None and "page 2/2" in listing.text

    offer = await app.say(ANN, "/shared")
    assert "Shared watches (10) — page 1/2" in offer.text
    _a, offer_now = await app.press(ANN, offer, "Next")
    assert offer_now is not None and "page 2/2" in offer_now.text and "S7 Word 6" in offer_now.text
    _a, offer_now = await app.press(ANN, offer, "Subscribe S9")
    assert offer_now is not None and "page 2/2" in offer_now.text
    assert "S9 Word 8 слово8 ✅ subscribed" in offer_now.text


def test_callback_data_fits_telegrams_64_bytes() -> None:
    big = 10**11
    for data in (
        one(SharedAdminAction.REMOVE_OK, big, 10**5),
        SharedPriorityCB(shared_id=big, priority=Priority.NORMAL, page=10**5).pack(),
        SharedCB(action=SharedAction.UNSUBSCRIBE, shared_id=big, page=10**5).pack(),
    ):
        assert len(data.encode()) <= 64, data
