"""One Telegram Desktop message's content in Vigil's terms: dates, text and links, media, forward.

`message_post` builds the `Post` of a message dict already known to be an accepted channel
message; `fail(reason)` makes the positioned ExportError for a bad field.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

from bot.models import Forward, Post
from watchers.export.common import ExportError, ExportStats

Fail = Callable[[str], ExportError]

CHANNEL_TYPES: Final = frozenset(
    {"public_channel", "private_channel", "public_supergroup", "private_supergroup"}
)


# Telegram Desktop's `media_type` values -> Vigil media kinds (the live watcher's names).
_MEDIA_TYPES: Final = {
    "sticker": "sticker",
    "video_message": "video_note",
    "voice_message": "voice",
    "animation": "gif",
    "video_file": "video",
    "audio_file": "audio",
}
# Keys whose presence tells the media kind when there is no `media_type`.
_MEDIA_KEYS: Final = (
    ("photo", "photo"),
    ("file", "document"),
    ("poll", "poll"),
    ("place_name", "venue"),
    ("location_information", "geo"),
    ("contact_information", "contact"),
    ("game_title", "game"),
    ("invoice_information", "invoice"),
)
_LINK_ENTITIES: Final = frozenset({"link", "text_link"})


def message_post(
    m: dict[str, Any],
    fail: Fail,
    stats: ExportStats,
    *,
    channel_id: int,
    message_id: int,
    username: str | None,
    title: str,
) -> Post:
    """The `Post` of an accepted channel message (id and chat already checked)."""
    date = _date(m, "date", fail, stats, required=True)
    assert date is not None
    edit_date = _date(m, "edited", fail, stats, required=False)
    text, urls = _text(m, fail)
    media = _media(m)
    if media == "poll" and not text:
        text = _poll_text(m.get("poll"))
    forward = None
    if "forwarded_from" in m:
        name = m["forwarded_from"]
        forward = Forward(name=name if isinstance(name, str) else None)
    return Post(
        channel_id=channel_id,
        message_id=message_id,
        date=date,
        text=text,
        username=username,
        title=title,
        edit_date=edit_date,
        urls=urls,
        media=media,
        forward=forward,
        source="export",
    )


def _date(
    m: dict[str, Any], name: str, fail: Fail, stats: ExportStats, *, required: bool
) -> datetime | None:
    unix = m.get(f"{name}_unixtime")
    if unix is not None:
        if isinstance(unix, str) and unix.isdigit() and unix.isascii():
            seconds = int(unix)
        elif type(unix) is int and unix >= 0:
            seconds = unix
        else:
            raise fail(f"bad '{name}_unixtime' {unix!r}: expected a string of digits")
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise fail(f"bad '{name}_unixtime' {unix!r}: out of range") from exc
    raw = m.get(name)
    if raw is None:
        if required:
            raise fail(f"message without '{name}' or '{name}_unixtime'")
        return None
    if not isinstance(raw, str):
        raise fail(f"bad '{name}' {raw!r}: expected an ISO 8601 time string")
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise fail(f"bad '{name}' {raw!r}: expected an ISO 8601 time string") from exc
    if parsed.tzinfo is None:
        # Older exports have only the exporting machine's local time, with no zone.
        if name == "date":
            stats.dates_assumed_utc += 1
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def channel_id(value: Any) -> int | None:
    """A chat id as Telegram Desktop or the Bot API writes it -> the channel id, or None."""
    if isinstance(value, str) and value.lstrip("-").isdigit():
        value = int(value)
    if type(value) is not int:
        return None
    if value < 0:  # Bot API style -100<id>
        text = str(value)
        if not text.startswith("-100") or len(text) <= 4:
            return None
        value = int(text[4:])
    return value if value > 0 else None


def _text(m: dict[str, Any], fail: Fail) -> tuple[str, tuple[str, ...]]:
    """The message text (or caption) and the URLs of its link entities."""
    parts = m.get("text_entities")
    if parts is None:
        parts = m.get("text", "")
        name = "text"
    else:
        name = "text_entities"
        if not isinstance(parts, list):
            raise fail(f"'text_entities' must be a list, not {type(parts).__name__}")
    if parts is None:
        return "", ()
    if isinstance(parts, str):
        return parts, ()
    if not isinstance(parts, list):
        raise fail(f"'{name}' must be a string or a list, not {type(parts).__name__}")
    pieces: list[str] = []
    urls: list[str] = []
    for part in parts:
        if isinstance(part, str):
            pieces.append(part)
            continue
        if not isinstance(part, dict):
            raise fail(f"'{name}' items must be strings or objects, not {type(part).__name__}")
        piece = part.get("text", "")
        if not isinstance(piece, str):
            raise fail(f"'{name}' entity 'text' must be a string, not {type(piece).__name__}")
        pieces.append(piece)
        kind = part.get("type")
        if kind in _LINK_ENTITIES:
            url = part.get("href") if kind == "text_link" else piece
            if isinstance(url, str) and url and url not in urls:
                urls.append(url)
    return "".join(pieces), tuple(urls)


def _media(m: dict[str, Any]) -> str | None:
    media_type = m.get("media_type")
    if isinstance(media_type, str):
        return _MEDIA_TYPES.get(media_type, media_type)
    for key, kind in _MEDIA_KEYS:
        if key in m:
            return kind
    return None


def _poll_text(poll: Any) -> str:
    if not isinstance(poll, dict):
        return ""
    lines = [poll.get("question")]
    answers = poll.get("answers")
    if isinstance(answers, list):
        lines.extend(a.get("text") for a in answers if isinstance(a, dict))
    return "\n".join(line for line in lines if isinstance(line, str) and line)
