"""Telethon messages become Vigil posts here, at the edge (pure functions, no network).

Telegram counts entity offsets in UTF-16 code units, so URLs are cut from the UTF-16 form of
the text: a post with emoji before a link would otherwise yield a shifted, broken URL.
An album arrives as several messages sharing a `grouped_id`, the caption usually on one of
them; Vigil sees one post, keyed by the album's first message id.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from telethon.tl import types

from bot.models import Forward, Post, PostEvent


def _utf16_slice(text: str, offset: int, length: int) -> str:
    encoded = text.encode("utf-16-le")
    return encoded[offset * 2 : (offset + length) * 2].decode("utf-16-le", errors="ignore")


def extract_urls(text: str, entities: Iterable[Any] | None) -> tuple[str, ...]:
    """URLs of the message's entities, in order, without repeats."""
    found: list[str] = []
    for entity in entities or ():
        if isinstance(entity, types.MessageEntityTextUrl):
            url = entity.url
        elif isinstance(entity, types.MessageEntityUrl):
            url = _utf16_slice(text, entity.offset, entity.length)
        else:
            continue
        url = (url or "").strip()
        if url and url not in found:
            found.append(url)
    return tuple(found)


def _document_kind(media: Any) -> str:
    if getattr(media, "round", None):
        return "video_note"
    if getattr(media, "voice", None):
        return "voice"
    document = getattr(media, "document", None)
    attributes = getattr(document, "attributes", None) or ()
    kinds = {type(a) for a in attributes}
    if types.DocumentAttributeSticker in kinds:
        return "sticker"
    if types.DocumentAttributeAnimated in kinds:
        return "gif"
    for attribute in attributes:
        if isinstance(attribute, types.DocumentAttributeVideo):
            return "video_note" if attribute.round_message else "video"
        if isinstance(attribute, types.DocumentAttributeAudio):
            return "voice" if attribute.voice else "audio"
    if getattr(media, "video", None):
        return "video"
    return "document"


_MEDIA_KINDS: tuple[tuple[type, str], ...] = (
    (types.MessageMediaPhoto, "photo"),
    (types.MessageMediaWebPage, "webpage"),
    (types.MessageMediaPoll, "poll"),
    (types.MessageMediaGeoLive, "geo"),
    (types.MessageMediaGeo, "geo"),
    (types.MessageMediaVenue, "venue"),
    (types.MessageMediaContact, "contact"),
    (types.MessageMediaDice, "dice"),
    (types.MessageMediaGame, "game"),
    (types.MessageMediaInvoice, "invoice"),
    (types.MessageMediaStory, "story"),
    (types.MessageMediaGiveaway, "giveaway"),
    (types.MessageMediaPaidMedia, "paid_media"),
)


def media_kind(media: Any) -> str | None:
    if media is None or isinstance(media, types.MessageMediaEmpty):
        return None
    if isinstance(media, types.MessageMediaDocument):
        return _document_kind(media)
    for cls, kind in _MEDIA_KINDS:
        if isinstance(media, cls):
            return kind
    return "other"


def _webpage_url(media: Any) -> str | None:
    if isinstance(media, types.MessageMediaWebPage) and isinstance(media.webpage, types.WebPage):
        return str(media.webpage.url)
    return None


def forward_of(header: Any) -> Forward | None:
    """Where a forwarded post came from: channel and post ids when given, else a name."""
    if header is None:
        return None
    source = getattr(header, "from_id", None)
    if isinstance(source, types.PeerChannel):
        return Forward(
            channel_id=source.channel_id,
            message_id=getattr(header, "channel_post", None),
            name=getattr(header, "post_author", None),
        )
    name = getattr(header, "from_name", None) or getattr(header, "post_author", None)
    return Forward(name=name)


def _utc(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def channel_id_of(message: Any) -> int | None:
    peer = getattr(message, "peer_id", None)
    return peer.channel_id if isinstance(peer, types.PeerChannel) else None


def is_post(message: Any) -> bool:
    """A real channel post (not a service message such as 'channel photo changed')."""
    return isinstance(message, types.Message) and channel_id_of(message) is not None


def message_to_post(
    message: Any,
    *,
    username: str | None = None,
    title: str = "",
    event: PostEvent = "new",
    source: str = "live",
) -> Post | None:
    """One Telethon `Message` as a Vigil post; None for service or empty messages."""
    if not is_post(message):
        return None
    text = message.message or ""
    urls = list(extract_urls(text, message.entities))
    page = _webpage_url(message.media)
    if page and page not in urls:
        urls.append(page)
    date = _utc(message.date) or datetime.now(UTC)
    return Post(
        channel_id=channel_id_of(message) or 0,
        message_id=int(message.id),
        date=date,
        text=text,
        username=username,
        title=title,
        edit_date=_utc(message.edit_date),
        urls=tuple(urls),
        media=media_kind(message.media),
        views=_count(message.views),
        forwards=_count(message.forwards),
        forward=forward_of(message.fwd_from),
        grouped_id=message.grouped_id,
        event=event,
        source=source,
    )


def album_to_post(
    messages: Sequence[Any],
    *,
    username: str | None = None,
    title: str = "",
    event: PostEvent = "new",
    source: str = "live",
) -> Post | None:
    """The messages of one album (same grouped_id) joined into one post."""
    posts = [
        p
        for p in (
            message_to_post(m, username=username, title=title, event=event, source=source)
            for m in sorted(messages, key=lambda m: int(m.id))
        )
        if p is not None
    ]
    if not posts:
        return None
    if len(posts) == 1:
        return posts[0]
    first = posts[0]
    urls: list[str] = []
    for post in posts:
        urls.extend(u for u in post.urls if u not in urls)
    edits = [p.edit_date for p in posts if p.edit_date is not None]
    views = [p.views for p in posts if p.views is not None]
    forwards = [p.forwards for p in posts if p.forwards is not None]
    return Post(
        channel_id=first.channel_id,
        message_id=first.message_id,
        date=first.date,
        text="\n\n".join(p.text for p in posts if p.text.strip()),
        username=username,
        title=title,
        edit_date=max(edits) if edits else None,
        urls=tuple(urls),
        media="album",
        views=max(views) if views else None,
        forwards=max(forwards) if forwards else None,
        forward=next((p.forward for p in posts if p.forward is not None), None),
        grouped_id=first.grouped_id,
        event=event,
        source=source,
        extra={"album": [p.message_id for p in posts], "media": [p.media for p in posts]},
    )


def group_messages(
    messages: Iterable[Any],
    *,
    username: str | None = None,
    title: str = "",
    event: PostEvent = "new",
    source: str = "reconciler",
) -> list[tuple[Post, int]]:
    """Posts of a run of messages in id order, albums joined; each with its highest id.

    The highest id is what a checkpoint may move to once that post is on the stream.
    """
    runs: list[list[Any]] = []
    for message in sorted((m for m in messages if m is not None), key=lambda m: int(m.id)):
        gid = getattr(message, "grouped_id", None)
        if gid is not None and runs and getattr(runs[-1][0], "grouped_id", None) == gid:
            runs[-1].append(message)
        else:
            runs.append([message])
    result: list[tuple[Post, int]] = []
    for run in runs:
        top = max(int(m.id) for m in run)
        post = album_to_post(run, username=username, title=title, event=event, source=source)
        if post is not None:
            result.append((post, top))
    return result
