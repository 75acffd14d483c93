from __future__ import annotations

import asyncio
import time

from aiogram import Router
from aiogram.filters import Command
from aiogram.filters.callback_data import CallbackData, CallbackQueryFilter

from bot import keyboards, texts
from bot.callback_data import (
    ADMIN_CALLBACKS,
    AdminPrompt,
    AdminPromptCB,
    AdminView,
    AdminViewCB,
    AuditCB,
    ChannelAction,
    ChannelCB,
    ChannelWeightCB,
    DeadRetryCB,
    PendingAction,
    PendingCB,
    PersonAction,
    PersonCB,
    SharedAdminAction,
    SharedAdminCB,
    SharedPriorityCB,
    channel_token,
)
from bot.campaign_views import AmplifyCB
from bot.storage import keys
from bot.triage.priority import Priority
from handlers import build_root_router
from handlers.commands_scope import ADMIN_COMMANDS, ANALYST_COMMANDS
from handlers.roles import ADMIN as ADMIN_ROLE
from handlers.roles import RoleFilter
from tests.bot.harness import ADMIN, BotApp, running
from tests.support.botapi import MAX_TEXT
from tests.support.html_check import utf16_len
from watchers.health import AccountState, publish_account


async def test_admin_menu_channels(app: BotApp) -> None:
    menu = await app.say(ADMIN, "/admin")
    assert menu.text == "Admin — choose a section:"
    _a, page = await app.press(ADMIN, menu, "Channels")
    assert page is not None and "Channels (0)" in page.text
    after = len(app.server.sent)
    await app.press(ADMIN, page, "Add channel")
    prompt = await app.server.wait_for(lambda m: m.chat_id == ADMIN, after=after)
    assert prompt.text.startswith("Reply to this message with the channel")
    bad = await app.say(ADMIN, "not a <channel> & link")
    assert bad.text.startswith("⚠️") and "Usage: /addchannel" in bad.text
    added = await app.say(ADMIN, "https://t.me/rus_news")
    assert added.text == "📡 Channel @rus_news added (state: pending)."
    assert (await app.say(ADMIN, "/addchannel")).text.startswith("Usage: /addchannel")
    assert (await app.say(ADMIN, "/addchannel https://t.me/+AbCdEfGh123")).text.startswith("📡")
    # Once added, ordinary text is no longer taken for a channel.
    assert (await app.say(ADMIN, "@another_one")).text == texts.UNKNOWN_COMMAND

    _a, back = await app.press(ADMIN, page, "Back")
    assert back is not None and back.text == texts.ADMIN_MENU.replace("<b>", "").replace(
        "</b>", ""
    )
    _a, page = await app.press(ADMIN, back, "Channels")
    assert page is not None and "Channels (2)" in page.text
    _a, card = await app.press(ADMIN, page, "@rus_news")
    assert card is not None and "ref: @rus_news" in card.text and "weight: normal" in card.text
    _a, card = await app.press(ADMIN, card, "Pause")
    assert card is not None and "state: paused" in card.text
    _a, card = await app.press(ADMIN, card, "high")
    assert card is not None and "weight: high" in card.text
    channel = await app.channels.get("@rus_news")
    assert channel is not None and (channel.state, channel.weight) == ("paused", "high")
    _a, card = await app.press(ADMIN, card, "Remove")
    assert await app.channels.get("@rus_news") is None
    assert card is not None and "Channels (1)" in card.text

    menu_again = await app.say(ADMIN, "/admin")
    _a, audit = await app.press(ADMIN, menu_again, "Audit log")
    assert audit is not None
    for action in ("channel.add", "channel.pause", "channel.weight", "channel.remove"):
        assert action in audit.text
    assert app.server.unanswered_callbacks() == []


async def test_admin_menu_analysts_and_system(app: BotApp) -> None:
    # Notices to people (the request, decisions) go out through delivery, as alerts do.
    async with running(app.worker(chat_rate=100, global_rate=100)):
        app.server.add_user(800, "Newbie")
        await app.say(800, "hello")
        await app.server.wait_for(lambda m: m.chat_id == ADMIN and "Access request" in m.text)
        await app.make_analyst(801, "Veteran")
        menu = await app.say(ADMIN, "/admin")
        _a, people = await app.press(ADMIN, menu, "Analysts")
        assert people is not None and "Analysts (2)" in people.text  # the admin and Veteran
        _a, pending = await app.press(ADMIN, people, "Pending requests (1)")
        assert pending is not None and pending.text == "Pending requests (1)"
        _a, pending = await app.press(ADMIN, pending, "Newbie")
        assert await app.users.role_of(800) == "analyst"
        assert pending is not None and pending.text == texts.NO_PENDING
        await app.server.wait_for(lambda m: m.chat_id == 800 and "approved" in m.text)

        _a, people = await app.press(ADMIN, pending, "Back")
        assert people is not None
        _a, card = await app.press(ADMIN, people, "Veteran")
        assert card is not None and "role: analyst" in card.text
        _a, card = await app.press(ADMIN, card, "Make admin")
        assert await app.users.role_of(801) == "admin"
        assert "admin" in app.server.commands_for("chat", 801)
        assert card is not None
        _a, card = await app.press(ADMIN, card, "Make analyst")
        assert await app.users.role_of(801) == "analyst"
        assert card is not None
        _a, card = await app.press(ADMIN, card, "Revoke")
        assert await app.users.role_of(801) == "revoked"
        await app.server.wait_for(lambda m: m.chat_id == 801 and "revoked" in m.text)
        await app.say_nothing_back(801, "/watches")

        # System: streams and dead letters with a retry button.
        await app.redis.xadd(
            keys.ALERTS_DEAD,
            {
                "analyst": "1",
                "post": "{}",
                "_stream": keys.ALERTS_STREAM,
                "_reason": "boom <&>",
                "_at": "1700000000",
            },
        )
        # ... and the health `vigil status` shows: roles, watcher accounts, flood waits.
        now = time.time()
        await app.repos.health.beat(["triage@box:1"], now=now)
        await app.repos.health.record_flood_wait("main <&>", now + 120)
        await publish_account(
            app.repos.health,
            AccountState("main <&>", alive=True, connected=False, cap=500, channels=3, at=now),
        )
        menu = await app.say(ADMIN, "/admin")
        _a, system = await app.press(ADMIN, menu, "System")
        assert system is not None and "alerts" in system.text and "1 dead letters" in system.text
        assert "role triage@box:1: alive" in system.text
        assert "account main <&>: DISCONNECTED, 3/500 channels" in system.text
        assert "flood wait: session main <&> waits 1" in system.text  # 119 or 120 s
        assert "Learning: 0 analysts' models in use; 0 alerts moved today" in system.text
        assert "Desk model: not trained yet" in system.text
        _a, dead = await app.press(ADMIN, system, "Dead letters (1)")
        assert dead is not None and "boom <&>" in dead.text
        answer, dead = await app.press(ADMIN, dead, "Retry")
        assert answer == "Requeued"
        # Requeued on the alerts stream, where the running delivery worker finds it malformed
        # again and dead-letters it once more, with its reason.
        for _ in range(100):
            dead_now = await app.redis.xrange(keys.ALERTS_DEAD)
            if dead_now and dead_now[-1][1].get("_reason", "").startswith("malformed"):
                break
            await asyncio.sleep(0.05)
        assert dead_now[-1][1]["_reason"].startswith("malformed")
        actions = [e.action for e in await app.audit.recent()]
        assert actions[:5] == [
            "dead_letter.retry",
            "role.revoke",
            "role.demote",
            "role.promote",
            "access.approved",
        ]


async def test_audit_log_pages_back_to_the_first_entry(app: BotApp) -> None:
    for i in range(40):
        await app.audit.record(ADMIN, "channel.add", f"@chan_{i:02d} <&>", "x" * 500)
    menu = await app.say(ADMIN, "/admin")
    _a, page = await app.press(ADMIN, menu, "Audit log")
    seen: list[str] = []
    for number in (1, 2, 3):
        assert page is not None and f"Audit log (40) — page {number}/3" in page.text
        assert utf16_len(page.text) <= MAX_TEXT
        seen += [t.split()[0] for t in page.text.split("@chan_")[1:]]
        if number < 3:
            assert "first entry" not in page.text
            _a, page = await app.press(ADMIN, page, "Next")
    assert page is not None and "down to the first entry" in page.text
    assert [t for t, _d in page.buttons()] == ["◀ Prev", "« Back"]
    assert seen == [f"{i:02d}" for i in range(39, -1, -1)]
    _a, page = await app.press(ADMIN, page, "Prev")
    assert page is not None and "page 2/3" in page.text and "@chan_24 " in page.text
    _a, page = await app.press(ADMIN, page, "Prev")
    assert page is not None and "page 1/3" in page.text and "@chan_39" in page.text
    assert [t for t, _d in page.buttons()] == ["Next ▶", "« Back"]
    # Forged cursors are refused quietly: the newest page.
    forged = AuditCB(cursor="KEYS *", page=7).pack()
    assert await app.press_data(ADMIN, page, forged) is None
    assert app.server.unanswered_callbacks() == []


async def test_analysts_and_pending_lists_page(app: BotApp) -> None:
    for i in range(45):
        await app.make_analyst(2000 + i, f"Analyst {i:02d} <&>")
    for i in range(25):
        app.server.add_user(3000 + i, f"Stranger {i:02d}")
        await app.users.request_access(3000 + i, f"Stranger {i:02d}", None)
    menu = await app.say(ADMIN, "/admin")
    _a, people = await app.press(ADMIN, menu, "Analysts")
    assert people is not None and "Analysts (46) — page 1/3" in people.text
    _a, people = await app.press(ADMIN, people, "Next")
    assert people is not None
    _a, people = await app.press(ADMIN, people, "Next")
    assert people is not None and "page 3/3" in people.text
    assert any("Analyst 44" in t for t, _d in people.buttons())
    _a, pending = await app.press(ADMIN, people, "Pending requests (25)")
    assert pending is not None and "Pending requests (25) — page 1/3" in pending.text
    _a, pending = await app.press(ADMIN, pending, "Next")
    assert pending is not None and "page 2/3" in pending.text
    _a, pending = await app.press(ADMIN, pending, "Stranger 12")
    assert await app.users.role_of(3012) == "analyst"
    assert pending is not None and "Pending requests (24) — page 2/3" in pending.text
    for message in (people, pending):
        assert message is not None and len(message.buttons()) <= 100
    assert app.server.unanswered_callbacks() == []


async def test_dead_letters_page_newest_first_across_streams(app: BotApp) -> None:
    for i in range(20):
        dead_key, stream = (
            (keys.ALERTS_DEAD, keys.ALERTS_STREAM)
            if i % 2
            else (keys.POSTS_DEAD, keys.POSTS_STREAM)
        )
        await app.redis.xadd(
            dead_key,
            {"post": "{}", "_stream": stream, "_reason": f"boom {i:02d} <&>", "_at": "1700000000"},
        )
        await asyncio.sleep(0.003)  # entry ids of two streams in one millisecond tie
    menu = await app.say(ADMIN, "/admin")
    _a, system = await app.press(ADMIN, menu, "System")
    assert system is not None
    _a, dead = await app.press(ADMIN, system, "Dead letters (20)")
    assert dead is not None and "Dead letters (20) — page 1/3" in dead.text
    assert [int(t.split()[0]) for t in dead.text.split("boom ")[1:]] == list(range(19, 11, -1))
    _a, dead = await app.press(ADMIN, dead, "Next")
    assert dead is not None and "page 2/3" in dead.text and "boom 11" in dead.text
    answer, dead = await app.press(ADMIN, dead, "Retry")
    assert (
        answer == "Requeued" and dead is not None and "Dead letters (19) — page 2/3" in dead.text
    )
    _a, dead = await app.press(ADMIN, dead, "Next")
    assert dead is not None and "page 3/3" in dead.text and "boom 00" in dead.text
    assert app.server.unanswered_callbacks() == []


def _every_admin_callback(token: str, people: list[int], dead_id: str) -> list[str]:
    """Every admin factory, every action of each, aimed at real things (a channel, people,
    a dead letter): what a forging client would send."""
    forged = [AdminViewCB(view=view, page=1).pack() for view in AdminView]
    forged += [AdminPromptCB(what=what).pack() for what in AdminPrompt]
    forged += [ChannelCB(action=action, token=token).pack() for action in ChannelAction]
    forged += [ChannelWeightCB(token=token, weight=weight).pack() for weight in Priority]
    forged += [
        PersonCB(action=action, user_id=uid).pack() for action in PersonAction for uid in people
    ]
    forged += [
        PendingCB(action=action, user_id=uid).pack() for action in PendingAction for uid in people
    ]
    forged += [DeadRetryCB(stream=i, entry=dead_id).pack() for i in range(len(keys.STREAMS))]
    forged += [AuditCB().pack(), AuditCB(cursor="(0-1", page=1).pack()]
    forged += [SharedAdminCB(action=action, shared_id=1).pack() for action in SharedAdminAction]
    forged += [SharedPriorityCB(shared_id=1, priority=p).pack() for p in Priority]
    return forged


async def test_forged_admin_callbacks_from_an_analyst_or_a_stranger_do_nothing(
    app: BotApp,
) -> None:
    channel = await app.channels.add("@watched_chan", ADMIN)
    await app.shared.add("коридор")
    app.server.add_user(900, "Pending <&>")
    await app.users.request_access(900, "Pending <&>", None)
    await app.make_analyst(901, "Analyst 🙂")
    app.server.add_user(902, "Stranger \u202eRTL")
    dead_id = str(
        await app.redis.xadd(
            keys.ALERTS_DEAD, {"post": "{}", "_stream": keys.ALERTS_STREAM, "_reason": "x"}
        )
    )
    forged = _every_admin_callback(channel_token(channel.key), [900, 901, 902, ADMIN], dead_id)
    assert len(forged) > 40

    analyst_msg = await app.say(901, "/help")
    stranger_msg = await app.say(902, "hi")
    for who, msg in ((901, analyst_msg), (902, stranger_msg)):
        for data in forged:
            assert await app.press_data(who, msg, data) == texts.NOT_ALLOWED, data
        shown = app.server.current(who, msg.message_id)
        assert shown is not None and shown.text == msg.text  # never edited into a menu

    # Nothing changed, nothing was audited, no prompt put anyone into the add-channel step.
    after = await app.channels.get("@watched_chan")
    assert after is not None and (after.state, after.weight) == (channel.state, channel.weight)
    assert [c.ref for c in await app.channels.list()] == ["@watched_chan"]
    assert await app.users.role_of(900) == "pending"
    assert await app.users.role_of(901) == "analyst"
    assert await app.users.role_of(902) != "analyst"
    assert await app.users.role_of(ADMIN) == "admin"
    found = await app.shared.get(1)
    assert found is not None and found.priority == "normal"
    assert [str(e) for e, _f in await app.redis.xrange(keys.ALERTS_DEAD)] == [dead_id]
    assert await app.audit.recent() == []
    assert (await app.say(901, "@another_channel")).text == texts.UNKNOWN_COMMAND
    assert await app.channels.get("@another_channel") is None
    assert app.server.unanswered_callbacks() == []


async def test_stale_or_malformed_admin_callbacks_are_refused(app: BotApp) -> None:
    menu = await app.say(ADMIN, "/admin")
    gone = channel_token("@never_added")
    for data in (
        ChannelCB(action=ChannelAction.OPEN, token=gone).pack(),
        ChannelCB(action=ChannelAction.REMOVE, token="<b>&</b>").pack(),
        ChannelWeightCB(token=gone, weight=Priority.HIGH).pack(),
        PendingCB(action=PendingAction.APPROVE, user_id=4242).pack(),  # nobody asked
        PersonCB(action=PersonAction.PROMOTE, user_id=-5).pack(),
        DeadRetryCB(stream=0, entry="1-1").pack(),  # no such dead letter
        DeadRetryCB(stream=7, entry="1-1").pack(),  # no such stream
        DeadRetryCB(stream=-1, entry="1-1").pack(),
        DeadRetryCB(stream=0, entry="KEYS *").pack(),  # not an entry id: Redis is not asked
        DeadRetryCB(stream=0, entry="9" * 40).pack(),
    ):
        assert await app.press_data(ADMIN, menu, data) == texts.ADMIN_STALE, data
    # A person who is not there: their card says so, with a way back.
    assert (
        await app.press_data(ADMIN, menu, PersonCB(action=PersonAction.OPEN, user_id=5).pack())
        is None
    )
    card = app.server.current(ADMIN, menu.message_id)
    assert card is not None and card.text == texts.ADMIN_STALE
    assert [t for t, _d in card.buttons()] == ["« Back"]
    # Data that does not unpack (a weight that is no priority, a non-number id, a missing
    # field, an unknown action) reaches no handler: refused like a stranger's.
    for garbage in (
        "acw:abc:extreme",
        "apn:pr:abc",
        "apn:pr",
        "apd:ok:1:x",
        "adr:x:1-1:0",
        "av:zz:0",
        "ach:zz:abc",
        "aq:x",
    ):
        assert await app.press_data(ADMIN, menu, garbage) == texts.NOT_ALLOWED, garbage
    assert await app.audit.recent() == []
    assert app.server.unanswered_callbacks() == []


def test_admin_callback_data_fits_telegrams_64_bytes() -> None:
    longest = "(" + "9" * 20 + "-" + "9" * 20
    for data in (
        AdminViewCB(view=AdminView.PENDING, page=10**6).pack(),
        AuditCB(cursor=longest, page=10**6).pack(),
        DeadRetryCB(stream=9, entry=longest[1:], page=10**6).pack(),
        ChannelWeightCB(token=channel_token("x" * 500), weight=Priority.URGENT).pack(),
        ChannelCB(action=ChannelAction.REMOVE, token=channel_token("y")).pack(),
        PersonCB(action=PersonAction.PROMOTE, user_id=-(10**15)).pack(),
        PendingCB(action=PendingAction.DENY, user_id=10**15, page=10**6).pack(),
        SharedAdminCB(action=SharedAdminAction.REMOVE_OK, shared_id=10**12, page=10**6).pack(),
        SharedPriorityCB(shared_id=10**12, priority=Priority.URGENT, page=10**6).pack(),
    ):
        assert len(data.encode()) <= 64, data


def test_the_admin_menu_is_its_list_of_buttons_two_to_a_row() -> None:
    buttons = keyboards.admin_menu_buttons()
    rows = keyboards.admin_menu_keyboard().inline_keyboard
    assert [b for row in rows for b in row] == buttons
    assert all(len(row) <= 2 for row in rows)
    labels = [b.text for b in buttons]
    assert labels[:5] == [
        texts.BTN_CHANNELS,
        texts.BTN_ANALYSTS,
        texts.BTN_SHARED,
        texts.BTN_SYSTEM,
        texts.BTN_AUDIT,
    ]
    datas = [b.callback_data for b in buttons]
    assert len(set(datas)) == len(datas)


def _callback_handlers(
    router: Router, guarded: bool = False
) -> list[tuple[str, type[CallbackData] | None, bool]]:
    """(handler, the CallbackData it filters on, whether an admin role filter guards it)."""
    observer = router.observers["callback_query"]
    guarded = guarded or any(
        isinstance(f.callback, RoleFilter) and f.callback.roles == ADMIN_ROLE
        for f in observer._handler.filters or []
    )
    found = []
    for handler in observer.handlers:
        factories = [
            f.callback.callback_data
            for f in handler.filters or []
            if isinstance(f.callback, CallbackQueryFilter)
        ]
        found.append((handler.callback.__qualname__, factories[0] if factories else None, guarded))
    for sub in router.sub_routers:
        found += _callback_handlers(sub, guarded)
    return found


def _factories(cls: type[CallbackData]) -> list[type[CallbackData]]:
    out = []
    for sub in cls.__subclasses__():
        out += [sub, *_factories(sub)]
    return out


def test_every_admin_button_handler_sits_under_the_admin_role_filter() -> None:
    handlers = _callback_handlers(build_root_router())
    admin_only = set(ADMIN_CALLBACKS) | {AmplifyCB}
    on_admin = [(name, guarded) for name, factory, guarded in handlers if factory in admin_only]
    assert len(on_admin) >= 25
    assert [name for name, guarded in on_admin if not guarded] == []
    # Every factory the bot knows has its own prefix (a shared one would route one button's
    # data to another's handler).
    prefixes = [factory.__prefix__ for factory in _factories(CallbackData)]
    assert len(prefixes) == len(set(prefixes)), sorted(prefixes)


HOSTILE = "<b>&amp; 🇺🇦\u200b\u202eRTL\u200d👨‍👩‍👧 &lt;"


async def test_admin_views_fit_telegram_with_hostile_and_huge_content(app: BotApp) -> None:
    """Names, titles, reasons and audit details of 10,000 hostile characters: every admin
    view still goes out (the loopback server refuses bad HTML and over-long text) and fits."""
    huge = (HOSTILE * 400)[:10_000]
    for i in range(12):
        entry = await app.channels.add(f"@chan_{i:02d}", ADMIN)
        await app.channels.mark_resolved(
            entry.key,
            channel_id=5000 + i,
            access_hash=1,
            username=f"chan_{i:02d}",
            title=f"{i:02d} {huge}",
        )
    for i in range(25):
        await app.make_analyst(6000 + i, f"{i:02d} {huge}")
    app.server.add_user(7000, huge[:64])
    await app.users.request_access(7000, huge, huge)
    for _ in range(10):
        await app.redis.xadd(
            keys.POSTS_DEAD, {"post": huge, "_stream": keys.POSTS_STREAM, "_reason": huge}
        )
    for _ in range(20):
        await app.audit.record(ADMIN, "channel.add", huge, huge)
    await app.repos.health.record_flood_wait(huge, time.time() + 60)

    menu = await app.say(ADMIN, "/admin")
    seen = []
    for path in (
        ["Channels"],
        ["Channels", "Next"],
        ["Channels", "05 "],
        ["Analysts"],
        ["Analysts", "Next"],
        ["Analysts", "03 "],
        ["Analysts", "Pending requests (1)"],
        ["System"],
        ["System", "Dead letters (10)"],
        ["System", "Dead letters (10)", "Next"],
        ["Audit log"],
        ["Audit log", "Next"],
    ):
        shown = await app.say(ADMIN, "/admin")
        for label in path:
            answer, after = await app.press(ADMIN, shown, label)
            assert answer != texts.SOMETHING_WENT_WRONG, path
            assert after is not None
            shown = after
        assert utf16_len(shown.text) <= MAX_TEXT, path
        buttons = shown.buttons()
        assert 0 < len(buttons) <= 100, path
        assert all(0 < len(data.encode()) <= 64 for _t, data in buttons if data), path
        seen.append(shown.text[:40])
    assert menu.text == texts.ADMIN_MENU.replace("<b>", "").replace("</b>", "")
    assert len(set(seen)) > 8  # the views really were different pages
    assert app.server.unanswered_callbacks() == []


async def test_deny_from_the_pending_list_tells_them_once_and_a_second_tap_is_stale(
    app: BotApp,
) -> None:
    async with running(app.worker(chat_rate=100, global_rate=100)):
        app.server.add_user(810, "Asker <&>")
        await app.users.request_access(810, "Asker <&>", None)
        menu = await app.say(ADMIN, "/admin")
        _a, people = await app.press(ADMIN, menu, "Analysts")
        assert people is not None
        _a, pending = await app.press(ADMIN, people, "Pending requests (1)")
        assert pending is not None
        deny = next(d for t, d in pending.buttons() if t == texts.BTN_DENY)
        answer, after = await app.press(ADMIN, pending, texts.BTN_DENY)
        assert answer == "Done" and after is not None and after.text == texts.NO_PENDING
        assert await app.users.role_of(810) == "denied"
        told = await app.server.wait_for(lambda m: m.chat_id == 810)
        assert told.text == texts.ACCESS_DENIED
        # The same button again (a slow client, a second admin): nothing more happens.
        assert await app.press_data(ADMIN, after, deny) == texts.ADMIN_STALE
        await asyncio.sleep(0.3)
        assert len(app.server.messages_to(810)) == 1
    assert [e.action for e in await app.audit.recent()] == ["access.denied"]
    assert app.server.unanswered_callbacks() == []


def _command_handlers(router: Router, guarded: bool = False) -> list[tuple[str, bool]]:
    """(command, whether an admin role filter guards its handler) for every Command filter."""
    observer = router.observers["message"]
    guarded = guarded or any(
        isinstance(f.callback, RoleFilter) and f.callback.roles == ADMIN_ROLE
        for f in observer._handler.filters or []
    )
    found = [
        (str(command), guarded)
        for handler in observer.handlers
        for f in handler.filters or []
        if isinstance(f.callback, Command)
        for command in f.callback.commands
    ]
    for sub in router.sub_routers:
        found += _command_handlers(sub, guarded)
    return found


def test_every_admin_command_sits_under_the_admin_role_filter() -> None:
    admin_only = {c for c, _d in ADMIN_COMMANDS} - {c for c, _d in ANALYST_COMMANDS}
    assert admin_only >= {"admin", "addchannel"}
    found = [
        (c, guarded) for c, guarded in _command_handlers(build_root_router()) if c in admin_only
    ]
    assert {c for c, _g in found} == admin_only  # each has a handler...
    assert [c for c, guarded in found if not guarded] == []  # ...that only admins reach
