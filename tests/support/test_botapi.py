"""The loopback Bot API server, exercised through the real aiogram Bot and Dispatcher."""

from __future__ import annotations

import asyncio
import html
import struct
import time
import zlib
from dataclasses import dataclass

import aiohttp
import pytest
from aiogram import Bot, Dispatcher, F, Router
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramRetryAfter,
    TelegramUnauthorizedError,
)
from aiogram.filters import Command, CommandObject
from aiogram.types import (
    BotCommand,
    BotCommandScopeChat,
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)
from hypothesis import given
from hypothesis import strategies as st

from tests.support.botapi import BotApiServer, Limits, WaitTimeoutError
from tests.support.fixtures import make_bot, polling
from tests.support.html_check import EntityParseError, parse_html, utf16_len

USER = 1001
OTHER = 1002


def keyboard(*buttons: tuple[str, str]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text=t, callback_data=d)] for t, d in buttons]
    )


def png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


# ---------------------------------------------------------------- the HTML checker alone


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("1 < 2", 'Unsupported start tag "" at byte offset 2'),
        ("привет <foo>x</foo>", 'Unsupported start tag "foo" at byte offset 13'),
        ("<b>bold", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b><i>x</b></i>", 'Unmatched end tag at byte offset 7, expected "</i>", found "</b>"'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ("a <b", "Unclosed start tag at byte offset 2"),
        ('<a href="https://x.org>t</a>', 'Unclosed start tag "a" at byte offset 0'),
        ("<span>x</span>", 'Tag "span" must have class "tg-spoiler"'),
        ("fish &chips", "Unsupported HTML entity or bare '&' at byte offset 5"),
        ("&nbsp;", "Unsupported HTML entity or bare '&' at byte offset 0"),
    ],
)
def test_html_errors_use_telegram_wording(text: str, error: str) -> None:
    with pytest.raises(EntityParseError) as caught:
        parse_html(text)
    assert str(caught.value) == error


def test_html_entities_and_tags_become_text_and_entities() -> None:
    parsed = parse_html(
        "😀 <b>bold <i>both</i></b> &lt;tag&gt; &amp; &quot;q&quot; &#39;s&#x27; "
        '<a href="https://example.org/?a=1&amp;b=2">link</a> '
        '<pre><code class="language-python">x = 1</code></pre> <code>c</code> '
        '<span class="tg-spoiler">s</span> <tg-spoiler>t</tg-spoiler> <u>u</u><ins>n</ins> '
        "<s>s</s><strike>k</strike><del>d</del> <blockquote expandable>q</blockquote> "
        '<tg-emoji emoji-id="5368324170671202286">👍</tg-emoji>'
    )
    assert parsed.text.startswith("😀 bold both <tag> & \"q\" 's' link x = 1 c s t un")
    by_type = {e.type: e for e in parsed.entities}
    assert by_type["bold"].offset == 3  # the emoji counts two UTF-16 units
    assert by_type["bold"].length == len("bold both")
    assert by_type["italic"].offset == 8
    assert by_type["text_link"].url == "https://example.org/?a=1&b=2"
    assert by_type["pre"].language == "python"
    assert "code" in by_type
    assert [e.type for e in parsed.entities].count("spoiler") == 2
    assert [e.type for e in parsed.entities].count("strikethrough") == 3
    assert "expandable_blockquote" in by_type
    assert by_type["custom_emoji"].custom_emoji_id == "5368324170671202286"
    assert "&" not in parse_html("a &amp; b", strict_ampersand=False).text.replace(" & ", "")
    assert parse_html("Tom & Jerry", strict_ampersand=False).text == "Tom & Jerry"


@given(st.text(max_size=300))
def test_escaped_text_always_parses_back_to_itself(text: str) -> None:
    parsed = parse_html(html.escape(text))
    assert parsed.text == text
    assert parsed.entities == ()


# ---------------------------------------------------------------- sending through aiogram


async def test_get_me_and_unknown_token(bot_api: BotApiServer, api_bot: Bot) -> None:
    me = await api_bot.get_me()
    assert me.id == 123456
    assert me.is_bot
    assert me.username == "vigil_test_bot"
    wrong = make_bot(bot_api, token="123456:WRONG")
    try:
        with pytest.raises(TelegramUnauthorizedError):
            await wrong.get_me()
    finally:
        await wrong.session.close()


async def test_unknown_method_is_404_like_telegram(bot_api: BotApiServer) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{bot_api.base_url}/bot{bot_api.token}/sendTelepathy") as response,
    ):
        assert response.status == 404
        assert await response.json() == {
            "ok": False,
            "error_code": 404,
            "description": "Not Found",
        }


async def test_send_message_records_html_text_and_entities(
    bot_api: BotApiServer, api_bot: Bot
) -> None:
    bot_api.add_user(USER, "Ann")
    hostile = "x < y && <script> \u200b\u200d مرحبا שלום 🇺🇦 ё"
    sent = await api_bot.send_message(
        USER,
        f"<b>Alert</b> {html.escape(hostile)} <i>end</i>",
        reply_markup=keyboard(("👍 Relevant", "fb:1:up")),
    )
    assert sent.message_id == 1
    assert sent.chat.id == USER
    assert sent.text == f"Alert {hostile} end"
    recorded = bot_api.messages_to(USER)[0]
    assert recorded.text == sent.text
    assert recorded.html.startswith("<b>Alert</b> x &lt; y &amp;&amp;")
    assert recorded.spans("bold") == ["Alert"]
    assert recorded.spans("italic") == ["end"]
    assert recorded.buttons() == [("👍 Relevant", "fb:1:up")]
    assert recorded.params["parse_mode"] == "HTML"
    assert sent.entities is not None
    assert [e.type for e in sent.entities] == ["bold", "italic"]


@pytest.mark.parametrize(
    ("text", "description"),
    [
        ("a < b", 'can\'t parse entities: Unsupported start tag "" at byte offset 2'),
        ("<foo>x</foo>", 'can\'t parse entities: Unsupported start tag "foo" at byte offset 0'),
        ("<b>x", "can't parse entities: Can't find end tag corresponding to start tag \"b\""),
        ("<b><i>x</b></i>", "can't parse entities: Unmatched end tag at byte offset 7"),
        ("R&D", "can't parse entities: Unsupported HTML entity"),
        ("   \n ", "message text is empty"),
        ("<b> </b>", "message text is empty"),
        ("x" * 10_000, "message is too long"),
    ],
)
async def test_bad_text_is_refused_with_telegrams_error(
    bot_api: BotApiServer, api_bot: Bot, text: str, description: str
) -> None:
    bot_api.add_user(USER)
    with pytest.raises(TelegramBadRequest) as caught:
        await api_bot.send_message(USER, text)
    assert caught.value.message.startswith(f"Bad Request: {description}")
    assert bot_api.sent == []


async def test_length_is_counted_in_utf16_units_after_parsing(
    bot_api: BotApiServer, api_bot: Bot
) -> None:
    bot_api.add_user(USER)
    bot_api.configure(enabled=False)
    emoji = "😀" * 2048  # 2048 characters, 4096 UTF-16 units
    assert utf16_len(emoji) == 4096
    await api_bot.send_message(USER, emoji)
    await api_bot.send_message(USER, "<b>" + "&lt;" * 4096 + "</b>")  # 4096 after parsing
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await api_bot.send_message(USER, emoji + "a")
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await api_bot.send_message(USER, "a" * 4095 + "😀")
    assert [len(m.text) for m in bot_api.sent] == [2048, 4096]


async def test_inline_keyboard_checks(bot_api: BotApiServer, api_bot: Bot) -> None:
    bot_api.add_user(USER)
    bot_api.configure(enabled=False)
    await api_bot.send_message(USER, "ok", reply_markup=keyboard(("a", "ж" * 32)))  # 64 bytes
    for data in ("ж" * 33, "x" * 65, ""):
        with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
            await api_bot.send_message(USER, "no", reply_markup=keyboard(("a", data)))
    for url in ("javascript:alert(1)", "not a url", "https://", "ftp://example.org"):
        markup = InlineKeyboardMarkup(
            inline_keyboard=[[InlineKeyboardButton(text="Open", url=url)]]
        )
        with pytest.raises(TelegramBadRequest, match="BUTTON_URL_INVALID"):
            await api_bot.send_message(USER, "no", reply_markup=markup)
    good = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="Open", url="https://t.me/channel/42")]]
    )
    await api_bot.send_message(USER, "link", reply_markup=good)
    assert bot_api.sent[-1].buttons() == [("Open", "https://t.me/channel/42")]


async def test_unknown_chat_and_blocked_user(bot_api: BotApiServer, api_bot: Bot) -> None:
    with pytest.raises(TelegramBadRequest, match="Bad Request: chat not found"):
        await api_bot.send_message(USER, "hi")
    bot_api.add_user(USER)
    bot_api.block(USER)
    with pytest.raises(TelegramForbiddenError) as caught:
        await api_bot.send_message(USER, "hi")
    assert caught.value.message == "Forbidden: bot was blocked by the user"
    updates = await api_bot.get_updates(timeout=0)
    assert updates[0].my_chat_member is not None
    assert updates[0].my_chat_member.new_chat_member.status == "kicked"
    bot_api.unblock(USER)
    await api_bot.send_message(USER, "welcome back")
    assert bot_api.stats["403"] == 1


async def test_blocked_user_who_writes_unblocks(bot_api: BotApiServer, api_bot: Bot) -> None:
    bot_api.add_user(USER)
    bot_api.block(USER, notify=False)
    await bot_api.send_text(USER, "/start")
    updates = await api_bot.get_updates(timeout=0)
    assert [u.event_type for u in updates] == ["my_chat_member", "message"]
    await api_bot.send_message(USER, "welcome back")


async def test_user_becomes_known_by_writing(bot_api: BotApiServer, api_bot: Bot) -> None:
    await bot_api.send_text(OTHER, "/start")
    await api_bot.send_message(OTHER, "hello")
    assert bot_api.messages_to(OTHER)[0].message_id == 2  # ids are shared with the user's


# ---------------------------------------------------------------- flood limits


@dataclass
class FakeClock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_per_chat_limit_bursts_then_429_until_time_passes() -> None:
    clock = FakeClock()
    async with BotApiServer(clock=clock) as server:
        bot = make_bot(server)
        try:
            server.add_user(USER)
            server.add_user(OTHER)
            for _ in range(3):
                await bot.send_message(USER, "burst")
            with pytest.raises(TelegramRetryAfter) as caught:
                await bot.send_message(USER, "one too many")
            assert caught.value.retry_after == 1
            assert caught.value.message.endswith(
                "Original description: Too Many Requests: retry after 1"
            )
            await bot.send_message(OTHER, "another chat is not limited")
            clock.now += 1.0
            await bot.send_message(USER, "a token came back")
            with pytest.raises(TelegramRetryAfter):
                await bot.send_message(USER, "and was spent")
            assert server.too_many_requests == 2
            assert len(server.messages_to(USER)) == 4
        finally:
            await bot.session.close()


async def test_global_limit_spans_chats() -> None:
    clock = FakeClock()
    limits = Limits(per_chat_rate=100, per_chat_burst=100, global_rate=2, global_burst=5)
    async with BotApiServer(clock=clock, limits=limits) as server:
        bot = make_bot(server)
        try:
            for user_id in range(1, 7):
                server.add_user(user_id)
            for user_id in range(1, 6):
                await bot.send_message(user_id, "x")
            with pytest.raises(TelegramRetryAfter) as caught:
                await bot.send_message(6, "x")
            assert caught.value.retry_after == 1  # half a second, rounded up
            clock.now += 0.5
            await bot.send_message(6, "x")
        finally:
            await bot.session.close()


async def test_random_429_storm_is_seeded_and_counted(bot_api: BotApiServer, api_bot: Bot) -> None:
    bot_api.add_user(USER)
    bot_api.configure(enabled=False, flood_fraction=0.3, seed=7, flood_retry_after=2)
    refused = 0
    for _ in range(100):
        try:
            await api_bot.send_message(USER, "storm")
        except TelegramRetryAfter as error:
            assert error.retry_after == 2
            refused += 1
    assert 15 <= refused <= 45
    assert bot_api.too_many_requests == refused
    assert len(bot_api.sent) == 100 - refused


async def test_receive_time_is_monotonic(bot_api: BotApiServer, api_bot: Bot) -> None:
    bot_api.add_user(USER)
    bot_api.add_user(OTHER)
    before = time.monotonic()
    for user_id in (USER, USER, OTHER):
        await api_bot.send_message(user_id, "t")
    after = time.monotonic()
    assert before <= bot_api.sent[0].received_at <= bot_api.sent[-1].received_at <= after
    assert bot_api.max_sends_in_window(USER) == 2
    assert bot_api.max_sends_in_window() == 3


# ---------------------------------------------------------------- updates


async def test_long_poll_returns_an_update_sent_while_waiting(
    bot_api: BotApiServer, api_bot: Bot
) -> None:
    poll = asyncio.create_task(api_bot.get_updates(timeout=10))
    await asyncio.sleep(0.05)
    assert not poll.done()
    await bot_api.send_text(USER, "/watch  oil AND gas")
    updates = await asyncio.wait_for(poll, 2)
    assert len(updates) == 1
    message = updates[0].message
    assert message is not None
    assert message.text == "/watch  oil AND gas"
    assert message.from_user is not None
    assert message.from_user.id == USER
    assert message.entities is not None
    assert (message.entities[0].type, message.entities[0].length) == ("bot_command", 6)

    again = await api_bot.get_updates(timeout=0)  # not confirmed yet: delivered again
    assert [u.update_id for u in again] == [updates[0].update_id]
    assert await api_bot.get_updates(offset=updates[0].update_id + 1, timeout=0) == []
    assert bot_api.pending_updates == 0


async def test_long_poll_times_out_empty_and_limit_applies(
    bot_api: BotApiServer, api_bot: Bot
) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await api_bot.get_updates(timeout=1) == []
    assert loop.time() - started >= 0.9
    for i in range(5):
        await bot_api.send_text(USER, f"m{i}")
    first = await api_bot.get_updates(limit=2, timeout=0)
    assert [u.message.text for u in first if u.message] == ["m0", "m1"]
    rest = await api_bot.get_updates(offset=first[-1].update_id + 1, timeout=0)
    assert [u.message.text for u in rest if u.message] == ["m2", "m3", "m4"]


async def test_second_long_poll_terminates_the_first(bot_api: BotApiServer, api_bot: Bot) -> None:
    first = asyncio.create_task(api_bot.get_updates(timeout=10))
    await asyncio.sleep(0.05)
    second = asyncio.create_task(api_bot.get_updates(timeout=10))
    with pytest.raises(TelegramConflictError, match="terminated by other getUpdates"):
        await asyncio.wait_for(first, 2)
    await bot_api.send_text(USER, "hi")
    assert len(await asyncio.wait_for(second, 2)) == 1


async def test_allowed_updates_filter(bot_api: BotApiServer, api_bot: Bot) -> None:
    bot_api.add_user(USER)
    bot_api.block(USER)
    await bot_api.send_text(USER, "text")
    updates = await api_bot.get_updates(timeout=0, allowed_updates=["message"])
    assert [u.message is not None for u in updates] == [True]


# ---------------------------------------------------------------- callbacks, edits, deletes


async def test_press_answer_and_edit(bot_api: BotApiServer, api_bot: Bot) -> None:
    bot_api.add_user(USER)
    sent = await api_bot.send_message(
        USER, "Vote", reply_markup=keyboard(("👍", "fb:up"), ("👎", "fb:down"))
    )
    with pytest.raises(LookupError, match="no button"):
        await bot_api.press(USER, sent.message_id, "admin:promote")
    query_id = await bot_api.press(USER, sent.message_id, "fb:up")
    forged = await bot_api.press(USER, sent.message_id, "admin:promote", check_button=False)
    updates = await api_bot.get_updates(timeout=0)
    queries = [u.callback_query for u in updates if u.callback_query]
    assert [q.data for q in queries] == ["fb:up", "admin:promote"]
    assert queries[0].id == query_id
    assert queries[0].message is not None
    assert queries[0].message.message_id == sent.message_id

    assert bot_api.unanswered_callbacks() == [query_id, forged]
    await api_bot.answer_callback_query(query_id, text="Saved", show_alert=False)
    assert bot_api.callback_answers[query_id].text == "Saved"
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await api_bot.answer_callback_query(query_id)
    with pytest.raises(TelegramBadRequest, match="MESSAGE_TOO_LONG"):
        await api_bot.answer_callback_query(forged, text="x" * 201)

    await api_bot.edit_message_reply_markup(
        chat_id=USER, message_id=sent.message_id, reply_markup=keyboard(("👍 ✓", "fb:up"))
    )
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await api_bot.edit_message_reply_markup(
            chat_id=USER, message_id=sent.message_id, reply_markup=keyboard(("👍 ✓", "fb:up"))
        )
    # Same resulting text from different HTML, same keyboard: still not modified.
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await api_bot.edit_message_text(
            "V&#111;te",
            chat_id=USER,
            message_id=sent.message_id,
            reply_markup=keyboard(("👍 ✓", "fb:up")),
        )
    edited = await api_bot.edit_message_text(
        "<b>Voted</b>", chat_id=USER, message_id=sent.message_id
    )
    assert isinstance(edited, Message)
    current = bot_api.current(USER, sent.message_id)
    assert current is not None
    assert current.spans("bold") == ["Voted"]
    assert current.reply_markup is None  # an edit without a keyboard removes it
    assert [e.method for e in bot_api.edits] == ["editMessageReplyMarkup", "editMessageText"]
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await api_bot.edit_message_text("x", chat_id=USER, message_id=999)

    assert await api_bot.delete_message(USER, sent.message_id)
    assert bot_api.current(USER, sent.message_id) is None
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await api_bot.delete_message(USER, sent.message_id)


async def test_commands_per_scope(bot_api: BotApiServer, api_bot: Bot) -> None:
    bot_api.add_user(USER)
    await api_bot.set_my_commands(
        [
            BotCommand(command="watch", description="Add a watch"),
            BotCommand(command="help", description="Help"),
        ]
    )
    await api_bot.set_my_commands(
        [BotCommand(command="admin", description="Admin menu")],
        scope=BotCommandScopeChat(chat_id=USER),
    )
    assert bot_api.commands_for() == ["watch", "help"]
    assert bot_api.commands_for("chat", USER) == ["admin"]
    fetched = await api_bot.get_my_commands(scope=BotCommandScopeChat(chat_id=USER))
    assert [c.command for c in fetched] == ["admin"]
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await api_bot.set_my_commands(
            [BotCommand(command="x", description="x")], scope=BotCommandScopeChat(chat_id=777)
        )
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await api_bot.set_my_commands([BotCommand(command="Bad-Name", description="x")])
    assert await api_bot.delete_webhook(drop_pending_updates=True)
    assert await api_bot.send_chat_action(USER, "typing")
    assert bot_api.chat_actions == [(USER, "typing")]
    chat = await api_bot.get_chat(USER)
    assert chat.type == "private"


async def test_document_and_photo_uploads(bot_api: BotApiServer, api_bot: Bot) -> None:
    bot_api.add_user(USER)
    csv = 'id,text\n1,"a, b & <c>"\n2,ё😀\n'.encode()
    sent = await api_bot.send_document(
        USER,
        BufferedInputFile(csv, filename="watches.csv"),
        caption="<b>Export</b> &amp; more",
    )
    assert sent.document is not None
    assert sent.document.file_name == "watches.csv"
    stored = bot_api.documents[0]
    assert stored.data == csv
    assert bot_api.sent[0].spans("bold") == ["Export"]
    assert bot_api.sent[0].text == "Export & more"
    downloaded = await api_bot.download(sent.document.file_id)
    assert downloaded is not None
    assert downloaded.read() == csv

    image = png(3, 2)
    photo = await api_bot.send_photo(USER, BufferedInputFile(image, filename="chart.png"))
    assert photo.photo is not None
    assert (photo.photo[0].width, photo.photo[0].height) == (3, 2)
    assert bot_api.photos[0].data == image
    with pytest.raises(TelegramBadRequest, match="IMAGE_PROCESS_FAILED"):
        await api_bot.send_photo(USER, BufferedInputFile(b"not an image", filename="x.png"))
    with pytest.raises(TelegramBadRequest, match="message caption is too long"):
        await api_bot.send_document(
            USER, BufferedInputFile(b"x", filename="x.txt"), caption="c" * 1025
        )


async def test_wait_for_and_its_timeout_dump(bot_api: BotApiServer, api_bot: Bot) -> None:
    bot_api.add_user(USER)

    async def later() -> None:
        await asyncio.sleep(0.05)
        await api_bot.send_message(USER, "<b>found</b> it")

    task = asyncio.create_task(later())
    message = await bot_api.wait_for(lambda m: "found" in m.text, timeout=2)
    await task
    assert message.spans("bold") == ["found"]
    with pytest.raises(WaitTimeoutError, match="found it"):
        await bot_api.wait_for(lambda m: "absent" in m.text, timeout=0.1)


# ---------------------------------------------------------------- a real Dispatcher


async def test_dispatcher_polling_round_trip(bot_api: BotApiServer, api_bot: Bot) -> None:
    router = Router()

    @router.message(Command("echo"))
    async def on_echo(message: Message, command: CommandObject) -> None:
        await message.answer(
            f"<b>echo</b> {html.escape(command.args or '')}",
            reply_markup=keyboard(("Again", "again")),
        )

    @router.callback_query(F.data == "again")
    async def on_again(query: CallbackQuery) -> None:
        await query.answer("again!")

    dispatcher = Dispatcher()
    dispatcher.include_router(router)
    async with polling(dispatcher, api_bot) as task:
        await bot_api.send_text(USER, "/echo <1 & 2> مرحبا")
        reply = await bot_api.wait_for(lambda m: m.chat_id == USER, timeout=5)
        assert reply.text == "echo <1 & 2> مرحبا"
        query_id = await bot_api.press(USER, reply.message_id, "again")
        answer = await bot_api.wait_callback_answer(query_id, timeout=5)
        assert answer.text == "again!"
        assert bot_api.unanswered_callbacks() == []
    assert task.done()
