"""What Telegram refuses in a message's content: text and caption limits (UTF-16 code units),
HTML parse mode against the documented tags, inline keyboards, callback data, image uploads.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from tests.support.botapi.calls import Params, json_value, string
from tests.support.botapi.errors import bad
from tests.support.html_check import (
    EntityParseError,
    MessageEntity,
    ParsedText,
    parse_html,
    strip_text,
    utf16_len,
)

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA = 64
MAX_CALLBACK_ANSWER = 200
MAX_BUTTONS = 100
MAX_UPLOAD = 50 * 1024 * 1024

_OTHER_BUTTON_KINDS = (
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "web_app",
    "pay",
    "callback_game",
)


def formatted(
    params: Params,
    name: str,
    entities_name: str,
    limit: int,
    *,
    caption: bool,
    strict_ampersand: bool,
) -> tuple[str, ParsedText]:
    """(the text as sent, the text with its entities) of `name`, parsed and checked."""
    raw = string(params, name) or ""
    parse_mode = (string(params, "parse_mode") or "").lower()
    if parse_mode == "html":
        try:
            parsed = parse_html(raw, strict_ampersand=strict_ampersand)
        except EntityParseError as error:
            where = " in message caption" if caption else ""
            raise bad(f"can't parse entities{where}: {error}") from error
    elif parse_mode == "":
        given = json_value(params, entities_name) or []
        parsed = ParsedText(raw, tuple(MessageEntity.from_json(e) for e in given))
    elif parse_mode in ("markdown", "markdownv2"):
        raise bad("the loopback Bot API server supports only parse_mode HTML")
    else:
        raise bad("unsupported parse_mode")
    parsed = strip_text(parsed)
    if not caption and not parsed.text:
        raise bad("message text is empty")
    if utf16_len(parsed.text) > limit:
        raise bad("message caption is too long" if caption else "message is too long")
    return raw, parsed


def markup(params: Params) -> dict[str, Any] | None:
    """The `reply_markup`, an inline keyboard checked button by button."""
    value = json_value(params, "reply_markup")
    if value is None:
        return None
    if not isinstance(value, dict):
        raise bad("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" not in value:
        return value  # reply keyboards, ForceReply, ReplyKeyboardRemove: accepted as is
    rows = value["inline_keyboard"]
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad('field "inline_keyboard" of the InlineKeyboardMarkup must be an Array')
    if sum(len(row) for row in rows) > MAX_BUTTONS:
        raise bad("REPLY_MARKUP_TOO_LONG")
    for row in rows:
        for button in row:
            _check_button(button)
    return value


def _check_button(button: Any) -> None:
    if not isinstance(button, dict) or not str(button.get("text", "")).strip():
        raise bad("BUTTON_TEXT_INVALID")
    if "callback_data" in button:
        data = button["callback_data"]
        size = len(data.encode("utf-8")) if isinstance(data, str) else 0
        if not 1 <= size <= MAX_CALLBACK_DATA:
            raise bad("BUTTON_DATA_INVALID")
    elif "url" in button:
        if not _valid_button_url(str(button["url"])):
            raise bad("BUTTON_URL_INVALID")
    elif not any(key in button for key in _OTHER_BUTTON_KINDS):
        raise bad('can\'t find field "callback_data"')


def _valid_button_url(url: str) -> bool:
    if not url or any(ch.isspace() for ch in url):
        return False
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError:
        return False
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        return bool(hostname)
    return scheme == "tg" and bool(parts.netloc)


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a PNG or JPEG, None for anything Telegram could not process."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data[:2] == b"\xff\xd8":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                return None
            marker = data[i + 1]
            size = int.from_bytes(data[i + 2 : i + 4], "big")
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                height = int.from_bytes(data[i + 5 : i + 7], "big")
                width = int.from_bytes(data[i + 7 : i + 9], "big")
                return width, height
            i += 2 + size
    return None
