"""Pytest fixtures for the loopback Bot API server (registered in tests/conftest.py).

async def test_something(bot_api: BotApiServer, api_bot: Bot) -> None:
    bot_api.add_user(42)
    await api_bot.send_message(42, "<b>hi</b>")
    assert bot_api.messages_to(42)[0].spans("bold") == ["hi"]
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from tests.support.botapi import BotApiServer

TEST_TOKEN = "123456:TEST-TOKEN"


class LoopbackSession(AiohttpSession):
    """AiohttpSession without the 250 ms SSL-drain sleep on close (plain HTTP on loopback)."""

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()


def make_session(server: BotApiServer, *, timeout: float = 30.0) -> AiohttpSession:
    """An aiogram session that talks to `server` (what BOT_API_URL does in the app)."""
    return LoopbackSession(api=TelegramAPIServer.from_base(server.base_url), timeout=timeout)


def make_bot(server: BotApiServer, *, token: str | None = None) -> Bot:
    """An aiogram Bot on the loopback server, HTML parse mode by default. Close its session."""
    return Bot(
        token=token or server.token,
        session=make_session(server),
        default=DefaultBotProperties(parse_mode="HTML"),
    )


@contextlib.asynccontextmanager
async def polling(
    dispatcher: Dispatcher, bot: Bot, **kwargs: Any
) -> AsyncIterator[asyncio.Task[None]]:
    """Run `dispatcher.start_polling(bot, **kwargs)` in a task for the body of the block.

    kwargs go to start_polling (e.g. handle_as_tasks=False, polling_timeout=...) and the rest
    become handler dependencies, as with `Dispatcher(**deps)`. On exit polling is stopped and
    awaited, so an exception inside polling fails the test.
    """
    task = asyncio.create_task(
        dispatcher.start_polling(bot, handle_signals=False, close_bot_session=False, **kwargs)
    )
    try:
        yield task
    finally:
        if not task.done():
            with contextlib.suppress(RuntimeError):  # stopped before it had started
                await dispatcher.stop_polling()
            done, _ = await asyncio.wait({task}, timeout=5)
            if not done:
                task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.fixture
async def bot_api() -> AsyncIterator[BotApiServer]:
    """A started loopback Bot API server with Telegram's limits, stopped after the test."""
    server = BotApiServer(TEST_TOKEN)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
        assert not server.internal_errors, server.internal_errors


@pytest.fixture
async def api_bot(bot_api: BotApiServer) -> AsyncIterator[Bot]:
    """An aiogram Bot talking to `bot_api`; its session is closed after the test."""
    bot = make_bot(bot_api)
    try:
        yield bot
    finally:
        await bot.session.close()
