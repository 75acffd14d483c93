"""bot/fit.py: every reply fits, checked by the loopback server's own HTML parser."""

from __future__ import annotations

from html import escape

import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.fit import (
    MAX_CAPTION,
    FitRequestMiddleware,
    fit_answer,
    fit_html,
    fit_markup,
    fit_plain,
    visible_len,
)
from tests.support.botapi import BotApiServer
from tests.support.html_check import parse_html, strip_text, utf16_len

HOSTILE = (
    "<>&\"' 🇺🇦👍🏽👨‍👩‍👧 e\u0301 1\ufe0f\u20e3 مرحبا עברית \u200b\u200d\u202e\u2066 ё Ё 𝔘 \n\t"
)


def _shown(html: str) -> str:
    return strip_text(parse_html(html)).text


def test_short_html_is_untouched() -> None:
    html = '<b>a &amp; b</b> <a href="https://t.me/x?a=1&amp;b=2">link</a>'
    assert fit_html(html, 100) == html
    assert visible_len(html) == len("a & b link")


def test_cut_closes_tags_and_keeps_entities_whole() -> None:
    html = "<b>" + "&amp;" * 50 + "</b><i>" + "word " * 100 + "</i>"
    out = fit_html(html, 60)
    shown = _shown(out)
    assert utf16_len(shown) <= 60 and shown.endswith("…")
    assert shown.startswith("&" * 50)
    parsed = parse_html(out)
    assert [e.type for e in parsed.entities][:1] == ["bold"]


def test_cut_prefers_a_word_boundary_and_never_splits_graphemes() -> None:
    out = _shown(fit_html(escape("слово " * 20 + "x" * 10), 40))
    assert out.endswith("слово…")
    for tail in ("👨‍👩‍👧", "e\u0301", "1\ufe0f\u20e3", "🇺🇦", "👍🏽"):
        text = "a" * 37 + tail * 5
        for limit in range(38, 50):
            shown = _shown(fit_html(escape(text), limit))
            body = shown.removesuffix("…")[37:]
            assert body == tail * (len(body) // len(tail)), (tail, limit, shown)


def test_plain_text_cut() -> None:
    text = "<b>&amp;</b> " * 1000
    out = fit_plain(text, 100)
    assert utf16_len(out) <= 100 and out.startswith("<b>&amp;</b> ") and out.endswith("…")


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["", "b", "i", "code", "s", "a"]),
            st.text(alphabet=st.sampled_from(list(HOSTILE) + list("abcабв ")), max_size=60),
        ),
        max_size=30,
    ),
    st.integers(min_value=5, max_value=400),
)
def test_any_html_fits_and_parses(parts: list[tuple[str, str]], limit: int) -> None:
    html = "".join(
        escape(text, quote=False)
        if not tag
        else f'<a href="https://t.me/x?q={escape(text)}">{escape(text, quote=False)}</a>'
        if tag == "a"
        else f"<{tag}>{escape(text, quote=False)}</{tag}>"
        for tag, text in parts
    )
    out = fit_html(html, limit)
    parsed = parse_html(out)  # raises on a broken tag or entity
    assert utf16_len(parsed.text) <= limit
    full = parse_html(html).text
    if out != html:
        assert parsed.text.endswith("…")
        assert full.startswith(parsed.text[:-1].rstrip())


def test_keyboard_and_answer_limits() -> None:
    button = InlineKeyboardButton(text="x", callback_data="ok")
    big = InlineKeyboardButton(text="big", callback_data="é" * 40)
    rows = [[button] * 8 for _ in range(20)] + [[big, button]] + [[button, button]]
    fitted = fit_markup(InlineKeyboardMarkup(inline_keyboard=rows))
    total = sum(len(r) for r in fitted.inline_keyboard)
    assert total <= 100 and fitted.inline_keyboard[-1] == [button, button]
    assert all(b.text != "big" for r in fitted.inline_keyboard for b in r)
    small = InlineKeyboardMarkup(inline_keyboard=[[button]])
    assert fit_markup(small) is small
    assert len(fit_answer("x" * 500) or "") == 200
    assert fit_answer(None) is None


async def test_the_middleware_makes_refused_replies_fit(
    bot_api: BotApiServer, api_bot: Bot
) -> None:
    bot_api.add_user(5, "Ann")
    long_html = "<b>" + "я&amp;" * 3000 + "</b>"
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await api_bot.send_message(5, long_html)
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text=str(i), callback_data=str(i))] for i in range(150)
        ]
    )
    with pytest.raises(TelegramBadRequest, match="REPLY_MARKUP_TOO_LONG"):
        await api_bot.send_message(5, "many", reply_markup=keyboard)
    api_bot.session.middleware(FitRequestMiddleware())
    sent = await api_bot.send_message(5, long_html, reply_markup=keyboard)
    assert sent.text is not None and utf16_len(sent.text) <= 4096 and sent.text.endswith("…")
    assert sent.reply_markup is not None
    assert sum(len(r) for r in sent.reply_markup.inline_keyboard) == 100
    edited = await api_bot.edit_message_text(
        "<i>" + "🇺🇦" * 3000 + "</i>", chat_id=5, message_id=sent.message_id
    )
    assert not isinstance(edited, bool) and edited.text is not None
    assert utf16_len(edited.text) <= 4096
    plain = await api_bot.send_message(5, "<" * 5000, parse_mode=None)
    assert plain.text is not None and utf16_len(plain.text) <= 4096
    from aiogram.types import BufferedInputFile

    doc = await api_bot.send_document(
        5, BufferedInputFile(b"a,b\n", "x.csv"), caption="<b>" + "x " * 1000 + "</b>"
    )
    assert doc.caption is not None and utf16_len(doc.caption) <= MAX_CAPTION
