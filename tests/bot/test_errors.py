"""The error boundary, through the loopback Bot API: a handler that fails (here, Redis refusing
a command on a key of the wrong type) still answers the user in one line and the callback query,
logs the update id without the text, and counts the error for that handler."""

from __future__ import annotations

import logging

import pytest

from bot import texts
from bot.storage import keys
from bot.storage.errors import HandlerErrors
from tests.bot.harness import ADMIN, BotApp, running
from tests.delivery.util import enqueue, job

ANN = 920


async def test_failing_command_answers_in_one_line_and_is_counted(
    app: BotApp, caplog: pytest.LogCaptureFixture
) -> None:
    await app.make_analyst(ANN)
    watch = await app.watches.add(ANN, "secret_word")
    await app.redis.set(keys.user_mutes(ANN), "not a hash")  # every mute command now fails
    caplog.set_level(logging.ERROR, logger="handlers.errors")
    reply = await app.say(ANN, f"/mute w{watch.id} 2h")
    assert reply.text == texts.SOMETHING_WENT_WRONG
    assert await HandlerErrors(app.redis).counts() == {"cmd_mute": 1}
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "handler cmd_mute raised ResponseError" in logged
    assert f"w{watch.id} 2h" not in logged, logged  # what the user wrote is never logged
    assert "secret_word" not in logged, logged
    # The bot still works for everything else.
    assert (await app.say(ANN, "/help")).text.startswith("Watches")
    # Admins see the count in System.
    menu = await app.say(ADMIN, "/admin")
    _a, system = await app.press(ADMIN, menu, "System")
    assert system is not None and "Handler errors: cmd_mute 1" in system.text


async def test_failing_button_answers_the_callback(app: BotApp) -> None:
    await app.make_analyst(ANN)
    await enqueue(app.redis, job(ANN, 5, channel_id=321, watch_id=4))
    async with running(app.worker(chat_rate=100, global_rate=100)):
        alert = await app.server.wait_for(lambda m: m.chat_id == ANN)
        await app.redis.set(keys.user_mutes(ANN), "not a hash")
        answer, _after = await app.press(ANN, alert, "Mute channel")
    assert answer == texts.SOMETHING_WENT_WRONG
    assert app.server.unanswered_callbacks() == []
    assert await HandlerErrors(app.redis).counts() == {"on_feedback": 1}
