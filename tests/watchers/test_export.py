from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.models import Forward, Post
from watchers.export import (
    CHUNK_SIZE,
    ExportError,
    ExportStats,
    _EscapeFixer,
    detect_format,
    iter_export,
    parse_channel_option,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "exports"


def read(path: Path, **kwargs: Any) -> tuple[list[Post], ExportStats]:
    stats = ExportStats()
    posts = list(iter_export(path, stats=stats, **kwargs))
    return posts, stats


def export(messages: list[Any], **header: Any) -> dict[str, Any]:
    return {
        "name": "Chan",
        "type": "public_channel",
        "id": 1234567890,
        **header,
        "messages": messages,
    }


def msg(msg_id: int, text: Any = "hello", **fields: Any) -> dict[str, Any]:
    return {
        "id": msg_id,
        "type": "message",
        "date": "2024-01-01T12:00:00",
        "date_unixtime": str(1704110400 + msg_id),
        "text": text,
        **fields,
    }


def write(tmp_path: Path, data: Any, name: str = "result.json") -> Path:
    path = tmp_path / name
    payload = data if isinstance(data, bytes) else json.dumps(data, ensure_ascii=False).encode()
    path.write_bytes(payload)
    return path


# --- shapes -----------------------------------------------------------------------------------


def test_single_channel_export_fields() -> None:
    posts, stats = read(FIXTURES / "single_channel.json")
    by_id = {p.message_id: p for p in posts}
    assert sorted(by_id) == [2, 3, 4, 5, 7, 8, 9, 10]
    assert stats.read == 8
    assert stats.skipped == {"service": 1, "unsupported": 1}
    assert stats.chats == 1
    assert stats.format == "telegram"

    plain = by_id[2]
    assert plain.channel_id == 1500000001
    assert plain.title == "Test Channel <&>"
    assert plain.text == "Мигранты & <b>не теги</b> 🙂"
    assert plain.date == datetime(2024, 3, 1, 10, 0, tzinfo=UTC)
    assert plain.username is None
    assert plain.link == "https://t.me/c/1500000001/2"
    assert plain.source == "export"
    assert plain.views is None
    assert plain.edit_date is None and plain.version == 0

    rich = by_id[3]
    assert rich.text == "Срочно: читайте здесь и https://example.com/b #біженці @someone"
    assert rich.urls == ("https://example.org/a?x=1&y=2", "https://example.com/b")
    assert rich.edit_date == datetime(2024, 3, 1, 11, 0, tzinfo=UTC)
    assert rich.version == 1709290800

    photo = by_id[4]
    assert photo.media == "photo"
    assert photo.text == "Caption of a photo, RTL: مرحبا, zero\u200bwidth"

    assert by_id[5].media == "video"
    assert by_id[5].forward == Forward(name="Other Channel")
    assert by_id[7].media == "voice"
    assert by_id[7].forward == Forward()  # forwarded from a hidden sender
    assert by_id[8].media == "document"
    assert by_id[8].urls == ("https://example.net/doc.pdf",)
    assert by_id[8].text == "Only the text list, no entities: doc"
    assert by_id[9].media == "poll"
    assert by_id[9].text == "Who is right?\nUs\nThem"
    assert by_id[10].media == "sticker"


def test_channel_option_gives_username_and_public_link() -> None:
    posts, _ = read(FIXTURES / "single_channel.json", channel="@News_Room")
    assert {p.username for p in posts} == {"News_Room"}
    assert posts[0].link == "https://t.me/News_Room/2"


@pytest.mark.parametrize("text", ["@ab", "no spaces allowed", "@bad-dash", "", "@" + "x" * 40])
def test_bad_channel_option_is_refused(text: str) -> None:
    with pytest.raises(ExportError, match="--channel"):
        read(FIXTURES / "single_channel.json", channel=text or "@")


@pytest.mark.parametrize(
    ("text", "name"),
    [("@durov", "durov"), ("durov", "durov"), ("https://t.me/durov/", "durov")],
)
def test_parse_channel_option(text: str, name: str) -> None:
    assert parse_channel_option(text) == name


def test_text_entities_are_preferred_over_text(tmp_path: Path) -> None:
    entities = [
        {"type": "plain", "text": "from entities "},
        {"type": "text_link", "text": "x", "href": "https://a.example/"},
        {"type": "link", "text": "https://a.example/"},  # same URL twice: kept once
    ]
    path = write(tmp_path, export([msg(1, "from text", text_entities=entities)]))
    (post,), _ = read(path)
    assert post.text == "from entities xhttps://a.example/"
    assert post.urls == ("https://a.example/",)


def test_full_account_export_reads_every_channel() -> None:
    posts, stats = read(FIXTURES / "full_account.json")
    assert [(p.channel_id, p.message_id, p.title) for p in posts] == [
        (1600000001, 10, "Public News"),
        (1600000001, 11, "Public News"),
        (1600000002, 5, "Chat Group"),
        (1600000003, 100, "Left Channel"),
    ]
    assert stats.chats == 3
    assert stats.skipped == {
        "not a channel (personal_chat)": 1,
        "not a channel (saved_messages)": 1,
        "service": 1,
    }
    assert all(p.username is None for p in posts)


def test_full_account_export_refuses_one_channel_name() -> None:
    with pytest.raises(ExportError, match="full-account export"):
        read(FIXTURES / "full_account.json", channel="@somechannel")


def test_old_export_without_unixtime_reads_date_as_utc() -> None:
    posts, stats = read(FIXTURES / "old_export.json")
    assert [p.date for p in posts] == [
        datetime(2019, 5, 1, 12, 30, tzinfo=UTC),
        datetime(2019, 5, 1, 13, 0, tzinfo=UTC),
    ]
    assert posts[1].edit_date == datetime(2019, 5, 2, 8, 15, tzinfo=UTC)
    assert posts[1].text == "edited long ago"
    assert stats.dates_assumed_utc == 2


def test_header_after_messages_is_still_found() -> None:
    posts, stats = read(FIXTURES / "header_after_messages.json")
    assert [(p.channel_id, p.title, p.text) for p in posts] == [
        (1800000001, "Late Header", "messages come first")
    ]
    assert stats.skipped == {"service": 1}


def test_header_after_messages_in_a_full_export(tmp_path: Path) -> None:
    chat = {"messages": [msg(1)], "id": 55, "type": "personal_chat", "name": "Friend"}
    channel = {"messages": [msg(2)], "name": "Late", "type": "private_channel", "id": 66}
    path = write(tmp_path, {"chats": {"list": [chat, channel]}})
    posts, stats = read(path)
    assert [(p.channel_id, p.title) for p in posts] == [(66, "Late")]
    assert stats.skipped == {"not a channel (personal_chat)": 1}


def test_telegram_desktop_x_escapes_are_read(tmp_path: Path) -> None:
    (post,), _ = read(FIXTURES / "desktop_escapes.json")
    assert post.text == 'tab\tvertical\x0btab, a real backslash-x: \\x41, quote " end'


def test_channel_without_type_is_read(tmp_path: Path) -> None:
    path = write(tmp_path, {"name": "Hand made", "id": 9, "messages": [msg(1)]})
    (post,), _ = read(path)
    assert (post.channel_id, post.title) == (9, "Hand made")


def test_bot_api_style_channel_id(tmp_path: Path) -> None:
    path = write(tmp_path, export([msg(1)], id=-1001234567890))
    (post,), _ = read(path)
    assert post.channel_id == 1234567890


def test_other_message_types_are_skipped_and_counted(tmp_path: Path) -> None:
    path = write(tmp_path, export([msg(1), {"id": 2, "type": "story_thing"}]))
    posts, stats = read(path)
    assert [p.message_id for p in posts] == [1]
    assert stats.skipped == {"type story_thing": 1}


def test_directory_of_an_export_means_its_result_json(tmp_path: Path) -> None:
    write(tmp_path, export([msg(1)]))
    posts, _ = read(tmp_path)
    assert [p.message_id for p in posts] == [1]


def test_byte_order_mark_is_skipped(tmp_path: Path) -> None:
    data = b"\xef\xbb\xbf" + json.dumps(export([msg(1)])).encode()
    posts, _ = read(write(tmp_path, data))
    assert len(posts) == 1


def test_hostile_and_long_texts_survive_unchanged(tmp_path: Path) -> None:
    texts = [
        "<script>alert('x')</script> & &amp; <b>",
        "\u202eRTL override שלום \u200f and zero\u200dwidth\u2060 and soft\u00adhyphen",
        "emoji 👨‍👩‍👧 🇺🇦 " * 10,
        ("мигрант " * 1300)[:10_000],
        "x" * 200_000,  # spans several 64 KiB blocks
        "line\u2028separator\u2029paragraph\x00nul",
    ]
    path = write(tmp_path, export([msg(i + 1, t) for i, t in enumerate(texts)]))
    posts, _ = read(path)
    assert [p.text for p in posts] == texts


# --- JSON Lines -------------------------------------------------------------------------------


def test_jsonl_posts() -> None:
    posts, stats = read(FIXTURES / "posts.jsonl")
    assert stats.format == "jsonl"
    assert [(p.channel_id, p.message_id, p.version > 0) for p in posts] == [
        (2000000001, 1, False),
        (2000000001, 2, False),
        (2000000001, 1, True),
        (2000000002, 3, False),
    ]
    assert posts[0].source == "live"  # given in the line
    assert posts[1].source == "jsonl"  # not given
    assert posts[0].text == "первый пост <&>"
    assert posts[1].date == datetime(2024, 4, 1, 10, 0, tzinfo=UTC)
    assert posts[2].event == "edit"
    assert posts[3].forward == Forward(channel_id=2000000001, message_id=2)
    assert posts[3].date == datetime(2024, 4, 1, 21, 0, tzinfo=UTC)


def test_jsonl_channel_option_fills_only_missing_usernames() -> None:
    posts, _ = read(FIXTURES / "posts.jsonl", channel="@other_name")
    assert [p.username for p in posts] == [
        "jsonl_channel",
        "other_name",
        "other_name",
        "other_name",
    ]


def test_jsonl_round_trip_of_posts(tmp_path: Path) -> None:
    original, _ = read(FIXTURES / "single_channel.json", channel="@rt_channel")
    path = tmp_path / "dump.json"  # the extension means nothing: content decides
    path.write_text("\n".join(p.to_json() for p in original) + "\n", encoding="utf-8")
    again, _ = read(path)
    assert again == original


def test_format_is_detected_by_content_not_extension(tmp_path: Path) -> None:
    a = write(tmp_path, export([msg(1)]), "posts.jsonl")
    b = tmp_path / "result.json"
    b.write_text('{"text": "x", "channel_id": 1, "message_id": 1, "date": 0}\n')
    assert detect_format(a) == "telegram"
    assert detect_format(b) == "jsonl"
    single_line = write(tmp_path, export([msg(1)]), "one-line.json")
    assert detect_format(single_line) == "telegram"


# --- malformed files ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "reason", "byte_of"),
    [
        ("truncated.json", "truncated JSON", None),
        ("top_level_list.json", "the top level is a JSON list", b"["),
        ("message_without_id.json", "message without 'id'", b'{"type": "message"'),
        ("text_is_number.json", "'text' must be a string or a list, not int", b'{"id": 7'),
        ("bad_unixtime.json", "bad 'date_unixtime' '17092x7200'", b'{"id": 2'),
    ],
)
def test_broken_export_names_file_position_and_reason(
    name: str, reason: str, byte_of: bytes | None
) -> None:
    path = FIXTURES / name
    data = path.read_bytes()
    with pytest.raises(ExportError) as info:
        read(path)
    error = info.value
    expected = len(data) if byte_of is None else data.index(byte_of)
    assert error.byte == expected
    assert str(error).startswith(f"{path}: ")
    assert f"byte {expected}" in str(error)
    assert reason in str(error)


def test_message_errors_name_the_message_index() -> None:
    with pytest.raises(ExportError) as info:
        read(FIXTURES / "message_without_id.json")
    assert info.value.message_index == 1
    assert "messages[1]" in str(info.value)
    assert "message #2" in str(info.value)


def test_truncated_names_the_message_being_read() -> None:
    with pytest.raises(ExportError, match=r"messages\[1\]"):
        read(FIXTURES / "truncated.json")


def test_invalid_utf8_is_located_exactly(tmp_path: Path) -> None:
    data = json.dumps(export([msg(1), msg(2, "ok")])).encode()
    bad = data.replace(b'"ok"', b'"o\xff\xfek"')
    path = write(tmp_path, bad)
    with pytest.raises(ExportError) as info:
        read(path)
    assert "invalid UTF-8" in str(info.value)
    assert info.value.byte is not None
    assert bad.index(b"\xff") <= info.value.byte <= bad.index(b"\xff") + 3


@pytest.mark.parametrize("shape", ["single", "full", "late_header"])
def test_errors_deep_in_a_large_file_are_located_exactly(tmp_path: Path, shape: str) -> None:
    rng = random.Random(3)
    messages = [msg(i, "слово " * rng.randint(10, 200)) for i in range(1, 3000)]
    messages[2500] = {**messages[2500], "text": {"not": "text"}}
    doc: dict[str, Any] = export(messages)
    if shape == "full":
        doc = {"about": "x", "chats": {"about": "y", "list": [export([msg(1)], id=5), doc]}}
    elif shape == "late_header":
        doc = {"messages": messages, "id": 77, "type": "private_channel"}
    data = json.dumps(doc, ensure_ascii=False).encode()
    assert len(data) > 10 * CHUNK_SIZE
    with pytest.raises(ExportError) as info:
        read(write(tmp_path, data))
    assert info.value.byte == data.index(b'{"id": 2501,')
    assert info.value.message_index == 2500
    assert "(id 2501)" in str(info.value)

    syntax = data.replace(b'{"not": "text"}', b'"fine"').replace(
        b'{"id": 2701,', b'{"id": 2701 oops,'
    )
    with pytest.raises(ExportError) as info:
        read(write(tmp_path, syntax))
    assert info.value.byte == syntax.index(b"oops")
    assert "invalid JSON" in str(info.value)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "the file is empty"),
        (b"  \n\t ", "the file is empty"),
        (b"<!DOCTYPE html><html>", "HTML export"),
        (b"hello", "not JSON"),
        (b'{"name": "x", "id": 1, "messages": {"id": 1}}', "'messages' must be a list"),
        (b'{"name": "x", "id": 1, "messages": ["hi"]}', "a message must be an object"),
        (b'{"name": "x", "id": 1, "messages": []} {"x": 1}', "extra data after the end"),
        (b'{"about": "no chats here"}', "not a Telegram Desktop export"),
        (b'{"name": "x", "messages": [{"id": 1, "date": "2024-01-01"}]}', "no valid 'id'"),
        (b'{"id": 1, "messages": [{"id": 1, "text": "no date"}]}', "without 'date'"),
        (b'{"id": 1, "messages": [{"id": 1, "date": "yesterday"}]}', "bad 'date'"),
        (b'{"id": 1, "messages": [{"id": true, "date_unixtime": "1"}]}', "positive integer"),
        (b'{"id": 1, "messages": [{"id": 1, "date_unixtime": "1", "text": [5]}]}', "items"),
        (b'{"id": 1, "messages": [{"id": 1, "date_unixtime": 99e99}]}', "date_unixtime"),
        (b'{"id": 1, "messages": [{"id": 1, "date_unixtime": "9999999999999"}]}', "range"),
        (
            b'{"id": 1, "messages": [{"id": 1, "date_unixtime": "1", "text_entities": "s"}]}',
            "list",
        ),
    ],
)
def test_malformed_files_are_refused(tmp_path: Path, data: bytes, reason: str) -> None:
    path = write(tmp_path, data, "broken.json")
    with pytest.raises(ExportError) as info:
        read(path)
    assert str(info.value).startswith(f"{path}: ")
    assert reason in str(info.value)


@pytest.mark.parametrize(
    ("lines", "where", "reason"),
    [
        (b'{"channel_id": 1, "message_id": 1, "date": 0}\n[1, 2]\n', "line 2", "JSON object"),
        (b'{"channel_id": 1, "message_id": 1, "date": 0}\n{"channel_id": 1,\n', "line 2", "JSON"),
        (b'\n\n{"channel_id": 1, "date": 0}\n', "line 3 (byte 2)", "'message_id' is required"),
        (b'{"channel_id": 1, "message_id": 1, "date": "\xff"}\n', "line 1 (byte 44)", "UTF-8"),
    ],
)
def test_malformed_jsonl_names_line_and_byte(
    tmp_path: Path, lines: bytes, where: str, reason: str
) -> None:
    path = write(tmp_path, lines, "posts.jsonl")
    with pytest.raises(ExportError) as info:
        read(path)
    assert str(info.value).startswith(f"{path}: ")
    assert where in str(info.value)
    assert reason in str(info.value)


def test_jsonl_bad_text_type_fixture() -> None:
    path = FIXTURES / "jsonl_bad_text.jsonl"
    first_line = path.read_bytes().index(b"\n") + 1
    with pytest.raises(ExportError) as info:
        read(path)
    assert (info.value.line, info.value.byte) == (2, first_line)
    assert "field 'text' must be a string" in str(info.value)


# --- progress and the escape fixer -------------------------------------------------------------


def test_progress_reaches_the_file_size(tmp_path: Path) -> None:
    path = write(tmp_path, export([msg(i, "z" * 500) for i in range(1, 400)]))
    calls: list[tuple[int, int]] = []
    read(path, progress=lambda done, total: calls.append((done, total)))
    size = path.stat().st_size
    assert calls[-1] == (size, size)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert len(calls) > 1


@settings(max_examples=200, deadline=None)
@given(
    st.text(alphabet='\\x0AB"u ', max_size=40),
    st.lists(st.integers(min_value=0, max_value=40), max_size=6),
)
def test_escape_fixer_does_not_depend_on_block_boundaries(text: str, cuts: list[int]) -> None:
    data = text.encode()
    whole = _EscapeFixer()
    expected = whole.feed(data) + whole.flush()
    fixer = _EscapeFixer()
    out = b""
    last = 0
    for cut in sorted(c for c in cuts if c <= len(data)):
        out += fixer.feed(data[last:cut])
        last = cut
    out += fixer.feed(data[last:]) + fixer.flush()
    assert out == expected
    # odd backslash runs before x become \u00, even runs are left alone
    assert b"\\x" not in expected.replace(b"\\\\", b"")
