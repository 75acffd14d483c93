"""/test and /search over the archive, as an analyst uses them, through the loopback server
(which refuses, as Telegram does, any page that would not fit)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.callback_data import ArchiveCB, ArchiveKind, query_tag
from bot.models import Post
from bot.storage.archive import ArchiveRepository
from bot.triage.query import parse_query
from handlers.watches import SNIPPET_CONTEXT, snippet
from tests.bot.harness import BotApp
from tests.support.botapi import MAX_TEXT, SentMessage
from tests.support.html_check import parse_html, utf16_len

ANN = 710
HOSTILE = "<b>&amp; </i> \u202e😀 & < > עברית مرحبا \u200b\u200d e\u0301 🇺🇦 "


def _post(channel: int, message: int, at: float, text: str, **kw: str) -> Post:
    return Post(
        channel_id=channel,
        message_id=message,
        date=datetime.fromtimestamp(at, UTC),
        text=text,
        username=kw.get("username", f"chan{channel}"),
        title=kw.get("title", f"Chan <{channel}> & co"),
    )


def _fits(message: SentMessage | None) -> SentMessage:
    assert message is not None
    assert utf16_len(message.text) <= MAX_TEXT
    assert len(message.buttons()) <= 100
    assert all(len(data.encode()) <= 64 for _t, data in message.buttons())
    return message


async def test_a_long_hostile_post_gives_a_short_snippet(app: BotApp) -> None:
    await app.make_analyst(ANN)
    now = time.time()
    filler = (HOSTILE * 400)[:4000]
    long_text = filler + " коридор Зангезурский коридор & <тайна> " + filler + filler
    assert len(long_text) >= 10_000
    await ArchiveRepository(app.redis).put_many(
        [
            _post(-1001, 1, now - 7200, long_text, title=HOSTILE * 20),
            _post(-1001, 2, now - 3600, HOSTILE * 300),
        ]
    )
    for command in ("/test", "/search"):
        reply = _fits(await app.say(ANN, f"{command} /зангезур.*коридор/", timeout=60))
        assert reply.text.startswith("🔎 /зангезур.*коридор/")
        assert "1 of 2 archived posts match" in reply.text or "1 archived posts" in reply.text
        assert "Зангезурский коридор" in "".join(reply.spans("bold"))
        assert utf16_len(reply.text) < 1500  # a snippet, not the post
        assert reply.buttons() == []  # one page
    # A query that is itself hostile and matches the hostile post.
    reply = _fits(await app.say(ANN, '/search "тайна" OR 😀', timeout=60))
    assert "archived posts" in reply.text


async def test_500_matches_page_newest_first_within_limits(app: BotApp) -> None:
    await app.make_analyst(ANN)
    now = time.time()
    posts = [
        _post(-1000 - i % 3, 100 + i, now - 86400 * 20 + i * 60, f"{HOSTILE} мигранты {i} " * 30)
        for i in range(500)
    ]
    posts += [
        _post(-1000 - i % 3, 2000 + i, now - 86400 + i, f"{HOSTILE} погода {i}") for i in range(50)
    ]
    await ArchiveRepository(app.redis).put_many(posts)

    first = _fits(await app.say(ANN, "/search мигрант", timeout=120))
    assert "500 archived posts match, newest first — page 1/100" in first.text
    seen: list[str] = []
    page: SentMessage | None = first
    for number in range(1, 101):
        page = _fits(page)
        assert f"page {number}/100" in page.text
        seen += [
            line.split(" мигранты ")[0] for line in page.text.split("\n") if "мигранты" in line
        ]
        numbers = [int(t.split(" мигранты ")[1].split()[0]) for t in page.text.split("\n• ")[1:]]
        assert numbers == sorted(numbers, reverse=True)
        if number < 100:
            _a, page = await app.press(ANN, page, "Next")
    assert page is not None and [t for t, _d in page.buttons()] == ["◀ Prev"]
    _a, back = await app.press(ANN, page, "Prev")
    assert "page 99/100" in _fits(back).text

    test = _fits(await app.say(ANN, "/test мигрант", timeout=120))
    assert "500 of 550 archived posts match" in test.text and "page 1/167" in test.text
    _a, nxt = await app.press(ANN, test, "Next")
    assert "page 2/167" in _fits(nxt).text
    assert app.server.unanswered_callbacks() == []


async def test_pages_of_a_search_not_in_memory_are_searched_again(app: BotApp) -> None:
    await app.make_analyst(ANN)
    now = time.time()
    await ArchiveRepository(app.redis).put_many(
        [_post(-1001, i, now - 86400 * 3 + i * 3600, f"мигранты {i}") for i in range(30)]
    )
    query = "мигрант OR /<&>😀/"  # read back from the message: HTML and UTF-16 survive
    first = _fits(await app.say(ANN, f"/search {query}", timeout=60))
    assert "30 archived posts" in first.text and "page 1/6" in first.text
    # A snapshot this process never made (as after a restart): the query is read back from
    # the message and searched again up to that moment, so newer posts are not on it.
    at = int(now - 86400 * 2)
    tag = query_tag(str(parse_query(query)))
    data = ArchiveCB(kind=ArchiveKind.SEARCH, page=1, at=at, tag=tag).pack()
    assert await app.press_data(ANN, first, data) == "Searching the archive…"

    def edited() -> bool:
        now_shown = app.server.current(ANN, first.message_id)
        return now_shown is not None and "page 2/" in now_shown.text

    await app.server.wait_until(edited, 60)
    again = _fits(app.server.current(ANN, first.message_id))
    assert "24 archived posts" in again.text and "page 2/5" in again.text
    assert "мигранты 18" in again.text  # newest first: 23..19 on page 1, 18.. on page 2
    # A tag that is not this message's query is refused.
    forged = ArchiveCB(kind=ArchiveKind.SEARCH, page=1, at=at, tag="0000000000").pack()
    assert "too old" in (await app.press_data(ANN, first, forged) or "")
    assert app.server.unanswered_callbacks() == []


async def test_one_search_at_a_time_per_analyst(app: BotApp) -> None:
    await app.make_analyst(ANN)
    await app.make_analyst(ANN + 1)
    now = time.time()
    await ArchiveRepository(app.redis).put_many(
        [_post(-1001, i, now - 86400 + i, f"мигранты и погода {i} " * 20) for i in range(3000)]
    )
    after = len(app.server.sent)
    await app.server.send_text(ANN, "/search мигрант")
    await app.server.send_text(ANN, "/search погода")
    other = _fits(await app.say(ANN + 1, "/test мигрант", timeout=120))
    assert "3000 of 3000 archived posts match" in other.text
    await app.server.wait_for(
        lambda m: m.chat_id == ANN and m.text.startswith("🔎"), timeout=120, after=after
    )
    replies = [m.text for m in app.server.sent[after:] if m.chat_id == ANN]
    assert any("still running" in t for t in replies), replies


@settings(max_examples=200, deadline=None)
@given(
    text=st.lists(st.sampled_from([*HOSTILE, *"abc мигрант\n", "🇺🇦" * 40]), max_size=300).map(
        "".join
    ),
    spans=st.lists(st.tuples(st.integers(-5, 700), st.integers(-5, 700)), max_size=8),
)
def test_any_snippet_is_valid_html_and_short(text: str, spans: list[tuple[int, int]]) -> None:
    html = snippet(text, tuple(spans))
    parsed = parse_html(html)
    assert utf16_len(parsed.text) <= 6 * SNIPPET_CONTEXT


async def test_a_fresh_backfill_of_old_posts_is_searchable(app: BotApp) -> None:
    await app.make_analyst(ANN)
    long_ago = time.time() - 400 * 86400  # dated 400 days ago, archived just now
    await ArchiveRepository(app.redis).put_many(
        [_post(-1001, 1, long_ago, "Старый пост про мигрантов"), _post(-1001, 2, long_ago, "x")]
    )
    found = _fits(await app.say(ANN, "/search мигрант", timeout=60))
    assert "1 archived posts match" in found.text and "Старый пост" in found.text
    tested = _fits(await app.say(ANN, "/test мигрант", timeout=60))
    assert "In the archive (posts kept 30 days): 1 of 2 archived posts match" in tested.text
    none = _fits(await app.say(ANN, "/search погода", timeout=60))
    assert "No archived post matches (2 searched; posts are kept 30 days)." in none.text
