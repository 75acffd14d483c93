from __future__ import annotations

from datetime import UTC, datetime, timedelta

from telethon.tl import types

from bot.models import Forward, Post
from tests.watchers.telegram_fakes import T0, message, photo
from watchers.convert import (
    album_to_post,
    extract_urls,
    forward_of,
    group_messages,
    media_kind,
    message_to_post,
)


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def test_text_urls_counted_in_utf16_after_emoji() -> None:
    text = "😀👍🏽 read https://example.org/a?b=1&c=<2> and عربي"
    start = _utf16_len(text[: text.index("https")])
    length = _utf16_len("https://example.org/a?b=1&c=<2>")
    msg = message(
        5,
        10,
        text,
        entities=[
            types.MessageEntityUrl(offset=start, length=length),
            types.MessageEntityTextUrl(offset=0, length=2, url="https://t.me/x/1"),
            types.MessageEntityBold(offset=0, length=2),
            types.MessageEntityUrl(offset=start, length=length),  # repeated: kept once
        ],
        views=1200,
        forwards=7,
    )
    post = message_to_post(msg, username="chan", title="Chan <&>")
    assert post is not None
    assert post.urls == ("https://example.org/a?b=1&c=<2>", "https://t.me/x/1")
    assert post.text == text and post.channel_id == 5 and post.message_id == 10
    assert (post.views, post.forwards, post.media, post.event) == (1200, 7, None, "new")
    assert post.date == T0 + timedelta(minutes=10) and post.date.tzinfo is not None
    assert post.link == "https://t.me/chan/10"
    assert Post.from_json(post.to_json()) == post


def test_photo_with_caption_and_forward_header() -> None:
    msg = message(
        5,
        11,
        "Caption with zero\u200bwidth and RTL \u202eטקסט",
        media=photo(),
        fwd_from=types.MessageFwdHeader(
            date=T0, from_id=types.PeerChannel(777), channel_post=42, post_author="Ed"
        ),
    )
    post = message_to_post(msg)
    assert post is not None
    assert post.media == "photo" and post.text.startswith("Caption with zero\u200bwidth")
    assert post.forward == Forward(channel_id=777, message_id=42, name="Ed")


def test_forward_from_hidden_user_keeps_only_the_name() -> None:
    assert forward_of(types.MessageFwdHeader(date=T0, from_name="Анонім")) == Forward(
        name="Анонім"
    )
    user = types.MessageFwdHeader(date=T0, from_id=types.PeerUser(9))
    assert forward_of(user) == Forward()
    assert forward_of(None) is None


def test_media_kinds_of_documents_and_others() -> None:
    def doc(*attributes: object, **flags: bool) -> types.MessageMediaDocument:
        return types.MessageMediaDocument(
            document=types.Document(
                id=1,
                access_hash=1,
                file_reference=b"",
                date=T0,
                mime_type="application/octet-stream",
                size=1,
                dc_id=2,
                attributes=list(attributes),
            ),
            **flags,
        )

    video = types.DocumentAttributeVideo(duration=1.0, w=1, h=1)
    assert media_kind(doc(video)) == "video"
    assert media_kind(doc(types.DocumentAttributeAudio(duration=1, voice=True))) == "voice"
    assert media_kind(doc(types.DocumentAttributeAudio(duration=1))) == "audio"
    assert media_kind(doc(types.DocumentAttributeAnimated(), video)) == "gif"
    assert media_kind(doc(types.DocumentAttributeFilename("a.pdf"))) == "document"
    assert media_kind(types.MessageMediaGeo(geo=types.GeoPointEmpty())) == "geo"
    assert media_kind(types.MessageMediaEmpty()) is None
    assert media_kind(types.MessageMediaUnsupported()) == "other"


def test_webpage_preview_url_is_kept() -> None:
    page = types.WebPage(
        id=1, url="https://news.example/story", display_url="news.example/story", hash=0
    )
    msg = message(5, 12, "see link", media=types.MessageMediaWebPage(webpage=page))
    post = message_to_post(msg)
    assert post is not None and post.urls == ("https://news.example/story",)


def test_service_messages_and_non_channel_messages_are_not_posts() -> None:
    service = types.MessageService(
        id=3,
        peer_id=types.PeerChannel(5),
        date=T0,
        action=types.MessageActionChatEditTitle(title="new"),
    )
    assert message_to_post(service) is None
    private = types.Message(id=1, peer_id=types.PeerUser(1), date=T0, message="hi")
    assert message_to_post(private) is None
    assert message_to_post(types.MessageEmpty(id=4, peer_id=types.PeerChannel(5))) is None


def test_album_joined_into_one_post() -> None:
    parts = [
        message(5, 22, "", grouped_id=9, media=photo(22), views=10),
        message(
            5,
            21,
            "Album caption https://a.example",
            grouped_id=9,
            media=photo(21),
            views=12,
            entities=[types.MessageEntityUrl(offset=14, length=17)],
        ),
        message(5, 23, "", grouped_id=9, media=photo(23)),
    ]
    post = album_to_post(parts, username="chan")
    assert post is not None
    assert post.message_id == 21 and post.media == "album" and post.grouped_id == 9
    assert post.text == "Album caption https://a.example"
    assert post.urls == ("https://a.example",) and post.views == 12
    assert post.extra["album"] == [21, 22, 23]


def test_group_messages_keeps_order_and_highest_ids() -> None:
    msgs = [message(5, i, f"p{i}", grouped_id=4 if i in (3, 4) else None) for i in range(1, 6)]
    pairs = group_messages(reversed(msgs))
    assert [(p.message_id, top) for p, top in pairs] == [(1, 1), (2, 2), (3, 4), (5, 5)]


def test_huge_text_and_naive_dates() -> None:
    text = "слово " * 2000
    naive = datetime(2026, 1, 1, 10, 0)
    msg = message(5, 30, text, date=naive, edit_date=naive)
    post = message_to_post(msg, event="edit")
    assert post is not None and len(post.text) == 12_000
    assert post.date == datetime(2026, 1, 1, 10, 0, tzinfo=UTC) and post.edit_date is not None
    assert post.version == int(post.edit_date.timestamp())
    assert extract_urls(text, None) == ()
