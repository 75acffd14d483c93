"""Desks as a team uses them: the real bot over HTTP against the loopback Bot API server (with
its groups and channels), a real Redis, and the real triage and delivery workers.

An admin routes a shared watch to a group the bot was added to and the group gets its alerts;
in the group the bot answers only approved members' commands (a stranger's get nothing, plain
talk gets nothing, the admin menu never opens there); a 👍 pressed in the group counts for the
person who pressed it; the bot removed pauses the route and tells its owner, added back resumes
it. An analyst routes their own watch only to a group they are in, never to a channel; an admin
routes to a channel. A send refused with 403 ("bot was kicked", the update lost) pauses too.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime

from bot import texts
from bot.callback_data import DeskRouteCB, FeedbackAction, FeedbackCB
from bot.delivery.ratelimit import RateLimiter, RateLimits
from bot.models import Post
from bot.storage.posts import PostQueue
from bot.storage.repos import Repositories
from bot.triage.engine import TriageEngine
from bot.triage.language import make_detector
from bot.triage_worker import TriageWorker
from tests.bot.harness import ADMIN, BotApp, running
from tests.delivery.util import enqueue, job, settled
from tests.support.botapi import SentMessage

ANN, BOB, MALLORY = 820, 821, 830
DESK = -1001234567890
CHANNEL = -1009876543210
TITLE = 'Desk <&> "ops" 🛰 \u202eעברית'
SOURCE = 4242
_ids = itertools.count(1)


@contextlib.asynccontextmanager
async def workers(app: BotApp) -> AsyncIterator[None]:
    """The triage and delivery workers, as the service runs them."""
    triage = TriageWorker.over(
        Repositories.build(app.redis), TriageEngine(make_detector()), consumer="t1"
    )
    stop = asyncio.Event()
    task = asyncio.create_task(triage.run(stop, block_ms=50))
    try:
        async with running(app.worker(chat_rate=100, global_rate=100)):
            yield
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)


async def publish(app: BotApp, text: str) -> int:
    message_id = next(_ids)
    await PostQueue(app.redis).enqueue(
        Post(
            channel_id=SOURCE,
            message_id=message_id,
            date=datetime.now(UTC),
            text=text,
            username="caucasus_news",
            title="Caucasus <News>",
        )
    )
    return message_id


async def in_group(app: BotApp, chat_id: int, user_id: int, text: str) -> SentMessage:
    """A member writes in the group; the bot's next message to the group."""
    after = len(app.server.sent)
    await app.server.send_group_text(chat_id, user_id, text)
    return await app.server.wait_for(lambda m: m.chat_id == chat_id, after=after)


async def silence_in_group(app: BotApp, chat_id: int, user_id: int, text: str) -> None:
    """A member writes in the group and the bot, having read it, says nothing there."""
    after = len(app.server.sent)
    await app.server.send_group_text(chat_id, user_id, text)
    await app.server.wait_until(lambda: app.server.pending_updates == 0)
    await asyncio.sleep(0.3)
    assert [m.text for m in app.server.sent[after:] if m.chat_id == chat_id] == []


async def desk_active(app: BotApp, chat_id: int, active: bool = True) -> None:
    async def check() -> bool:
        desk = await app.repos.desks.get(chat_id)
        return desk is not None and desk.active is active

    for _ in range(250):
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"desk {chat_id} never became active={active}")


def feedback_data(alert: SentMessage, action: FeedbackAction) -> str:
    for _text, data in alert.buttons():
        with contextlib.suppress(ValueError, TypeError):
            cb = FeedbackCB.unpack(data)
            if cb.action is action:
                return data
    raise AssertionError(f"no {action} button in {alert.buttons()}")


async def test_a_group_desk_gets_its_shared_watch_and_answers_only_its_members(
    app: BotApp,
) -> None:
    await app.make_analyst(ANN, "Ann")
    app.server.add_user(MALLORY, "Mallory")
    app.server.add_group(DESK, TITLE, members={ADMIN: "creator", ANN: "member", MALLORY: "member"})
    shared = await app.shared.add("zangezur", name="Corridor", created_by=ADMIN)

    # Not in the group yet: nothing to route to.
    refused = await app.say(ADMIN, f"/route S{shared.id} {DESK}")
    assert refused.text == texts.route_refused(texts.DESK_NOT_MEMBER)

    app.server.add_bot_to(DESK, by=ADMIN)
    await desk_active(app, DESK)
    routed = await app.say(ADMIN, f"/route S{shared.id} {DESK}")
    assert f"S{shared.id} now goes to" in routed.text and TITLE in routed.text
    again = await app.say(ADMIN, f"/route S{shared.id} {DESK}")
    assert "already goes to this chat" in again.text

    # In the group: a stranger's commands and anyone's plain talk get nothing; the admin
    # menu never opens in front of the team; a member's command is answered there.
    for text in ("/start", "/admin", f"/route S{shared.id}", "/watches"):
        await silence_in_group(app, DESK, MALLORY, text)
    await silence_in_group(app, DESK, ANN, "zangezur talks resumed, anyone on it?")
    await silence_in_group(app, DESK, ANN, "/help@some_other_bot")
    # An anonymous administrator writes as the group: nobody to check, so nothing either.
    after = len(app.server.sent)
    await app.server.send_group_text(DESK, ADMIN, "/routes", anonymous=True)
    await app.server.wait_until(lambda: app.server.pending_updates == 0)
    await asyncio.sleep(0.3)
    assert [m for m in app.server.sent[after:] if m.chat_id == DESK] == []
    menu = await in_group(app, DESK, ADMIN, "/admin")
    assert menu.text == texts.UNKNOWN_COMMAND and menu.buttons() == []
    listing = await in_group(app, DESK, ANN, "/routes")
    assert listing.text == texts.NO_ROUTES  # Ann made none; admins see all

    async with workers(app):
        post_id = await publish(app, "Talks on the Zangezur corridor <resumed> & stalled")
        alert = await app.server.wait_for(
            lambda m: m.chat_id == DESK and "Zangezur" in m.text, timeout=30
        )
        assert "<resumed> & stalled" in alert.text and "Zangezur" in alert.spans("bold")
        assert "🔎 Desk watch: zangezur" in alert.text and "Watch #" not in alert.text
        # Ann did not subscribe herself: the desk's alert is the team's, not a copy for her.
        assert [m for m in app.server.messages_to(ANN) if "Zangezur" in m.text] == []

        # 👍 in the group counts for the person who pressed it, not for the chat.
        query = await app.server.press(
            ANN, alert.message_id, feedback_data(alert, FeedbackAction.RELEVANT), chat_id=DESK
        )
        assert (await app.server.wait_callback_answer(query)).text == texts.FEEDBACK_THANKS
        route = (await app.repos.desks.routes(DESK))[0]
        verdict = await app.feedback.get(ANN, SOURCE, post_id, route.watch_id)
        assert verdict == "relevant"
        assert await app.feedback.get(DESK, SOURCE, post_id, route.watch_id) is None
        # A stranger's press changes nothing and is refused.
        query = await app.server.press(
            MALLORY, alert.message_id, feedback_data(alert, FeedbackAction.NOISE), chat_id=DESK
        )
        assert (await app.server.wait_callback_answer(query)).text == texts.NOT_ALLOWED
        assert await app.feedback.get(MALLORY, SOURCE, post_id, route.watch_id) is None

        # The bot removed: the route pauses and its owner is told; nothing more is sent.
        after = len(app.server.sent)
        app.server.remove_bot_from(DESK, by=ADMIN)
        told = await app.server.wait_for(
            lambda m: m.chat_id == ADMIN and "removed from" in m.text, after=after, timeout=10
        )
        assert f"S{shared.id}" in told.text and TITLE in told.text
        paused = await app.watches.get(route.watch_id)
        assert paused is not None and paused.paused
        await publish(app, "Zangezur corridor: a second round")
        await asyncio.sleep(1.5)
        assert [m for m in app.server.sent[after:] if m.chat_id == DESK] == []
        listing = await app.say(ADMIN, "/routes")
        assert "⏸ paused" in listing.text and str(DESK) in listing.text

        # Added back: the route resumes.
        app.server.add_bot_to(DESK, by=ADMIN)
        await desk_active(app, DESK)
        resumed = await app.watches.get(route.watch_id)
        assert resumed is not None and not resumed.paused
        await asyncio.sleep(0.5)  # the change feed reaches triage
        await publish(app, "Zangezur corridor: a third round")
        await app.server.wait_for(
            lambda m: m.chat_id == DESK and "third round" in m.text, timeout=30
        )

    unrouted = await app.say(ADMIN, f"/unroute {DESK} {route.watch_id}")
    assert f"S{shared.id} no longer goes to" in unrouted.text
    assert await app.repos.desks.routes(DESK) == []
    assert await app.watches.get(route.watch_id) is None
    assert app.server.unanswered_callbacks() == []


async def test_analysts_route_their_own_watches_only_to_their_groups(app: BotApp) -> None:
    await app.make_analyst(ANN, "Ann")
    await app.make_analyst(BOB, "Bob")
    app.server.add_group(DESK, TITLE, members={ANN: "member"})
    app.server.add_group(-1005555, "Bob's desk", members={BOB: "administrator"})
    app.server.add_group(CHANNEL, "Alerts channel", kind="channel", username="vigil_alerts")
    app.server.add_bot_to(DESK, by=ANN)
    app.server.add_bot_to(-1005555, by=BOB)
    app.server.add_user(99, "Channel owner")
    app.server.add_bot_to(CHANNEL, by=99)
    await desk_active(app, CHANNEL)
    ann_watch = await app.watches.add(ANN, "мигрант*")
    bob_watch = await app.watches.add(BOB, "біженець")

    # Someone else's watch, a group she is not in, a channel, nonsense: all refused.
    theirs = await app.say(ANN, f"/route {bob_watch.id} {DESK}")
    assert theirs.text == texts.ROUTE_NOT_YOURS.format(watch_id=bob_watch.id)
    outside = await app.say(ANN, f"/route {ann_watch.id} -1005555")
    assert outside.text == texts.route_refused(texts.ROUTE_NOT_A_MEMBER)
    channel = await app.say(ANN, f"/route {ann_watch.id} @vigil_alerts")
    assert channel.text == texts.route_refused(texts.ROUTE_CHANNEL_ADMIN_ONLY)
    shared = await app.say(ANN, f"/route S1 {DESK}")
    assert shared.text == texts.ROUTE_ADMIN_ONLY
    for junk in ("", "x", f"{ann_watch.id} {DESK} extra", "9" * 40, "S‮1 ‍"):
        usage = await app.say(ANN, f"/route {junk}".strip())
        assert usage.text.startswith("Route a watch's alerts")
    hostile = await app.say(ANN, f"/route {ann_watch.id} <b>&amp;😀")
    assert hostile.text == "Not routed: the chat is an id like -1001234567890 or an @username"
    assert await app.repos.desks.routes(DESK) == []
    private = await app.say(ANN, f"/route {ann_watch.id}")  # no chat named, in private
    assert "name the group or channel" in private.text

    # In her own group, with the chat left out: routed.
    routed = await in_group(app, DESK, ANN, f"/route {ann_watch.id}")
    assert f"#{ann_watch.id} now goes to" in routed.text
    mine = await app.say(ANN, "/routes")
    assert f"#{ann_watch.id} → " in mine.text and "by Ann" in mine.text
    assert (await app.say(BOB, "/routes")).text == texts.NO_ROUTES

    # An admin routes a shared watch to the channel (by its @username).
    shared_watch = await app.shared.add("біженець", created_by=ADMIN)
    to_channel = await app.say(ADMIN, f"/route S{shared_watch.id} @vigil_alerts")
    assert "now goes to Alerts channel" in to_channel.text

    async with workers(app):
        await publish(app, "Депутат: выслать мигрантов <завтра> & біженець")
        await app.server.wait_for(lambda m: m.chat_id == DESK and "завтра" in m.text, timeout=30)
        await app.server.wait_for(
            lambda m: m.chat_id == CHANNEL and "завтра" in m.text, timeout=30
        )
        await app.server.wait_for(lambda m: m.chat_id == ANN and "завтра" in m.text, timeout=30)

    # Bob cannot remove Ann's route; Ann can.
    route = (await app.repos.desks.routes(DESK))[0]
    assert (await app.say(BOB, f"/unroute {DESK} {route.watch_id}")).text == texts.UNROUTE_NONE
    assert "no longer goes to" in (await app.say(ANN, f"/unroute {DESK} {route.watch_id}")).text
    assert (await app.watches.get(ann_watch.id)) is not None  # her own watch stays


async def test_a_send_refused_with_403_pauses_the_desk_and_tells_the_owner(app: BotApp) -> None:
    """Telegram's my_chat_member can be missed (the bot was down): the first send refused with
    "bot was kicked" pauses the routes just the same."""
    app.server.add_group(DESK, TITLE, members={ADMIN: "creator"})
    app.server.add_bot_to(DESK, by=ADMIN)
    await desk_active(app, DESK)
    shared = await app.shared.add("zangezur", created_by=ADMIN)
    assert "now goes to" in (await app.say(ADMIN, f"/route S{shared.id} {DESK}")).text
    app.server.groups[DESK].bot_status = "kicked"  # no update reaches the bot

    after = len(app.server.sent)
    async with workers(app):
        await publish(app, "Zangezur corridor closed")
        told = await app.server.wait_for(
            lambda m: m.chat_id == ADMIN and "removed from" in m.text, after=after, timeout=30
        )
    assert f"S{shared.id}" in told.text
    desk = await app.repos.desks.get(DESK)
    assert desk is not None and not desk.active
    route = (await app.repos.desks.routes(DESK))[0]
    watch = await app.watches.get(route.watch_id)
    assert watch is not None and watch.paused
    assert any(
        c.method == "sendMessage" and c.status == 403 and "kicked" in (c.description or "")
        for c in app.server.calls
    )


async def test_a_group_is_sent_at_most_20_alerts_a_minute(app: BotApp) -> None:
    """Telegram's group limit: the shared limiter spaces a desk's sends 3 s apart, a private
    chat's 1 s (the loopback server refuses the 21st in a minute with 429)."""
    limiter = RateLimiter(app.repos.rates, RateLimits(chat_per_s=1.0, global_per_s=1000))
    assert (await limiter.try_acquire(DESK))[0]
    granted, wait = await limiter.try_acquire(DESK)
    assert not granted and 2.5 < wait <= 3.05
    assert (await limiter.try_acquire(ANN))[0]
    granted, wait = await limiter.try_acquire(ANN)
    assert not granted and 0.5 < wait <= 1.05


async def test_a_removed_shared_watch_takes_its_route_with_it(app: BotApp) -> None:
    app.server.add_group(DESK, TITLE, members={ADMIN: "creator"})
    app.server.add_bot_to(DESK, by=ADMIN)
    await desk_active(app, DESK)
    shared = await app.shared.add("zangezur", created_by=ADMIN)
    assert "now goes to" in (await app.say(ADMIN, f"/route S{shared.id} {DESK}")).text
    assert len(await app.repos.desks.routes_of(ADMIN)) == 1
    assert await app.shared.remove(shared.id) is not None
    assert await app.repos.desks.routes(DESK) == []
    assert await app.repos.desks.routes_of(ADMIN) == []
    assert (await app.say(ADMIN, "/routes")).text == texts.NO_ROUTES


async def _shared_card(app: BotApp, shared_id: int) -> SentMessage:
    """The admin opens the shared watch's card: /admin, Shared watches, SN."""
    menu = await app.say(ADMIN, "/admin")
    _a, listing = await app.press(ADMIN, menu, "Shared watches")
    assert listing is not None
    _a, card = await app.press(ADMIN, listing, f"S{shared_id}")
    assert card is not None
    return card


async def test_the_shared_watch_card_routes_to_a_desk_with_a_button(app: BotApp) -> None:
    await app.make_analyst(ANN, "Ann")
    shared = await app.shared.add("zangezur", name="Corridor", created_by=ADMIN)
    card = await _shared_card(app, shared.id)
    answer, _same = await app.press(ADMIN, card, texts.BTN_ROUTE_SHARED)
    assert answer == texts.NO_DESKS  # in no group yet

    app.server.add_group(DESK, TITLE, members={ADMIN: "creator"})
    app.server.add_bot_to(DESK, by=ADMIN)
    await desk_active(app, DESK)
    _a, choice = await app.press(ADMIN, card, texts.BTN_ROUTE_SHARED)
    assert choice is not None and choice.text == texts.desk_choice(shared.id)
    after = len(app.server.sent)
    answer, _ = await app.press(ADMIN, choice, "📤 Desk")
    assert answer is not None and answer.startswith(f"S{shared.id} → ")
    told = await app.server.wait_for(lambda m: m.chat_id == ADMIN, after=after)
    assert f"S{shared.id} now goes to" in told.text
    assert [r.source for r in await app.repos.desks.routes(DESK)] == [f"S{shared.id}"]

    # An analyst forging the button gets nothing routed.
    mine = await app.say(ANN, "/help")
    data = DeskRouteCB(shared_id=shared.id, chat_id=DESK).pack()
    assert await app.press_data(ANN, mine, data) == texts.NOT_ALLOWED
    assert len(await app.repos.desks.routes(DESK)) == 1


async def test_a_revoked_analysts_route_stops(app: BotApp) -> None:
    await app.make_analyst(ANN, "Ann")
    app.server.add_group(DESK, TITLE, members={ANN: "member", ADMIN: "creator"})
    app.server.add_bot_to(DESK, by=ANN)
    await desk_active(app, DESK)
    watch = await app.watches.add(ANN, "zangezur")
    shared = await app.shared.add("corridor", created_by=ADMIN)
    assert "now goes to" in (await in_group(app, DESK, ANN, f"/route {watch.id}")).text
    assert "now goes to" in (await in_group(app, DESK, ADMIN, f"/route S{shared.id}")).text
    async with workers(app):
        await publish(app, "Zangezur: first")
        await app.server.wait_for(lambda m: m.chat_id == DESK and "first" in m.text, timeout=30)
        assert await app.users.revoke(ANN)
        await publish(app, "Zangezur: second")
        await publish(app, "The corridor: third")  # the admin's route goes on
        await app.server.wait_for(lambda m: m.chat_id == DESK and "third" in m.text, timeout=30)
        # Her route is held (paused, out of triage) and she is told, once.
        told = await app.server.wait_for(
            lambda m: m.chat_id == ANN and "access was revoked" in m.text, timeout=10
        )
        assert f"#{watch.id}" in told.text
        await publish(app, "Zangezur: fourth")
        await asyncio.sleep(1.0)
    assert [m for m in app.server.messages_to(DESK) if "second" in m.text] == []
    assert [m for m in app.server.messages_to(DESK) if "fourth" in m.text] == []
    held = next(r for r in await app.repos.desks.routes(DESK) if r.owner == ANN)
    assert held.held == "revoked" and await paused(app, held.watch_id)
    assert len([m for m in app.server.messages_to(ANN) if "access was revoked" in m.text]) == 1


async def test_a_group_upgraded_to_a_supergroup_keeps_its_routes(app: BotApp) -> None:
    """Telegram turns a basic group into a supergroup with a new id (making it public, or
    past 200 members): the routes move with it, and alerts go to the new id."""
    old, new = -4001, -1004001
    await app.make_analyst(ANN, "Ann")
    app.server.add_group(old, "Small desk", kind="group", members={ANN: "creator"})
    app.server.add_bot_to(old, by=ANN)
    await desk_active(app, old)
    watch = await app.watches.add(ANN, "zangezur")
    shared = await app.shared.add("corridor", created_by=ADMIN)
    assert "now goes to" in (await in_group(app, old, ANN, f"/route {watch.id}")).text
    assert "now goes to" in (await app.say(ADMIN, f"/route S{shared.id} {old}")).text

    app.server.migrate_group(old, new, by=ANN)
    await desk_active(app, new)
    for _ in range(250):
        if len(await app.repos.desks.routes(new)) == 2:
            break
        await asyncio.sleep(0.02)
    assert sorted(r.source for r in await app.repos.desks.routes(new)) == sorted(
        [f"#{watch.id}", f"S{shared.id}"]
    )
    assert await app.repos.desks.routes(old) == []
    async with workers(app):
        await publish(app, "Zangezur corridor: after the upgrade")
        await app.server.wait_for(
            lambda m: m.chat_id == new and "after the upgrade" in m.text, timeout=30
        )
        await asyncio.sleep(0.5)
    assert [m for m in app.server.messages_to(old) if "upgrade" in m.text] == []
    # The old id refuses sends as Telegram does (400 with migrate_to_chat_id).
    with contextlib.suppress(Exception):
        await app.bot.send_message(old, "hello?")
    refused = [
        c for c in app.server.calls if c.params.get("chat_id") == str(old) and c.status == 400
    ]
    assert refused and "upgraded to a supergroup" in (refused[-1].description or "")


async def wait_for_value(read: Callable[[], Awaitable[object]], expected: object) -> None:
    for _ in range(250):
        if await read() == expected:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"never became {expected!r}: {await read()!r}")


async def test_an_own_watch_route_follows_its_watch(app: BotApp) -> None:
    """The desk's copy of an analyst's watch follows it: a new priority (the /watches
    buttons), a new query, its removal by the analyst (/unwatch) or by an admin (`vigil watch
    remove`): the route goes, /routes lists it no more, the desk gets nothing of it."""
    await app.make_analyst(ANN, "Ann")
    app.server.add_group(DESK, TITLE, members={ANN: "member"})
    app.server.add_bot_to(DESK, by=ANN)
    await desk_active(app, DESK)
    first = await app.watches.add(ANN, "zangezur")
    second = await app.watches.add(ANN, "nakhchivan")
    assert "now goes to" in (await in_group(app, DESK, ANN, f"/route {first.id}")).text
    assert "now goes to" in (await in_group(app, DESK, ANN, f"/route {second.id}")).text
    copies = {r.source: r.watch_id for r in await app.repos.desks.routes(DESK)}

    listing = await app.say(ANN, "/watches")
    _a, choice = await app.press(ANN, listing, f"{texts.BTN_PRIORITY} #{first.id}")
    assert choice is not None
    answer, _ = await app.press(ANN, choice, "urgent")
    assert answer == "Priority urgent"
    copy = await app.watches.get(copies[f"#{first.id}"])
    assert copy is not None and copy.priority == "urgent" and copy.owner_id == DESK

    # A new query (no command edits one yet; the storage step any edit would take).
    edited = await app.watches.get(first.id)
    assert edited is not None
    assert len(await app.repos.desks.follow(replace(edited, query="lachin"))) == 1
    copy = await app.watches.get(copies[f"#{first.id}"])
    assert copy is not None and copy.canonical == "lachin" and copy.priority == "urgent"

    async with workers(app):
        await publish(app, "Lachin road: one")
        await app.server.wait_for(lambda m: m.chat_id == DESK and "one" in m.text, timeout=30)

        removed = await app.say(ANN, f"/unwatch {first.id}")
        assert removed.text == texts.watch_removed(first.id)
        assert [r.source for r in await app.repos.desks.routes(DESK)] == [f"#{second.id}"]
        assert await app.watches.get(copies[f"#{first.id}"]) is None
        mine = await app.say(ANN, "/routes")
        assert f"#{first.id} →" not in mine.text and f"#{second.id} →" in mine.text

        # An admin removes her other watch (as `vigil watch remove` does): the route goes
        # with it at its next alert, which the desk does not get.
        assert await app.watches.remove(second.id, ANN)
        after = len(app.server.sent)
        await publish(app, "Nakhchivan and Lachin: two")
        await wait_for_value(lambda: app.watches.get(copies[f"#{second.id}"]), None)
        await asyncio.sleep(0.5)
    assert [m.text for m in app.server.sent[after:] if m.chat_id == DESK] == []
    assert await app.repos.desks.routes(DESK) == []
    assert (await app.say(ANN, "/routes")).text == texts.NO_ROUTES


async def test_a_member_who_leaves_the_group_has_their_routes_held(app: BotApp) -> None:
    """Telegram tells an administrator bot that asked for chat_member updates (the bot asks
    for the updates its routers handle) when a member leaves, even with the join/leave
    messages hidden; a bot that is not an administrator learns it from the service message.
    The analyst's own watches' routes there are held and she is told; an admin's shared
    watch route goes on; back in the group, hers resume."""
    await app.make_analyst(ANN, "Ann")
    group = app.server.add_group(DESK, TITLE, members={ADMIN: "creator", ANN: "member"})
    group.hide_service = True
    app.server.add_bot_to(DESK, by=ADMIN, status="administrator")
    await desk_active(app, DESK)
    assert "chat_member" in app.server.queue.allowed
    watch = await app.watches.add(ANN, "zangezur")
    shared = await app.shared.add("corridor", created_by=ADMIN)
    assert "now goes to" in (await in_group(app, DESK, ANN, f"/route {watch.id}")).text
    assert "now goes to" in (await in_group(app, DESK, ADMIN, f"/route S{shared.id}")).text
    mine = next(r for r in await app.repos.desks.routes(DESK) if r.owner == ANN)

    async with workers(app):
        after = len(app.server.sent)
        app.server.remove_member(DESK, ANN)
        told = await app.server.wait_for(
            lambda m: m.chat_id == ANN and "no longer a member" in m.text, after=after
        )
        assert f"#{watch.id}" in told.text and TITLE in told.text
        copy = await app.watches.get(mine.watch_id)
        assert copy is not None and copy.paused
        listing = await app.say(ANN, "/routes")
        assert "its owner left the group" in listing.text

        await publish(app, "Zangezur: while she is out")
        await publish(app, "The corridor: the team's")
        await app.server.wait_for(lambda m: m.chat_id == DESK and "team's" in m.text, timeout=30)
        await asyncio.sleep(0.5)
        assert [m for m in app.server.messages_to(DESK) if "while she is out" in m.text] == []

        app.server.add_member(DESK, ANN)
        await wait_for_value(lambda: paused(app, mine.watch_id), False)
        await asyncio.sleep(0.5)  # the change feed reaches triage
        await publish(app, "Zangezur: she is back")
        await app.server.wait_for(lambda m: m.chat_id == DESK and "is back" in m.text, timeout=30)
    assert len([m for m in app.server.messages_to(ANN) if "no longer a member" in m.text]) == 1
    assert app.server.queue.pushed["chat_member"] == 2  # she left, she came back

    # A group where the bot is a plain member: the service message says she left.
    other = -1007777
    app.server.add_group(other, "Second desk", members={ANN: "member"})
    app.server.add_bot_to(other, by=ANN)
    await desk_active(app, other)
    assert "now goes to" in (await in_group(app, other, ANN, f"/route {watch.id}")).text
    after = len(app.server.sent)
    async with running(app.worker(chat_rate=100, global_rate=100)):
        app.server.remove_member(other, ANN, by=ADMIN, kicked=True)
        told = await app.server.wait_for(
            lambda m: m.chat_id == ANN and "Second desk" in m.text, after=after
        )
    assert "no longer a member" in told.text
    # No chat_member update for it: the bot is not an administrator there.
    assert app.server.queue.pushed["chat_member"] == 2


async def paused(app: BotApp, watch_id: int) -> bool | None:
    watch = await app.watches.get(watch_id)
    return None if watch is None else watch.paused


async def test_alerts_queued_across_an_upgrade_reach_the_supergroup(app: BotApp) -> None:
    """Alerts queued for a basic group that is then upgraded: Telegram refuses them with 400
    and migrate_to_chat_id; each goes to the supergroup once, none is dead-lettered. Both
    ways the bot can learn of it: the service messages first (the routes have moved), or the
    refused send first (the service messages lost while the bot was down)."""
    await app.make_analyst(ANN, "Ann")
    shared = await app.shared.add("corridor", created_by=ADMIN)
    watch = await app.watches.add(ANN, "zangezur")
    pairs = {-4101: -1004101, -4102: -1004102}
    for old in pairs:
        app.server.add_group(old, f"Desk {old}", kind="group", members={ANN: "creator"})
        app.server.add_bot_to(old, by=ANN)
        await desk_active(app, old)
        assert "now goes to" in (await in_group(app, old, ANN, f"/route {watch.id}")).text
        assert "now goes to" in (await app.say(ADMIN, f"/route S{shared.id} {old}")).text
    queued = {
        old: {r.source: r.watch_id for r in await app.repos.desks.routes(old)} for old in pairs
    }
    for n, old in enumerate(pairs):
        await enqueue(
            app.redis,
            *(
                job(old, 100 * n + i, f"Zangezur {old} #{i}", watch_id=queued[old][source])
                for i, source in enumerate([f"#{watch.id}", f"S{shared.id}"] * 2)
            ),
        )

    noisy, silent = pairs
    app.server.migrate_group(noisy, pairs[noisy], by=ANN)
    await desk_active(app, pairs[noisy])
    # The other one upgraded with no update reaching the bot.
    old_group = app.server.groups[silent]
    upgraded = app.server.add_group(
        pairs[silent], old_group.title, kind="supergroup", members=old_group.members
    )
    upgraded.bot_status = old_group.bot_status
    old_group.migrated_to = pairs[silent]

    before = await app.repos.dead_letters.counts()
    async with running(app.worker(chat_rate=100, global_rate=100)):
        for old, new in pairs.items():
            for i in range(4):
                await app.server.wait_for(
                    lambda m, o=old, n=new, i=i: m.chat_id == n and f"{o} #{i}" in m.text,
                    timeout=30,
                )
        await settled(app.redis)
        await asyncio.sleep(0.3)
    assert await app.repos.dead_letters.counts() == before
    for old, new in pairs.items():
        texts_sent = [m.text for m in app.server.messages_to(new)]
        for i in range(4):
            assert sum(f"{old} #{i}" in t for t in texts_sent) == 1, texts_sent
        assert [m for m in app.server.messages_to(old) if "Zangezur" in m.text] == []
        assert sorted(r.source for r in await app.repos.desks.routes(new)) == sorted(
            [f"#{watch.id}", f"S{shared.id}"]
        )
        assert await app.repos.desks.routes(old) == []
    refused = [
        c for c in app.server.calls if c.status == 400 and "upgraded" in (c.description or "")
    ]
    assert refused  # they were refused first, then re-targeted


async def test_removing_a_routed_shared_watch_tells_its_router_not_the_desk(app: BotApp) -> None:
    """An admin removes a shared watch (the admin menu) that Ann subscribed to and another
    admin routed to a group: Ann and the admin who routed it are told in private; the team's
    group gets no stray notice."""
    other_admin = 2
    await app.make_analyst(ANN, "Ann")
    await app.make_analyst(other_admin, "Olga")
    assert await app.users.promote(other_admin)
    app.server.add_group(DESK, TITLE, members={ADMIN: "creator", other_admin: "member"})
    app.server.add_bot_to(DESK, by=ADMIN)
    await desk_active(app, DESK)
    shared = await app.shared.add("zangezur", name="Corridor", created_by=ADMIN)
    await app.shared.subscribe(shared.id, ANN)
    assert "now goes to" in (await app.say(other_admin, f"/route S{shared.id} {DESK}")).text

    async with running(app.worker(chat_rate=100, global_rate=100)):
        after = len(app.server.sent)
        card = await _shared_card(app, shared.id)
        _a, confirm = await app.press(ADMIN, card, texts.BTN_REMOVE)
        assert confirm is not None
        answer, _ = await app.press(ADMIN, confirm, texts.BTN_CONFIRM_REMOVE)
        assert answer is not None
        await app.server.wait_for(lambda m: m.chat_id == ANN and "removed" in m.text, after=after)
        told = await app.server.wait_for(
            lambda m: m.chat_id == other_admin and "no longer goes to" in m.text, after=after
        )
        assert f"S{shared.id}" in told.text and TITLE in told.text
        await settled(app.redis)
        await asyncio.sleep(0.3)
    assert [m.text for m in app.server.sent[after:] if m.chat_id == DESK] == []
    assert await app.repos.desks.routes(DESK) == []
    assert (await app.say(other_admin, "/routes")).text == texts.NO_ROUTES


async def test_revoking_an_analyst_holds_their_routes_and_routing_again_resumes(
    app: BotApp,
) -> None:
    """Revoked from their card (/admin → Analysts): their routes are held at once (no alert
    needed to find out) and they are told; given access back, `/route` again resumes it."""
    await app.make_analyst(BOB, "Bob")
    app.server.add_group(DESK, TITLE, members={BOB: "member", ADMIN: "creator"})
    app.server.add_bot_to(DESK, by=BOB)
    await desk_active(app, DESK)
    watch = await app.watches.add(BOB, "zangezur")
    assert "now goes to" in (await in_group(app, DESK, BOB, f"/route {watch.id}")).text
    route = (await app.repos.desks.routes(DESK))[0]

    async with running(app.worker(chat_rate=100, global_rate=100)):
        menu = await app.say(ADMIN, "/admin")
        _a, people = await app.press(ADMIN, menu, "Analysts")
        assert people is not None
        _a, card = await app.press(ADMIN, people, "Bob")
        assert card is not None
        await app.press(ADMIN, card, texts.BTN_REVOKE)
        told = await app.server.wait_for(
            lambda m: m.chat_id == BOB and "access was revoked" in m.text, timeout=10
        )
        assert f"#{watch.id}" in told.text and TITLE in told.text
    assert await paused(app, route.watch_id)
    listing = await app.say(ADMIN, "/routes")
    assert "its owner's access was revoked" in listing.text

    assert await app.users.approve(BOB)
    again = await in_group(app, DESK, BOB, f"/route {watch.id}")
    assert f"#{watch.id} now goes to" in again.text
    assert [(r.watch_id, r.held) for r in await app.repos.desks.routes(DESK)] == [
        (route.watch_id, "")
    ]
    assert await paused(app, route.watch_id) is False
