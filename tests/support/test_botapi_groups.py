"""The loopback Bot API server's groups and channels, as Telegram behaves: the bot added and
removed (my_chat_member with the chat and who did it), getChat and getChatMember, a group's
@username as chat_id, 403 once the bot is out, a channel where only an administrator bot
posts, 20 messages a minute to one group, and presses in a group."""

from __future__ import annotations

import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError, TelegramRetryAfter
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from tests.support.botapi import BotApiServer

GROUP, CHANNEL = -1001000000001, -1001000000002
ANN, EVE = 11, 12


async def test_membership_updates_and_what_the_bot_may_do(
    bot_api: BotApiServer, api_bot: Bot
) -> None:
    bot_api.add_user(ANN, "Ann")
    bot_api.add_user(EVE, "Eve")
    bot_api.add_group(GROUP, "Desk <&>", username="desk_ops", members={ANN: "creator"})
    bot_api.add_group(CHANNEL, "Wire", kind="channel", members={ANN: "creator"})
    with pytest.raises(TelegramForbiddenError, match="not a member of the supergroup"):
        await api_bot.send_message(GROUP, "hello")

    bot_api.add_bot_to(GROUP, by=ANN)
    update = bot_api.queue.updates[-1]["my_chat_member"]
    assert update["chat"] == {
        "id": GROUP,
        "type": "supergroup",
        "title": "Desk <&>",
        "username": "desk_ops",
    }
    assert update["from"]["id"] == ANN
    assert (update["old_chat_member"]["status"], update["new_chat_member"]["status"]) == (
        "left",
        "member",
    )
    chat = await api_bot.get_chat("@desk_ops")
    assert (chat.id, chat.type, chat.title) == (GROUP, "supergroup", "Desk <&>")
    me = await api_bot.me()
    assert (await api_bot.get_chat_member(GROUP, me.id)).status == "member"
    assert (await api_bot.get_chat_member(GROUP, ANN)).status == "creator"
    assert (await api_bot.get_chat_member(GROUP, EVE)).status == "left"
    sent = await api_bot.send_message(GROUP, "<b>hi</b> 😀")
    assert sent.chat.id == GROUP and bot_api.messages_to(GROUP)[0].text == "hi 😀"

    # A channel: the bot is added as an administrator, and only as one may it post.
    bot_api.add_bot_to(CHANNEL, by=ANN)
    assert bot_api.queue.updates[-1]["my_chat_member"]["new_chat_member"]["can_post_messages"]
    await api_bot.send_message(CHANNEL, "wire")
    bot_api.groups[CHANNEL].bot_status = "member"
    with pytest.raises(TelegramBadRequest, match="need administrator rights"):
        await api_bot.send_message(CHANNEL, "wire")

    # 20 messages a minute to one group; the 21st is refused with retry_after.
    bot_api.configure(per_chat_rate=1000, per_chat_burst=1000, global_rate=1000, global_burst=1000)
    for i in range(20):  # the limits just changed: a fresh minute
        await api_bot.send_message(GROUP, f"n{i}")
    with pytest.raises(TelegramRetryAfter) as refused:
        await api_bot.send_message(GROUP, "one too many")
    assert 50 <= refused.value.retry_after <= 60
    await api_bot.send_message(ANN, "a private chat is not limited so")

    # A press in the group comes from the member, on the group's message.
    bot_api.configure(enabled=False)
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="ok", callback_data="x:1")]]
    )
    with_button = await api_bot.send_message(GROUP, "press", reply_markup=keyboard)
    await bot_api.press(ANN, with_button.message_id, "x:1", chat_id=GROUP)
    query = bot_api.queue.updates[-1]["callback_query"]
    assert query["from"]["id"] == ANN and query["message"]["chat"]["id"] == GROUP
    with pytest.raises(LookupError):
        await bot_api.press(EVE, with_button.message_id, "x:1", chat_id=GROUP)  # not in it

    # Removed: my_chat_member member -> kicked; sends and getChatMember get 403.
    bot_api.remove_bot_from(GROUP, by=ANN)
    removed = bot_api.queue.updates[-1]["my_chat_member"]
    assert removed["new_chat_member"] == {
        "status": "kicked",
        "user": bot_api.bot_user,
        "until_date": 0,
    }
    with pytest.raises(TelegramForbiddenError, match="bot was kicked from the supergroup chat"):
        await api_bot.send_message(GROUP, "still there?")
    with pytest.raises(TelegramForbiddenError, match="kicked"):
        await api_bot.get_chat_member(GROUP, ANN)
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await api_bot.send_message(-100999, "nobody")


async def test_group_messages_reach_the_bot_only_while_it_is_in(bot_api: BotApiServer) -> None:
    bot_api.add_user(ANN, "Ann")
    bot_api.add_group(GROUP, "Desk", members={ANN: "member"})
    await bot_api.send_group_text(GROUP, ANN, "/help")
    assert bot_api.pending_updates == 0
    bot_api.add_bot_to(GROUP, by=ANN)
    await bot_api.send_group_text(GROUP, ANN, "/help@vigil_test_bot and ‮ text")
    message = bot_api.queue.updates[-1]["message"]
    assert message["chat"]["type"] == "supergroup" and message["from"]["id"] == ANN
    assert message["entities"][0]["type"] == "bot_command"
    with pytest.raises(LookupError):
        await bot_api.send_group_text(GROUP, EVE, "not a member")
    with pytest.raises(ValueError):
        bot_api.add_group(5, "positive id")
