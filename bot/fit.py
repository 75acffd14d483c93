"""Make a bot reply fit Telegram's limits, so no reply is refused on length.

Telegram measures a message after entity parsing, in UTF-16 code units: at most 4096 for a
text, 1024 for a caption; an inline keyboard holds at most 100 buttons, each with 1-64 bytes of
callback data; a callback answer at most 200 characters. `fit_html` cuts Telegram HTML to a
visible length without breaking a tag, an entity (`&amp;`), a surrogate pair or a grapheme
(combining marks, emoji joiners), closes the tags left open and ends with "…".

`FitRequestMiddleware` applies all of it to every outgoing request of a `Bot` (install it with
`bot.session.middleware(FitRequestMiddleware())`), so a reply built anywhere fits.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from html import escape, unescape
from typing import TYPE_CHECKING, Any

from aiogram.client.default import Default
from aiogram.client.session.middlewares.base import BaseRequestMiddleware
from aiogram.methods import (
    AnswerCallbackQuery,
    EditMessageCaption,
    EditMessageReplyMarkup,
    EditMessageText,
    SendDocument,
    SendMessage,
    SendPhoto,
)
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

if TYPE_CHECKING:
    from aiogram import Bot
    from aiogram.client.session.middlewares.base import NextRequestMiddlewareType
    from aiogram.methods.base import Response, TelegramMethod, TelegramType

log = logging.getLogger(__name__)

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_BUTTONS = 100
MAX_CALLBACK_DATA = 64
MAX_CALLBACK_ANSWER = 200
# Telegram documents no limit on a button's label, but shows about 20 characters of it and
# refuses a keyboard too long as a whole (REPLY_MARKUP_TOO_LONG): a label is cut to this.
MAX_BUTTON_TEXT = 64
MARKER = "…"
WORD_BACKOFF = 80  # cut at a space if one is this close to the limit
GRAPHEME_BACKOFF = 16  # longest run of joined code points kept whole

_JOINERS = frozenset("\u200d\ufe0f\ufe0e\u20e3")
_ATOM = re.compile(r"<[^<>]*>|&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[a-zA-Z]{2,6});|.", re.S)
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


def utf16_len(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _visible(atom: str) -> str:
    """What one atom shows: '' for a tag, the character for an entity or a character."""
    if len(atom) == 1:
        return atom
    if atom[0] == "<":
        return ""
    body = atom[1:-1]
    if body[0] == "#":
        try:
            code = int(body[2:], 16) if body[1] in "xX" else int(body[1:])
            return chr(code)
        except (ValueError, OverflowError):
            return atom
    return _NAMED.get(body, atom)


def splits_grapheme(prev: str, nxt: str) -> bool:
    """Would a cut between these two characters split a grapheme?"""
    return (
        nxt in _JOINERS
        or prev in _JOINERS
        or bool(unicodedata.combining(nxt))
        or unicodedata.category(nxt) == "Me"
        or (0x1F3FB <= ord(nxt) <= 0x1F3FF)  # skin tone modifiers
        or (0x1F1E6 <= ord(prev) <= 0x1F1FF and 0x1F1E6 <= ord(nxt) <= 0x1F1FF)
    )


def _tag_name(atom: str) -> tuple[str, bool]:
    """(name, is_closing) of a tag atom."""
    closing = atom.startswith("</")
    inner = atom[2:-1] if closing else atom[1:-1]
    return inner.strip().split(None, 1)[0].lower() if inner.strip() else "", closing


def visible_len(html: str) -> int:
    """The length of Telegram HTML after entity parsing, in UTF-16 units."""
    if "<" not in html and "&" not in html:
        return utf16_len(html)
    return sum(utf16_len(_visible(m.group())) for m in _ATOM.finditer(html))


def fit_html(html: str, limit: int = MAX_TEXT, marker: str = MARKER) -> str:
    """`html` if it shows at most `limit` UTF-16 units, else its longest prefix that fits with
    `marker` after it: cut on a word boundary when one is near, tags closed."""
    if utf16_len(html) <= limit or visible_len(html) <= limit:
        return html
    atoms = [m.group() for m in _ATOM.finditer(html)]
    shown = [_visible(a) for a in atoms]
    budget = max(0, limit - utf16_len(marker))
    used = 0
    cut = len(atoms)
    for i, text in enumerate(shown):
        width = utf16_len(text)
        if used + width > budget:
            cut = i
            break
        used += width
    # Back to a space when one is near, then never inside a grapheme.
    spent = 0
    for i in range(cut - 1, -1, -1):
        text = shown[i]
        if text.isspace() and i > 0:
            cut = i
            break
        spent += utf16_len(text)
        if spent > WORD_BACKOFF:
            break

    def char_before(k: int) -> str:
        for j in range(k - 1, -1, -1):
            if shown[j]:
                return shown[j]
        return ""

    def char_from(k: int) -> str:
        for j in range(k, len(atoms)):
            if shown[j]:
                return shown[j]
        return ""

    for _ in range(GRAPHEME_BACKOFF):
        prev, nxt = char_before(cut), char_from(cut)
        if not (prev and nxt and splits_grapheme(prev, nxt)):
            break
        cut -= 1
    # No trailing spaces or tags opened with nothing in them.
    while cut > 0 and (
        shown[cut - 1].isspace() or (not shown[cut - 1] and _opens(atoms[cut - 1]))
    ):
        cut -= 1
    stack: list[str] = []
    for atom, text in zip(atoms[:cut], shown[:cut], strict=True):
        if text or not atom.startswith("<"):
            continue
        name, closing = _tag_name(atom)
        if closing:
            if stack and stack[-1] == name:
                stack.pop()
        else:
            stack.append(name)
    closing_tags = "".join(f"</{name}>" for name in reversed(stack))
    return "".join(atoms[:cut]) + closing_tags + escape(marker, quote=False)


def _opens(atom: str) -> bool:
    return atom.startswith("<") and not atom.startswith("</")


def fit_plain(text: str, limit: int = MAX_TEXT, marker: str = MARKER) -> str:
    """Plain text (no parse mode) cut to `limit` UTF-16 units with `marker`."""
    if utf16_len(text) <= limit:
        return text
    return unescape(fit_html(escape(text, quote=False), limit, marker))


def fit_answer(text: str | None) -> str | None:
    """A callback query answer: at most 200 characters."""
    if text is None or len(text) <= MAX_CALLBACK_ANSWER:
        return text
    return text[: MAX_CALLBACK_ANSWER - len(MARKER)].rstrip() + MARKER


def _sendable(button: InlineKeyboardButton) -> bool:
    data = button.callback_data
    if data is not None and not 1 <= len(data.encode()) <= MAX_CALLBACK_DATA:
        log.warning("fit: dropped a button whose callback data is %d bytes", len(data.encode()))
        return False
    return True


def _short_label(button: InlineKeyboardButton) -> InlineKeyboardButton:
    if utf16_len(button.text) <= MAX_BUTTON_TEXT:
        return button
    return button.model_copy(update={"text": fit_plain(button.text, MAX_BUTTON_TEXT)})


def fit_markup(markup: Any) -> Any:
    """An inline keyboard of at most 100 buttons with valid callback data and labels of at most
    64 units: rows past the limit are dropped, except the last row (paging or Back), which is
    kept."""
    if not isinstance(markup, InlineKeyboardMarkup):
        return markup
    rows = [[_short_label(b) for b in row if _sendable(b)] for row in markup.inline_keyboard]
    rows = [row for row in rows if row]
    if sum(len(row) for row in rows) <= MAX_BUTTONS and rows == markup.inline_keyboard:
        return markup
    last = rows[-1:] if rows else []
    room = MAX_BUTTONS - sum(len(row) for row in last)
    kept: list[list[InlineKeyboardButton]] = []
    for row in rows[:-1]:
        if len(row) > room:
            break
        kept.append(row)
        room -= len(row)
    return InlineKeyboardMarkup(inline_keyboard=[*kept, *last])


def fit_text(text: str, parse_mode: str | None, limit: int = MAX_TEXT) -> str:
    if parse_mode is not None and parse_mode.lower() == "html":
        return fit_html(text, limit)
    if parse_mode:  # Markdown: not cut here (Vigil sends HTML only)
        return text
    return fit_plain(text, limit)


class FitRequestMiddleware(BaseRequestMiddleware):
    """Fits every outgoing text, caption, keyboard and callback answer to Telegram's limits."""

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        if isinstance(method, (SendMessage, EditMessageText)):
            if method.text is not None:
                mode = _parse_mode(bot, method.parse_mode)
                method.text = fit_text(method.text, mode, MAX_TEXT)
        elif isinstance(method, (SendPhoto, SendDocument, EditMessageCaption)):
            if method.caption is not None:
                mode = _parse_mode(bot, method.parse_mode)
                method.caption = fit_text(method.caption, mode, MAX_CAPTION)
        elif isinstance(method, AnswerCallbackQuery):
            method.text = fit_answer(method.text)
        if isinstance(
            method,
            (
                SendMessage,
                EditMessageText,
                SendPhoto,
                SendDocument,
                EditMessageCaption,
                EditMessageReplyMarkup,
            ),
        ):
            method.reply_markup = fit_markup(method.reply_markup)
        return await make_request(bot, method)


def _parse_mode(bot: Bot, value: str | Default | None) -> str | None:
    if isinstance(value, Default):
        resolved = bot.default[value.name]
        return resolved if isinstance(resolved, str) else None
    return value
