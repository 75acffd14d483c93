"""/test and /search asked of the triage role through the request stream, as an analyst uses
them over the loopback Bot API server: with a real search worker, without one, with one that
does not answer in time, and while another analyst floods."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from aiogram import Bot

from bot import texts
from bot.models import Post
from bot.storage.archive import ArchiveRepository
from bot.storage.requests import SearchLimits, SearchRequests
from tests.bot.harness import BotApp, start_app
from tests.support.botapi import MAX_TEXT, BotApiServer
from tests.support.html_check import utf16_len
from tests.support.imports import imported_modules

ANN, BOB = 810, 811
ROOT = Path(__file__).resolve().parents[2]


def _post(message: int, text: str) -> Post:
    return Post(
        channel_id=-1001,
        message_id=message,
        date=datetime.fromtimestamp(time.time() - 3600, UTC),
        text=text,
        username="chan",
        title="Chan",
    )


@pytest.fixture
async def no_triage(
    redis: aioredis.Redis, bot_api: BotApiServer, api_bot: Bot
) -> AsyncIterator[BotApp]:
    """The bot role alone: no triage worker anywhere."""
    bot_api.configure(enabled=False)
    async for running_app in start_app(
        redis, bot_api, api_bot, triage=False, search_limits=SearchLimits(timeout_s=1.5)
    ):
        yield running_app


@pytest.fixture
async def limited(
    redis: aioredis.Redis, bot_api: BotApiServer, api_bot: Bot
) -> AsyncIterator[BotApp]:
    bot_api.configure(enabled=False)
    limits = SearchLimits(per_window=3, window_s=60, timeout_s=60)
    async for running_app in start_app(redis, bot_api, api_bot, search_limits=limits):
        yield running_app


async def test_without_a_triage_role_the_analyst_is_told_at_once(no_triage: BotApp) -> None:
    app = no_triage
    await app.make_analyst(ANN)
    await ArchiveRepository(app.redis).put_many([_post(1, "мигранты")])
    started = time.monotonic()
    for command in ("/test мигрант", "/search мигрант"):
        reply = await app.say(ANN, command, timeout=10)
        assert reply.text == texts.SEARCH_NO_TRIAGE.replace("<code>", "").replace("</code>", "")
    assert time.monotonic() - started < 5  # no timeout waited
    # Nothing was queued for a worker that is not there, and nothing is left marked busy.
    assert await app.redis.xlen("vigil:{search}:stream") == 0
    assert await app.redis.keys("vigil:{search:*}:busy") == []


async def test_a_triage_role_that_does_not_answer_times_out_clearly(no_triage: BotApp) -> None:
    app = no_triage
    await app.make_analyst(ANN)
    searches = SearchRequests(app.redis)
    await searches.beat("ghost")  # a worker that says it is there but never reads
    started = time.monotonic()
    reply = await app.say(ANN, "/search мигрант", timeout=10)
    assert reply.text.startswith("⚠️ The search did not answer in time")
    assert 1.4 < time.monotonic() - started < 6
    # The request carries its deadline: a worker starting later skips it, and the analyst
    # may search again at once (the busy mark went with the timeout).
    assert await app.redis.xlen("vigil:{search}:stream") == 1
    assert await app.redis.keys("vigil:{search:*}:busy") == []


async def test_a_query_error_comes_back_from_the_triage_role(app: BotApp) -> None:
    await app.make_analyst(ANN)
    reply = await app.say(ANN, "/search (мигрант <b>&amp;", timeout=30)
    assert reply.text.startswith("⚠️") and "Usage: /search" in reply.text
    assert "<b>&amp;" in reply.text  # the query shown as typed, escaped
    assert utf16_len(reply.text) <= MAX_TEXT


async def test_one_analysts_flood_is_refused_and_does_not_slow_another(limited: BotApp) -> None:
    app = limited
    await app.make_analyst(ANN)
    await app.make_analyst(BOB)
    await ArchiveRepository(app.redis).put_many(
        [_post(i, f"мигранты и погода {i} " * 10) for i in range(1, 1501)]
    )
    # Bob alone, for comparison.
    started = time.monotonic()
    alone = await app.say(BOB, "/test погода", timeout=60)
    alone_s = time.monotonic() - started
    assert "1500 of 1500 archived posts match" in alone.text
    # Ann sends 40 searches at once; Bob asks meanwhile.
    after = len(app.server.sent)
    await asyncio.gather(*(app.server.send_text(ANN, f"/search мигрант {i}") for i in range(40)))
    await asyncio.sleep(0.2)
    started = time.monotonic()
    bob = await app.say(BOB, "/search погода", timeout=60)
    flooded_s = time.monotonic() - started
    assert "1500 archived posts match" in bob.text
    await app.server.wait_until(
        lambda: len([m for m in app.server.sent[after:] if m.chat_id == ANN]) >= 40, 60
    )
    ann = [m.text for m in app.server.sent[after:] if m.chat_id == ANN]
    served = [t for t in ann if t.startswith("🔎")]
    busy = [t for t in ann if t == texts.ARCHIVE_BUSY]
    assert (len(served), len(busy)) == (1, 39), ann  # one at a time: the rest refused at once
    # One after another: the rest of her window (3 a minute), then refused with a wait.
    assert (await app.say(ANN, "/search погода", timeout=60)).text.startswith("🔎")
    assert (await app.say(ANN, "/search погода", timeout=60)).text.startswith("🔎")
    refused = await app.say(ANN, "/search погода", timeout=10)
    assert refused.text.startswith("Too many searches in a row; try again in ")
    print(f"\nsecond analyst: alone {alone_s:.2f} s, while the first floods {flooded_s:.2f} s")
    # Ann's flood adds at most her one running search to Bob's wait.
    assert flooded_s < alone_s * 2 + 3


def test_the_bot_side_never_imports_the_triage_models() -> None:
    """Handlers and the bot role reach text matching only through the request stream."""
    for path in (ROOT / "handlers/watches.py", ROOT / "bot/botapp.py"):
        imported = imported_modules(path)
        assert not imported & {
            "bot.triage.engine",
            "bot.triage.language",
            "bot.triage.index",
            "bot.search",
        }, path
    probe = (
        "import sys\n"
        "import bot.botapp, handlers\n"
        "heavy = {'py3langid', 'pymorphy3', 'Stemmer', 'bot.triage.language',"
        " 'bot.triage.engine', 'bot.search', 'numpy'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
