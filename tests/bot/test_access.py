from __future__ import annotations

import asyncio

from bot import texts
from bot.callback_data import (
    AccessAction,
    AccessCB,
    AdminView,
    AdminViewCB,
    PersonAction,
    PersonCB,
)
from tests.bot.harness import ADMIN, BotApp, running


async def test_stranger_requests_access_once_and_admin_approves(app: BotApp) -> None:
    # Notices to people (requests, decisions) go out through delivery, as alerts do.
    async with running(app.worker(chat_rate=100, global_rate=100)):
        server = app.server
        server.add_user(500, "Olena", "olena_osint")
        assert server.commands_for("default") == ["start"]
        assert "admin" in server.commands_for("chat", ADMIN)

        reply = await app.say(500, "/start")
        assert reply.text == texts.REQUEST_SENT
        request = await server.wait_for(
            lambda m: m.chat_id == ADMIN and "Access request" in m.text
        )
        assert "Olena" in request.text and "@olena_osint" in request.text and "500" in request.text
        await app.say_nothing_back(500, "hello? <b>&")  # one reply per stranger, not per message
        await app.say_nothing_back(500, "/watches")  # no command works for them

        answer, edited = await app.press(ADMIN, request, "Approve")
        assert answer == "Approved"
        assert edited is not None and "approved" in edited.text
        welcome = await server.wait_for(lambda m: m.chat_id == 500 and "approved" in m.text)
        assert welcome.text == "✅ Your access has been approved. Send /help to see what I can do."
        assert "watch" in server.commands_for("chat", 500)
        assert "admin" not in server.commands_for("chat", 500)
        assert (await app.users.role_of(500)) == "analyst"
        assert (await app.say(500, "/watches")).text.startswith("You have no watches")
        entries = await app.audit.recent()
        assert [(e.actor, e.action, e.target) for e in entries] == [
            (ADMIN, "access.approved", "500")
        ]


async def test_denied_stranger_is_told_once_and_ignored(app: BotApp) -> None:
    # Notices to people (requests, decisions) go out through delivery, as alerts do.
    async with running(app.worker(chat_rate=100, global_rate=100)):
        app.server.add_user(501, "Troll")
        await app.say(501, "let me in")
        request = await app.server.wait_for(lambda m: m.chat_id == ADMIN)
        answer, _ = await app.press(ADMIN, request, "Deny")
        assert answer == "Denied"
        told = await app.server.wait_for(lambda m: m.chat_id == 501 and "declined" in m.text)
        assert told.text == texts.ACCESS_DENIED
        await app.say_nothing_back(501, "/start")
        assert await app.users.role_of(501) == "denied"


async def test_forged_callbacks_do_nothing(app: BotApp) -> None:
    server = app.server
    # A stranger with a bot message in their chat (the request reply) forges admin data.
    server.add_user(600, "Mallory")
    reply = await app.say(600, "hi")
    promote_self = PersonCB(action=PersonAction.PROMOTE, user_id=600).pack()
    approve_self = AccessCB(action=AccessAction.APPROVE, user_id=600).pack()
    assert await app.press_data(600, reply, promote_self) == texts.NOT_ALLOWED
    assert await app.press_data(600, reply, approve_self) == texts.NOT_ALLOWED
    assert await app.press_data(600, reply, "garbage:::") == texts.NOT_ALLOWED
    assert await app.users.role_of(600) == "pending"

    # An analyst forges admin actions: approve the stranger, promote themself, retry letters.
    await app.make_analyst(601)
    msg = await app.say(601, "/help")
    assert "/admin" not in msg.text
    assert await app.press_data(601, msg, approve_self) == texts.NOT_ALLOWED
    promote = PersonCB(action=PersonAction.PROMOTE, user_id=601).pack()
    assert await app.press_data(601, msg, promote) == texts.NOT_ALLOWED
    channels = AdminViewCB(view=AdminView.CHANNELS).pack()
    assert await app.press_data(601, msg, channels) == texts.NOT_ALLOWED
    assert await app.users.role_of(600) == "pending"
    assert await app.users.role_of(601) == "analyst"
    assert await app.audit.recent() == []
    assert (await app.say(601, "/admin")).text == texts.UNKNOWN_COMMAND
    assert server.unanswered_callbacks() == []


async def test_six_strangers_at_once_all_reach_the_admin_through_429s(app: BotApp) -> None:
    """The admin's chat takes one message a second (burst 3) and some sends are refused with
    429 at random: every request still arrives, because requests go through delivery."""
    app.server.configure(flood_fraction=0.3, flood_retry_after=1)
    strangers = list(range(600, 606))
    for uid in strangers:
        app.server.add_user(uid, f"Stranger <{uid}>")
    async with running(app.worker()):
        await asyncio.gather(*(app.server.send_text(uid, "/start") for uid in strangers))

        def requests() -> set[str]:
            return {
                m.text.split("id ")[1].split()[0]
                for m in app.server.messages_to(ADMIN)
                if "Access request" in m.text
            }

        await app.server.wait_until(lambda: len(requests()) == 6, timeout=30)
    assert requests() == {str(uid) for uid in strangers}
    assert app.server.too_many_requests > 0  # Telegram did refuse some, and nothing was lost
